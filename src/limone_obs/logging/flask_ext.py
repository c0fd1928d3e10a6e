"""Flask integration: request context on every line, and one access line per request.

The access line is written at the end of the request lifecycle
(:mod:`limone_obs.lifecycle`): when the server closes the response body or has iterated
it to the end, so a streamed AI answer logs its real duration, not the time to the first
byte. Works alone or with the exporter (:class:`limone_obs.Metrics`), in either order:
both join the app's one lifecycle, and the access line carries the very duration the
request histogram observes.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask

from limone_obs import conventions as c
from limone_obs import lifecycle
from limone_obs._tracecontext import parse_traceparent
from limone_obs.errors import ConfigError
from limone_obs.logging import _context, _pipeline
from limone_obs.logging._encode import encode_line, rfc3339, safe_str

if TYPE_CHECKING:
    from contextvars import Token

    from _typeshed.wsgi import WSGIEnvironment

    from limone_obs.lifecycle import RequestState

EXTENSION_KEY = "limone_obs_logging"
#: An incoming request id is kept only if it fully matches this (else a new one is made).
REQUEST_ID_RE = _context.REQUEST_ID_RE
UserIdGetter = Callable[[], Any]


def new_request_id() -> str:
    """Return a fresh request id: 32 random hex digits."""
    return os.urandom(16).hex()


_new = object.__new__


class RequestLog:
    """What the logging layer adds to one request while it is served (``state.log``).

    Made and filled by :meth:`AccessLog.begin`, without an ``__init__``: CPython 3.11
    calls a Python ``__init__`` through a slow generic path, and this runs per request.
    """

    __slots__ = ("context", "token", "user_id")

    #: The request's own log context (the dict begin() bound; the endpoint added in place).
    context: dict[str, Any]
    #: Restores the context that was current before the request.
    token: Token[dict[str, Any]]
    #: Filled at teardown by the ``user_id`` getter given to init_app; None until then.
    user_id: str | None


@dataclass(frozen=True)
class Settings:
    """The Flask config keys :func:`init_app` reads."""

    header: str
    access: bool
    excluded: frozenset[str]

    @classmethod
    def from_config(cls, app: Flask) -> Settings:
        """Read and check ``LIMONE_OBS_LOG_*`` keys (see :func:`init_app`)."""
        header = app.config.setdefault("LIMONE_OBS_LOG_REQUEST_ID_HEADER", c.REQUEST_ID_HEADER)
        if not isinstance(header, str) or not re.fullmatch(r"[A-Za-z0-9\-]+", header):
            raise ConfigError(
                f"LIMONE_OBS_LOG_REQUEST_ID_HEADER={header!r}: use an HTTP header name "
                "such as X-Request-ID"
            )
        metrics_path = app.config.get("LIMONE_OBS_METRICS_PATH", "/metrics")
        default_excluded = (metrics_path,) if metrics_path else ()
        excluded = app.config.setdefault("LIMONE_OBS_LOG_EXCLUDED_PATHS", default_excluded)
        if isinstance(excluded, str) or not all(isinstance(p, str) for p in excluded):
            raise ConfigError(
                f"LIMONE_OBS_LOG_EXCLUDED_PATHS={excluded!r}: use a list of exact paths"
            )
        access = bool(app.config.setdefault("LIMONE_OBS_LOG_ACCESS", True))
        return cls(header, access, frozenset(excluded))


@dataclass
class AppState:
    """Per-app state kept in ``app.extensions["limone_obs_logging"]``."""

    access: AccessLog
    settings: Settings
    user_id: UserIdGetter | None


def init_app(app: Flask, user_id: UserIdGetter | None = None) -> None:
    """Log ``app``'s requests: bind context per request, write one access line each.

    ``user_id`` is called (no arguments, inside the request context, at teardown) to fill
    the ``user_id`` field; a failing or None-returning callable leaves it out. Request
    handlers may also call ``limone_obs.logging.bind(user_id=...)`` once they know it.

    Flask config keys (defaults in brackets):

    - ``LIMONE_OBS_LOG_REQUEST_ID_HEADER`` [``"X-Request-ID"``]: header read for the
      incoming id (kept if 1-128 chars of ``A-Za-z0-9._:-``) and echoed in the response.
    - ``LIMONE_OBS_LOG_ACCESS`` [``True``]: write the access line.
    - ``LIMONE_OBS_LOG_EXCLUDED_PATHS`` [the exporter's metrics path]: exact paths that
      are neither logged nor given a context.

    Raises ConfigError if ``app`` is already initialised or a setting is invalid.
    """
    if EXTENSION_KEY in app.extensions:
        raise ConfigError(
            f"limone_obs.logging.init_app was already called on Flask app {app.name!r}: "
            "call it once per app"
        )
    settings = Settings.from_config(app)
    access = AccessLog(settings)
    lifecycle.install(app).add(access, settings.excluded)
    if user_id is not None:
        app.teardown_request(_make_teardown(user_id))
    app.extensions[EXTENSION_KEY] = AppState(access, settings, user_id)


def _request_fields() -> dict[str, Any] | None:
    """The log context of the request whose Flask request context is pushed here, if any
    (for threads running in a copy of it: :data:`_context.request_fields`)."""
    state = lifecycle.current_state()
    log = state.log if state is not None else None
    return log.context if log is not None else None


_context.request_fields = _request_fields


def _make_teardown(user_id: UserIdGetter) -> Callable[[BaseException | None], None]:
    def teardown(_exc: BaseException | None) -> None:
        state = lifecycle.current_state()
        log = state.log if state is not None else None
        if log is None or log.user_id is not None:
            return
        try:
            value = user_id()
        except Exception:
            return  # an auth helper failing (e.g. no session) must not break the request
        if value is not None:
            log.user_id = safe_str(value)[:256]

    return teardown


class AccessLog:
    """The logging integration's part of the request lifecycle (a ``Participant``).

    ``begin`` binds the request context (id, trace, method, path) and echoes the request
    id in the response; ``routed`` adds the endpoint; ``end`` writes the access line with
    the lifecycle's duration and clears the context.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.excluded = settings.excluded
        self._environ_header = "HTTP_" + settings.header.upper().replace("-", "_")

    def begin(self, state: RequestState, environ: WSGIEnvironment) -> None:
        """Bind this request's context and ask for the request id header on the response."""
        if state.path in self.excluded:
            return
        # The client's request id if it is a safe one (length and charset), else a new one;
        # each header parsed only when present: this runs on every request.
        incoming = environ.get(self._environ_header)
        request_id = (incoming is not None and _context.valid_request_id(incoming)) or (
            new_request_id()
        )
        context: dict[str, Any] = {c.LOG_REQUEST_ID: request_id}
        traceparent = environ.get("HTTP_TRACEPARENT")
        if traceparent is not None:
            trace = parse_traceparent(traceparent)
            if trace is not None:
                context[c.LOG_TRACE_ID], context[c.LOG_SPAN_ID] = trace
        context[c.LOG_METHOD] = state.method[:16]
        redactor = _pipeline.current.redactor
        path = state.path[:2048]
        context[c.LOG_PATH] = path if redactor is None else redactor.redact_text(path)
        log = _new(RequestLog)
        log.context = context
        log.token = _context.replace_context(context)
        log.user_id = None
        state.log = log
        header = (self.settings.header, request_id)
        state.headers = [header] if state.headers is None else [*state.headers, header]

    def routed(self, state: RequestState) -> None:
        """Add the endpoint to the context, for the lines the view logs."""
        log = state.log
        if log is not None:
            # In place: begin() made this dict for this request alone, and routing comes
            # before the view, so no line or task has read it yet.
            log.context[c.LOG_ENDPOINT] = state.endpoint

    def end(self, state: RequestState, elapsed: float) -> None:
        """Write the access line once and clear the request's context."""
        log = state.log
        if log is None:
            return
        try:
            if self.settings.access:
                _pipeline.write(_access_line(state, log, elapsed))
        finally:
            _context.reset_context(log.token)


_ACCESS_MESSAGE = "request finished"


def _access_line(state: RequestState, log: RequestLog, duration: float) -> bytes:
    p = _pipeline.current
    try:
        status_code = int(state.status)
    except ValueError:
        status_code = 500
    # An unhandled exception or a 5xx is an error; anything else was served.
    level = "error" if state.exception is not None or status_code >= 500 else "info"
    context = _context.get_context()
    # The usual case: the very dict begin() bound; a bind() in the view made a new one.
    if context is not log.context and (
        context.get(c.LOG_REQUEST_ID) != log.context[c.LOG_REQUEST_ID]
    ):
        context = log.context  # ended from another context: use only this request's fields
    # The core fields in schema order, as Pipeline.head writes them; the message is a
    # constant with nothing to redact, and the context was redacted when bound.
    event = {
        c.LOG_TIMESTAMP: rfc3339(time.time()),
        c.LOG_LEVEL: level,
        c.LOG_LOGGER: c.ACCESS_LOGGER,
        c.LOG_MESSAGE: _ACCESS_MESSAGE,
        c.LOG_SERVICE: p.service,
        c.LOG_ENV: p.env,
        **context,
    }
    event[c.LOG_ENDPOINT] = state.endpoint or c.ENDPOINT_UNMATCHED
    event[c.LOG_STATUS_CODE] = status_code
    # To the microsecond; round(x, 6) goes through a decimal string and back, this
    # integer rounding does not (the JSON shows the same digits).
    event[c.LOG_DURATION] = round(duration * 1e6) / 1e6
    if log.user_id is not None:
        event[c.LOG_USER_ID] = log.user_id
    exc = state.exception
    if exc is not None:
        event[c.LOG_EXCEPTION] = p.exception((type(exc), exc, exc.__traceback__))
    return encode_line(event, p.max_line_bytes)
