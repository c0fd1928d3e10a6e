"""The fast path for the app's own events: structlog -> one processor -> orjson bytes.

structlog is configured once with :func:`render` as its only processor, a bound-logger
class that reads the level from the active pipeline on every call, and a logger that
writes to the active pipeline's sink. So loggers cached before a ``configure_logging``
call follow it: no stale level, stream or redaction settings.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Mapping, MutableMapping, Sequence
from types import FrameType
from typing import Any

import orjson
import structlog

from limone_obs import conventions as c
from limone_obs.logging import _pipeline
from limone_obs.logging._encode import TERMINAL_ESCAPE, rfc3339, safe_repr, safe_str


def render(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> bytes:
    """structlog processor: the event dict as one schema line (bytes, newline included).

    Never raises: if the event cannot be rendered (e.g. a mapping whose ``items()``
    fails), a line saying so is returned instead, so logging never breaks a request.
    """
    try:
        return _render(logger, method, event_dict)
    except Exception as exc:
        return _failure_line(logger, exc)


def _render(
    logger: Any,
    method: str,
    event_dict: MutableMapping[str, Any],
    exception: dict[str, str] | None = None,
) -> bytes:
    """:func:`render`'s work; ``exception`` is an exception field already made from text
    (a processor chain of the app's own formatted it), masked here."""
    p = _pipeline.current
    exc = _pop_exc_info(event_dict)
    failed = None
    if p.processors:
        # structlog's convention: a processor sees the message as "event" (a scrubber,
        # a filter raising DropEvent); it becomes the line's message afterwards.
        event_dict, failed = _processed(p.processors, logger, method, event_dict)
    # The caller's stack, as a stdlib record's stack_info=True gives it: text in both
    # (a boolean here would change the field's type), and none for a false value. After
    # the app's processors: structlog's StackInfoRenderer among them takes it first.
    stack = _stack_text() if event_dict.pop(_STACK_INFO, None) else None
    message = event_dict.pop("event", None)
    text = message if isinstance(message, str) else ("" if message is None else safe_str(message))
    out = p.head(
        rfc3339(time.time()), _pipeline.METHOD_LEVELS.get(method, "info"), _name(logger), text
    )
    if event_dict:
        if p.redactor is not None:
            p.redactor.redact_event(event_dict)
        if not _pipeline.OWN_NAMES.isdisjoint(event_dict):  # checked here: most lines have none
            # A keyword named like a core field, or a request field the request already
            # set or of the wrong type: extra_<name>.
            _pipeline.keep_own(event_dict, _pipeline.held_by_request(out))
        _pipeline.rename_refused(event_dict)
        out.update(event_dict)
    if exc is not None:
        out[c.LOG_EXCEPTION] = p.exception(exc)
    elif exception is not None:
        out[c.LOG_EXCEPTION] = {key: p.redact_text(text) for key, text in exception.items()}
    if stack is not None:
        out[_STACK_INFO] = p.redact_text(stack)
    if failed is not None:
        out[_RENDER_ERROR] = p.redact_text(failed)
    return p.render(out)


_RENDER_ERROR = "render_error"
#: The field of the caller's stack (the stdlib records' name: one field, one type).
_STACK_INFO = "stack_info"


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


def _writer(method: str) -> Any:
    """SinkLogger's method ``method``: writes the line :func:`render` made (the only bytes
    it gets: :func:`logger_factory` makes it under the kit's processors alone); anything
    else becomes a line of the schema."""

    def write(self: SinkLogger, line: Any) -> None:
        if type(line) is bytes:
            _pipeline.write(line)
        else:
            _write_foreign(self, method, line, (), {})

    return _named(write, method)


def _foreign_writer(method: str) -> Any:
    """ForeignSinkLogger's method ``method``: takes whatever structlog hands on from a
    processor chain of the app's own (text, bytes, the event dict, a tuple's parts)."""

    def write(self: SinkLogger, line: Any = None, *args: Any, **kw: Any) -> None:
        # render's lines, and only they, are bytes ending in a newline.
        if type(line) is bytes and not args and not kw and line.endswith(b"\n"):
            _pipeline.write(line)
        else:
            _write_foreign(self, method, line, args, kw)

    return _named(write, method)


def _named(write: Any, method: str) -> Any:
    write.__name__ = write.__qualname__ = method
    write.__doc__ = f"Write one rendered line (structlog's ``{method}``)."
    return write


class SinkLogger:
    """structlog's final logger: writes the rendered line to the active pipeline's sink.

    Anything but :func:`render`'s line becomes a line of the schema
    (:func:`_write_foreign`), with one warning line saying why; it never raises into the
    caller. ``isEnabledFor``, ``getEffectiveLevel`` and ``disabled`` serve structlog's
    stdlib processors (``filter_by_level``) in a processor chain of the app's own.
    """

    __slots__ = ("name",)

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    #: Read by structlog's ``filter_by_level``, as on a stdlib logger.
    disabled = False

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - the stdlib logger's API
        """True when a line at stdlib ``level`` is written."""
        return level >= _pipeline.current.level

    def getEffectiveLevel(self) -> int:  # noqa: N802 - the stdlib logger's API
        """The active level, a stdlib level number."""
        return _pipeline.current.level


class ForeignSinkLogger(SinkLogger):
    """The SinkLogger :func:`logger_factory` makes while structlog's processors are not
    the kit's (``structlog.configure(processors=[..., JSONRenderer()])`` made after the
    kit's): its methods also take what structlog hands on from such a chain besides one
    line (the event dict as keywords, a tuple's parts). Kept apart so the kit's own
    lines do not pay for those arguments."""

    __slots__ = ()


#: structlog's method names on the final logger, and the method each writes as.
_METHODS = (
    ("msg", "info"), ("debug", "debug"), ("info", "info"), ("warning", "warning"),
    ("warn", "warning"), ("error", "error"), ("exception", "exception"),
    ("critical", "critical"), ("fatal", "critical"), ("log", "info"),
)  # fmt: skip
for _attribute, _level_method in _METHODS:
    setattr(SinkLogger, _attribute, _writer(_level_method))
    setattr(ForeignSinkLogger, _attribute, _foreign_writer(_level_method))


#: Set once the warning about a processor chain of the app's own was written (per process).
_foreign_told: list[bool] = []


def _write_foreign(logger: SinkLogger, method: str, result: Any, args: Any, kw: Any) -> None:
    """Write what a processor chain of the app's own returned (``result``, ``args``, ``kw``
    as structlog hands them on) as a line of the schema: a JSON object's fields
    (``JSONRenderer``), other text as the message (a console renderer's, terminal colours
    removed), an event dict as the kit renders one. Never raises."""
    try:
        event = _foreign_event(result, args, kw)
        if "event" not in event and isinstance(event.get(c.LOG_MESSAGE), str):
            event["event"] = event.pop(c.LOG_MESSAGE)  # structlog's EventRenamer("message")
        level = event.get(c.LOG_LEVEL)
        if isinstance(level, str) and level.lower() in _pipeline.METHOD_LEVELS:
            method = event.pop(c.LOG_LEVEL).lower()
        event.pop(c.LOG_TIMESTAMP, None)  # the kit's own clock, in its format
        name = event.pop(c.LOG_LOGGER, None) or event.pop("logger_name", None)
        exception = None
        if isinstance(event.get(c.LOG_EXCEPTION), str):  # structlog's format_exc_info
            exception = _exception_from_text(event.pop(c.LOG_EXCEPTION))
        named = logger if logger.name or not isinstance(name, str) else SinkLogger(name)
        line = _render(named, method, event, exception)
    except Exception as exc:
        line = _failure_line(logger, exc)
    _pipeline.write(line)
    if not _foreign_told:
        _foreign_told.append(True)
        _tell_foreign(result, kw)


def forget_warnings() -> None:
    """Warn again about a processor chain of the app's own (tests use this)."""
    _foreign_told.clear()


def _foreign_event(line: Any, args: Any, kw: Any) -> dict[str, Any]:
    """The event dict behind what the app's processor chain returned."""
    if line is None and not args:
        return dict(kw)  # the chain ended without a renderer: the event dict itself
    if isinstance(line, bytes | bytearray):
        line = bytes(line).decode("utf-8", "replace")
    if isinstance(line, str) and not args and not kw:
        text = line.rstrip("\n")
        if text.startswith("{"):
            try:
                parsed = orjson.loads(text)
            except orjson.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                return parsed
        if "\x1b" in text:
            text = TERMINAL_ESCAPE.sub("", text)
        return {"event": text}
    words = " ".join(safe_str(part) for part in (line, *args) if part is not None)
    return {**kw, "event": words}


def _exception_from_text(text: str) -> dict[str, str]:
    """structlog's formatted traceback (``format_exc_info``) as the schema's exception."""
    last = text.rstrip().rsplit("\n", 1)[-1]
    kind, _, message = last.partition(": ")
    return {"type": kind.strip(), "message": message, "traceback": text}


def _tell_foreign(line: Any, kw: Any) -> None:
    what = "an event dict (no renderer)" if line is None and kw else f"a {type(line).__name__}"
    logging.getLogger(_pipeline.NOTICE_LOGGER).warning(
        "limone-obs: a structlog logger's processors are not the kit's (the app's own "
        "structlog.configure(processors=...), made after limone_obs.logging was imported "
        "or configured, or a logger bound under it): they returned %s, which is now "
        "written as a line of the kit's schema, its secrets masked. Remove that "
        "structlog.configure call, or pass its processors, without the renderer, to "
        "configure_logging(processors=[...]).",
        what,
    )


def logger_factory(*args: Any) -> SinkLogger:
    """structlog ``logger_factory``: the first positional argument is the logger name;
    without one, the calling module's name (as structlog's stdlib ``LoggerFactory``).
    Called when a logger is bound or first used, under the processors configured then: a
    :class:`ForeignSinkLogger` unless they are the kit's."""
    name = str(args[0]) if args and args[0] is not None else caller_module()
    processors = structlog.get_config()["processors"]
    if len(processors) == 1 and processors[0] is render:
        return SinkLogger(name)
    return ForeignSinkLogger(name)


def caller_module() -> str | None:
    """The ``__name__`` of the first calling frame outside structlog and this package."""
    frame = _caller_frame()
    return None if frame is None else str(frame.f_globals["__name__"])


def _caller_frame() -> FrameType | None:
    """The first calling frame outside structlog and this package (None if there is none)."""
    # sys._getframe is documented (CPython); structlog's own factory walks frames too.
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if isinstance(name, str) and not name.startswith(_OWN_FRAMES):
            return frame
        frame = frame.f_back
    return None


def _stack_text() -> str:
    """The caller's stack as the stdlib's ``stack_info=True`` writes it."""
    frame = _caller_frame()
    lines = traceback.format_stack(frame) if frame is not None else []
    return "Stack (most recent call last):\n" + "".join(lines).rstrip("\n")


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
