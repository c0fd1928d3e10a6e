"""``configure_logging``: one call that makes every log line of the process JSON."""

from __future__ import annotations

import gc
import logging
import logging.handlers
import os
import sys
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import flask.logging
import structlog

from limone_obs import conventions as c
from limone_obs import health
from limone_obs.errors import ConfigError
from limone_obs.logging import _context, _identity, _pipeline, _structlog, _uncaught
from limone_obs.logging._sink import DEFAULT_WRITE_TIMEOUT, RotatingFile, Sink, report_on_stderr
from limone_obs.logging.redaction import DEFAULT_KEYS, Redactor
from limone_obs.logging.stdlib import JsonFormatter, JsonLineHandler, in_place_of

#: Smallest accepted line cap: room for the schema fields and a useful message.
MIN_LINE_BYTES = 1024
_OURS = "_limone_obs_logging"
#: configure_logging ran in this process (or in the one it was forked from).
_configured = False


def configure_logging(
    *,
    service: str | None = None,
    env: str | None = None,
    level: str | int | None = None,
    stream: IO[Any] | None = None,
    redact: bool = True,
    redact_keys: Iterable[str] = DEFAULT_KEYS,
    extra_redact_keys: Iterable[str] = (),
    max_line_bytes: int | None = None,
    file: str | Path | None = None,
    file_max_bytes: int = 50 * 1024 * 1024,
    file_backups: int = 5,
    write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    processors: Sequence[_pipeline.Processor] = (),
    capture_warnings: bool = True,
) -> None:
    """Make app events (structlog) and stdlib records one JSON object per line.

    Idempotent: a second call replaces the first's handler and settings, so lines are
    never duplicated, and loggers obtained earlier follow the new settings. Root-logger
    handlers we did not create are kept (Sentry's, files), except console handlers
    (e.g. from ``basicConfig``), which would print every line twice; a non-propagating
    logger's console handler is replaced by one writing to this output. A kept text
    handler writing to a file, and a structlog configuration made by the app (replaced),
    are each named in a warning line (logging/README.md, "An app that already logs").

    ``service``/``env``: ``LIMONE_OBS_SERVICE``/``LIMONE_OBS_ENV`` win when set (a
    warning line says when they differ from the arguments), so gunicorn's master, which
    never calls this function, writes the same values; else the arguments, else an
    earlier call's values (a later call that changes one says so in a warning line),
    else ``limoneide``/``development``, exported to the environment for processes started
    later (see :mod:`limone_obs.logging._identity`).

    ``level`` (default ``"info"``): ``LIMONE_OBS_LOG_LEVEL`` wins when set, so an operator
    turns on debug lines without a code change (a warning line says when it differs from
    the argument).

    ``stream`` defaults to ``sys.stdout``; ``file`` adds a copy of every line to a file
    rotated at ``file_max_bytes``. ``processors`` are
    structlog processors run on an app event's own fields before redaction.

    ``max_line_bytes`` caps each line (longer ones are cut, keeping the end of a
    traceback). Default: 16 KiB, but ``PIPE_BUF`` (4096 bytes on Linux) when ``stream`` is
    a pipe or socket: only writes up to that size are atomic there, so lines of processes
    sharing the pipe (gunicorn workers on one stdout) never interleave. For longer lines
    log to a file (``stream=open(path, "ab")`` or ``file=`` with the stream elsewhere) or
    pass ``max_line_bytes`` when one process alone writes to the pipe.
    ``write_timeout`` (seconds, default 0.1) bounds the wait when stdout is a pipe or
    socket whose reader stopped: then lines are dropped without waiting, counted
    (``<ns>_log_lines_dropped_total``) and one line says how many once the reader is back.

    Uncaught exceptions (main program, threads, ``__del__``) become JSON lines of the
    logger ``uncaught``, and text written to ``sys.stderr`` is masked (hooks and stream
    the app set first are kept: :mod:`limone_obs.logging._uncaught`).

    Calling it again replaces the output: lines that other threads write meanwhile go to
    the new one. Not from a signal handler: it waits for the line being written.

    Raises ConfigError on an unknown level (argument or ``LIMONE_OBS_LOG_LEVEL``), a cap
    below 1024 bytes, a negative timeout or a structlog renderer among ``processors``.
    """
    _check_processors(processors)
    stream, looped = _real_stream(stream if stream is not None else sys.stdout)
    cap = _check_cap(_line_cap(max_line_bytes, stream))
    # A text over twice the cap cannot fit a line: cut it before it is scanned (its
    # head still overflows the line, which is then marked truncated as before).
    redactor = Redactor(redact_keys, extra_keys=extra_redact_keys, max_text=2 * cap)
    service, env, warnings = _identity.resolve(service, env)
    number, said = _resolve_level(level)
    pipeline = _pipeline.Pipeline(
        service=service,
        env=env,
        level=number,
        redactor=redactor if redact else None,
        max_line_bytes=cap,
        processors=tuple(processors),
        sink=Sink(
            stream,
            _rotating(file, file_max_bytes, file_backups),
            timeout=_check_timeout(write_timeout),
            notice=_pipeline.dropped_notice,
        ),
    )
    replaced = _foreign_structlog_config()
    _replace_pipeline(pipeline)
    _install_root_handler(pipeline)
    _uncaught.install()
    _structlog.configure_structlog()
    global _configured  # noqa: PLW0603 - set once configured, read by verify_configured
    _configured = True
    health.clear_problem(c.PROBLEM_LOGGING_REPLACED)
    health.clear_problem(c.PROBLEM_LOGGING_NOT_CONFIGURED)
    logging.captureWarnings(capture_warnings)
    notices = logging.getLogger(_pipeline.NOTICE_LOGGER)
    for warning in (
        *looped,
        *warnings,
        *said,
        *replaced,
        *_unmanaged_handlers(),
        *_enable_own_loggers(),
    ):
        notices.warning(warning)


