"""The one schema: builds the line dict for app events and stdlib records alike.

:data:`current` holds the active :class:`Pipeline`; ``configure_logging`` replaces it, and
every logger created before or after follows the new one (nothing caches a copy).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import select
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Collection, Mapping, MutableMapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import structlog.contextvars as _structlog_contextvars

from limone_obs import conventions as c
from limone_obs import lifecycle
from limone_obs.logging import _context, _identity, _url_secrets, schema
from limone_obs.logging._encode import encode_line, key_text, rfc3339, safe_str
from limone_obs.logging._sink import Sink, is_pipe_or_socket
from limone_obs.logging.redaction import Redactor

#: Fields the line's own machinery fills. A field of that name given by the app (a
#: keyword, ``extra=``, ``bind()``) is kept as ``extra_<name>``: see :func:`keep_own`.
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
        if self.redactor is not None:
            message = self.redactor.redact_text(message)
            # A name made from a URL (getLogger(f"pool.{dsn}")): remembered, so one lookup.
            logger = self.redactor.redact_text(logger)
            if _request_secrets():  # a secret URL value of this context's request
                message = _context.scrub(message, self.redactor.mask)
        out = {
            c.LOG_TIMESTAMP: timestamp,
            c.LOG_LEVEL: level,
            c.LOG_LOGGER: logger,
            c.LOG_MESSAGE: message,
            c.LOG_SERVICE: self.service,
            c.LOG_ENV: self.env,
        }
        if context is None:
            context = _context.get_context()
            if context is _context.EMPTY or _this_request() is None:
                # Nothing bound here, or no request of the kit's served here: maybe a copy
                # of a request context (see _context.request_fields).
                context = _context.current()
        if context:
            out.update(context)  # redacted when bound
        if STRUCTLOG_VARS is None or STRUCTLOG_VARS:  # nothing was ever bound: one test
            self.add_structlog_context(out)
        return out

    def add_structlog_context(self, out: dict[str, Any]) -> None:
        """Add to ``out`` the fields structlog's ``bind_contextvars`` bound in this context
        (masked, checked as a keyword of a log call is): the app's structlog context, on
        every line as the kit's own. A field ``out`` has already keeps its value (the
        request's, or one the kit's ``bind()`` bound); structlog's is then ``extra_<name>``.
        """
        fields = structlog_context()
        if fields:
            self.redact_fields(fields)
            # As bind()'s: bound for the rest of the request, like it.
            keep_own(fields, held_by_request(out, access=True))
            rename_refused(fields)
            for key, value in fields.items():
                name = key
                if key in out:  # renamed by keep_own already, or another field of the line's
                    name = free_name(out, key if key.startswith(_EXTRA) else _EXTRA + key)
                out[name] = value

    def redact_text(self, text: str) -> str:
        """Mask credential-shaped parts of ``text``, and this context's request secrets
        (identity when redaction is off)."""
        if self.redactor is None:
            return text
        text = self.redactor.redact_text(text)
        return _context.scrub(text, self.redactor.mask) if _request_secrets() else text

    def redact_fields(self, fields: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Mask secrets of ``fields`` in place and return it."""
        if self.redactor is not None:
            self.redactor.redact_event(fields)
        return fields

    def render(self, event: Mapping[str, Any], cap: int | None = None) -> bytes:
        """Encode a finished event as one capped JSON line (this context's request
        secrets masked in it, wherever they are); ``cap``: a smaller cap for this line
        (an output that keeps only smaller lines whole)."""
        limit = self.max_line_bytes if cap is None else min(cap, self.max_line_bytes)
        if not _request_secrets():
            return encode_line(event, limit)
        # Before encoding too: a field cut to the line cap would keep a secret's head.
        line = encode_line(_url_secrets.scrub_event(event, self.mask), limit)
        return _url_secrets.scrub_line(line, self.mask, limit)

    @property
    def mask(self) -> str:
        """What a masked value is written as."""
        return self.redactor.mask if self.redactor is not None else "[REDACTED]"

    def scrub_line(self, line: bytes) -> bytes:
        """``line`` with this context's request secrets (secret URL values) masked in
        every field but the line's own; a line without them is returned as it is."""
        return _url_secrets.scrub_line(line, self.mask, self.max_line_bytes)

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


#: Fields the request's context puts on every line of a request (the logging integration
#: binds them), and those its access line adds: the request's own values.
REQUEST_NAMES = frozenset(
    (c.LOG_REQUEST_ID, c.LOG_TRACE_ID, c.LOG_SPAN_ID, c.LOG_METHOD, c.LOG_PATH, c.LOG_ENDPOINT)
)
ACCESS_NAMES = frozenset((c.LOG_STATUS_CODE, c.LOG_DURATION, c.LOG_CLIENT_ABORTED))
#: Every name an app's field may not simply take: the core ones, and the schema's typed
#: request fields (``user_id`` too: the app's to give, as a string).
OWN_NAMES = CORE_NAMES | frozenset(c.LOG_CONTEXT_FIELDS)
_request_secrets = _context.request_secrets
_this_request = lifecycle._get_current  # the context variable's own get: per line
_USER_ID_MAX = 256
#: Per field name, the schema's test of a value (:func:`schema.checker`), made at first use.
_FIELD_CHECKS: dict[str, Callable[[Any], bool]] = {}


