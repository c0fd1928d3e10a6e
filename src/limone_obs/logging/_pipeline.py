"""The one schema: builds the line dict for app events and stdlib records alike.

:data:`current` holds the active :class:`Pipeline`; ``configure_logging`` replaces it, and
every logger created before or after follows the new one (nothing caches a copy).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import sys
import time
import traceback
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from limone_obs import conventions as c
from limone_obs import lifecycle
from limone_obs.logging import _context, _identity
from limone_obs.logging._encode import encode_line, rfc3339, safe_str
from limone_obs.logging._sink import Sink, is_pipe_or_socket
from limone_obs.logging.redaction import Redactor

#: Fields the line's own machinery fills. A field of that name given by the app (a
#: keyword, ``extra=``, ``bind()``) is kept as ``extra_<name>``: see :func:`keep_core`.
CORE_NAMES = frozenset((*c.LOG_CORE_FIELDS, c.LOG_EXCEPTION, c.LOG_TRUNCATED, c.LOG_ORIGINAL_BYTES))
#: Level numbers by schema name.
LEVEL_NUMBERS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
#: Schema level name of each standard stdlib level number.
LEVEL_NAMES = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}
#: Schema level of each structlog method name.
METHOD_LEVELS = {
    "debug": "debug", "info": "info", "msg": "info", "warning": "warning", "warn": "warning",
    "error": "error", "exception": "error", "critical": "critical", "fatal": "critical",
}  # fmt: skip
DEFAULT_SERVICE = _identity.DEFAULT_SERVICE
DEFAULT_ENV = _identity.DEFAULT_ENV
DEFAULT_MAX_LINE_BYTES = 16 * 1024
#: Logger name of the lines the logging layer writes about itself.
NOTICE_LOGGER = "limone_obs.logging"

Processor = Callable[[Any, str, MutableMapping[str, Any]], MutableMapping[str, Any]]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def default_line_cap(stream: Any = None) -> int:
    """16 KiB, or ``PIPE_BUF`` when ``stream`` (default ``sys.stdout``) is a pipe or socket:
    only writes up to that size stay whole when processes share the pipe."""
    stream = sys.stdout if stream is None else stream
    if stream is not None and is_pipe_or_socket(stream):
        return min(select.PIPE_BUF, DEFAULT_MAX_LINE_BYTES)
    return DEFAULT_MAX_LINE_BYTES


def default_service() -> str:
    """``LIMONE_OBS_SERVICE``, else ``limoneide``."""
    return os.environ.get("LIMONE_OBS_SERVICE") or DEFAULT_SERVICE


def default_env() -> str:
    """``LIMONE_OBS_ENV``, else ``development``."""
    return os.environ.get("LIMONE_OBS_ENV") or DEFAULT_ENV


@dataclass(frozen=True)
class Pipeline:
    """Everything a line needs: static fields, level, redaction, size cap and the sink."""

    service: str = field(default_factory=default_service)
    env: str = field(default_factory=default_env)
    level: int = logging.INFO
    redactor: Redactor | None = field(
        default_factory=lambda: Redactor(max_text=2 * DEFAULT_MAX_LINE_BYTES)
    )
    max_line_bytes: int = field(default_factory=default_line_cap)
    processors: tuple[Processor, ...] = ()
    sink: Sink | None = None

    def head(
        self,
        timestamp: str,
        level: str,
        logger: str,
        message: str,
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Return the core fields plus ``context`` (default: the bound one), in schema order."""
        out = {
            c.LOG_TIMESTAMP: timestamp,
            c.LOG_LEVEL: level,
            c.LOG_LOGGER: logger,
            c.LOG_MESSAGE: message if self.redactor is None else self.redactor.redact_text(message),
            c.LOG_SERVICE: self.service,
            c.LOG_ENV: self.env,
        }
        if context is None:
            context = _context.get_context()
            if context is _context.EMPTY and _context.request_fields is not None:
                # Nothing bound here: a copy of a request context (see request_fields).
                context = _context.request_fields() or context
        if context:
            out.update(context)  # redacted when bound
        return out

    def redact_text(self, text: str) -> str:
        """Mask credential-shaped parts of ``text`` (identity when redaction is off)."""
        return text if self.redactor is None else self.redactor.redact_text(text)

    def redact_fields(self, fields: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Mask secrets of ``fields`` in place and return it."""
        if self.redactor is not None:
            self.redactor.redact_event(fields)
        return fields

    def render(self, event: Mapping[str, Any]) -> bytes:
        """Encode a finished event as one capped JSON line."""
        return encode_line(event, self.max_line_bytes)

    def exception(
        self, exc_info: ExcInfo, text: str | None = None, origin: object = None
    ) -> dict[str, str]:
        """Return the ``exception`` field: type, message, traceback (no local variables);
        type and message only when an earlier line already carried this exception's
        traceback (gunicorn's "Error handling request" after the access line of a stream
        that failed). ``origin`` is the log record being formatted: every handler that
        formats the same record (the kit's output and an app's own file given the kit's
        formatter) gets the traceback.

        The request being served (if any) remembers that a line carried this traceback
        (:func:`limone_obs.lifecycle.traceback_logged`), and so does the exception.
        """
        exc_type, exc, tb = exc_info
        if exc is not None:
            first = _NO_ORIGIN if origin is None else id(origin)
            marked = getattr(exc, _TRACEBACK_LOGGED, None)
            if marked is not None and (marked != first or first == _NO_ORIGIN):
                return self.exception_summary(exc_info)
            lifecycle.traceback_logged(exc)
            _mark_logged(exc, first)
        if text is None:
            text = "".join(traceback.format_exception(exc_type, exc, tb))
        return {**self.exception_summary(exc_info), "traceback": self.redact_text(text)}

    def exception_summary(self, exc_info: ExcInfo) -> dict[str, str]:
        """The ``exception`` field without its traceback: type and message."""
        exc_type, exc, _ = exc_info
        return {
            "type": getattr(exc_type, "__qualname__", safe_str(exc_type)),
            "message": self.redact_text(safe_str(exc)),
        }


#: Set on an exception once a line carried its traceback: the ``id()`` of the record it
#: came from, or _NO_ORIGIN (an app event or an access line: formatted once).
_TRACEBACK_LOGGED = "limone_obs_traceback_logged"
_NO_ORIGIN = -1


def _mark_logged(exc: BaseException, origin: int) -> None:
    # An exception object that refuses attributes only loses the deduplication.
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, _TRACEBACK_LOGGED, origin)


def keep_core(fields: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Rename, in place, each field of ``fields`` named like one of :data:`CORE_NAMES` to
    ``extra_<name>`` and return ``fields``: an app's ``level=`` or ``message=`` must not
    replace the line's own (nor break the schema)."""
    if not CORE_NAMES.isdisjoint(fields):
        for key in CORE_NAMES.intersection(fields):
            fields[f"extra_{key}"] = fields.pop(key)
    return fields


current = Pipeline()
_fallback: Sink | None = None


def write(line: bytes) -> None:
    """Write ``line`` to the active sink (stdout before ``configure_logging`` ran)."""
    global _fallback  # noqa: PLW0603 - created on first use: sys.stdout may be replaced
    sink = current.sink
    if sink is None:
        if _fallback is None:
            _fallback = Sink(sys.stdout, notice=dropped_notice)
        sink = _fallback
    sink.write(line)


def take_fallback() -> Sink | None:
    """Return the stdout sink used before ``configure_logging`` (None if never used) and
    forget it: the caller closes it."""
    global _fallback
    sink, _fallback = _fallback, None
    return sink


def dropped_notice(count: int) -> bytes:
    """The line written when the output takes lines again after ``count`` were dropped."""
    p = current
    event = p.head(
        rfc3339(time.time()),
        "warning",
        NOTICE_LOGGER,
        f"{count} log line(s) dropped: the output did not take them in time",
        {},
    )
    event["dropped_lines"] = count
    return p.render(event)


def install(pipeline: Pipeline) -> None:
    """Make ``pipeline`` the active one for every logger."""
    global current  # noqa: PLW0603 - the single switch that reconfigures every logger
    current = pipeline


def level_name(levelno: int) -> str:
    """Map a stdlib level number (custom ones too) to the schema's five names."""
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    return "info" if levelno >= logging.INFO else "debug"


def exc_info_of(value: Any) -> ExcInfo | None:
    """Normalise structlog's ``exc_info`` (True, an exception or a tuple) to a triple."""
    if isinstance(value, BaseException):
        return (type(value), value, value.__traceback__)
    if isinstance(value, tuple) and len(value) == 3 and value[0] is not None:
        return value
    if value is True:
        info = sys.exc_info()
        return info if info[0] is not None else None
    return None