def _real_stream(stream: IO[Any]) -> tuple[IO[Any], tuple[str, ...]]:
    """``stream``, or the process's own stdout in place of a stream that writes into
    logging (Celery's worker redirects ``sys.stdout`` to a ``LoggingProxy``): each line
    written there would be logged again, and again. With the warning saying so."""
    logger = getattr(stream, "logger", None)
    if not isinstance(logger, logging.Logger) or sys.__stdout__ is None:
        return stream, ()
    return sys.__stdout__, (
        f"limone-obs: the log stream ({type(stream).__module__}.{type(stream).__qualname__}) "
        f"writes into the logger {logger.name!r} (Celery redirects sys.stdout so while a "
        "worker runs): the JSON lines go to the process's own stdout instead, as a line "
        "written there would be logged again without end",
    )


def _check_processors(processors: Sequence[_pipeline.Processor]) -> None:
    """Refuse a structlog renderer among ``processors``: the kit renders every line, and
    a processor must return the event dict (a renderer's text would lose the event)."""
    renderers = tuple(
        cls
        for cls in (
            getattr(structlog.processors, "JSONRenderer", None),
            getattr(structlog.processors, "KeyValueRenderer", None),
            getattr(structlog.processors, "LogfmtRenderer", None),
            getattr(structlog.dev, "ConsoleRenderer", None),
        )
        if isinstance(cls, type)
    )
    for processor in processors:
        if isinstance(processor, renderers):
            raise ConfigError(
                f"configure_logging(processors=[...]): {type(processor).__name__} is a "
                "renderer; the kit renders every line itself: pass only the processors that "
                "add or change fields"
            )


#: The environment variable that sets the level (over the argument, as service/env's do).
LEVEL_VARIABLE = "LIMONE_OBS_LOG_LEVEL"
#: The stdlib's other names of two levels (``logging.WARN``, ``logging.FATAL``).
_LEVEL_ALIASES = {"warn": "warning", "fatal": "critical"}