def keep_own(
    fields: MutableMapping[str, Any], held: Collection[str] = ()
) -> MutableMapping[str, Any]:
    """Rename, in place, each field of ``fields`` the line must not take as given to
    ``extra_<name>``, and return ``fields``.

    Renamed: a core name (an app's ``level=`` or ``message=`` must not replace the
    line's own); a request field named in ``held`` (the
    request's own value is on the line: see :func:`held_by_request`); a request field
    whose value breaks the schema (``status_code="200"``, ``request_id=42``): one field
    name keeps one type in every line, which Elasticsearch's mappings need. A ``user_id``
    given as an integer or a UUID is written as its text, cut to 256 characters; an
    integer given for a number field (``duration=3``) is written as a float (``3.0``):
    Elasticsearch maps a field by its first value, and a whole number would make every
    later fraction of a second 0.
    """
    if OWN_NAMES.isdisjoint(fields):
        return fields
    checks = _FIELD_CHECKS or _field_checks()
    renamed: list[str] = []
    for key, value in fields.items():  # in the event's order (one walk: this is per line)
        if key not in OWN_NAMES:
            continue
        if key not in CORE_NAMES and key not in held:
            if type(value) is str and key in _ANY_TEXT:
                continue  # the usual value of a field the schema only wants text for
            if key == c.LOG_USER_ID:
                text = user_id_text(value)
                if text is not None:
                    fields[key] = text  # the same key: the walk goes on
                    continue
            else:
                valid = checks[key]  # loaded, then called: see lifecycle.Lifecycle.__call__
                if valid(value):
                    if type(value) is not int or key not in _NUMBERS:
                        continue
                    with contextlib.suppress(OverflowError):  # else renamed: not a float
                        fields[key] = float(value)
                        continue
        renamed.append(key)
    for key in renamed:
        fields[free_name(fields, f"extra_{key}")] = fields.pop(key)
    return fields


def free_name(fields: Mapping[str, Any], name: str) -> str:
    """``name``, or ``name`` with ``_`` appended until ``fields`` has no such field: a
    renamed field never replaces one the app gave (``extra_level=1`` beside ``level=2``)."""
    while name in fields:
        name += "_"
    return name


def text_keys(fields: Mapping[Any, Any]) -> dict[str, Any]:
    """``fields`` with every key the text it is written under (:func:`.key_text`: an
    enum member's value, a number's digits), so the checks of names apply to it: an
    ``Enum`` key whose value is ``level`` replaced the line's level. Two keys written
    alike (``1`` and ``"1"``) both stay, the later one with ``_`` appended."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        out[free_name(out, key if type(key) is str else key_text(key))] = value
    return out


def text_keyed(fields: Mapping[Any, Any]) -> bool:
    """True when every key of ``fields`` is a ``str`` (the usual case: one set test)."""
    return _FINE_NAMES.issuperset(fields) or all(type(key) is str for key in fields)


def rename_refused(fields: MutableMapping[str, Any]) -> None:
    """Write each field of ``fields`` whose name Elasticsearch refuses (it refuses the
    whole line: :func:`.schema.name_pattern`) as ``extra_<name>``, its dots as ``_``
    (``_id``: ``extra__id``; ``service.name``: ``extra_service_name``; a name taken gets
    another ``_``). In place; the values are kept, the renamed fields go last.

    The names found fine are remembered (most lines have none to rename: one set test).
    """
    if _FINE_NAMES.issuperset(fields):
        return
    for key in [k for k in fields if k not in _FINE_NAMES]:
        if not isinstance(key, str):
            continue  # only a stdlib dict's: made text first (text_keys)
        if _fine_name(key):
            if len(_FINE_NAMES) < _FINE_NAMES_MAX:
                _FINE_NAMES.add(key)
            continue
        fields[free_name(fields, _EXTRA + key.replace(".", "_"))] = fields.pop(key)


def refused_as(name: str) -> str | None:
    """The name :func:`rename_refused` writes a field ``name`` under, None if it keeps it."""
    return None if _fine_name(name) else _EXTRA + name.replace(".", "_")


_EXTRA = "extra_"
#: Field names found to match the schema's name pattern; bounded, as an app logging a
#: payload's keys as fields (``logging.info(response.json())``) could grow it for good.
_FINE_NAMES: set[str] = set()
_FINE_NAMES_MAX = 4096
_fine_name = re.compile(schema.name_pattern()).search


def user_id_text(value: Any) -> str | None:
    """The ``user_id`` field for ``value``: a string (cut to 256 characters), an integer's
    or a UUID's text; None for anything else (a bool, an object, None)."""
    if isinstance(value, str):
        return value[:_USER_ID_MAX]
    if (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, uuid.UUID):
        return str(value)[:_USER_ID_MAX]
    return None


