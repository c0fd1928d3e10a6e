"""Secret URL values (``/reset-password/<token>``) in every form a line can hold them.

A value Flask matched for a URL variable that names a secret is masked in the request's
``path``, and no line of the request may show it: not a message quoting ``request.url``,
not a field holding it, not the server's request line. Those lines hold the value as
Flask decoded it, as ``request.url`` and ``url_for`` quote it, as ``PATH_INFO`` carries
its bytes (Latin-1, PEP 3333), as the client percent-encoded it in the request line and
as Werkzeug's development server shows that (an IRI); a URL that is not UTF-8 reaches
Flask with U+FFFD in place of its bad bytes. :func:`forms` finds each of them, and
:func:`scrub_event` / :func:`scrub_line` take them out of a line, whatever field or
nesting they are in, except the line's own fields (level, service, ids...): a client
choosing its token cannot rewrite those. Only requests of rules with such variables pay
for any of it, and the work is linear in the URL's length, whatever the client sends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

import orjson
from werkzeug.urls import uri_to_iri

from limone_obs import conventions as c
from limone_obs.logging._context import request_secrets, scrub
from limone_obs.logging._encode import encode_line

#: What Werkzeug leaves unquoted when it builds ``request.url`` (``get_current_url``).
_URL_SAFE = "!$&'()*+,/:;=@%"
#: And in a query string ``url_for`` builds (``urlencode``, spaces as ``+``).
_QUERY_SAFE = "!$'()*,/:;?@"
#: Longest URL scanned for a value's client-encoded form (a request line of gunicorn is
#: 4094 bytes at most; Werkzeug's development server sets no limit): bounded work.
_MAX_SCANNED = 16384
#: Spellings kept per value (a client can write each character plain or percent-encoded).
_MAX_SPELLINGS = 16
_HEX = frozenset("0123456789abcdefABCDEF")
#: Longest path matched against a rule's shape.
_MAX_RULE_MATCHED = 4096
#: Nesting scrubbed (the encoder writes what is deeper than 32 levels as a marker).
_MAX_DEPTH = 34
#: The line's own fields, never scrubbed: their values are the kit's or the server's (a
#: client whose token is ``info``, the service's name or its own address must not turn
#: them into the mask). ``path`` is masked already, where the rule puts the value.
KEPT = frozenset(
    (*c.LOG_CORE_FIELDS, *c.LOG_CONTEXT_FIELDS, c.LOG_TRUNCATED, c.LOG_ORIGINAL_BYTES,
     c.LOG_REMOTE_ADDR, c.LOG_USER_AGENT, c.LOG_RESPONSE_BYTES)
) - {c.LOG_MESSAGE, c.LOG_USER_ID}  # fmt: skip
#: Names a client's token may not rename: the schema's fields.
OWN_NAMES = frozenset((*KEPT, c.LOG_MESSAGE, c.LOG_USER_ID, c.LOG_EXCEPTION))
#: A variable of a Flask URL rule: its converter (``int``, ``path``...) and name.
_RULE_VARIABLE = re.compile(
    r"<(?:([A-Za-z_][A-Za-z0-9_]*)(?:\([^)]*\))?:)?([A-Za-z_][A-Za-z0-9_]*)>"
)


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


def rule_spans(rule: str, path: str) -> dict[str, tuple[int, int]]:
    """Where each variable of URL rule ``rule`` is in ``path`` (decoded, without the mount
    point): the text the client wrote, which can read otherwise than the converter's value
    (``<uuid:token>`` upper-case in the URL, ``<int:id>`` with leading zeros). Empty when
    the path does not match the rule's shape, and for a rule this cannot read in linear
    time: two variables in one segment, or a ``path`` variable beside another."""
    parts: list[str] = []
    at = 0
    variables = list(_RULE_VARIABLE.finditer(rule))
    converters = [match.group(1) for match in variables]
    if len(path) > _MAX_RULE_MATCHED or ("path" in converters and len(variables) > 1):
        return {}
    for match in variables:
        literal = rule[at : match.start()]
        if at and "/" not in literal:  # a second variable in the segment: backtracking
            return {}
        parts.append(re.escape(literal))
        converter, name = match.groups()
        parts.append(f"(?P<{name}>.+)" if converter == "path" else f"(?P<{name}>[^/]+)")
        at = match.end()
    parts.append(re.escape(rule[at:].rstrip("/")))
    try:
        found = re.fullmatch("".join(parts) + "/?", path)
    except re.error:  # a rule this reading of rules does not cover
        return {}
    return {k: found.span(k) for k, v in found.groupdict().items() if v} if found else {}


def forms(value: str, path: str, raw_path: str, uri: str) -> list[str]:
    """Every text of secret URL value ``value`` (as Flask decoded it) that a line of its
    request can hold: itself, as ``request.url`` and ``url_for`` quote it, its bytes as
    ``raw_path`` (``SCRIPT_NAME`` + ``PATH_INFO``; ``path`` is its decoded text) holds
    them, and as the client wrote them in ``uri`` (the request line's target), plain and
    as Werkzeug's server logs it; each once, in that order."""
    quoted = quote(value, safe=_URL_SAFE)
    # request.url is an IRI: Werkzeug quotes the path, then unquotes what an IRI may hold.
    out = [value, uri_to_iri(quoted), quoted, quote(value, safe=""), quote_plus(value)]
    out.append(quote_plus(value, safe=_QUERY_SAFE))
    raws = _raw_spans(value, path, raw_path)
    if not raws and "\ufffd" not in value:
        raws = [value.encode("utf-8").decode("latin-1")]
    out += raws
    if uri:
        index = _UriIndex(uri)
        # Found by the value's bytes, and by its text in the target decoded as Flask
        # decodes a path (a server that replaced bad bytes before PATH_INFO: Werkzeug's).
        written = [*(s for raw in raws for s in index.spellings(raw)), *index.decoded_as(value)]
        out += written
        out += [uri_to_iri(text) for text in written]
    return list(dict.fromkeys(out))


def _raw_spans(value: str, path: str, raw_path: str) -> list[str]:
    """The texts of ``raw_path`` that decode to the occurrences of ``value`` in ``path``
    (one per distinct text, at most :data:`_MAX_SPELLINGS`). ASCII characters decode to
    themselves and no bad byte sequence takes one in, so each run of other characters of
    ``path`` is the same run of ``raw_path`` (a value ending inside a run takes it whole)."""
    if value not in path:
        return []
    runs = _run_map(path[:_MAX_SCANNED], raw_path[: 4 * _MAX_SCANNED])
    n = len(value)
    return _distinct(raw_path[runs[at][0] : runs[at + n - 1][1]] for at in _at(value, path, runs))


def _at(value: str, text: str, runs: list[tuple[int, int]] | None = None) -> Iterator[int]:
    """Where ``value`` starts in ``text``, each occurrence (within the mapped part when
    ``runs`` maps ``text``'s characters: see :func:`_run_map`)."""
    end = len(text) if runs is None else len(runs)
    at = text.find(value) if value else -1
    while at != -1 and at + len(value) <= end:
        yield at
        at = text.find(value, at + 1)


def _distinct(texts: Iterable[str]) -> list[str]:
    """The first :data:`_MAX_SPELLINGS` distinct ``texts``, in order."""
    found: dict[str, None] = {}
    for text in texts:
        found[text] = None
        if len(found) == _MAX_SPELLINGS:
            break
    return list(found)


def _run_map(path: str, raw_path: str) -> list[tuple[int, int]]:
    """Per character of ``path``, the span of ``raw_path`` it was decoded from: an ASCII
    character its own, any other the whole run of non-ASCII characters it is part of.
    Stops where the two stop agreeing (a server that passed other text)."""
    spans: list[tuple[int, int]] = []
    i = j = 0
    while i < len(path) and j < len(raw_path):
        if path[i] < "\x80":
            if raw_path[j] != path[i]:
                break
            spans.append((j, j + 1))
            i, j = i + 1, j + 1
            continue
        end_i, end_j = i, j
        while end_i < len(path) and path[end_i] >= "\x80":
            end_i += 1
        while end_j < len(raw_path) and raw_path[end_j] >= "\x80":
            end_j += 1
        spans += [(j, end_j)] * (end_i - i)
        i, j = end_i, end_j
    return spans


class _UriIndex:
    """A request target percent-decoded once, with where each decoded character starts,
    to find the spellings of several texts in it."""

    def __init__(self, uri: str) -> None:
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
        self.uri, self.text, self.starts = uri, "".join(decoded), starts
        self._utf8: tuple[str, list[tuple[int, int]]] | None = None

    def spellings(self, latin: str) -> list[str]:
        """The distinct spans of the target that percent-decode to ``latin`` (a value's
        bytes as Latin-1 characters): ``%ff``, ``%C3%B6``, plain; at most
        :data:`_MAX_SPELLINGS`."""
        n, starts = len(latin), self.starts
        return _distinct(self.uri[starts[at] : starts[at + n]] for at in _at(latin, self.text))

    def decoded_as(self, value: str) -> list[str]:
        """The distinct spans of the target whose bytes decode (UTF-8, bad bytes as
        U+FFFD) to ``value``; at most :data:`_MAX_SPELLINGS`."""
        if self._utf8 is None:
            utf8 = wsgi_text(self.text)
            self._utf8 = (utf8, _run_map(utf8, self.text))
        utf8, runs = self._utf8
        n, starts = len(value), self.starts
        return _distinct(
            self.uri[starts[runs[at][0]] : starts[runs[at + n - 1][1]]]
            for at in _at(value, utf8, runs)
        )


def scrub_event(event: Mapping[str, Any], mask: str) -> dict[str, Any]:
    """``event`` with this context's request secrets masked in every key and string, at
    any depth, except the line's own: the values of :data:`KEPT`, the names of the
    schema's fields and of the exception's parts (a client whose token is ``message``
    must not rename a field)."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key in KEPT:
            out[key] = value
        elif key == c.LOG_EXCEPTION and isinstance(value, Mapping):
            out[key] = {k: _scrubbed(v, mask, 2) for k, v in value.items()}
        else:
            own = key in OWN_NAMES or not isinstance(key, str)
            out[key if own else scrub(key, mask)] = _scrubbed(value, mask, 1)
    return out


def scrub_line(line: bytes, mask: str, cap: int) -> bytes:
    """``line`` (one encoded JSON line) with this context's request secrets masked as
    :func:`scrub_event` does (a value only its encoding made text: an object's repr);
    the line itself when it holds none (found without decoding it). Re-encoded under
    the same size cap ``cap``."""
    secrets = request_secrets()
    # JSON escapes a string character by character: a secret inside any string of the
    # line shows there as its own escaped form.
    if not any(orjson.dumps(secret)[1:-1] in line for secret in secrets):
        return line
    event = orjson.loads(line)
    if not isinstance(event, dict):
        return line
    scrubbed = scrub_event(event, mask)
    return line if scrubbed == event else encode_line(scrubbed, cap)


def _scrubbed(value: Any, mask: str, depth: int) -> Any:
    if isinstance(value, str):
        return scrub(value, mask)
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {
            scrub(k, mask) if isinstance(k, str) else k: _scrubbed(v, mask, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrubbed(v, mask, depth + 1) for v in value]
    return value
