"""Turn an event dict into exactly one line of JSON bytes, whatever it holds.

orjson is the fast path. What it refuses (int or tuple keys, ints over 64 bits, lone
surrogates, deep nesting, cycles) is converted by :func:`sanitise` and encoded again, so a
log call never raises and never loses its line. NaN and infinities are not JSON: both paths
write them as ``null``; ints over 64 bits are written as decimal strings. Characters that
``str.splitlines()`` treats as line ends and orjson writes raw (U+2028, U+2029, U+0085) are
escaped, and a line over the cap is cut to fit it (:func:`shrink`) with a ``truncated`` marker.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

from limone_obs import conventions as c

#: Nesting kept by :func:`sanitise`; deeper values become a marker string.
MAX_DEPTH = 32
#: What stands for a value nested deeper (here and in the redactor's scan).
TOO_DEEP = "<nested too deep>"
#: A terminal escape sequence (colours and bold: CSI ``ESC [ ... letter``; a window title:
#: OSC ``ESC ] ... BEL``, only with its end, so an ``ESC ]`` in hostile text cannot hide
#: the rest of the message; or ``ESC`` and one character): meaningless in a JSON line,
#: and noise in every aggregator's search.
TERMINAL_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-~])"
)
#: Longest string kept in a truncated line (the message gets more, see :func:`shrink`).
_FIELD_CAP = 512
_RAW_BREAKS = (
    (b"\xe2\x80\xa8", b"\\u2028"),
    (b"\xe2\x80\xa9", b"\\u2029"),
    (b"\xc2\x85", b"\\u0085"),
)
_SCHEMA_KEYS = (*c.LOG_CORE_FIELDS, *c.LOG_CONTEXT_FIELDS)
_last_second: tuple[int, str] = (-1, "")
_last_milli: tuple[int, str] = (-1, "")
#: ``.000Z`` ... ``.999Z``: a table lookup beats formatting the digits on every line.
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


def rfc3339(epoch: float) -> str:
    """Return ``epoch`` as UTC RFC 3339 with milliseconds: ``2026-01-02T03:04:05.678Z``."""
    global _last_second, _last_milli  # noqa: PLW0603 - one-entry caches, replaced atomically
    total = int(epoch * 1000)
    milli = _last_milli
    if milli[0] == total:
        return milli[1]  # busy loggers write many lines per millisecond
    second, millis = divmod(total, 1000)
    cached = _last_second
    if cached[0] != second:
        cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        _last_second = cached
    text = cached[1] + _MILLIS[millis]
    _last_milli = (total, text)
    return text


def default(obj: Any) -> Any:
    """orjson's fallback for types it does not know (and :func:`sanitise`'s for every
    type but JSON's own): a JSON-able stand-in, what orjson writes for the types it
    knows (a UUID's text, an enum member's value), never a raise."""
    if isinstance(obj, set | frozenset):
        return [default_or_self(item) for item in obj]
    if isinstance(obj, Mapping):
        return dict(obj.items())
    if isinstance(obj, enum.Enum):
        return default_or_self(obj.value)
    return as_text(obj)


def as_text(obj: Any) -> str:
    """The text a line shows for a value orjson cannot write (``repr()`` as a last resort)."""
    if isinstance(obj, Decimal | uuid.UUID):
        return str(obj)
    if isinstance(obj, dt.datetime | dt.date | dt.time):
        return obj.isoformat()
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, BaseException):
        return f"{type(obj).__name__}: {safe_str(obj)}"
    return safe_repr(obj)


def default_or_self(obj: Any) -> Any:
    """Return ``obj`` if orjson encodes it natively, else :func:`default` of it."""
    if obj is None or isinstance(obj, str | int | float | bool | list | tuple | dict):
        return obj
    return default(obj)


def safe_str(obj: object) -> str:
    """``str(obj)``, or a marker when its ``__str__`` raises."""
    try:
        return str(obj)
    except Exception:
        return f"<unprintable {type(obj).__name__}>"


def safe_repr(obj: object) -> str:
    """``repr(obj)``, or a marker when its ``__repr__`` raises."""
    try:
        return repr(obj)
    except Exception:
        return f"<unrepresentable {type(obj).__name__}>"


def _fix_str(text: str) -> str:
    # Lone surrogates cannot be UTF-8; replace them rather than lose the line.
    return text.encode("utf-8", "replace").decode("utf-8")


def _fix_scalar(value: float | None) -> float | str | None:
    """Ints over 64 bits become their decimal string; NaN and infinities become ``None``
    (``null``), which is what orjson writes for them on the fast path: one behaviour."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else _int_text(value)
    return value if math.isfinite(value) else None


