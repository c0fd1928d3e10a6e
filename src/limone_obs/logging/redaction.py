"""Mask secrets in log events: by key at any depth, and by the shape of a value.

**Keys.** A key is read lower-cased, percent-decoded (``pass%77ord``), with ``-``, ``.``,
``+``, ``%`` and spaces as ``_``, and also after splitting camelCase (``passwordHash`` ->
``password_hash``). It is sensitive when:

* it equals a configured name or ends in ``_<name>`` (:data:`DEFAULT_KEYS`: ``Password``,
  ``db_password``, ``X-Api-Key``, ``authToken``, ``aws_secret_access_key`` ...);
* or, with the built-in name rules (``name_rules=True``, the default), one of its parts
  contains ``password``, ``passwd`` or ``passphrase`` (``password_confirmation``,
  ``new_password2``, ``PGPASSWORD``), contains ``secret`` (``clientSecret``; not ``secretary``), is
  ``jwt``, ``otp``, ``totp`` or ``hotp``; its last part ends in ``token`` (``csrftoken``,
  ``github_token``) or is ``auth`` (``X-Auth``, ``basic_auth``); or it holds ``private``
  followed by ``key`` (``privatekey``, ``private_rsa_key``).

Not sensitive (kept visible on purpose): ``prompt_tokens``/``token_count`` (AI token
counts: ``tokens`` is not ``token``), ``author``, ``oauth_provider``, ``auth_method`` (auth
is only a secret as the last part), ``key`` alone (cache keys), ``session_count``
(``session``, ``session_id`` and ``sessionid`` are masked). ``bytes`` keys are read as
text.

**Values** (any text: messages, fields, tracebacks) are masked when they look like a
bearer/basic credential (after basic, token or digest a plain word is kept, so "basic
authentication" stays readable), a URL's user info (``scheme://user:pass@``,
``scheme://token@``), a ``password=...`` pair inside free text (also in a URL's query
string, ``?api_key=...``), or a common token format: a JWT (``eyJ...`` in three dotted
parts), an API key of the ``sk-``/``sk_live_``/``rk_live_`` family, an AWS access key id
(``AKIA``/``ASIA`` + 16), a GitHub token (``ghp_``, ``github_pat_`` ...), a Slack token
(``xoxb-`` ...) or a Google API key (``AIza`` + 35), or a payment card number (13-19
digits of a card network's range passing the Luhn check, spaced or dashed as printed,
not part of a decimal number: about one in ten other such numbers pass too, and are
masked as well). Values other than text, numbers, containers and dates (bytes,
dataclasses, arbitrary objects) are first turned into what the line would show (their
fields, decoded bytes, ``repr()``) and then checked, so a secret in an object's ``repr``
is masked too. ``(name, value)`` pairs in lists (header lists) mask the value of a
sensitive name, and so do such pairs in text (``('password', 'x')``, ``["token", "x"]``:
the repr of a header list). A pair's value in text is masked to its end: a quoted value
to its closing quote (a triple-quoted one to its closing triple), a bracketed value or a
call (``auth=("u", "pw")``, ``password=get('x')``, also ``get ('x')``) to its closing
bracket, a prefixed string (``b'x'``) whole; each is followed at most to the end of its
line (a triple-quoted one across lines) and 1024 characters. Also masked:
``name => 'x'`` pairs, a password, secret or token name's quoted value after spaces, SQL's
``IDENTIFIED BY``, pairs inside a JSON string's JSON (escaped quotes), such names' XML
elements, curl's ``-u user:x``, and a percent-encoded run that hides any of these
(masked whole, never shown decoded); a mapping's keys and a line's field names that hold
a secret are renamed ``[REDACTED]``, ``[REDACTED]#2``...

**Cost.** Every scan is one linear pass (no pattern is retried at every offset with a
look-ahead to the end), so redaction time grows linearly with the input, whatever its
shape. ``max_text`` (set by ``configure_logging`` to twice the line cap) bounds the work
per text: a longer text could not fit in a line anyway and is cut (see
:func:`cut_text`), after a scan of its head and tail with about one limit of what
precedes each (so the cut parts no value from its name); the line it ends up in is
still marked ``truncated``.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import enum
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, Final
from urllib.parse import unquote

from limone_obs.logging._encode import TOO_DEEP, as_text

MASK: Final = "[REDACTED]"
#: Key names masked by default (matched as described in the module docstring).
DEFAULT_KEYS: Final = frozenset(
    {
        "authorization", "proxy_authorization", "cookie", "set_cookie", "password", "passwd",
        "pwd", "pw", "pass", "passcode", "pin", "sig", "secret", "client_secret", "token",
        "api_key", "apikey", "access_token",
        "refresh_token", "id_token", "auth_token", "session_token", "private_key",
        "secret_key", "credentials", "credential", "creds", "x_api_key", "session",
        "sessionid", "session_id", "jsessionid", "phpsessid", "connect_sid",
        "csrf_token", "xsrf_token", "signature", "dsn", "connection_string", "access_key",
        "access_key_id", "secret_access_key", "signing_key", "encryption_key",
        "master_key", "ssh_key", "license_key",
        # Payment card data (PCI DSS: never logged) and bank account numbers.
        "card_number", "cardnumber", "credit_card", "cc_number", "pan", "cvc", "cvc2", "cvv",
        "cvv2", "card_cvc", "iban",
    }
)  # fmt: skip
#: Nesting searched for secrets; anything deeper is replaced by TOO_DEEP as a whole.
MAX_DEPTH: Final = 32
_CACHE_LIMIT = 4096
#: Keys longer than this are judged every time (never cached: memory stays bounded).
_CACHED_KEY_LEN = 256
_SCALARS = frozenset({int, float, bool})
#: Types orjson writes natively as dates/ids: no secret can hide in them.
_PLAIN_TYPES = (dt.datetime, dt.date, dt.time, uuid.UUID)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-.+%]+")
#: Name parts that are secrets wherever they appear in a key (``otp_code``, ``user_jwt``).
_SECRET_PARTS = frozenset({"jwt", "otp", "totp", "hotp"})
#: Words that make a name part secret wherever they are in it (``password_confirmation``,
#: ``new_password2``, ``PGPASSWORD``).
_SECRET_WORDS = ("password", "passwd", "passphrase")
#: Ordinary words that contain ``secret``.
_NOT_SECRET = frozenset({"secretary", "secretaries", "secretariat"})
#: Authorization-style credentials in text: "Bearer eyJ...", "Basic dXNlcjpw...".
#: The credential is checked by :func:`_looks_like_credential` (plain words are kept).
#: Linear: it can only start at a scheme word, and ``\s+`` and the credential's class
#: are disjoint, so no position is scanned twice. A scheme word is never taken as the
#: credential of the word before it ("TOKEN Bearer x": the match is "Bearer x").
_AUTH_SCHEME = re.compile(
    r"(?i)\b(bearer|basic|token|digest)(\s+)"
    r"(?!(?:bearer|basic|token|digest)\b)([A-Za-z0-9._~+/=\-]{6,})"
)
#: Characters of a ``name`` in a ``name=value`` pair.
_NAME_CHARS = r"A-Za-z0-9_%\-"
#: ``name=`` / ``"name": `` in free text; the name is checked like a dict key. A name can
#: only start where a run of name characters starts (the look-behind): a pattern tried
#: at every offset of a long run would rescan the run each time (quadratic). Only the
#: name and separator are consumed, so a pair inside a non-secret value
#: (``url=https://h/?token=x``) is still found. ``https://...`` is no pair. ``=>`` is
#: one separator (PHP's and Ruby's ``'password' => 'x'``), not ``=`` before a value ``>``.
#: Quotes may be escaped: JSON inside a JSON string (``"{\\"api_key\\": \\"x\\"}"``).
_PAIR = re.compile(
    rf"""(?<![{_NAME_CHARS}])([{_NAME_CHARS}]+)((?:\\?["'])?\s*(?:=>|[:=])\s*(?:\\?["'])?)(?!//)"""
)
#: A name and a quoted value with only spaces between (SQL's ``WITH PASSWORD 'x'``, a
#: message's ``token 'x' expired``): the quoted value is masked when the name holds one
#: of :data:`_STRONG_NAMES` (prose's "pass 'x'", "signature 'x'" or "credentials
#: 'default' profile" name no value), is no bare "secret" (a Kubernetes or Vault
#: secret's name: "secret 'prod-db' not found") and no parser's "expected token 'x'".
#: Starts only where a run of name characters starts (the look-behind): linear.
_SPACED_QUOTE = re.compile(
    rf"""(?<![{_NAME_CHARS}])(?:(\w+)[ \t]+)?([{_NAME_CHARS}]+)[ \t]+(['"])"""
)
#: Parts of a name that says its value is a secret beyond doubt: required where the
#: value's shape says little (a quoted value after spaces, an XML element's text).
_STRONG_NAMES = (
    "password", "passwd", "passphrase", "secret", "token", "api_key", "apikey",
    "authorization", "private_key", "access_key", "session_id", "sessionid",
)  # fmt: skip
#: A word before ``token 'x'`` that makes it a parser's message (Jinja's "expected token
#: 'end of statement block'", JSON's "Unexpected token '<'"): no value follows.
_PARSER_WORDS = frozenset({"expected", "unexpected", "unknown", "invalid_syntax"})
#: An XML element's text (``<password>x</password>``, attributes allowed, or a CDATA
#: section) of a name holding one of :data:`_STRONG_NAMES`. Each try reads the opening
#: tag (bounded) and text up to the next ``<``: linear.
_XML_ELEMENT = re.compile(
    r"<([A-Za-z_][\w.:-]{0,63})(?:\s[^<>]{0,256})?>"
    r"(<!\[CDATA\[(?:[^\]<]|\](?!\]>)){0,8192}\]\]>|[^<]{1,8192})</\1\s*>"
)
_WHITE_SPACE = re.compile(r"\s")
#: curl's ``-u user:password`` (also ``-uuser:...``, ``--user``, and ``-U`` /
#: ``--proxy-user`` for its proxy): the part after the colon is the password, to the next
#: white space (or closing quote); also as a list's items (``['curl', '-u', 'bob:x']``,
#: a CalledProcessError's text). Looked for in texts naming curl.
_USER_OPTION = re.compile(
    r"""(?<![\w-])(?:-[uU]|--user|--proxy-user)(?:['"],[ \t]*|[ \t]+|=)?(['"]?)"""
    r"""([^\s:'"]{1,256}):"""
)
#: SQL's ``IDENTIFIED BY 'x'`` (MySQL, Oracle: also unquoted; MySQL 8's ``IDENTIFIED WITH
#: caching_sha2_password BY 'x'``, or ``AS '<hash>'``): what follows is a password; an
#: unquoted one only in a text that creates or alters a user or role or grants (prose's
#: "request identified as bot" names none).
_IDENTIFIED_BY = re.compile(
    r"(?i)(?<![A-Za-z0-9_])identified[ \t]+(?:with[ \t]+[\w'\"`]{1,64}[ \t]+)?(?:by|as)[ \t]+"
)
_SQL_USER = re.compile(r"(?i)\b(?:(?:create|alter)[ \t]+(?:user|role|login)|grant)\b")
#: An auth scheme word at the start of a pair's value (``Authorization: Bearer x``).
_VALUE_SCHEME = re.compile(r"(?i:bearer|basic|token|digest)\s+")
#: After an ``Authorization`` / ``Proxy-Authorization`` name, any scheme word is one
#: (``ApiKey``, ``SSWS``, ``Negotiate``, ``AWS4-HMAC-SHA256``): the credential after it
#: belongs to the value.
_ANY_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,31}[ \t]+(?=\S)")
_AUTHORIZATION_NAMES = frozenset({"authorization", "proxy_authorization"})
#: Werkzeug's ``repr(request.authorization)``: ``<Authorization ApiKey sekr3t>``.
_AUTHORIZATION_REPR = re.compile(r"(<Authorization [A-Za-z][A-Za-z0-9._-]{0,31} )[^>\n]{1,1024}>")
#: A command line's ``--name value`` (``pg_dump --password x``), also as a list's repr
#: (``'--password', 'x'``): the name is checked like a dict key, the value masked.
#: The value may start with one dash and two more characters (``--password -Xs3cret``);
#: a dash and one letter is the next short option (``pg_dump --password -h db``: its
#: ``--password`` takes no value), two dashes the next long one.
_FLAG = re.compile(
    r"""(?<![\w-])--([A-Za-z][A-Za-z0-9_-]{0,63})(?:(['"]),\s*(['"])|[ \t]+(?=[^\s-]|-[^\s-]{2}))"""
)
#: A command line's option as a list item of its own (``"--password"``).
_OPTION = re.compile(r"--([A-Za-z][A-Za-z0-9_-]{0,63})")
#: How an option switching something off starts (``--no-password``: no value follows).
_NEGATED = frozenset({"no-", "no_"})
#: Where a pair's value ends.
_VALUE_END = re.compile(r"""[\s"'&,;]""")
#: ``('name', `` / ``["name", `` in text: a (name, value) pair as Python or JSON writes it.
#: Each try starts at a bracket and reads at most 128 name characters: linear.
_ITEM_PAIR = re.compile(r"""[(\[]\s*(['"])([^'"\n]{1,128})\1\s*,\s*""")
#: A masked value is followed at most this far to its closing quote or bracket (a longer
#: one is masked that far: nothing of it is shown, and the scan stays linear).
_MAX_VALUE = 1024
_CLOSING = {"(": ")", "[": "]", "{": "}"}
#: Python's string prefixes (``b'...'``, ``f"..."``), lower-cased.
_STRING_PREFIXES = frozenset({"b", "r", "u", "f", "br", "rb", "fr", "rf"})
#: Where a URL written in text ends: user info (a password) may hold ``/?#@`` but no
#: white space or quote.
_URL_RUN_END = re.compile(r"[\s\"'<>`]")
#: Where a URL's authority part ends, or its user info (``@``), whichever comes first.
_AUTHORITY_END = re.compile(r"[/?#@]")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_TOKEN = r"A-Za-z0-9_\-"
#: Common token formats, masked wherever they appear. Each starts only where a run of
#: token characters starts (look-behind), so each run is tried once: linear.
#: The armour line opening a PEM private key (PKCS#1, PKCS#8, EC, OpenSSH, encrypted)
#: or a PGP private key block.
_PEM_PRIVATE_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,10}-----")
_TOKEN_SHAPES = re.compile(
    rf"(?<![{_TOKEN}])(?:"
    rf"eyJ[{_TOKEN}]{{8,}}\.eyJ[{_TOKEN}]{{8,}}\.[{_TOKEN}]*"  # JWT: header.payload.sig
    rf"|[sr]k[-_](?:(?:live|test|proj|ant)[-_])?[{_TOKEN}]{{16,}}"  # sk-..., sk_live_...
    r"|(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"  # AWS access key id
    rf"|gh[pousr]_[A-Za-z0-9]{{30,}}|github_pat_[{_TOKEN}]{{30,}}"  # GitHub
    rf"|xox[abposr]-[{_TOKEN}]{{10,}}"  # Slack
    rf"|AIza[{_TOKEN}]{{35}}"  # Google API key
    rf"|hooks\.slack\.com/(?:services|workflows|triggers)/[{_TOKEN}/]+"  # Slack webhook
    rf"|/services/T[A-Z0-9]+/B[A-Z0-9]+/[{_TOKEN}]+"  # its path alone (urllib3's errors)
    rf"|(?:discord(?:app)?\.com)?/api/(?:v[0-9]+/)?webhooks/[0-9]+/[{_TOKEN}]+"  # Discord
    r")"
)
#: SQLAlchemy's line of a failed statement's bound values in its errors' text
#: (``[parameters: ('bob', 'hunter2')]``): any of them may be a secret (a password being
#: stored), and the statement line above it names no column for each. To the line's end
#: (a value's repr has no newline): linear.
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
_SQL_PARAMETERS_MASKED = "[parameters: {mask}]"
#: The row or key values databases quote in a refused statement's error: PostgreSQL's
#: ``Failing row contains (1, bob, hunter2, null).`` and ``Key (email)=(bob@x) already
#: exists.`` (to the line's end; a key may be an index expression with parentheses of
#: its own, ``Key (lower(email::text))=(...)``, of at most 256 characters), MySQL's
#: ``Duplicate entry 'bob@x' for key 'email'`` (at most 1024 characters to its closing
#: quote, newlines included). Found from fixed phrases with ``str.find`` (see
#: :func:`_phrase_pairs`): one linear pass, also over a megabyte of hostile repeats (a
#: regex retried at each opening phrase with a bounded look-ahead costs 25 times more per
#: character there). A value holding a newline: the mask runs on to the end of the line
#: that ends the values when it comes within ``_VALUES_MAX`` characters after the first
#: line's end: ``).`` closing a line for a row (a value may hold ``).`` itself), one of
#: the phrases PostgreSQL writes after a key's values (unique, foreign key, exclusion).
_ROW_OPEN = "Failing row contains "
_ROW_ENDS = re.compile(r"\)\.(?=\r?\n|\Z)")
_KEY_OPEN, _KEY_CLOSE, _KEY_MAX = "Key (", ")=(", 256
_KEY_ENDS = re.compile(
    r"\) (?:already exists|is not present in table|is still referenced from table"
    r"|conflicts with |is duplicated)"
)
#: An exclusion conflict names a second key: ``... conflicts with existing key (k)=(<v>).``,
#: whose values end like a row's (``).`` closing a line).
#: PostgreSQL also writes ``Key (k)=(v1) conflicts with key (k)=(v2).`` (an exclusion
#: constraint added to a table that breaks it).
_KEY_CONFLICT = re.compile(r"\) conflicts with (?:existing )?key \(")
#: At least the longest text an end pattern reads (its match and look-ahead).
_END_SPAN = 40
_ENTRY_OPEN, _ENTRY_CLOSE, _ENTRY_MAX = "Duplicate entry '", "' for key", 1024
_VALUES_MAX = 4096
#: The shortest text with something to mask: a pair of the shortest secret name, ``pw=x``
#: (shorter texts are returned unscanned; a trial found ``pwd=p25`` in clear at 8).
_SHORTEST_MASKED = 4
#: A run of text holding a percent-encoded ``=``, ``:`` or ``@`` (or one encoded twice,
#: ``%253D``), between the characters that delimit it in a URL or a line: a URL inside a
#: query value (``next=%2Fcb%3Ftoken%3Dx``), an encoded DSN. Read decoded (see
#: Redactor._mask_encoded). A run is tried only from its start (the look-behind), and
#: read once: linear.
_ENCODED_DELIMITERS = r"\s\"'&=?<>,;\[\]{}"
_ENCODED_RUN = re.compile(
    rf"(?<![^{_ENCODED_DELIMITERS}])[^{_ENCODED_DELIMITERS}]*?%(?:25)?(?:3[DdAa]|40)"
    rf"[^{_ENCODED_DELIMITERS}]*"
)
#: Texts up to this length are remembered with their redacted form (messages repeat).
_TEXT_CACHE_MAX_LEN = 256
CUT_MARK: Final = "...[cut]..."
#: Text before a cut text's kept tail that is scanned with it, in multiples of the cut's
#: limit (see Redactor._cut_scanned).
_CUT_CONTEXT = 1
#: A head's last word shorter than this is dropped by :func:`cut_text`.
_SHORT_WORD = 64


