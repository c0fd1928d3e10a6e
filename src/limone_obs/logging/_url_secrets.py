"""Secret URL values (``/reset-password/<token>``) in every form a line can hold them.

A value Flask matched for a URL variable that names a secret is masked in the request's
``path``, and no line of the request may show it: not a message quoting ``request.url``,
not a field holding it, not the server's request line. Those lines hold the value as
Flask decoded it, as ``request.url`` and ``url_for`` quote it, as ``PATH_INFO`` carries its bytes
(Latin-1, PEP 3333) and as the client percent-encoded it in the request line; a URL that
is not UTF-8 reaches Flask with U+FFFD in place of its bad bytes. :func:`forms` finds
each of them, and :func:`scrub_line` takes them out of a finished line, whatever field
or nesting they are in. Only requests of rules with such variables pay for any of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import orjson
from werkzeug.urls import uri_to_iri

from limone_obs.logging._context import request_secrets, scrub
from limone_obs.logging._encode import encode_line

#: What Werkzeug leaves unquoted when it builds ``request.url`` (``get_current_url``).
_URL_SAFE = "!$&'()*+,/:;=@%"
#: Longest URL scanned for a value's client-encoded form (a request line of gunicorn is
#: 4094 bytes at most; Werkzeug's development server sets no limit): bounded work.
_MAX_SCANNED = 16384
_HEX = frozenset("0123456789abcdefABCDEF")


def wsgi_text(raw: str) -> str:
    """A WSGI path (the URL's bytes as Latin-1 characters) as the text Flask routes:
    UTF-8, a bad byte sequence as U+FFFD. A path already holding other characters (a
    server that decoded it) is returned as it is."""
    if raw.isascii():
        return raw
    try:
        return raw.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return raw


def forms(value: str, raw_path: str, uri: str) -> list[str]:
    """Every text of secret URL value ``value`` (as Flask decoded it) that a line of its
    request can hold: itself, quoted as in ``request.url``, its bytes as ``raw_path``
    (``SCRIPT_NAME`` + ``PATH_INFO``) holds them, and as the client wrote them in
    ``uri`` (the request line's target); each once, in that order."""
    quoted = quote(value, safe=_URL_SAFE)
    # request.url is an IRI: Werkzeug quotes the path, then unquotes what an IRI may hold.
    out = [value, uri_to_iri(quoted), quoted, quote(value, safe="")]
    raws = list(_in_raw_path(value, raw_path))
    out += raws
    for raw in raws:
        out += _client_written(raw, uri)
    return list(dict.fromkeys(out))


def _in_raw_path(value: str, raw_path: str) -> Iterator[str]:
    """``value``'s bytes as Latin-1 characters, as ``raw_path`` holds them; where a bad
    byte sequence became U+FFFD, the bytes the path actually holds there."""
    if "\ufffd" not in value:
        yield value.encode("utf-8").decode("latin-1")
        return
    # U+FFFD stands for one to three bytes from 0x80 up (an invalid or cut sequence).
    parts = (
        "[\x80-\xff]{1,3}" if ch == "\ufffd" else re.escape(ch.encode().decode("latin-1"))
        for ch in value
    )
    yield from dict.fromkeys(m.group() for m in re.finditer("".join(parts), raw_path))


def _client_written(latin: str, uri: str) -> list[str]:
    """The spans of ``uri`` that percent-decode to ``latin`` (the value's bytes as Latin-1
    characters): the value as the client encoded it (``%ff``, ``%C3%B6``, plain)."""
    uri = uri[:_MAX_SCANNED]
    decoded: list[str] = []
    starts: list[int] = []
    i = 0
    while i < len(uri):
        starts.append(i)
        if uri[i] == "%" and i + 2 < len(uri) and set(uri[i + 1 : i + 3]) <= _HEX:
            decoded.append(chr(int(uri[i + 1 : i + 3], 16)))
            i += 3
        else:
            decoded.append(uri[i])
            i += 1
    starts.append(len(uri))
    text = "".join(decoded)
    found: list[str] = []
    at = text.find(latin)
    while at != -1 and latin:
        found.append(uri[starts[at] : starts[at + len(latin)]])
        at = text.find(latin, at + 1)
    return found


def scrub_line(line: bytes, mask: str, cap: int) -> bytes:
    """``line`` (one encoded JSON line) with this context's request secrets masked in
    every key and string value, any depth; the line itself when it holds none (the usual
    case, found without decoding it). Re-encoded under the same size cap ``cap``."""
    secrets = request_secrets()
    # JSON escapes a string character by character: a secret inside any string of the
    # line shows there as its own escaped form.
    if not any(orjson.dumps(secret)[1:-1] in line for secret in secrets):
        return line
    return encode_line(_scrubbed(orjson.loads(line), mask), cap)


def _scrubbed(value: Any, mask: str) -> Any:
    if isinstance(value, str):
        return scrub(value, mask)
    if isinstance(value, dict):
        return {scrub(k, mask): _scrubbed(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, mask) for v in value]
    return value
