"""The WSGI layer that times each request from arrival to the last byte of its body.

Flask's ``after_request`` runs before a streamed body is produced, so timing there misses
an AI token stream. This middleware starts the clock when the server calls the app and
stops it when the server closes the response iterable, which WSGI guarantees to happen
after the last chunk was sent (or the client went away).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from time import perf_counter
from typing import TYPE_CHECKING, Any

from limone_obs import conventions as c
from limone_obs._tracecontext import parse_traceparent
from limone_obs.exporter import _failsafe
from limone_obs.exporter.tracking import RequestTally, start_request

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from limone_obs.exporter._instruments import Instruments, RequestChildren

#: Key of the per-request :class:`RequestState` in the WSGI environ.
STATE_KEY = "limone_obs.state"
_new = object.__new__


_METHOD_LABELS = {method: method for method in c.KNOWN_METHODS}


def normalise_method(raw: str) -> str:
    """Return the method label: the upper-cased method if it is a known one, else OTHER."""
    return _METHOD_LABELS.get(raw) or _METHOD_LABELS.get(raw.upper(), c.METHOD_OTHER)


def trace_id_from(traceparent: str | None) -> str | None:
    """Return the trace id of a valid W3C ``traceparent`` header, else None."""
    parsed = parse_traceparent(traceparent)
    return parsed[0] if parsed is not None else None


def _finish_on_close(body: Any, state: RequestState) -> bool:
    """Make ``body.close()`` record the request; False if the object does not allow it.

    The server sends its own file wrapper with sendfile(2) only when it gets that very
    object back, so it is returned unwrapped, with the recording moved into its close.
    """
    original = getattr(body, "close", None)

    def close() -> None:
        try:
            if original is not None:
                original()
        finally:
            state.finish()

    try:
        body.close = close
    except AttributeError:
        return False
    return True


class RequestState:
    """One request while it is served: its labels so far, its start_response, its body.

    A single object per request plays three parts (state, ``start_response`` wrapper and
    the response iterable handed to the server) to keep the per-request allocations to
    a minimum; the exporter's overhead is measured against bare Flask in bench/. Made by
    :meth:`InstrumentedWSGI.__call__`, which fills every field.
    """

    __slots__ = (
        "_body", "_middleware", "_start_response", "children", "exception", "method", "start",
        "status", "tally", "traceparent",
    )  # fmt: skip

    #: ``perf_counter()`` at arrival; None once the request is recorded.
    start: float | None
    method: str
    #: The status code, from start_response ("500" until it is called).
    status: str
    #: Set by the routing hook: the series of the request's URL rule, counted in flight.
    children: RequestChildren | None
    #: The class name of the request's first unhandled exception.
    exception: str | None
    #: The W3C ``traceparent`` header when exemplars are on. Not the environ itself:
    #: environ -> state -> environ would be a reference cycle, keeping every request's
    #: environ alive until the cyclic GC runs.
    traceparent: str | None
    #: The request's dependency calls (``metrics.track``), flushed in :meth:`finish`.
    tally: RequestTally
    _start_response: StartResponse
    _middleware: InstrumentedWSGI
    _body: Iterable[bytes]

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        """The ``start_response`` the app sees: remembers the status code, then delegates."""
        self.status = status[:3]
        return self._start_response(status, headers, exc_info)

    def record_exception(self, exc: BaseException) -> None:
        """Remember the class of the first unhandled exception of this request."""
        if self.exception is None:
            self.exception = type(exc).__name__

    def finish(self) -> None:
        """Record this request once (later calls do nothing): duration, count, exception.

        Frees the request's in-flight slot if the routing hook took one.
        """
        start = self.start
        if start is None:
            return
        self.start = None
        elapsed = perf_counter() - start
        try:
            children = self.children
            if children is not None and self.traceparent is None and self.exception is None:
                children.record(elapsed, self.status, True)  # the common case: one call
            else:
                self._record_rare(elapsed)
        except Exception as exc:  # metrics must never fail a response
            _failsafe.report("request recording", exc)
        self._middleware.instruments.per_request.flush(self.tally, self.children)

    def _record_rare(self, elapsed: float) -> None:
        """Record a request that was not routed, carries a trace context or raised."""
        children = self.children
        if children is None:  # not routed: failed before, or served by inner middleware
            children = self._middleware.instruments.request_children(
                self.method, c.ENDPOINT_UNMATCHED
            )
        routed = self.children is not None  # then the routing hook counted it in flight
        trace_id = trace_id_from(self.traceparent) if self.traceparent else None
        if trace_id is None:
            children.record(elapsed, self.status, routed)
        else:  # single-process only: exemplars are off in multiprocess mode
            children.record_exemplar(elapsed, self.status, trace_id, routed)
        if self.exception is not None:
            self._middleware.instruments.exceptions.labels(
                children.method, children.endpoint, self.exception
            ).inc()

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except GeneratorExit:
            raise
        except BaseException as exc:
            # The status line is already sent; keep it, but count the broken stream.
            self.record_exception(exc)
            raise
        # The server asks for the next chunk only after writing the previous one, so the
        # body is fully sent here; recording now also serves clients that never close()
        # (Werkzeug's test client without buffered=True). close() then finds it done.
        self.finish()

    def close(self) -> None:
        """Close the wrapped body, then record the request (even if closing failed)."""
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self.finish()


class InstrumentedWSGI:
    """Wraps a Flask app's ``wsgi_app``; serves the metrics path itself.

    ``metrics_app`` answers ``metrics_path``; requests to ``excluded`` paths pass through
    unrecorded. Everything else is counted exactly once, when its body is closed.
    """

    def __init__(
        self,
        wsgi_app: WSGIApplication,
        instruments: Instruments,
        *,
        metrics_path: str | None,
        metrics_app: WSGIApplication,
        excluded: frozenset[str],
        exemplars: bool,
    ) -> None:
        self.wsgi_app = wsgi_app
        self.instruments = instruments
        self.metrics_path = metrics_path
        self.metrics_app = metrics_app
        # One set lookup per request decides both: the metrics path is never recorded.
        self.excluded = excluded | {metrics_path} if metrics_path is not None else excluded
        self.exemplars = exemplars

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in self.excluded:
            if path == self.metrics_path:
                return self.metrics_app(environ, start_response)
            return self.wsgi_app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "")
        # Filled here, not in an __init__: CPython 3.11 calls a Python __init__ through
        # a slow generic path, and this runs on every request.
        state = _new(RequestState)
        state.start = perf_counter()
        state.method = _METHOD_LABELS.get(method) or normalise_method(method)
        state.status = "500"
        state.children = None
        state.exception = None
        state.traceparent = environ.get("HTTP_TRACEPARENT") if self.exemplars else None
        state._start_response = start_response
        state._middleware = self
        state.tally = start_request()
        environ[STATE_KEY] = state
        try:
            body = self.wsgi_app(environ, state.start_response)
        except BaseException as exc:
            state.status = "500"
            state.record_exception(exc)
            state.finish()
            raise
        # The server's own file wrapper (send_file) goes back unwrapped: see _finish_on_close.
        if type(body) is environ.get("wsgi.file_wrapper") and _finish_on_close(body, state):
            return body
        state._body = body
        return state