def normalise_key(key: str) -> tuple[str, str]:
    """Return ``key`` percent-decoded, lower-cased, separators as ``_``: plain and
    camelCase-split."""
    if "%" in key:
        for _ in range(3):  # double-encoded names too, but never loop on hostile input
            decoded = unquote(key)
            if decoded == key:
                break
            key = decoded
    plain = _SEPARATORS.sub("_", key).lower()
    split = _SEPARATORS.sub("_", _CAMEL.sub("_", key)).lower()
    return plain, split


def cut_text(text: str, limit: int) -> str:
    """Return ``text`` cut to at most ``limit`` characters and :data:`CUT_MARK`: its head
    and its tail (the tail names the failing line of a traceback).

    No fragment of a secret survives without its name: the tail's first word (maybe the
    end of a value whose name was cut away) is dropped, however long; the head's last word
    (maybe a token cut too short to be recognised) is dropped when shorter than
    :data:`_SHORT_WORD`.
    """
    if len(text) <= limit:
        return text
    half = max(limit // 2, 1)
    head, tail = text[:half], text[-half:]
    boundary = _VALUE_END.search(tail)
    tail = tail[boundary.start() :] if boundary else ""
    last = _last_boundary(head[-_SHORT_WORD:])
    if last or len(head) <= _SHORT_WORD:
        head = head[: len(head) - min(len(head), _SHORT_WORD) + last]
    return head + CUT_MARK + tail


def _last_boundary(text: str) -> int:
    """Index just after the last value-ending character of ``text`` (0 if none)."""
    return max(text.rfind(ch) for ch in (" ", "\n", "\t", '"', "'", "&", ",", ";")) + 1


def _values_end(text: str, begin: int, ends: re.Pattern[str], memo: list[int]) -> int:
    """Where the values starting at ``begin`` end: the line's end when ``ends`` matches
    on it, else the end of the line where ``ends`` first matches within ``_VALUES_MAX``
    characters after it, else the line's end.

    ``memo`` (``[-1, 0]`` for a text's first call, then passed back each time, ``begin``
    growing) keeps the last look-ahead: where ``ends`` matched, or -1 and where it looked
    up to, so a text of many unended values is still read once (linear)."""
    line_end = text.find("\n", begin)
    if line_end == -1:
        return len(text)
    if ends.search(text, begin, line_end):
        return _before_cr(text, line_end)
    limit = line_end + _VALUES_MAX
    hit, clear_to = memo
    if hit < line_end:  # none looked for yet, none found, or one before this line's end
        start = max(line_end, clear_to) if hit == -1 else line_end
        found = ends.search(text, start, limit) if start < limit else None
        hit = found.start() if found else -1
        # Clear of starts up to where a whole match still fits before the limit.
        clear = max(start, limit - _END_SPAN)
        memo[0], memo[1] = hit, (clear if hit == -1 else clear_to)
    if hit == -1 or hit >= limit:
        return _before_cr(text, line_end)
    hit_line_end = text.find("\n", hit)
    return len(text) if hit_line_end == -1 else _before_cr(text, hit_line_end)


def _before_cr(text: str, line_end: int) -> int:
    """``line_end`` (a newline's index), or the ``\r`` before it (a CRLF line keeps it)."""
    return line_end - 1 if line_end > 0 and text[line_end - 1] == "\r" else line_end


def _row_end(text: str, begin: int, memo: list[int], parens: _Parens) -> int:
    """Where the values opening at ``text[begin]`` (a row's ``(``) end: the line a ``).``
    closes. On their first line when its parentheses balance; else, when a value holds a
    line ending in ``).`` itself (``see (a).``), the line of the ``).`` whose ``)`` closes
    the row's ``(``; where none does (a value with a lone parenthesis), the first later
    line ending in ``).`` (:func:`_values_end`)."""
    line_end = text.find("\n", begin)
    first = text[begin:line_end] if line_end != -1 else ""
    if line_end != -1 and text.startswith("(", begin) and first.count("(") != first.count(")"):
        close = parens.matching(begin)
        if close is not None and close - line_end <= _VALUES_MAX and _ROW_ENDS.match(text, close):
            close_end = text.find("\n", close)
            return len(text) if close_end == -1 else _before_cr(text, close_end)
    return _values_end(text, begin, _ROW_ENDS, memo)


class _Parens:
    """The parentheses of a text, indexed once when first asked (one pass): where the
    ``)`` matching a given ``(`` is. Linear: each text is read once, each question is two
    binary searches."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._positions: list[int] | None = None
        self._depths: list[int] = []  # after each parenthesis: opened minus closed
        self._closes: dict[int, list[int]] = {}  # depth after a ")" -> its positions

    def matching(self, opening: int) -> int | None:
        """The position of the ``)`` that closes the ``(`` at ``opening``, else None."""
        if self._positions is None:
            self._index()
        positions = self._positions or []
        at = bisect.bisect_left(positions, opening)
        depth = self._depths[at - 1] if at else 0
        closes = self._closes.get(depth, [])
        found = bisect.bisect_right(closes, opening)
        return closes[found] if found < len(closes) else None

    def _index(self) -> None:
        positions: list[int] = []
        depth = 0
        for match in _PAREN.finditer(self._text):
            at = match.start()
            depth += 1 if match[0] == "(" else -1
            positions.append(at)
            self._depths.append(depth)
            if match[0] == ")":
                self._closes.setdefault(depth, []).append(at)
        self._positions = positions


_PAREN = re.compile(r"[()]")


def _phrase_pairs(
    text: str, opener: str, closer: str, limit: int, *, one_line: bool, to_line_end: bool
) -> Iterator[tuple[int, int]]:
    """Yield ``(start, at)`` for each ``closer`` at ``at`` in ``text`` with an ``opener``
    at ``start`` before it (the nearest), at most ``limit`` characters between them (and
    on the same line if ``one_line``). A pair whose values are masked ``to_line_end``
    ends its line's search.

    Linear, and few steps for hostile repeats of either phrase: each step starts at an
    opener after the last closer seen, and the look-backs cover disjoint spans.
    """
    start = text.find(opener)
    while start != -1:
        at = text.find(closer, start + len(opener))
        if at == -1:
            return
        begin = text.rfind(opener, start, at)  # the nearest: never -1, start is one
        resume = at + len(closer)
        if at - begin - len(opener) <= limit and not (
            one_line and text.find("\n", begin, at) != -1
        ):
            yield begin, at
            if to_line_end:
                line_end = text.find("\n", at)
                resume = len(text) if line_end == -1 else line_end
        start = text.find(opener, resume)


class Redactor:
    """A structlog processor (and plain function) that masks secrets in an event.

    ``keys`` replaces the default names; ``extra_keys`` adds to them; ``name_rules=False``
    turns off the built-in name-part rules (``password*``, ``*secret*``, ``jwt`` ...).
    ``patterns=False`` turns off value-shape masking (keys are still masked).
    ``max_text`` bounds the work per text: a longer one is cut by :func:`cut_text` before
    it is scanned (``configure_logging`` passes twice its line cap; None: no bound). Containers
    are copied, never changed in place, except the top-level event dict a processor owns.
    """

    def __init__(
        self,
        keys: Iterable[str] = DEFAULT_KEYS,
        *,
        extra_keys: Iterable[str] = (),
        patterns: bool = True,
        mask: str = MASK,
        name_rules: bool = True,
        max_text: int | None = None,
    ) -> None:
        self.keys = frozenset(normalise_key(k)[0] for k in (*keys, *extra_keys))
        self._longest_key = max(map(len, self.keys), default=0)
        self.mask = mask
        self.patterns = patterns
        self.name_rules = name_rules
        self.max_text = max_text
        self._verdicts: dict[object, bool] = {}
        self._texts: dict[str, str] = {}
        #: Percent-encoded runs: whether each hides a secret (see _mask_encoded).
        self._encoded_verdicts: dict[str, bool] = {}
        self._safe_keys: set[str] = set()
        self._safe_values: set[Any] = set()
        # Bound once: the sets are only ever cleared, never replaced.
        self._keys_known_safe = self._safe_keys.issuperset
        self._values_known_safe = self._safe_values.issuperset

    def is_sensitive(self, key: object) -> bool:
        """True when ``key`` names a secret (see the module docstring)."""
        if not isinstance(key, str | bytes):
            return False
        verdict = self._verdicts.get(key)
        if verdict is None:
            text = key if isinstance(key, str) else key.decode("utf-8", "replace")
            verdict = any(self._matches(form) for form in normalise_key(text))
            if len(key) <= _CACHED_KEY_LEN:
                if len(self._verdicts) >= _CACHE_LIMIT:
                    self._verdicts.clear()  # keys from user data must not grow memory
                self._verdicts[key] = verdict
        return verdict

    def mask_arguments(self, args: Mapping[Any, Any]) -> Mapping[Any, Any]:
        """``args`` of a ``"%(user)s %(password)s"`` message, with the values of secret
        keys masked: once formatted, the message no longer names them, so its text scan
        cannot find them. ``args`` itself when it names no secret."""
        if not any(self.is_sensitive(key) for key in args):
            return args
        return {key: self.mask if self.is_sensitive(key) else v for key, v in args.items()}

    def _matches(self, form: str) -> bool:
        return self._names_a_key(form) or (self.name_rules and _has_secret_part(form))

    def _names_a_key(self, form: str) -> bool:
        """``form`` is a configured name or ends in ``_<name>``. Only suffixes as long as
        the longest name are looked at: linear in the key, whatever its length."""
        if form in self.keys:
            return True
        floor = len(form) - self._longest_key - 1
        cut = form.rfind("_")
        while cut >= 0 and cut >= floor:
            if form[cut + 1 :] in self.keys:
                return True
            cut = form.rfind("_", 0, cut)
        return False

    def redact_text(self, text: str) -> str:
        """Mask credential-shaped parts of free text (bearer tokens, URL passwords, pairs,
        token formats); a text over ``max_text`` is cut first (:func:`cut_text`)."""
        cached = self._texts.get(text)  # first: most texts (messages) repeat
        if cached is not None:
            return cached
        if not self.patterns or len(text) < _SHORTEST_MASKED:
            return text
        if self.max_text is not None and len(text) > self.max_text:
            return self._cut_scanned(text, self.max_text)
        redacted = self._scan(text)
        if len(text) <= _TEXT_CACHE_MAX_LEN:
            if len(self._texts) >= _CACHE_LIMIT:
                self._texts.clear()
            self._texts[text] = redacted
        return redacted

    def _cut_scanned(self, text: str, limit: int) -> str:
        """``text`` (over ``limit``) masked and cut to ``limit`` (:func:`cut_text`).

        Scanned before the cut, with what precedes each kept part: a value kept at the
        start of the tail has its name before it, maybe in the part cut away (a trial
        found ``Bearer x`` cut between the two words). Only :data:`_CUT_CONTEXT` limits
        before the tail are read: the scan's cost stays bounded, whatever the text's
        length (phrases that mask to a line's end, which may lie far on, go first on the
        whole text, in one linear pass).
        """
        window = _CUT_CONTEXT * limit
        if len(text) > 2 * window:
            text = self._mask_anchored(text)
            text = text[:window] + CUT_MARK + text[-window:]
        return cut_text(self._scan(text), limit)

    def redact_whole(self, text: str) -> str:
        """:meth:`redact_text` without the ``max_text`` cut and without the cache: for
        text that must stay whole (what is written to stderr). Linear in its length."""
        if not self.patterns or len(text) < _SHORTEST_MASKED:
            return text
        return self._scan(text)

    def would_mask(self, text: str) -> bool:
        """True if :meth:`redact_text` would mask part of ``text``; nothing is cached (for
        texts seen once, such as a client's request id)."""
        return bool(self.patterns) and len(text) >= _SHORTEST_MASKED and self._scan(text) != text

    def _mask_anchored(self, text: str) -> str:
        """Mask what follows a fixed phrase to its end (a private key's body, a database
        error's values). One linear pass each, whatever the text's length."""
        # Each pattern needs a phrase most texts lack: test for it first.
        if "-----BEGIN " in text:
            text = self._mask_private_keys(text)
        if "[parameters: " in text:
            masked = _SQL_PARAMETERS_MASKED.format(mask=self.mask)
            text = _SQL_PARAMETERS.sub(lambda _match: masked, text)
        if _ROW_OPEN in text:
            text = self._mask_failing_rows(text)
        if _KEY_CLOSE in text and _KEY_OPEN in text:
            text = self._mask_key_values(text)
        if _ENTRY_CLOSE in text and _ENTRY_OPEN in text:
            text = self._mask_duplicate_entries(text)
        return text

    def _scan(self, text: str) -> str:
        text = self._scan_plain(text)
        if "%" in text:
            text = self._mask_encoded(text)
        return text

    def _mask_encoded(self, text: str) -> str:
        """Each run of :data:`_ENCODED_RUN` that, decoded (twice at most: ``%253D``),
        masks something is masked whole: nothing decoded is ever shown (a decoded value
        would end at its decoded ``@`` or space, and a decoded newline would forge a
        line); an ordinary encoded URL stays as it was written."""

        verdicts = self._encoded_verdicts

        def value_at(match: re.Match[str]) -> tuple[int, int] | None:
            run = match.group()
            hides = verdicts.get(run)  # runs repeat (a URL logged on every request)
            if hides is None:
                once = unquote(run)
                # ``%2523`` in a DSN is a "#" of the password: decoded twice, it ends the
                # user info before its "@"; decoded once, it does not.
                hides = self._hides_secret(once) or (
                    "%" in once and self._hides_secret(unquote(once))
                )
                if len(run) <= _TEXT_CACHE_MAX_LEN:
                    if len(verdicts) >= _CACHE_LIMIT:
                        verdicts.clear()
                    verdicts[run] = hides
            return match.span() if hides else None

        return self._mask_each(text, _ENCODED_RUN, value_at)

    def _hides_secret(self, decoded: str) -> bool:
        """True if ``decoded`` (an encoded run, decoded) holds a pair, URL credentials or
        an auth scheme's credential that its encoding hid (what needs no ``=``, ``:`` or
        ``@``, a token's shape, was looked for in the text as written)."""
        masked = decoded
        if "://" in masked and "@" in masked:
            masked = self._mask_url_credentials(masked)
        if "=" in masked or ":" in masked:
            masked = self._mask_pairs(masked)
        if " " in masked:
            masked = self._mask_after_words(masked)
        return masked != decoded

    def _scan_plain(self, text: str) -> str:
        text = self._mask_anchored(text)
        # Each pattern needs a character most ids and names lack: test for it first.
        if "://" in text and "@" in text:
            text = self._mask_url_credentials(text)
        if "=" in text or ":" in text:
            text = self._mask_pairs(text)
        if "," in text and ("(" in text or "[" in text):
            text = self._mask_item_pairs(text)
        if "--" in text:
            text = self._mask_flags(text)
        if "</" in text:
            text = self._mask_each(text, _XML_ELEMENT, self._xml_text)
        if " " in text or "\t" in text:
            text = self._mask_after_words(text)
        if _may_hold_token(text):
            text = _TOKEN_SHAPES.sub(self.mask, text)
        if _may_hold_card(text):
            text = _CARD_CANDIDATE.sub(self._card_replacement, text)
        return text

    def _mask_after_words(self, text: str) -> str:
        """What a word and a space announce: a secret name's quoted value, SQL's
        ``IDENTIFIED BY``, ``curl -u``'s password, an auth scheme's credential."""
        if "'" in text or '"' in text:
            text = self._mask_spaced_quotes(text)
        if "dentified" in text or "DENTIFIED" in text:
            text = self._mask_identified_by(text)
        if "curl" in text:  # -u is a user elsewhere (python, docker, sudo)
            text = self._mask_user_options(text)
        text = _AUTH_SCHEME.sub(self._scheme_replacement, text)
        if "<Authorization " in text:
            text = _AUTHORIZATION_REPR.sub(lambda m: f"{m.group(1)}{self.mask}>", text)
        return text

    def _mask_failing_rows(self, text: str) -> str:
        """``Failing row contains (<values>).``: the values masked to the line's end, or to
        the end of a later line closing the row (a value holding a newline)."""
        parts: list[str] = []
        done, memo, parens = 0, [-1, 0], _Parens(text)
        start = text.find(_ROW_OPEN)
        while start != -1:
            begin = start + len(_ROW_OPEN)
            parts += (text[done:begin], self.mask)
            done = _row_end(text, begin, memo, parens)
            start = text.find(_ROW_OPEN, done)
        return "".join(parts) + text[done:]

    def _mask_key_values(self, text: str) -> str:
        """``Key (<key>)=(<values>) already exists`` (or another phrase of
        :data:`_KEY_ENDS`): the values masked to the line's end, or to the end of a later
        line holding the phrase (a value holding a newline); an exclusion conflict's
        existing key too, to the line closing it with ``).``."""
        parts: list[str] = []
        done, memo, conflict_memo, parens = 0, [-1, 0], [-1, 0], _Parens(text)
        pairs = _phrase_pairs(
            text, _KEY_OPEN, _KEY_CLOSE, _KEY_MAX, one_line=True, to_line_end=True
        )
        for _start, at in pairs:
            if at < done:  # inside the values masked already (they ran on to a later line)
                continue
            parts += (text[done : at + 2], self.mask)  # the key kept, up to its "="
            done = _values_end(text, at + 2, _KEY_ENDS, memo)
            conflict = _KEY_CONFLICT.search(text, at + 2, done)
            if conflict is not None:  # the existing key's values may run on to later lines
                values = text.find(_KEY_CLOSE, conflict.end(), conflict.end() + _KEY_MAX)
                begin = values + 2 if values != -1 else conflict.start()
                done = max(done, _row_end(text, begin, conflict_memo, parens))
        return "".join(parts) + text[done:] if parts else text

    def _mask_duplicate_entries(self, text: str) -> str:
        """``Duplicate entry '<value>' for key``: the value masked (newlines included)."""
        parts: list[str] = []
        done = 0
        pairs = _phrase_pairs(
            text, _ENTRY_OPEN, _ENTRY_CLOSE, _ENTRY_MAX, one_line=False, to_line_end=False
        )
        for start, at in pairs:
            parts += (text[done : start + len(_ENTRY_OPEN)], self.mask)
            done = at
        return "".join(parts) + text[done:] if parts else text

    def _card_replacement(self, match: re.Match[str]) -> str:
        found = match.group()
        return self.mask if is_card_number(found) else found

    def _mask_private_keys(self, text: str) -> str:
        """A PEM private key's body (``-----BEGIN RSA PRIVATE KEY-----`` ... ``-----END``)
        is masked, its armour lines kept; a block whose end is missing (a cut text) is
        masked to the end. One pass: the search for each block's end starts after it."""
        parts: list[str] = []
        done = 0
        for match in _PEM_PRIVATE_BEGIN.finditer(text):
            if match.start() < done:
                continue
            end = text.find("-----END ", match.end())
            parts += (text[done : match.end()], self.mask)
            done = len(text) if end < 0 else end
            if end < 0:
                break
        return "".join(parts) + text[done:] if parts else text

    def _mask_url_credentials(self, text: str) -> str:
        """``scheme://userinfo@`` -> ``scheme://[REDACTED]@``, in one pass.

        A ``user:password`` user info runs to the last ``@`` of the URL (up to white space
        or a quote): a generated password may hold ``@``, ``#``, ``?`` or ``/``, and the
        rest of the URL is what gets masked with it when that ``@`` was in its query
        (shown too little rather than a password's tail); ``host:8080/...`` is a port. A
        user name that is an email address (``smtp://me@example.com:secret@host``) keeps its
        password to the last ``@`` too; a user info without a ``:``
        (``https://TOKEN@github.com``) ends at the first ``@`` before any ``/?#``. Each run
        of URL characters is searched once for its end and last ``@``, whatever number of
        ``://`` it holds, so the scan stays linear.
        """
        parts: list[str] = []
        done = 0
        run_end = last_at = -1
        at = text.find("://")
        while at >= 0:
            start = at + 3
            if start >= run_end:  # a new run of URL characters
                found = _URL_RUN_END.search(text, start)
                run_end = found.start() if found else len(text)
                last_at = text.rfind("@", start, run_end)
            end = _userinfo_end(text, start, last_at) if last_at > start else -1
            if end > start and _scheme_before(text, at):
                parts += (text[done:start], self.mask)
                done = end
            at = text.find("://", max(start, done))
        return "".join(parts) + text[done:] if parts else text

    def _mask_pairs(self, text: str) -> str:
        parts: list[str] = []
        done = 0  # text before this index is already in parts
        ends = _ValueEnds(text)
        for match in _PAIR.finditer(text):
            if match.start() < done or not self.is_sensitive(match.group(1)):
                continue  # inside a masked value, or a harmless name
            pos = match.end()
            opened = match.group(2)[-1]
            if opened in " \t" and "=>" in match.group(2):
                continue  # ``token => token.trim()`` is a JS arrow; ``password=>x`` a pair
            if opened in "'\"" and text.startswith(opened * 2, pos):
                pos += 2  # a triple-quoted value ("""x"""): masked to its closing triple
                span: int | None = _closing_triple(text, pos, opened * 3)
            elif opened in "'\"" and match.group(2)[-2:-1] == "\\":
                span = _escaped_quote_end(text, pos, opened)  # {\"api_key\": \"x\"}
            elif opened in "'\"":
                # A quoted value ends at its closing quote (kept), spaces and commas included,
                # however long (a 2 KB session token); without one, at the line's end.
                span = _closing_quote(text, pos - 1, whole_line=True)
            else:
                any_scheme = normalise_key(match.group(1))[0] in _AUTHORIZATION_NAMES
                span = _value_span(text, pos, ends, any_scheme=any_scheme)
                if span is not None:
                    span = _whole_value_end(text, pos, span)
            if span is None or span <= pos:
                continue  # no value
            parts += (text[done:pos], self.mask)
            done = span
        return "".join(parts) + text[done:] if parts else text

    def _mask_flags(self, text: str) -> str:
        """``--password x`` / ``'--password', 'x'`` (a command line, or its list's repr):
        the value after a sensitive option name is masked (a quoted one to its quote)."""
        parts: list[str] = []
        done = 0
        ends = _ValueEnds(text)
        for match in _FLAG.finditer(text):
            name = match.group(1)
            if match.start() < done or name[:3] in _NEGATED or not self.is_sensitive(name):
                continue  # inside a masked value, a harmless name, or --no-password
            pos = match.end()
            quoted = match.group(3) is not None  # a list's next item: a quoted value
            if not quoted and text[pos] in "'\"":
                pos, quoted = pos + 1, True  # --secret 'a b'
            elif not quoted and text[pos] == "-" and text[pos + 1] in "'\"":
                pos, quoted = pos + 2, True  # --secret -"a b"
            if quoted:
                span: int | None = _closing_quote(text, pos - 1, whole_line=True)
            else:
                span = _value_span(text, pos, ends)
                span = None if span is None else _whole_value_end(text, pos, span)
            if span is None or span <= pos:
                continue
            parts += (text[done:pos], self.mask)
            done = span
        return "".join(parts) + text[done:] if parts else text

    def _mask_each(
        self,
        text: str,
        pattern: re.Pattern[str],
        value_at: Callable[[re.Match[str]], tuple[int, int] | None],
    ) -> str:
        """``text`` with the value ``value_at`` finds for each match of ``pattern``
        (``(start, end)``, or None for none) masked; a match inside a value masked
        already is skipped unread (linear: no value is looked for twice)."""
        parts: list[str] = []
        done = 0
        for match in pattern.finditer(text):
            if match.start() < done:
                continue
            found = value_at(match)
            if found is not None and found[1] > found[0]:
                parts += (text[done : found[0]], self.mask)
                done = found[1]
        return "".join(parts) + text[done:] if parts else text

    def _mask_spaced_quotes(self, text: str) -> str:
        """``password 'x'`` (a sensitive name, spaces, a quoted value): the value masked to
        its closing quote (to the line's end without one)."""

        def value_at(match: re.Match[str]) -> tuple[int, int] | None:
            before, name = match.group(1), match.group(2)
            plain = normalise_key(name)[0]
            if plain in {"secret", "secrets"} or not self._strong(name):
                return None
            if plain == "token" and before is not None and before.lower() in _PARSER_WORDS:
                return None
            return match.end(), _sql_quote_end(text, match.end() - 1)

        return self._mask_each(text, _SPACED_QUOTE, value_at)

    def _strong(self, name: str) -> bool:
        """A sensitive name holding one of :data:`_STRONG_NAMES`."""
        plain = normalise_key(name)[0]
        return any(word in plain for word in _STRONG_NAMES) and self.is_sensitive(name)

    def _mask_identified_by(self, text: str) -> str:
        """SQL's ``IDENTIFIED BY 'x'`` / ``IDENTIFIED BY x``: the password masked."""
        ends = _ValueEnds(text)
        sql = _SQL_USER.search(text) is not None  # an unquoted value: SQL, not prose

        def value_at(match: re.Match[str]) -> tuple[int, int] | None:
            pos = match.end()
            if pos < len(text) and text[pos] in "'\"":
                return pos + 1, _sql_quote_end(text, pos)
            span = _value_span(text, pos, ends) if sql else None
            return None if span is None else (pos, span)

        return self._mask_each(text, _IDENTIFIED_BY, value_at)

    def _xml_text(self, match: re.Match[str]) -> tuple[int, int] | None:
        """The text of ``<name>text</name>`` when the name is a secret one."""
        return match.span(2) if self._strong(match.group(1).rpartition(":")[2]) else None

    def _mask_user_options(self, text: str) -> str:
        """``curl -u bob:x``: the password after the user name masked."""

        def value_at(match: re.Match[str]) -> tuple[int, int] | None:
            pos = match.end()
            if match.group(1):  # quoted: to its closing quote
                return pos, _closing_quote(text, match.start(1), whole_line=True)
            space = _WHITE_SPACE.search(text, pos)
            return pos, len(text) if space is None else space.start()

        return self._mask_each(text, _USER_OPTION, value_at)

    def _mask_item_pairs(self, text: str) -> str:
        """``('password', 'x')`` / ``["token", "x"]`` in text (the repr of a header list,
        a JSON array of pairs): the value of a sensitive name is masked."""

        def value_at(match: re.Match[str]) -> tuple[int, int] | None:
            if not self.is_sensitive(match.group(2)):
                return None
            return match.end(), _item_value_end(text, match.end())

        return self._mask_each(text, _ITEM_PAIR, value_at)

    def _scheme_replacement(self, match: re.Match[str]) -> str:
        if _looks_like_credential(match.group(1), match.group(3)):
            return f"{match.group(1)}{match.group(2)}{self.mask}"
        return match.group(0)

    def redact(self, value: Any, depth: int = 0) -> Any:
        """Return ``value`` with secrets masked at any depth (dicts, lists, header objects);
        what is nested deeper than MAX_DEPTH is replaced by a marker saying so (unscanned,
        it could hold a secret)."""
        if isinstance(value, str):
            return self.redact_text(value)
        if value is None or isinstance(value, int | float):
            return value
        if depth >= MAX_DEPTH:
            return TOO_DEEP
        if isinstance(value, Mapping) or _is_header_object(value):
            return self._redact_items(value.items(), depth)
        if isinstance(value, list | tuple | set | frozenset):
            return self._redact_sequence(value, depth)
        return self._redact_other(value, depth)

    def _named_tuple(self, value: tuple[Any, ...], depth: int) -> list[Any] | None:
        """A tuple whose members have names, written as a list: a namedtuple's fields
        checked by their names, a ``("token", x)`` pair's value masked; else None."""
        names = getattr(type(value), "_fields", None)
        if (
            isinstance(names, tuple)
            and len(names) == len(value)
            and all(isinstance(name, str) for name in names)
        ):
            return list(self._redact_items(zip(names, value, strict=True), depth).values())
        if len(value) == 2 and self.is_sensitive(value[0]):
            return [self.redact(value[0], depth + 1), self.mask]
        return None

    def _redact_sequence(self, value: Iterable[Any], depth: int) -> list[Any]:
        """A list's members, each checked; a command line's (``["pg_dump", "--password",
        "x"]``, an ``args=`` field) item after a sensitive option is masked, as in text;
        a namedtuple and a ``(name, value)`` pair by their names."""
        if isinstance(value, tuple) and (named := self._named_tuple(value, depth)) is not None:
            return named
        out: list[Any] = []
        after_option = False
        for item in value:
            if after_option and isinstance(item, str) and not item.startswith("--") and item != "-":
                out.append(self.mask)
                after_option = False
                continue
            after_option = isinstance(item, str) and self._is_secret_option(item)
            out.append(self._redact_member(item, depth))
        return out

    def _is_secret_option(self, item: str) -> bool:
        """True for a command line's item ``--password`` (a sensitive name, not ``--no-...``)."""
        option = _OPTION.fullmatch(item)
        return option is not None and option[1][:3] not in _NEGATED and self.is_sensitive(option[1])

    def _redact_other(self, value: Any, depth: int) -> Any:
        """Dataclasses, enums, dates, bytes and any other object, as the line shows them."""
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            # orjson would write its fields: check them like a dict's.
            fields = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
            return self._redact_items(fields, depth)
        if isinstance(value, _PLAIN_TYPES):
            return value
        if isinstance(value, enum.Enum):
            return self.redact(value.value, depth + 1)  # orjson writes the member's value
        # bytes, Decimal, any object: check the text the line will show (repr() etc.).
        return self.redact_text(as_text(value))

    def _redact_items(self, items: Iterable[tuple[Any, Any]], depth: int) -> dict[Any, Any]:
        """A mapping's items: the value of a secret name masked, every other value checked;
        a key that holds a secret itself (``{"sk-live-...": 3}``, usage per API key) is
        masked too (``[REDACTED]``, ``[REDACTED]#2``...: no value is lost to a clash)."""
        out: dict[Any, Any] = {}
        taken: dict[str, int] = {}  # a masked key's last number: each clash costs O(1)
        for key, val in items:
            value = self.mask if self.is_sensitive(key) else self.redact(val, depth + 1)
            shown = self.redact_text(key) if isinstance(key, str) else key
            if shown in out:  # a masked key took that name (a mapping has no key twice)
                shown = _free_key(out, shown, taken)
            out[shown] = value
        return out

    def _redact_member(self, item: Any, depth: int) -> Any:
        # A header list holds (name, value) pairs: mask the value of a sensitive name.
        if isinstance(item, tuple | list) and len(item) == 2 and self.is_sensitive(item[0]):
            return [self.redact(item[0], depth + 1), self.mask]
        return self.redact(item, depth + 1)

    def redact_event(self, event: MutableMapping[str, Any]) -> None:
        """Mask secrets of ``event`` in place (the hot path: one call per line).

        Fast path: when every key is known not to be sensitive and every value is a
        scalar or text already found clean, two set operations in C settle it.
        """
        try:
            if self._keys_known_safe(event) and self._values_known_safe(event.values()):
                return
        except TypeError:
            pass  # an unhashable value (dict, list): check it field by field
        self._redact_fields(event)

    def _redact_fields(self, event: MutableMapping[str, Any]) -> None:
        safe_keys, safe_values = self._safe_keys, self._safe_values
        if len(safe_keys) >= _CACHE_LIMIT or len(safe_values) >= _CACHE_LIMIT:
            safe_keys.clear()  # bounded: user data may bring endless new keys and values
            safe_values.clear()
        renamed: list[tuple[str, str]] = []
        for key, value in event.items():
            if self.is_sensitive(key):
                event[key] = self.mask
                continue
            shown = key if key in safe_keys or not isinstance(key, str) else self.redact_text(key)
            if shown != key:
                renamed.append((key, shown))  # a field named by a secret (**usage_per_key)
            else:
                safe_keys.add(key)
            if value.__class__ is str:
                redacted = self.redact_text(value)
                if redacted == value:
                    safe_values.add(value)
                else:
                    event[key] = redacted
            elif value is None or value.__class__ in _SCALARS:
                safe_values.add(value)
            else:
                event[key] = self.redact(value)
        if renamed:
            taken: dict[str, int] = {}
            for key, shown in renamed:
                value = event.pop(key)
                event[_free_key(event, shown, taken)] = value

    def __call__(self, _logger: Any, _method: str, event_dict: Any) -> Any:
        """structlog processor form of :meth:`redact_event`."""
        self.redact_event(event_dict)
        return event_dict


def _free_key(out: Mapping[Any, Any], key: str, taken: dict[str, int]) -> str:
    """``key``, else ``key#2``, ``key#3``... the first that ``out`` does not hold yet,
    counting on from the number ``taken`` remembers for ``key`` (so n clashes cost O(n)
    together)."""
    n = taken.get(key, 1)
    found = key
    while found in out:
        n += 1
        found = f"{key}#{n}"
    taken[key] = n
    return found


def _looks_like_credential(scheme: str, word: str) -> bool:
    """After ``Bearer`` always; after basic/token/digest unless ``word`` is a plain
    (lower-case or Capitalised) word: "basic authentication", "token expired"."""
    if scheme.lower() == "bearer" or not word.isalpha():
        return True
    return not (word.islower() or (word[0].isupper() and word[1:].islower()))


def _is_header_object(value: object) -> bool:
    # werkzeug Headers, http.client.HTTPMessage, requests' CaseInsensitiveDict, ...
    return callable(getattr(value, "items", None)) and not isinstance(value, type)


#: A run of 13 to 19 digits, with single spaces or dashes between them allowed (a card
#: number as printed, ``4111 1111 1111 1111``), not inside a longer run of digits nor
#: touching a letter: the digits of a hex id or digest (the kit's own request ids, trace
#: ids, a commit) are no card number, and about 1 in 1,400 random request ids held a
#: Luhn-valid run. Nor the fraction or whole part of a decimal number (``0.2477175435459704``,
#: a float's repr: about 1 in 20 held one). It can only start where a run of digits
#: starts: linear in the text.
_CARD_CANDIDATE = re.compile(
    r"(?<![0-9A-Za-z+])(?<!\d\.)\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])(?!\.\d)"
)
#: First digits of the payment card networks' numbers: American Express, Diners, JCB (3),
#: Visa (4), Mastercard (51-55, 2221-2720), Maestro, Discover and UnionPay (5, 6).
_CARD_FIRST_DIGITS = frozenset("3456")
#: Every byte but the ASCII digits: ``bytes.translate`` deletes them to count digits in C.
_NOT_DIGITS = bytes(b for b in range(256) if not 48 <= b <= 57)


def _may_hold_card(text: str) -> bool:
    """False when ``text`` has fewer than 13 digits, or none a card number starts with:
    C-level tests, where the pattern itself costs microseconds per text."""
    if "4" not in text and "5" not in text and "3" not in text and "6" not in text:
        return False
    return len(text.encode("ascii", "ignore").translate(None, _NOT_DIGITS)) >= 13


def is_card_number(text: str) -> bool:
    """True when ``text`` (digits, spaces, dashes) is a payment card number: 13-19 digits
    of a card network's range that pass the Luhn check. About one in ten other numbers of
    that length and range pass too: those are masked as well, erring on the safe side."""
    digits = text.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19:
        return False
    first = digits[0]
    if first not in _CARD_FIRST_DIGITS and not (first == "2" and "2221" <= digits[:4] <= "2720"):
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _may_hold_token(text: str) -> bool:
    """False when ``text`` cannot hold any of :data:`_TOKEN_SHAPES` (a few substring
    tests in C cost far less than running the pattern over every new text)."""
    return (
        "eyJ" in text
        or "k-" in text
        or "k_" in text
        or "IA" in text  # AKIA, ASIA, ABIA
        or "ACCA" in text
        or "xox" in text
        or "AIza" in text
        or ("gh" in text and "_" in text)
        or "hooks" in text  # hooks.slack.com, /api/webhooks/
        or "/services/T" in text  # a Slack webhook's path
    )


def _has_secret_part(form: str) -> bool:
    """The built-in name rules (module docstring) on a normalised key."""
    parts = form.split("_")
    last = parts[-1]
    if last.endswith("token") or last == "auth":
        return True
    for part in parts:
        if part in _SECRET_PARTS or any(word in part for word in _SECRET_WORDS):
            return True
        if "secret" in part and part not in _NOT_SECRET:
            return True
    private = form.find("private")
    return private >= 0 and form.find("key", private) >= 0


def _closing_quote(text: str, at: int, *, whole_line: bool = False) -> int:
    """Index of the quote closing the one at ``at`` (a backslash escapes a quote); without
    one on the same line within :data:`_MAX_VALUE` (anywhere on it if ``whole_line``: a
    masked value, whose long tail must not show), the end of that stretch."""
    quote = text[at]
    if whole_line:
        # Bounded by the closing quote's distance (a value masked to there; the caller
        # goes on after it): linear however many values a long line holds.
        start, ahead = at + 1, text.find(quote, at + 1)
        ahead = len(text) if ahead < 0 else ahead
        limit = text.find("\n", start, ahead)
        while limit < 0 and ahead < len(text) and text[ahead - 1] == "\\":
            start, ahead = ahead, text.find(quote, ahead + 1)  # an escaped quote: look on
            ahead = len(text) if ahead < 0 else ahead
            limit = text.find("\n", start, ahead)
        limit = ahead if limit < 0 else limit
    else:
        limit = _line_limit(text, at + 1)
    pos = at + 1
    while True:
        pos = text.find(quote, pos, limit)
        if pos < 0 or text[pos - 1] != "\\":
            return limit if pos < 0 else pos
        pos += 1


def _sql_quote_end(text: str, at: int) -> int:
    """:func:`_closing_quote` (``whole_line``) of the quote at ``at``, reading SQL's doubled
    quote (``'it''s'``) as part of the value. Linear: each search starts after the last."""
    quote = text[at]
    end = _closing_quote(text, at, whole_line=True)
    while text.startswith(quote * 2, end):
        end = _closing_quote(text, end + 1, whole_line=True)
    return end


def _escaped_quote_end(text: str, pos: int, quote: str) -> int:
    """Index of the escaped ``quote`` (``\\"``) closing a value that starts at ``pos``
    inside an escaped string (JSON inside a JSON string); without one, the line's end."""
    # The closing quote first, then a line end before it: each search is bounded by the
    # value's own length (the caller goes on after it), so a line of many values costs
    # linear time.
    end = text.find("\\" + quote, pos)
    end = len(text) if end < 0 else end
    line = text.find("\n", pos, end)
    return end if line < 0 else line


def _closing_triple(text: str, start: int, quotes: str) -> int:
    """Index of the ``quotes`` (three of a kind) closing a value starting at ``start``; the
    end of the text, or :data:`_MAX_VALUE` on, without one (such a value spans lines)."""
    limit = min(len(text), start + _MAX_VALUE)
    end = text.find(quotes, start, limit)
    return limit if end < 0 else end


def _quote_end(text: str, at: int) -> int:
    """Index just after the quoted text starting at ``at`` (see :func:`_closing_quote`)."""
    end = _closing_quote(text, at)
    return end + 1 if end < len(text) and text[end] == text[at] else end


def _line_limit(text: str, pos: int) -> int:
    """How far a value starting at ``pos`` may reach: its line, at most _MAX_VALUE."""
    limit = min(len(text), pos + _MAX_VALUE)
    newline = text.find("\n", pos, limit)
    return limit if newline < 0 else newline


def _whole_value_end(text: str, pos: int, end: int) -> int:
    """``end`` (where a pair's plain value ends) moved past a value it would cut open: an
    opening bracket (``auth=("svc", "pw")``, ``password=get('x')``) is followed to its
    closing bracket (also after spaces: ``get_pw ("x")``), a string prefix
    (``password=b'x'``) to its closing quote."""
    value = text[pos:end]
    if not value or end >= len(text):
        return end
    if value[-1] in _CLOSING:
        return _bracket_end(text, end - 1)
    if value[-1] in "=:" and text[end] in "'\"":
        # The value names another one (``credentials: password='x'``): its quoted value too.
        return _closing_quote(text, end, whole_line=True) + 1
    if text[end] in "'\"" and value.lower() in _STRING_PREFIXES:
        return _quote_end(text, end)
    call = end
    while call < len(text) and call - end < 8 and text[call] == " ":
        call += 1  # get_pw ("x"): a call written with a space before its bracket
    if call < len(text) and text[call] == "(" and value.isidentifier():
        return _bracket_end(text, call)
    return end


def _bracket_end(text: str, at: int) -> int:
    """Index just after the bracket closing the one at ``at`` (quoted text skipped); without
    one on the same line within :data:`_MAX_VALUE`, the end of that stretch."""
    limit = _line_limit(text, at)
    depth = 0
    pos = at
    while pos < limit:
        char = text[pos]
        if char in "'\"":
            pos = _quote_end(text, pos)
            continue
        if char in _CLOSING:
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1
    return limit


def _item_value_end(text: str, pos: int) -> int:
    """End of the value after ``('name', ``: a quoted string (maybe with a prefix), or
    anything up to the pair's closing bracket, comma or line end."""
    if pos >= len(text):
        return pos
    if text[pos] in "'\"":
        return _quote_end(text, pos)
    quote = pos
    while quote < len(text) and quote - pos < 2 and text[quote].isalpha():
        quote += 1  # past a string prefix (b'...')
    prefixed = text[pos:quote].lower() in _STRING_PREFIXES
    if prefixed and quote < len(text) and text[quote] in "'\"":
        return _quote_end(text, quote)
    limit = _line_limit(text, pos)
    end = pos
    while end < limit and text[end] not in ")],":
        if text[end] in _CLOSING:
            end = _bracket_end(text, end)
            continue
        end += 1
    return end


def _userinfo_end(text: str, start: int, last_at: int) -> int:
    """Where the user info of the URL whose authority starts at ``start`` ends (its
    ``@``), given the last ``@`` of the URL's run; -1 when it has none."""
    first = _AUTHORITY_END.search(text, start, last_at + 1)
    if first is None:  # pragma: no cover - last_at itself matches
        return -1
    colon = text.find(":", start, first.start())
    if text[first.start()] == "@":
        # user:password@host, or user:p@ss@host (a password holding "@"); a user name
        # holding "@" (an email address) with its password after it; or TOKEN@host.
        if colon >= 0 or _password_after(text, first.start() + 1, last_at):
            return last_at
        return first.start()
    if colon < 0 or text[start] == "[" or text[colon + 1 : first.start()].isdigit():
        return -1  # host/path@x, an IPv6 host, host:8080/@x: no user info
    return last_at  # user:pa/ss@host, user:Xy#12@host


def _password_after(text: str, start: int, last_at: int) -> bool:
    """True when ``text[start:last_at]`` (after a user name's ``@``) reads ``domain:secret``:
    a ``:`` before any ``/?#@``, not followed by a port (``TOKEN@host:8080/x@y`` is a
    token, a host and a path)."""
    colon = text.find(":", start, last_at)
    if colon < 0 or _AUTHORITY_END.search(text, start, colon) is not None:
        return False
    end = _AUTHORITY_END.search(text, colon + 1, last_at + 1)
    stop = end.start() if end else last_at
    # Digits then "/", "?" or "#" are a port; digits up to the last "@" a numeric password.
    return stop == last_at or not text[colon + 1 : stop].isdigit()


def _scheme_before(text: str, at: int) -> bool:
    """A URL scheme (``[a-z][a-z0-9+.-]*`` starting at a word boundary) ends at ``at``."""
    start = at
    while start > 0 and text[start - 1] in _SCHEME_CHARS:
        start -= 1
    for pos in range(start, at):
        if (
            text[pos].isascii()
            and text[pos].isalpha()
            and (pos == 0 or not _is_word(text[pos - 1]))
        ):
            return True
    return False


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


class _ValueEnds:
    """Where the value starting at a position ends, for increasing positions: a search
    is reused while no value end lies between, so all lookups of one text are linear."""

    __slots__ = ("_end", "_start", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._start = self._end = -1

    def after(self, pos: int) -> int:
        """Index of the first value-ending character at or after ``pos`` (or the length)."""
        if not self._start <= pos <= self._end:
            found = _VALUE_END.search(self._text, pos)
            self._start, self._end = pos, found.start() if found else len(self._text)
        return self._end


def _value_span(text: str, pos: int, ends: _ValueEnds, *, any_scheme: bool = False) -> int | None:
    """End of the value of a pair whose separator ends at ``pos`` (an auth scheme word
    before it belongs to it: ``Authorization: Bearer x``; after an authorization name,
    ``any_scheme``, any word: ``Authorization: ApiKey x``); None when there is no value."""
    scheme = (_ANY_SCHEME if any_scheme else _VALUE_SCHEME).match(text, pos)
    if scheme is not None:
        end = ends.after(scheme.end())
        if end > scheme.end():
            return end
    end = ends.after(pos)
    return end if end > pos else None