#: Fields whose schema type is "number" (``duration``): an integer is written as a float.
_NUMBERS = frozenset(
    key for key, rule in schema.field_rules().items() if rule.get("type") == "number"
)
#: Fields whose schema rule is "a string" and nothing more: a ``str`` value needs no test.
_ANY_TEXT = frozenset(
    key
    for key, rule in schema.field_rules().items()
    if set(rule) - {"description"} == {"type"} and rule["type"] == "string"
)


def _field_checks() -> dict[str, Callable[[Any], bool]]:
    """Fill :data:`_FIELD_CHECKS`: per field, True when a value is what the schema allows
    under that name, as the line will show it (NaN and infinities are written as
    ``null``: not a number)."""
    for key, rule in schema.field_rules().items():
        check = schema.checker(rule)
        _FIELD_CHECKS[key] = check if rule.get("type") == "string" else _finite_and(check)
    return _FIELD_CHECKS


def _finite_and(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def finite_and_valid(value: Any) -> bool:
        return not (isinstance(value, float) and not math.isfinite(value)) and check(value)

    return finite_and_valid


#: The context variables structlog's ``bind_contextvars`` made, by key: structlog's own
#: registry, read (never changed) so that a line of an app that never bound one costs one
#: test. None where a structlog version lacks it: its public ``get_contextvars`` then
#: runs for every line (about 0.5 us).
STRUCTLOG_VARS: dict[str, Any] | None = getattr(_structlog_contextvars, "_CONTEXT_VARS", None)
if not isinstance(STRUCTLOG_VARS, dict):
    STRUCTLOG_VARS = None
#: What structlog puts before each key in its registry (and its variables' names).
_PREFIX = getattr(_structlog_contextvars, "STRUCTLOG_KEY_PREFIX", "structlog_")
_PREFIX_LEN = len(_PREFIX)


def structlog_context() -> dict[str, Any]:
    """The fields bound with ``structlog.contextvars.bind_contextvars`` in this context
    (those ``clear_contextvars`` or ``unbind_contextvars`` removed left out)."""
    registry = STRUCTLOG_VARS
    if registry is None:
        return _structlog_contextvars.get_contextvars()
    fields: dict[str, Any] = {}
    for name, var in list(registry.items()):  # list(): a thread may bind a new key meanwhile
        value = var.get(Ellipsis)  # structlog's mark of an unbound key
        if value is not Ellipsis:
            fields[name[_PREFIX_LEN:] if name.startswith(_PREFIX) else name] = value
    return fields


def structlog_snapshot() -> dict[str, Any] | None:
    """What ``bind_contextvars`` bound in this context (:func:`structlog_context`), or None
    while nothing was ever bound in this process (one test: the common case)."""
    if STRUCTLOG_VARS is None or STRUCTLOG_VARS:
        return structlog_context()
    return None


def restore_structlog_context(before: dict[str, Any] | None) -> None:
    """Make this context's structlog fields ``before`` again (a :func:`structlog_snapshot`):
    what a request bound with ``bind_contextvars`` ends with it, what was bound before it
    (at start-up, by a WSGI middleware) stays. Values are compared by identity: an
    object's own ``__eq__`` is never called."""
    if before is None and STRUCTLOG_VARS is not None and not STRUCTLOG_VARS:
        return  # nothing bound before, nor during the request
    now, before = structlog_context(), before or {}
    if len(now) == len(before) and all(k in now and now[k] is v for k, v in before.items()):
        return
    _structlog_contextvars.clear_contextvars()
    if before:
        _structlog_contextvars.bind_contextvars(**before)


def held_by_request(present: Collection[str], *, access: bool = False) -> frozenset[str]:
    """The request fields an app's field of a line must leave alone: those of
    :data:`REQUEST_NAMES` in ``present`` (the line's fields so far), plus the access
    line's :data:`ACCESS_NAMES` when ``access`` (a field bound for the rest of the
    request), while a request the logging integration serves is current here; else none
    (a job binding its own ``request_id`` outside a request keeps it)."""
    state = lifecycle.this_request() or lifecycle.current_state()
    if state is None or state.start is None or state.log is None:
        return frozenset()
    held = REQUEST_NAMES.intersection(present)
    return held | ACCESS_NAMES if access else held


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
    """Normalise structlog's ``exc_info`` (an exception, a tuple, or any other true value
    for the exception being handled, as structlog reads it) to a triple."""
    if isinstance(value, BaseException):
        return (type(value), value, value.__traceback__)
    if isinstance(value, tuple) and len(value) == 3 and value[0] is not None:
        return value
    if value and not isinstance(value, tuple):
        info = sys.exc_info()
        return info if info[0] is not None else None
    return None