def _int_text(value: int) -> str:
    """The decimal digits of an int too large for JSON's 64 bits, or, past Python's
    conversion limit (4300 digits by default), a marker giving its size."""
    try:
        return str(value)
    except ValueError:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"<integer of about {digits} digits>"


def key_text(key: Any) -> str:
    """The name a mapping's key is written under: a string as it is (valid UTF-8), an
    enum member's value's text, any other key's ``str()``."""
    if isinstance(key, enum.Enum):  # its value, as orjson writes a member elsewhere
        key = key.value
    return _fix_str(key) if isinstance(key, str) else safe_str(key)


def sanitise(obj: Any, depth: int = 0) -> Any:
    """Return a copy of ``obj`` that orjson encodes: str keys, 64-bit ints, valid UTF-8."""
    if depth > MAX_DEPTH:
        return TOO_DEEP
    if isinstance(obj, str):
        return _fix_str(obj)
    if obj is None or isinstance(obj, bool | int | float):
        return _fix_scalar(obj)
    if isinstance(obj, Mapping):
        return {key_text(k): sanitise(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [sanitise(item, depth + 1) for item in obj]
    return sanitise(default(obj), depth + 1)


def dumps(value: Any) -> bytes:
    """Encode ``value`` (an event, or one of its values) as JSON without a newline; falls
    back to :func:`sanitise`."""
    try:
        line = orjson.dumps(value, default=default)
    except (TypeError, ValueError):
        line = orjson.dumps(sanitise(value))
    if not line.isascii():
        for raw, escaped in _RAW_BREAKS:
            line = line.replace(raw, escaped)
    return line


def _cut(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + _CUT_MARK
    return value


def shrink(event: Mapping[str, Any], size: int, cap: int) -> dict[str, Any]:
    """Return ``event`` (``size`` bytes encoded) cut to fit ``cap``.

    The schema fields other than the message stay whole (strings over 512 characters
    cut). The message and the other fields share what is left, water-filled: each one
    small enough for an equal share stays whole, and only the largest are cut (strings
    keep their head and a ``...[truncated]`` mark, a traceback its end; a list its first
    items, a mapping each of its keys, cut the same way, or its smallest members whole
    when they are too many). Types are kept, so an aggregator's field mapping
    still holds. When the fields are too many for useful shares, the message and as many
    of the smallest fields as fit are kept whole, and the others left out. The line is
    marked ``truncated`` with its ``original_bytes``. An exception's ``type`` and
    ``message`` (the schema requires both) are kept like the schema fields; its traceback
    shares the rest with the other fields.
    """
    fixed = {k: _cut(event[k], _FIELD_CAP) for k in _SCHEMA_KEYS if k in event}
    fixed.pop(c.LOG_MESSAGE, None)
    markers = {c.LOG_TRUNCATED: True, c.LOG_ORIGINAL_BYTES: size}
    rest = {k: v for k, v in event.items() if k not in fixed and k not in markers}
    exc = rest.get(c.LOG_EXCEPTION)
    head: dict[str, Any] = {}
    if isinstance(exc, Mapping):
        head = {k: _cut(safe_str(exc[k]), _FIELD_CAP) for k in _EXCEPTION_HEAD if k in exc}
        rest[c.LOG_EXCEPTION] = {k: v for k, v in exc.items() if k not in head}
    budget = cap - len(dumps({**fixed, c.LOG_EXCEPTION: head, **markers})) - _SLACK
    sizes = {k: _size(k, v) for k, v in rest.items()}
    fitted = _water_fill(rest, budget, 0, sizes)
    if fitted is None:
        fitted = _smallest_with_message(rest, budget, sizes)
    if head:  # first in the exception, whether its traceback was kept or not
        fitted[c.LOG_EXCEPTION] = head | fitted.get(c.LOG_EXCEPTION, {})
    return {
        k: fixed[k] if k in fixed else fitted[k] for k in event if k in fixed or k in fitted
    } | markers


def _smallest_with_message(
    items: Mapping[str, Any], budget: int, sizes: Mapping[str, int]
) -> dict[str, Any]:
    """The message (a quarter of ``budget`` at most), then as many of the smallest other
    ``items`` as fit, whole."""
    text = safe_str(items.get(c.LOG_MESSAGE, ""))
    share = budget // 4
    message = {
        c.LOG_MESSAGE: text if len(dumps(text)) <= share else _fit_text(text, share, tail=False)
    }
    others = {k: v for k, v in items.items() if k != c.LOG_MESSAGE}
    return message | _smallest(others, budget - len(dumps(message)), sizes)


#: Bytes kept free by :func:`shrink` for separators and the newline.
_SLACK = 16
#: The smallest share of a cut field worth keeping: below it, :func:`shrink` keeps the
#: smallest fields whole instead of every field cut to a stub.
_MIN_SHARE = 48
_CUT_MARK = "...[truncated]"
_TAIL_MARK = "[truncated]..."
#: An exception's members the log schema requires: kept by :func:`shrink` like the
#: schema fields.
_EXCEPTION_HEAD = ("type", "message")
#: Keys whose text keeps its end when cut (the failing line ends a traceback).
_TAIL_KEYS = frozenset({"traceback", "stack_info"})


def _size(key: Any, value: Any) -> int:
    """Bytes ``"key":value,`` takes in a JSON object."""
    return len(dumps({key: value}))  # the braces stand for the colon's and comma's room


def _level(sizes: list[int], budget: int) -> int:
    """The largest share each of ``sizes`` may keep so that together they fit ``budget``:
    the ones under it stay whole, the others are cut to it."""
    left = budget
    ordered = sorted(sizes)
    for done, size in enumerate(ordered):
        share = left // (len(ordered) - done)
        if size > share:
            return share
        left -= size
    return budget


def _fit_items(items: Mapping[Any, Any], budget: int, depth: int) -> dict[Any, Any]:
    """``items`` cut so that their members take at most ``budget`` bytes: water-filled,
    else (too many for useful shares) the smallest of them whole."""
    sizes = {k: _size(k, v) for k, v in items.items()}
    fitted = _water_fill(items, budget, depth, sizes)
    return _smallest(items, budget, sizes) if fitted is None else fitted


def _water_fill(
    items: Mapping[Any, Any], budget: int, depth: int, sizes: Mapping[Any, int]
) -> dict[Any, Any] | None:
    """Every one of ``items`` (``sizes``: each one's :func:`_size`), those over an equal
    share of ``budget`` cut to it; None when the shares are too small to be useful or the
    cut members still take more than ``budget`` bytes."""
    limit = _level(list(sizes.values()), budget)
    if limit < _MIN_SHARE:
        return None
    fitted = {
        k: v if sizes[k] <= limit else _fit(k, v, limit - (sizes[k] - len(dumps(v))), depth)
        for k, v in items.items()
    }
    return fitted if len(dumps(fitted)) - 2 <= budget else None


def _smallest(items: Mapping[Any, Any], budget: int, sizes: Mapping[Any, int]) -> dict[Any, Any]:
    """The smallest of ``items`` (each of ``sizes[key]`` bytes), whole, as many as fit."""
    kept: set[Any] = set()
    for key in sorted(items, key=sizes.__getitem__):
        if sizes[key] > budget:
            break
        budget -= sizes[key]
        kept.add(key)
    return {k: v for k, v in items.items() if k in kept}


def _fit(key: Any, value: Any, budget: int, depth: int) -> Any:
    """``value`` cut to about ``budget`` encoded bytes, its type kept (an object orjson
    cannot write: the stand-in the line shows, cut)."""
    value = default_or_self(value)
    if isinstance(value, int) and not isinstance(value, bool):
        value = _fix_scalar(value)  # one over 64 bits is written as text: cut it as text
    if isinstance(value, str):
        if key in _TAIL_KEYS:
            return _fit_traceback(value, budget)
        return _fit_text(value, budget, tail=False)
    if depth >= MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return _fit_items(value, budget - 2, depth + 1)
    if isinstance(value, list | tuple):
        return _fit_list(value, budget - 2, depth + 1)
    return value  # numbers, booleans, None: small already


def _fit_list(items: list[Any] | tuple[Any, ...], budget: int, depth: int) -> list[Any]:
    """The first of ``items`` that fit ``budget`` bytes; the first that does not, cut."""
    kept: list[Any] = []
    left = budget
    for item in items:
        size = len(dumps(item)) + 1
        if size > left:
            cut = _fit(None, item, left - 1, depth) if left > len(_CUT_MARK) + 8 else None
            if cut is not None and len(dumps(cut)) + 1 <= left:
                kept.append(cut)
            break
        kept.append(item)
        left -= size
    return kept


def _fit_traceback(text: str, budget: int) -> str:
    """A traceback cut to ``budget`` bytes, keeping the end of its frames (where it
    failed): its last lines after the last frame (the exception's type and message, which
    the ``exception.message`` field holds too) get a quarter of the room at most."""
    frame = text.rfind('\n  File "')
    if frame < 0:
        return _fit_text(text, budget, tail=True)
    source = text.find("\n", frame + 1)  # the frame's own line, then its source line
    end = text.find("\n", source + 1) + 1 if source >= 0 else 0
    if end <= 0 or end >= len(text):
        return _fit_text(text, budget, tail=True)
    frames, last = text[:end], text[end:]
    if len(dumps(last)) > budget // 4:
        last = _fit_text(last, budget // 4, tail=False)
    return _fit_text(frames, budget - len(dumps(last)) + 2, tail=True) + last


def _fit_text(text: str, budget: int, *, tail: bool) -> str:
    """``text`` cut to at most ``budget`` encoded bytes (quotes and escapes counted) with
    a mark where it was cut: its head kept, or its end when ``tail``."""
    keep = max(budget - 2 - len(_CUT_MARK), 0)
    while True:
        part = text[-keep:] if tail and keep else text[:keep]
        size = len(dumps(part)) + len(_CUT_MARK)
        if size <= budget or not part:
            return _TAIL_MARK + part if tail else part + _CUT_MARK
        # Escapes or UTF-8 made it longer than its characters: shrink in proportion.
        keep = max(len(part) * max(budget, 0) // size - 1, 0)


def _schema_only(event: Mapping[str, Any], size: int, cap: int) -> dict[str, Any]:
    """The schema fields of an over-long ``event`` cut to fit ``cap``: when even
    :func:`shrink`'s fair shares do not fit (thousands of small fields)."""
    budget = max(cap // 4, 64)
    small: dict[str, Any] = {k: _cut(event[k], _FIELD_CAP) for k in _SCHEMA_KEYS if k in event}
    small[c.LOG_MESSAGE] = _cut(safe_str(event.get(c.LOG_MESSAGE, "")), budget)
    exc = event.get(c.LOG_EXCEPTION)
    if isinstance(exc, Mapping):
        trace = safe_str(exc.get("traceback", ""))
        small[c.LOG_EXCEPTION] = {
            "type": _cut(safe_str(exc.get("type", "")), _FIELD_CAP),
            "message": _cut(safe_str(exc.get("message", "")), budget // 2),
            # The end of a traceback names the failing line: keep the tail.
            "traceback": trace if len(trace) <= budget else _TAIL_MARK + trace[-budget:],
        }
    small[c.LOG_TRUNCATED] = True
    small[c.LOG_ORIGINAL_BYTES] = size
    return small


def encode_line(event: Mapping[str, Any], cap: int) -> bytes:
    """Return ``event`` as one JSON line ending in ``\\n``, at most ``cap`` bytes long."""
    line = dumps(event)
    if len(line) >= cap:
        size = len(line)
        line = dumps(shrink(event, size, cap))
        if len(line) >= cap:
            line = dumps(_schema_only(event, size, cap))
        if len(line) >= cap:
            line = dumps(_minimal(event, size))
    return line + b"\n"


def _minimal(event: Mapping[str, Any], size: int) -> dict[str, Any]:
    # Last resort when even the schema fields overflow (e.g. a huge logger name).
    return {
        c.LOG_TIMESTAMP: _cut(safe_str(event.get(c.LOG_TIMESTAMP, "")), 40),
        c.LOG_LEVEL: _cut(safe_str(event.get(c.LOG_LEVEL, "error")), 16),
        c.LOG_LOGGER: _cut(safe_str(event.get(c.LOG_LOGGER, "")), 128),
        c.LOG_MESSAGE: "log line dropped: its fields exceed the line size cap",
        c.LOG_SERVICE: _cut(safe_str(event.get(c.LOG_SERVICE, "")), 128),
        c.LOG_ENV: _cut(safe_str(event.get(c.LOG_ENV, "")), 128),
        c.LOG_TRUNCATED: True,
        c.LOG_ORIGINAL_BYTES: size,
    }
