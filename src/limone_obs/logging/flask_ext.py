"""Flask integration: request context on every line, and one access line per request.

The access line is written when the server closes the response body (or has iterated it
to the end), so a streamed AI answer logs its real duration, not the time to the first
byte. Works alone or with the exporter (:class:`limone_obs.Metrics`), in either order:
each wraps ``app.wsgi_app`` and keeps its own state in the WSGI environ.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any

from flask import Flask, request

from limone_obs import conventions as c
from limone_obs._tracecontext import parse_traceparent
from limone_obs.errors import ConfigError
from limone_obs.logging import _context, _pipeline
from limone_obs.logging._encode import rfc3339, safe_str

if TYPE_CHECKING:
    from contextvars import Token

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

EXTENSION_KEY = "limone_obs_logging"
#: Key of the per-request :class:`RequestLog` in the WSGI environ.
ENVIRON_KEY = "limone_obs.logging.request"
#: An incoming request id is kept only if it fully matches this (else a new one is made).
REQUEST_ID_RE = _context.REQUEST_ID_RE
UserIdGetter = Callable[[], Any]


def new_request_id() -> str:
    """Return a fresh request id: 32 random hex digits."""
    return os.urandom(16).hex()


def request_id_from(value: str | None) -> str:
    """Return ``value`` if it is a safe request id (length and charset), else a new one."""
    return _context.valid_request_id(value) or new_request_id()


class RequestLog:
    """What the logging layer knows about one request while it is served."""

    __slots__ = (
        "context",
        "done",
        "endpoint",
        "exc_info",
        "start",
        "status_code",
        "token",
        "user_id",
    )

    def __init__(self, context: dict[str, Any], start: float) -> None:
        self.context = context
        self.start = start
        self.endpoint: str | None = None
        self.status_code = 500
        self.user_id: str | None = None
        self.exc_info: _pipeline.ExcInfo | None = None
        self.token: Token[dict[str, Any]] | None = None
        self.done = False


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

    wsgi: LoggingWSGI
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
    wsgi = LoggingWSGI(app.wsgi_app, settings)
    app.wsgi_app = wsgi  # type: ignore[method-assign]
    # First in line, so lines logged by later before_request hooks carry the endpoint.
    app.before_request_funcs.setdefault(None, []).insert(0, _on_routed)
    app.teardown_request(_make_teardown(user_id))
    app.extensions[EXTENSION_KEY] = AppState(wsgi, settings, user_id)


def _on_routed() -> None:
    log = request.environ.get(ENVIRON_KEY)
    if log is None:
        return
    rule = request.url_rule
    log.endpoint = rule.rule if rule is not None else c.ENDPOINT_UNMATCHED
    _context.merge({c.LOG_ENDPOINT: log.endpoint})


def _make_teardown(user_id: UserIdGetter | None) -> Callable[[BaseException | None], None]:
    def teardown(_exc: BaseException | None) -> None:
        log = request.environ.get(ENVIRON_KEY)
        if log is None or user_id is None or log.user_id is not None:
            return
        try:
            value = user_id()
        except Exception:
            return  # an auth helper failing (e.g. no session) must not break the request
        if value is not None:
            log.user_id = safe_str(value)[:256]

    return teardown


class LoggingWSGI:
    """Wraps ``app.wsgi_app``: binds the request context, echoes the id, logs at close."""

    def __init__(self, wsgi_app: WSGIApplication, settings: Settings) -> None:
        self.wsgi_app = wsgi_app
        self.settings = settings
        self._environ_header = "HTTP_" + settings.header.upper().replace("-", "_")
        self._header_lower = settings.header.lower()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in self.settings.excluded:
            return self.wsgi_app(environ, start_response)
        log = self._begin(environ)

        def logging_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            log.status_code = _status_code(status)
            if not any(name.lower() == self._header_lower for name, _ in headers):
                headers = [*headers, (self.settings.header, log.context[c.LOG_REQUEST_ID])]
            return start_response(status, headers, exc_info)

        try:
            body = self.wsgi_app(environ, logging_start_response)
        except BaseException as exc:
            log.status_code = 500
            log.exc_info = (type(exc), exc, exc.__traceback__)
            self.finish(log)
            raise
        return ClosingBody(body, log, self.finish)

    def _begin(self, environ: WSGIEnvironment) -> RequestLog:
        context: dict[str, Any] = {
            c.LOG_REQUEST_ID: request_id_from(environ.get(self._environ_header))
        }
        trace = parse_traceparent(environ.get("HTTP_TRACEPARENT"))
        if trace is not None:
            context[c.LOG_TRACE_ID], context[c.LOG_SPAN_ID] = trace
        context[c.LOG_METHOD] = environ.get("REQUEST_METHOD", "")[:16]
        context[c.LOG_PATH] = _pipeline.current.redact_text(environ.get("PATH_INFO", "")[:2048])
        log = RequestLog(context, perf_counter())
        environ[ENVIRON_KEY] = log
        log.token = _context.replace_context(context)
        return log

    def finish(self, log: RequestLog) -> None:
        """Write the access line once and clear the request's context."""
        if log.done:
            return
        log.done = True
        duration = perf_counter() - log.start
        try:
            if self.settings.access:
                _pipeline.write(_access_line(log, duration))
        finally:
            _context.reset_context(log.token)


def _access_line(log: RequestLog, duration: float) -> bytes:
    p = _pipeline.current
    level = _pipeline.access_level(log.status_code)
    if log.exc_info is not None:
        level = "error"
    context = _context.get_context()
    if context.get(c.LOG_REQUEST_ID) != log.context[c.LOG_REQUEST_ID]:
        context = log.context  # closed from another context: use only this request's fields
    event = p.head(rfc3339(time.time()), level, c.ACCESS_LOGGER, "request finished", context)
    event[c.LOG_ENDPOINT] = log.endpoint or c.ENDPOINT_UNMATCHED
    event[c.LOG_STATUS_CODE] = log.status_code
    event[c.LOG_DURATION] = round(duration, 6)
    if log.user_id is not None:
        event[c.LOG_USER_ID] = log.user_id
    if log.exc_info is not None:
        event[c.LOG_EXCEPTION] = p.exception(log.exc_info)
    return p.render(event)


def _status_code(status: str) -> int:
    try:
        return int(status[:3])
    except ValueError:
        return 500


class ClosingBody:
    """The response iterable handed to the server; the access line is written at close."""

    __slots__ = ("_body", "_finish", "_log")

    def __init__(
        self, body: Iterable[bytes], log: RequestLog, finish: Callable[[RequestLog], None]
    ):
        self._body = body
        self._log = log
        self._finish = finish

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except GeneratorExit:
            raise
        except BaseException:
            # The status line is sent already; keep its code but log the broken stream.
            self._log.exc_info = sys.exc_info()  # type: ignore[assignment]
            raise
        # Fully sent: log now too, for clients that never call close().
        self._finish(self._log)

    def close(self) -> None:
        """Close the wrapped body, then write the access line (even if closing failed)."""
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish(self._log)
