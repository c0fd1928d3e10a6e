"""stdlib records (werkzeug, gunicorn, requests, any library) in the same schema.

:class:`JsonFormatter` is a python-json-logger formatter: its ``format()`` collects the
record, ``extra=`` fields and a dict message; our :meth:`JsonFormatter.add_fields` maps
them to the schema, and encoding goes through the same orjson path as app events.
:class:`JsonLineHandler` writes the bytes straight to the shared sink.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from itertools import islice
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from limone_obs import conventions as c
from limone_obs.logging import _pipeline
from limone_obs.logging._encode import TERMINAL_ESCAPE, rfc3339, safe_repr, safe_str
from limone_obs.logging._sink import Sink, report_on_stderr

#: LogRecord attributes that are not ``extra=`` fields.
_RESERVED = frozenset((*RESERVED_ATTRS, "message", "asctime", "taskName", "color_message"))
#: Keys python-json-logger puts in ``message_dict`` for the traceback and stack.
_FORMATTED = frozenset({"exc_info", "stack_info"})


class JsonFormatter(OrjsonFormatter):
    """Format a stdlib record as one schema line (see ``logging/log-event.schema.json``).

    Service, env, redaction and the size cap come from the active ``configure_logging``
    settings (or ``LIMONE_OBS_SERVICE`` / ``LIMONE_OBS_ENV`` before it ran, e.g. in the
    gunicorn master). Usable from ``dictConfig`` as ``{"()": "limone_obs.logging.JsonFormatter"}``.
    """

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Fill ``log_data`` with the schema fields, the context and the record's extras."""
        p = _pipeline.current
        head = p.head(
            rfc3339(record.created),
            _pipeline.LEVEL_NAMES.get(record.levelno) or _pipeline.level_name(record.levelno),
            record.name,
            record.message,
        )
        log_data.update(head)
        extras = _extras(record)
        if message_dict:
            extras.update((k, v) for k, v in message_dict.items() if k not in _FORMATTED)
        if extras:
            if not _pipeline.text_keyed(extras):  # a dict message's, or extra={1: ...}
                extras = _pipeline.text_keys(extras)
            p.redact_fields(extras)
            if not _pipeline.OWN_NAMES.isdisjoint(extras):  # checked here: most lines have none
                # extra={"level": ...} or {"request_id": 42}: kept as extra_<name>
                _pipeline.keep_own(extras, _pipeline.held_by_request(log_data))
            _pipeline.rename_refused(extras)
            log_data.update(extras)
        if record.exc_info or record.exc_text or record.stack_info:
            _add_exception(p, log_data, record, message_dict)

    def format_bytes(self, record: logging.LogRecord, cap: int | None = None) -> bytes:
        """Return the record as one line of JSON bytes, newline included (the handler's
        path), at most ``cap`` bytes when given and below the pipeline's cap."""
        log_data: dict[str, Any] = {}
        message_dict = self._message_dict(record)
        self.add_fields(log_data, record, message_dict)
        return _pipeline.current.render(log_data, cap)

    def _message_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        # python-json-logger's own preparation, shared with format().
        message_dict: dict[str, Any] = {}
        if isinstance(record.msg, dict):
            message_dict = record.msg.copy()
            record.message = _structlog_event(record, message_dict)
        else:
            record.message = _message(record)
            if "\x1b" in record.message:  # werkzeug colours its lines for a terminal
                record.message = TERMINAL_ESCAPE.sub("", record.message)
        if record.exc_info and record.exc_info[0] is not None:
            message_dict["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            message_dict["stack_info"] = self.formatStack(record.stack_info)
        return message_dict

    def format(self, record: logging.LogRecord) -> str:
        """The line of :meth:`format_bytes` (what any stdlib handler given this formatter
        writes: the same fields and masking as the kit's own handler); a failure gives a
        line saying so, not a raise."""
        try:
            return self.format_bytes(record)[:-1].decode("utf-8")
        except Exception as exc:
            return _failure_line(record, exc)[:-1].decode("utf-8")

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        """Encode like the app events: capped, one line, never raising (no trailing newline)."""
        return _pipeline.current.render(log_data)[:-1].decode("utf-8")


def _structlog_event(record: logging.LogRecord, fields: dict[str, Any]) -> str:
    """The message of a record whose ``msg`` is a dict: ``fields`` (a copy of it) loses
    what becomes the line's own. A structlog event dict (``ProcessorFormatter.
    wrap_for_formatter`` with the stdlib ``LoggerFactory``, made after the kit's
    configuration) gives its ``event`` as the message; its ``level``, ``timestamp`` and
    ``logger`` repeat the record's and are dropped (a level only when it is the record's),
    and ``exc_info=True`` is the exception being handled. Any other dict keeps
    python-json-logger's rule: fields, empty message."""
    event = fields.get("event")
    if "message" in fields or not isinstance(event, str):
        return ""
    del fields["event"]
    if fields.get(c.LOG_LEVEL) == _pipeline.LEVEL_NAMES.get(record.levelno):
        del fields[c.LOG_LEVEL]  # add_log_level's: the record's own level
    if isinstance(fields.get(c.LOG_TIMESTAMP), str):
        del fields[c.LOG_TIMESTAMP]  # TimeStamper's: the line has the record's own
    if fields.get(c.LOG_LOGGER) in (record.name, None):
        fields.pop(c.LOG_LOGGER, None)
    exc_info = fields.pop("exc_info", None)
    if exc_info and not record.exc_info:
        record.exc_info = _pipeline.exc_info_of(exc_info)
    return event


def _message(record: logging.LogRecord) -> str:
    """``record.getMessage()``, with secret values of a mapping argument masked
    (``log.info("%(user)s %(password)s", {...})``), and the bound values SQLAlchemy's
    engine logs (``echo=True``: ``[generated in 0.0002s] ('bob', 'hunter2')``, which name
    no column); the record itself is not changed."""
    args = record.args
    redactor = _pipeline.current.redactor
    if redactor is not None and isinstance(args, Mapping) and args:
        masked = redactor.mask_arguments(args)
        if masked is not args:
            return str(record.msg) % masked
    if redactor is not None and _is_sql_parameters(record):
        # The values' ``%r`` becomes the mask itself, not its repr (no quotes around it).
        head = str(record.msg)[: -len("%r")]
        try:
            return f"{head % (record.args[0],)}{redactor.mask}"  # type: ignore[index]
        except (TypeError, ValueError):  # a "%" in a logging_token: no stats, no values
            return redactor.mask
    return record.getMessage()


#: The format of SQLAlchemy's engine log line of a statement's bound values (its stats,
#: then the values' repr), after an optional ``logging_token`` prefix.
_SQL_PARAMETERS_FORMAT = "[%s] %r"


def _is_sql_parameters(record: logging.LogRecord) -> bool:
    """A SQLAlchemy engine record logging a statement's bound values."""
    return (
        record.name.startswith("sqlalchemy.engine")
        and isinstance(record.msg, str)
        and record.msg.endswith(_SQL_PARAMETERS_FORMAT)
        and isinstance(record.args, tuple)
        and len(record.args) == 2
    )


def _add_exception(
    p: _pipeline.Pipeline,
    log_data: dict[str, Any],
    record: logging.LogRecord,
    message_dict: dict[str, Any],
) -> None:
    """Add ``exception`` (type, message, one-string traceback) and ``stack_info``."""
    if record.exc_info and record.exc_info[0] is not None:
        log_data[c.LOG_EXCEPTION] = p.exception(
            record.exc_info, message_dict.get("exc_info"), origin=record
        )
    elif record.exc_text:
        # Only the text survived (e.g. a record pickled from another process).
        traceback = p.redact_text(record.exc_text)
        log_data[c.LOG_EXCEPTION] = {"type": "", "message": "", "traceback": traceback}
    if record.stack_info:
        stack = message_dict.get("stack_info") or record.stack_info
        log_data["stack_info"] = p.redact_text(stack)


def _standard_keys() -> list[str]:
    return list(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None).__dict__)


