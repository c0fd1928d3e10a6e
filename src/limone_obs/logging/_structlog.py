"""The fast path for the app's own events: structlog -> one processor -> orjson bytes.

structlog is configured once with :func:`render` as its only processor, a bound-logger
class that reads the level from the active pipeline on every call, and a logger that
writes to the active pipeline's sink. So loggers cached before a ``configure_logging``
call follow it: no stale level, stream or redaction settings.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, MutableMapping, Sequence
from types import FrameType
from typing import Any

import structlog

from limone_obs import conventions as c
from limone_obs.logging import _pipeline
from limone_obs.logging._encode import rfc3339, safe_repr, safe_str


def render(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> bytes:
    """structlog processor: the event dict as one schema line (bytes, newline included).

    Never raises: if the event cannot be rendered (e.g. a mapping whose ``items()``
    fails), a line saying so is returned instead, so logging never breaks a request.
    """
    try:
        return _render(logger, method, event_dict)
    except Exception as exc:
        return _failure_line(logger, exc)


def _render(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> bytes:
    p = _pipeline.current
    exc = _pop_exc_info(event_dict)
    failed = None
    if p.processors:
        # structlog's convention: a processor sees the message as "event" (a scrubber,
        # a filter raising DropEvent); it becomes the line's message afterwards.
        event_dict, failed = _processed(p.processors, logger, method, event_dict)
    message = event_dict.pop("event", None)
    text = message if isinstance(message, str) else ("" if message is None else safe_str(message))
    out = p.head(
        rfc3339(time.time()), _pipeline.METHOD_LEVELS.get(method, "info"), _name(logger), text
    )
    if event_dict:
        if p.redactor is not None:
            p.redactor.redact_event(event_dict)
        if not _pipeline.CORE_NAMES.isdisjoint(event_dict):  # checked here: most lines have none
            _pipeline.keep_core(event_dict)  # a keyword named like a core field: extra_<name>
        out.update(event_dict)
    if exc is not None:
        out[c.LOG_EXCEPTION] = p.exception(exc)
    if failed is not None:
        out[_RENDER_ERROR] = p.redact_text(failed)
    return p.render(out)


_RENDER_ERROR = "render_error"


def _processed(
    processors: Sequence[_pipeline.Processor],
    logger: Any,
    method: str,
    event_dict: MutableMapping[str, Any],
) -> tuple[MutableMapping[str, Any], str | None]:
    """The event after ``configure_logging``'s processors, and why one failed (None if
    none did): a processor that raises, or returns something other than the event dict (a
    renderer), is skipped with the event as it was, so the line loses nothing."""
    for processor in processors:
        try:
            result = processor(logger, method, event_dict)
        except Exception as exc:
            return event_dict, f"processor {_name_of(processor)} raised {_describe(exc)}"
        if not isinstance(result, MutableMapping):
            return event_dict, (
                f"processor {_name_of(processor)} returned a {type(result).__name__}, not the "
                "event dict: configure_logging's processors add or change fields, the kit "
                "renders the line"
            )
        event_dict = result
    return event_dict, None


def _name_of(processor: object) -> str:
    return getattr(processor, "__name__", type(processor).__name__)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {safe_str(exc)}"


def _name(logger: Any) -> str:
    return getattr(logger, "name", None) or _pipeline.current.service


def _pop_exc_info(event_dict: MutableMapping[str, Any]) -> _pipeline.ExcInfo | None:
    exc = event_dict.pop("exc_info", None)
    if exc is None and isinstance(event_dict.get(c.LOG_EXCEPTION), BaseException):
        exc = event_dict.pop(c.LOG_EXCEPTION)  # log.error("...", exception=exc)
    return _pipeline.exc_info_of(exc) if exc else None


def _failure_line(logger: Any, exc: Exception) -> bytes:
    p = _pipeline.current
    out = p.head(rfc3339(time.time()), "error", _name(logger), "log event could not be rendered")
    out[_RENDER_ERROR] = p.redact_text(_describe(exc))
    return p.render(out)


class SinkLogger:
    """structlog's final logger: writes the rendered line to the active pipeline's sink."""

    __slots__ = ("name",)

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def msg(self, line: bytes) -> None:
        """Write one rendered line."""
        _pipeline.write(line)

    debug = info = warning = warn = error = exception = critical = fatal = log = msg


def logger_factory(*args: Any) -> SinkLogger:
    """structlog ``logger_factory``: the first positional argument is the logger name;
    without one, the calling module's name (as structlog's stdlib ``LoggerFactory``)."""
    return SinkLogger(str(args[0]) if args and args[0] is not None else caller_module())


def caller_module() -> str | None:
    """The ``__name__`` of the first calling frame outside structlog and this package."""
    # sys._getframe is documented (CPython); structlog's own factory walks frames too.
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if isinstance(name, str) and not name.startswith(_OWN_FRAMES):
            return name
        frame = frame.f_back
    return None


#: Modules whose frames :func:`caller_module` looks past.
_OWN_FRAMES = ("structlog.", "limone_obs.logging")


class BoundLogger(structlog.BoundLoggerBase):
    """A structlog bound logger filtering by the active pipeline's level on every call.

    ``log.info("user %s logged in", name, user_id=3)``: positional arguments are
    %-formatted into the message; keyword arguments become fields.
    """

    def _log(self, level: int, method: str, event: Any, args: tuple[Any, ...], kw: Any) -> Any:
        if level < _pipeline.current.level:
            return None
        if args and isinstance(event, str):
            event = _formatted(event, args)
        return self._proxy_to_logger(method, event, **kw)

    def debug(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at debug level."""
        return self._log(10, "debug", event, args, kw)

    def info(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at info level."""
        return self._log(20, "info", event, args, kw)

    def warning(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at warning level."""
        return self._log(30, "warning", event, args, kw)

    warn = warning

    def error(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at error level."""
        return self._log(40, "error", event, args, kw)

    def exception(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at error level with the exception being handled."""
        kw.setdefault("exc_info", True)
        return self._log(40, "exception", event, args, kw)

    def critical(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at critical level."""
        return self._log(50, "critical", event, args, kw)

    fatal = critical

    def log(self, level: int, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at a stdlib level number."""
        name = _pipeline.level_name(level)
        return self._log(level, name, event, args, kw)

    msg = info

    def is_enabled_for(self, level: int) -> bool:
        """True when a line at stdlib ``level`` is written (structlog's filtering API)."""
        return level >= _pipeline.current.level

    def get_effective_level(self) -> int:
        """The active level, a stdlib level number (structlog's filtering API)."""
        return _pipeline.current.level

    # structlog's async methods (``await log.ainfo(...)``), so code written for its own
    # bound logger keeps working: a line is written at once (its wait is bounded by
    # configure_logging's write_timeout), not in a thread as structlog does.
    async def adebug(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at debug level."""
        return self.debug(event, *args, **kw)

    async def ainfo(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at info level."""
        return self.info(event, *args, **kw)

    amsg = ainfo

    async def awarning(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at warning level."""
        return self.warning(event, *args, **kw)

    awarn = awarning

    async def aerror(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at error level."""
        return self.error(event, *args, **kw)

    async def aexception(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at error level with the exception being handled."""
        return self.exception(event, *args, **kw)

    async def acritical(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at critical level."""
        return self.critical(event, *args, **kw)

    afatal = acritical

    async def alog(self, level: int, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at a stdlib level number."""
        return self.log(level, event, *args, **kw)


def _formatted(event: str, args: tuple[Any, ...]) -> str:
    """``event % args`` as stdlib logging formats it (one mapping argument fills
    ``%(name)s``, its secret values masked), or the event and the arguments' repr when
    they do not fit."""
    values: Any = args
    if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
        redactor = _pipeline.current.redactor
        values = args[0] if redactor is None else redactor.mask_arguments(args[0])
    try:
        return str(event % values)
    except Exception:
        return f"{event} {safe_repr(args)}"


def configure_structlog() -> None:
    """Point structlog at the active pipeline (safe to call more than once)."""
    structlog.configure(
        processors=[render],
        wrapper_class=BoundLogger,
        logger_factory=logger_factory,
        context_class=dict,
        cache_logger_on_first_use=True,
    )