def _resolve_level(level: str | int | None) -> tuple[int, tuple[str, ...]]:
    """The level number: ``LIMONE_OBS_LOG_LEVEL`` when set, else ``level``, else info;
    with a warning line when the variable overrides a different argument."""
    number = _level_number(
        "info" if level is None else level, f"configure_logging(level={level!r})"
    )
    text = os.environ.get(LEVEL_VARIABLE, "").strip()
    if not text:
        return number, ()
    wanted = _level_number(int(text) if text.isdigit() else text, f"{LEVEL_VARIABLE}={text[:40]!r}")
    if level is None or wanted == number:
        return wanted, ()
    return wanted, (
        f"limone-obs: {LEVEL_VARIABLE}={text[:40]!r} wins over configure_logging(level="
        f"{level!r}): unset it to log at the level the code gives",
    )


def _level_number(level: str | int, given: str) -> int:
    """The stdlib number of ``level`` (a name of the schema's or a number); ConfigError
    naming where it was ``given`` otherwise."""
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    name = str(level).lower()
    number = _pipeline.LEVEL_NUMBERS.get(_LEVEL_ALIASES.get(name, name))
    if number is None:
        raise ConfigError(
            f"{given}: unknown level; use one of "
            f"{', '.join(_pipeline.LEVEL_NUMBERS)} or a stdlib level number"
        )
    return number


def _line_cap(max_line_bytes: int | None, stream: IO[Any]) -> int:
    return _pipeline.default_line_cap(stream) if max_line_bytes is None else max_line_bytes


def _check_cap(max_line_bytes: int) -> int:
    if max_line_bytes < MIN_LINE_BYTES:
        raise ConfigError(
            f"configure_logging(max_line_bytes={max_line_bytes}): too small to hold a line; "
            f"use at least {MIN_LINE_BYTES}"
        )
    return max_line_bytes


def _check_timeout(seconds: float) -> float:
    if not 0 <= seconds <= 60:
        raise ConfigError(
            f"configure_logging(write_timeout={seconds!r}): use 0 to 60 seconds "
            "(the longest a log call may wait for a blocked stdout)"
        )
    return seconds


def _rotating(file: str | Path | None, max_bytes: int, backups: int) -> RotatingFile | None:
    return None if file is None else RotatingFile(Path(file), max_bytes, backups)


def _install_root_handler(pipeline: _pipeline.Pipeline) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        # Any other console handler would print each line a second time (e.g. the one
        # gunicorn's logconfig_dict puts on the root in the master, inherited by workers).
        if getattr(handler, _OURS, False) or _is_console(handler):
            root.removeHandler(handler)
    handler = JsonLineHandler(pipeline.sink)  # type: ignore[arg-type] # always set above
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(pipeline.level)
    _fix_library_handlers(pipeline)


def _is_console(handler: logging.Handler) -> bool:
    # A StreamHandler on stdout/stderr (a FileHandler is a StreamHandler too: kept), or
    # Flask's default handler, added to app.logger when it is used before we ran.
    if handler is flask.logging.default_handler:
        return True
    if isinstance(handler, logging.FileHandler) or not isinstance(handler, logging.StreamHandler):
        return False
    return handler.stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)


def _is_text_console(handler: logging.Handler) -> bool:
    return _is_console(handler) and not isinstance(handler.formatter, JsonFormatter)


def _fix_library_handlers(pipeline: _pipeline.Pipeline) -> None:
    """Stray text console handlers on named loggers: dropped if the line also reaches
    the root handler (it would print twice), else replaced by one writing JSON to the
    pipeline's output (e.g. a non-propagating ``app.logger``'s), at the same level and
    with the same filters, so its lines get the file copy, the cap and the bounded wait
    too. Such a handler of an earlier call moves to the new output."""
    for logger in _named_loggers():
        for handler in list(logger.handlers):
            if getattr(handler, _OURS, False):
                handler.sink = pipeline.sink  # type: ignore[attr-defined]
            elif not _is_text_console(handler):
                continue
            elif logger.propagate:
                logger.removeHandler(handler)
            else:
                logger.removeHandler(handler)
                logger.addHandler(_on_pipeline(pipeline, handler))