#: Attributes every LogRecord gets in ``__init__``, in order; ``extra=`` fields follow them.
_STANDARD_KEYS = _standard_keys()
_N_STANDARD = len(_STANDARD_KEYS)
_LAST_STANDARD = _STANDARD_KEYS[-1]


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The record's ``extra=`` fields (attributes that are not LogRecord's own)."""
    attrs = record.__dict__
    # makeRecord sets extras after __init__'s attributes: when the attribute at the end of
    # __init__'s list is the standard one (the common case), only the tail needs checking.
    last = next(islice(attrs, _N_STANDARD - 1, None), None)
    items = islice(attrs.items(), _N_STANDARD, None) if last == _LAST_STANDARD else attrs.items()
    return {k: v for k, v in items if k not in _RESERVED and not (type(k) is str and k[:1] == "_")}


class JsonLineHandler(logging.Handler):
    """Write records formatted by :class:`JsonFormatter` to a sink, whole lines only.

    A formatting failure never propagates to the caller: a replacement line saying so is
    written instead (the stdlib default would print a traceback to stderr and lose it).
    """

    def __init__(self, sink: Sink, level: int = logging.NOTSET, cap: int | None = None) -> None:
        super().__init__(level)
        self.sink = sink
        #: The longest line this handler writes when below the pipeline's cap: a pipe
        #: other than the pipeline's stream keeps lines whole up to PIPE_BUF only.
        self.cap = cap
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        """Format ``record`` and write it; never raises into the logging call."""
        try:
            self.sink.write(self._line(record))
        except Exception:
            # Like logging.Handler.handleError, but never re-raises (raiseExceptions).
            _last_resort(record)

    def _line(self, record: logging.LogRecord) -> bytes:
        formatter = self.formatter
        try:
            if isinstance(formatter, JsonFormatter):
                return formatter.format_bytes(record, self.cap)
            return (self.format(record) + "\n").encode("utf-8", "replace")
        except Exception as exc:
            return _failure_line(record, exc)


def in_place_of(handler: logging.Handler, sink: Sink, cap: int | None = None) -> JsonLineHandler:
    """A :class:`JsonLineHandler` writing to ``sink`` in ``handler``'s place: at its level,
    with its filters, its lines capped at ``cap`` (see :attr:`JsonLineHandler.cap`)."""
    replacement = JsonLineHandler(sink, handler.level, cap)
    for log_filter in handler.filters:
        replacement.addFilter(log_filter)
    return replacement


def _failure_line(record: logging.LogRecord, exc: Exception) -> bytes:
    p = _pipeline.current
    head = p.head(
        rfc3339(record.created), "error", record.name, "log record could not be formatted"
    )
    head["format_error"] = f"{type(exc).__name__}: {safe_str(exc)}"
    head["original_msg"] = safe_repr(record.msg)[:1024]
    return p.render(p.redact_fields(head))


def _last_resort(record: logging.LogRecord) -> None:
    # Only reached if even the failure line failed (e.g. a broken redaction processor).
    report_on_stderr(f"limone-obs logging: lost a record of {record.name!r}\n")  # never raises
