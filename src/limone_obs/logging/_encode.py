"""Turn an event dict into exactly one line of JSON bytes, whatever it holds.

orjson is the fast path. What it refuses (int or tuple keys, ints over 64 bits, lone
surrogates, deep nesting, cycles) is converted by :func:`sanitise` and encoded again, so a
log call never raises and never loses its line. NaN and infinities are not JSON: both paths
write them as ``null``; ints over 64 bits are written as decimal strings. Characters that
``str.splitlines()`` treats as line ends and orjson writes raw (U+2028, U+2029, U+0085) are
escaped, and a line over the cap is rebuilt from its schema fields with a ``truncated`` marker.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

from limone_obs import conventions as c

#: Nesting kept by :func:`sanitise`; deeper values become a marker string.
MAX_DEPTH = 32
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
    """orjson's fallback for types it does not know: a JSON-able stand-in, never a raise."""
    if isinstance(obj, set | frozenset):
        return [default_or_self(item) for item in obj]
    if isinstance(obj, Mapping):
        return dict(obj.items())
    return as_text(obj)


def as_text(obj: Any) -> str:
    """The text a line shows for a value orjson cannot write (``repr()`` as a last resort)."""
    if isinstance(obj, Decimal):
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
        return value if -(2**63) <= value < 2**64 else str(value)
    return value if math.isfinite(value) else None


def _fix_key(key: Any) -> str:
    return _fix_str(key) if isinstance(key, str) else safe_str(key)


def sanitise(obj: Any, depth: int = 0) -> Any:
    """Return a copy of ``obj`` that orjson encodes: str keys, 64-bit ints, valid UTF-8."""
    if depth > MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(obj, str):
        return _fix_str(obj)
    if obj is None or isinstance(obj, bool | int | float):
        return _fix_scalar(obj)
    if isinstance(obj, Mapping):
        return {_fix_key(k): sanitise(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [sanitise(item, depth + 1) for item in obj]
    return sanitise(default(obj), depth + 1)


def dumps(event: Mapping[str, Any]) -> bytes:
    """Encode ``event`` as JSON without a newline; falls back to :func:`sanitise`."""
    try:
        line = orjson.dumps(event, default=default)
    except (TypeError, ValueError):
        line = orjson.dumps(sanitise(event))
    if not line.isascii():
        for raw, escaped in _RAW_BREAKS:
            line = line.replace(raw, escaped)
    return line


def _cut(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "...[truncated]"
    return value


def shrink(event: Mapping[str, Any], size: int, cap: int) -> dict[str, Any]:
    """Return the schema fields of an over-long ``event`` (``size`` bytes) cut to fit ``cap``."""
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
            "traceback": trace if len(trace) <= budget else "[truncated]..." + trace[-budget:],
        }
    small[c.LOG_TRUNCATED] = True
    small[c.LOG_ORIGINAL_BYTES] = size
    return small


def encode_line(event: Mapping[str, Any], cap: int) -> bytes:
    """Return ``event`` as one JSON line ending in ``\\n``, at most ``cap`` bytes long."""
    line = dumps(event)
    if len(line) >= cap:
        line = dumps(shrink(event, len(line), cap))
        if len(line) >= cap:
            line = dumps(_minimal(event, len(line)))
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