def _named_loggers() -> list[logging.Logger]:
    return [
        logger
        for logger in list(logging.root.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]


def _on_pipeline(pipeline: _pipeline.Pipeline, handler: logging.Handler) -> JsonLineHandler:
    replacement = in_place_of(handler, pipeline.sink)  # type: ignore[arg-type] # set by now
    setattr(replacement, _OURS, True)
    return replacement


#: Handlers already named in a warning line (each is named once per process).
_warned: weakref.WeakSet[logging.Handler] = weakref.WeakSet()


def _unmanaged_handlers() -> list[str]:
    """Warning lines for the app's own text handlers (a ``FileHandler`` on the root or an
    audit logger) that write lines neither JSON nor masked; one line per handler, once."""
    lines = []
    for logger in [logging.getLogger(), *_named_loggers()]:
        for handler in logger.handlers:
            if _unmasked_output(handler) and handler not in _warned:
                _warned.add(handler)
                queued = isinstance(handler, logging.handlers.QueueHandler)
                lines.append(
                    f"limone-obs: logger {logger.name!r} has a handler of its own, "
                    f"{_describe(handler)}, whose lines are neither JSON nor masked "
                    "(passwords, tokens) by limone-obs"
                    + (
                        " (a console handler behind the queue would print each line a "
                        "second time): remove it (the kit's output bounds its own wait on a slow "
                        "reader), or give its listener's handlers the formatter "
                        if queued
                        else ": give it the formatter "
                    )
                    + "limone_obs.logging.JsonFormatter (in dictConfig: "
                    '{"()": "limone_obs.logging.JsonFormatter"})'
                    + ("" if queued else ", or remove it")
                )
    return lines


def _unmasked_output(handler: logging.Handler) -> bool:
    """A handler whose lines leave the process neither JSON nor masked: see
    :func:`_writes_unmasked_text` and :func:`_sends_unmasked_text`."""
    return _writes_unmasked_text(handler) or _sends_unmasked_text(handler)


def _writes_unmasked_text(handler: logging.Handler) -> bool:
    """A text handler writing out of the process: to a file, or to a stream with a file
    descriptor (not an in-memory capture such as pytest's, nor ``/dev/null``)."""
    if (
        not isinstance(handler, logging.StreamHandler)
        or getattr(handler, _OURS, False)
        or isinstance(handler.formatter, JsonFormatter)
    ):
        return False
    path = getattr(handler, "baseFilename", None)
    if path is not None:
        return bool(path != os.devnull)
    try:
        handler.stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return False
    return True


def _enable_own_loggers() -> list[str]:
    """Turn the kit's own loggers back on where the app's logging configuration disabled
    them (``dictConfig`` with ``disable_existing_loggers`` left true, run after the kit
    was imported): they carry its problem reports. A warning line when it did."""
    disabled = [
        logger
        for logger in [logging.getLogger("limone_obs"), *_named_loggers()]
        if logger.disabled
        and (logger.name == "limone_obs" or logger.name.startswith("limone_obs."))
    ]
    for logger in disabled:
        logger.disabled = False
    if not disabled:
        return []
    names = ", ".join(sorted({logger.name for logger in disabled}))
    return [
        f"limone-obs: the app's logging configuration had disabled the kit's loggers ({names}), "
        "which report its problems (wrong counts, dropped lines): turned back on; in "
        'dictConfig, set "disable_existing_loggers": False to leave loggers on'
    ]


def _describe(handler: logging.Handler) -> str:
    path = getattr(handler, "baseFilename", None)
    text = f"{type(handler).__name__}({path})" if path else type(handler).__name__
    if isinstance(handler, logging.handlers.QueueHandler):
        behind = [_describe(h) for h in _listener_handlers(handler) or ()]
        if behind:
            text += f" (its QueueListener writes through {', '.join(behind)})"
    return text


#: The listener found for each queue handler: looking for it walks the heap (one not
#: found is looked for again: it may be made after the handler).
_listeners: weakref.WeakKeyDictionary[
    logging.handlers.QueueHandler, logging.handlers.QueueListener
] = weakref.WeakKeyDictionary()


def _listener_handlers(
    handler: logging.handlers.QueueHandler,
) -> tuple[logging.Handler, ...] | None:
    """The handlers of the ``QueueListener`` that empties ``handler``'s queue, or None
    when none is found (the queue may be read by another process, or by code of the
    app's own). Python 3.12's dictConfig sets ``handler.listener``; a listener made by
    hand is found as the object holding that queue, or holding the dict that holds it
    (its ``__dict__`` once something asked for it), and remembered."""
    listener = getattr(handler, "listener", None)
    if not isinstance(listener, logging.handlers.QueueListener):
        listener = _listeners.get(handler) or _find_listener(handler.queue)
        if listener is not None:
            _listeners[handler] = listener
    return tuple(listener.handlers) if listener is not None else None


def _find_listener(queue: object) -> logging.handlers.QueueListener | None:
    for ref in gc.get_referrers(queue):
        owners = gc.get_referrers(ref) if isinstance(ref, dict) else [ref]
        for owner in owners:
            if isinstance(owner, logging.handlers.QueueListener) and owner.queue is queue:
                return owner
    return None


#: The names of structlog's default processors (a configuration that set none of its own).
_STRUCTLOG_DEFAULTS = [
    "merge_contextvars", "add_log_level", "StackInfoRenderer", "set_exc_info", "TimeStamper",
    "ConsoleRenderer",
]  # fmt: skip


def _foreign_structlog_config() -> list[str]:
    """A warning line when structlog was configured by someone else: configure_logging
    replaces that configuration (its processors would no longer run)."""
    if not structlog.is_configured():
        return []
    config = structlog.get_config()
    processors = config.get("processors", [])
    wrapper = config.get("wrapper_class")
    parts = []
    if list(processors) != [_structlog.render]:
        names = [getattr(p, "__name__", type(p).__name__) for p in processors]
        listed = "structlog's defaults" if names == _STRUCTLOG_DEFAULTS else ", ".join(names)
        parts.append(f"processors: {listed}")
    if isinstance(wrapper, type) and wrapper is not _structlog.BoundLogger:
        # make_filtering_bound_logger's classes carry the app's level.
        parts.append(
            f"wrapper class: {wrapper.__name__}, whose level gives way to "
            "configure_logging(level=...)"
        )
    if not parts:
        return []
    return [
        "limone-obs: configure_logging replaces the structlog configuration made before "
        f"it ({'; '.join(parts)}); pass the processors to keep, not a renderer, as "
        "configure_logging(processors=[...]) (they run on an event's own fields before "
        "redaction), and remove the structlog.configure call. Loggers bound before this "
        "call (structlog.get_logger().bind(...) at import) keep that configuration: bind "
        "them after it, or use limone_obs.logging.get_logger, which follows it"
    ]


# structlog pointed at the kit's pipeline as soon as this package is imported, unless the
# app configured it already: a logger bound at import (``structlog.get_logger().bind()``
# in a views module) before configure_logging would otherwise keep structlog's defaults
# (text, no masking) for good. The kit's render reads the active settings at every call.
if not structlog.is_configured():
    _structlog.configure_structlog()


def undone() -> list[str]:
    """What a logging set-up of the app run after :func:`configure_logging` made write
    past the kit, neither JSON nor masked: text handlers added since that write out of
    the process (a ``dictConfig``'s stream or file handler, syslog, a socket, HTTP, mail;
    on the root or on a logger of its own; one with ``JsonFormatter`` is the kit's
    output), a root logger left without the kit's output (its handlers replaced, by a
    queue handler say, or none: Python's last-resort handler then prints warnings on
    stderr), and a structlog logger factory that prints (``structlog.configure`` with
    only processors, or structlog's stdlib factory, still ends in the kit). [] when
    nothing does, or when configure_logging never ran. Handlers that were there when it
    ran were named then (:func:`_unmanaged_handlers`), and are not named again; test
    captures in memory (pytest's, unittest's ``assertLogs``) are not named."""
    if not _configured:
        return []
    found = []
    root = logging.getLogger()
    for logger in [root, *_named_loggers()]:
        for handler in logger.handlers:
            if handler not in _warned and _unmasked_output(handler):
                found.append(
                    f"logger {logger.name!r} writes through a text handler added since, "
                    f"{_describe(handler)}"
                )
    # A root left without the kit's output; when a handler above is named, it says why.
    if not any(_is_kit_output(h) or _in_memory(h) for h in root.handlers) and not found:
        now = ", ".join(_describe(h) for h in root.handlers)
        found.append(
            f"the root logger's handlers were replaced (now: {now})"
            if now
            else "the root logger has no handler left (Python's last-resort handler prints "
            "warnings and errors on stderr)"
        )
    factory = structlog.get_config().get("logger_factory")
    if isinstance(factory, _PRINTING_FACTORIES):
        found.append(
            "structlog.configure set a logger factory that prints structlog's events "
            f"itself, {type(factory).__name__}"
        )
    return found


#: Handlers of the standard library that send lines out of the process other than
#: through a stream (their text is formatted as their formatter says).
_SENDING_HANDLERS = (
    logging.handlers.SysLogHandler,
    logging.handlers.SocketHandler,
    logging.handlers.HTTPHandler,
    logging.handlers.SMTPHandler,
    logging.handlers.NTEventLogHandler,
)


def _sends_unmasked_text(handler: logging.Handler) -> bool:
    """A syslog, socket, HTTP or mail handler without the kit's formatter; or a queue
    handler (the asynchronous set-up: a ``QueueListener`` writes its records) unless
    every handler of its listener is the kit's JSON or a test's capture. A queue whose
    reader cannot be found counts: its records leave as the queue handler's text."""
    if isinstance(handler, logging.handlers.QueueHandler):
        behind = _listener_handlers(handler)
        if behind is None:
            return not isinstance(handler.formatter, JsonFormatter)
        return any(_unmasked_output(h) for h in behind)
    return isinstance(handler, _SENDING_HANDLERS) and not isinstance(
        handler.formatter, JsonFormatter
    )


def _is_kit_output(handler: logging.Handler) -> bool:
    """The kit's own handler, or one with its formatter (gunicorn's SIGHUP runs the kit's
    logconfig_dict again; an app's dictConfig may use it)."""
    return bool(getattr(handler, _OURS, False)) or isinstance(handler.formatter, JsonFormatter)


def _in_memory(handler: logging.Handler) -> bool:
    """A test's capture: pytest's or unittest's handler, or a stream without a file."""
    if type(handler).__module__.split(".")[0] in ("_pytest", "unittest"):
        return True
    if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
        return False
    try:
        handler.stream.fileno()
    except (AttributeError, OSError, ValueError):
        return True
    return False


#: structlog's logger factories that write events to a file themselves, past the kit.
_PRINTING_FACTORIES = (
    structlog.PrintLoggerFactory,
    structlog.WriteLoggerFactory,
    structlog.BytesLoggerFactory,
)


def verify_configured() -> None:
    """Say loudly, once per process, when a later logging set-up undid configure_logging:
    its lines are then neither the kit's JSON nor masked. One line on ``sys.__stderr__``
    (whatever the handlers now are) and one through logging, and the exporter's
    ``<ns>_exporter_problems{problem="logging_replaced"}`` (a ticket). The kit's own
    loggers, which a later ``dictConfig`` disables, are turned back on first (with a line
    saying so): they carry that line and every later problem report. Never raises: it
    runs when an app is set up and at a process's first request."""
    try:
        _tell_rendered_text()
        for line in _enable_own_loggers():
            logging.getLogger(_pipeline.NOTICE_LOGGER).warning(line)
        found = undone()
        if not found:
            return
        message = (
            "limone-obs: logging was set up again after configure_logging(): "
            + "; ".join(found)
            + ". Lines written that way are not the kit's JSON, carry no request id and are "
            "NOT masked (passwords, tokens and URL secrets reach the output). Call "
            "configure_logging() after the app's own logging set-up (dictConfig, "
            "basicConfig(force=True), structlog.configure), give such a handler the "
            "formatter limone_obs.logging.JsonFormatter, or remove it "
            '(logging/README.md, "An app that already logs")'
        )
        if health.report_problem(c.PROBLEM_LOGGING_REPLACED, message):
            report_on_stderr(message + "\n")
            logging.getLogger(_pipeline.NOTICE_LOGGER).warning(message)
    except Exception:  # a check must never fail the app or a request
        return


def verify_called() -> None:
    """Say loudly, once per process, when ``init_app`` logs the requests of a process
    where :func:`configure_logging` never ran: the app's own lines (structlog events,
    stdlib records, uncaught exceptions) are then neither the kit's JSON nor masked,
    though its access lines are. One line on ``sys.__stderr__`` and the exporter's
    ``<ns>_exporter_problems{problem="logging_not_configured"}`` (a ticket). Never
    raises: it runs at a process's first request."""
    if _configured:
        return
    message = (
        "limone-obs: limone_obs.logging.init_app(app) logs the requests of a process where "
        "configure_logging() never ran: the access lines are the kit's JSON, but the app's "
        "own lines (structlog events, stdlib records, uncaught exceptions, stderr) are not, "
        "carry no request id and are NOT masked (passwords, tokens and URL secrets reach the "
        "output). Call limone_obs.logging.configure_logging() once at start-up, before "
        'creating the app (README, "Logging")'
    )
    try:
        if health.report_problem(c.PROBLEM_LOGGING_NOT_CONFIGURED, message):
            report_on_stderr(message + "\n")
    except Exception:  # a check must never fail a request
        return


#: structlog's renderers: their output is one string (the stdlib record's whole message).
_RENDERERS = (
    structlog.processors.JSONRenderer,
    structlog.processors.KeyValueRenderer,
    structlog.processors.LogfmtRenderer,
    structlog.dev.ConsoleRenderer,
)
_told_rendered = False


def _tell_rendered_text() -> None:
    """One warning line when structlog, configured after configure_logging, renders its
    events to text and hands that to stdlib logging (its stdlib factory): the kit's
    handler then gets one string, masked but no longer fields (``"message": "{\"user\":
    ..."``)."""
    global _told_rendered  # noqa: PLW0603 - once per process
    if not _configured or _told_rendered:
        return
    config = structlog.get_config()
    factory = config.get("logger_factory")
    processors = list(config.get("processors", []))
    stdlib = isinstance(factory, structlog.stdlib.LoggerFactory) or factory is logging.getLogger
    if not (stdlib and processors and isinstance(processors[-1], _RENDERERS)):
        return
    _told_rendered = True
    logging.getLogger(_pipeline.NOTICE_LOGGER).warning(
        "limone-obs: structlog, configured after configure_logging(), renders its events "
        "with %s and hands the text to stdlib logging: each line's fields arrive as one "
        "message string (masked, but not fields). Remove that structlog.configure call "
        "(configure_logging(processors=[...]) keeps processors of your own), or end its "
        "processors with structlog.stdlib.ProcessorFormatter.wrap_for_formatter",
        type(processors[-1]).__name__,
    )


def get_logger(name: str | None = None, **initial: Any) -> _structlog.BoundLogger:
    """Return a structlog logger for the app's events; ``name`` fills the ``logger`` field
    (default: the calling module's ``__name__``).

    ``initial`` fields are bound to every event of this logger (``log.bind(k=v)`` returns
    a logger with more). It follows the active ``configure_logging`` settings on every
    call, so a module-level ``log = get_logger(__name__)`` is fine; before any
    configuration, lines go to stdout with the default settings. No lazy proxy: a
    structlog proxy costs about 1-2 us per call.
    """
    if name is None:
        name = _structlog.caller_module()
    return _structlog.BoundLogger(_structlog.SinkLogger(name), [_structlog.render], dict(initial))


def bind(**fields: Any) -> None:
    """Add ``fields`` (redacted now, once) to every line of the current request or task.

    A field named like one the line fills itself (``level``, ``message``, ``timestamp``
    ...) is bound as ``extra_<name>``, as a keyword of a log call is, and so is a name
    Elasticsearch refuses (``_id``, ``service.name``: dots as ``_``); so is one named like
    a request field while a logged request is served here (its ``request_id``, ``method``,
    ``path``, ``endpoint``, trace ids, and the access line's ``status_code`` and
    ``duration`` stay the request's own), and one whose value the schema refuses
    (``status_code="200"``). ``user_id`` is the app's to bind: an integer or a UUID is
    bound as its text.
    """
    bound = _pipeline.current.redact_fields(dict(fields))
    if not _pipeline.OWN_NAMES.isdisjoint(bound):
        _pipeline.keep_own(bound, _pipeline.held_by_request(_context.current(), access=True))
    _pipeline.rename_refused(bound)
    _context.merge(bound)


def unbind(*names: str) -> None:
    """Remove fields from the current context, by the names given to :func:`bind` (a
    core or request field's name also removes the ``extra_<name>`` field it may have been
    bound as, and a name Elasticsearch refuses the ``extra_`` one it was bound as)."""
    own = _pipeline.OWN_NAMES.intersection(names)
    renamed = [_pipeline.refused_as(name) for name in names]
    _context.unbind(*names, *(f"extra_{name}" for name in own), *(name for name in renamed if name))


def clear_context() -> None:
    """Remove every bound field of the current context."""
    _context.clear_context()


def _replace_pipeline(pipeline: _pipeline.Pipeline) -> None:
    """Install ``pipeline``; the sinks it replaces (the previous pipeline's, and the
    stdout one used before ``configure_logging``) hand a cut line's rest over first, so
    the new sink's first line cannot run into it, and are closed after."""
    new = pipeline.sink
    old = [
        sink
        for sink in (_pipeline.current.sink, _pipeline.take_fallback())
        if sink is not None and sink is not new
    ]
    for sink in old:
        sink.hand_over(new)
    _pipeline.install(pipeline)
    for sink in old:
        sink.close()


def get_context() -> dict[str, Any]:
    """Return a copy of the fields of the current context's lines: those bound in it, or
    in a thread running in a copy of Flask's request context, the request's."""
    return dict(_context.current())


def reset_for_tests() -> None:
    """Remove our handler, restore default settings and structlog (tests use this)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False):
            root.removeHandler(handler)
    _replace_pipeline(_pipeline.Pipeline())
    _uncaught.uninstall()
    global _configured, _told_rendered  # noqa: PLW0603 - tests start unconfigured
    _configured = _told_rendered = False
    health.clear_problem(c.PROBLEM_LOGGING_REPLACED)
    health.clear_problem(c.PROBLEM_LOGGING_NOT_CONFIGURED)
    _context.clear_context()
    _identity.forget_exports()
    structlog.reset_defaults()
    _structlog.forget_warnings()
    logging.captureWarnings(False)
