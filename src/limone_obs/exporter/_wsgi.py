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

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from limone_obs.exporter._instruments import Instruments, RequestChildren

#: Key of the per-request :class:`RequestState` in the WSGI environ.
STATE_KEY = "limone_obs.state"


_METHOD_LABELS = {method: method for method in c.KNOWN_METHODS}


def normalise_method(raw: str) -> str:
    """Return the method label: the upper-cased method if it is a known one, else OTHER."""
    return _METHOD_LABELS.get(raw) or _METHOD_LABELS.get(raw.upper(), c.METHOD_OTHER)


def trace_id_from(traceparent: str | None) -> str | None:
    """Return the trace id of a valid W3C ``traceparent`` header, else None."""
    parsed = parse_traceparent(traceparent)
    return parsed[0] if parsed is not None else None


def _is_server_file(environ: WSGIEnvironment, body: Iterable[bytes]) -> bool:
    """True if ``body`` is the server's own ``wsgi.file_wrapper`` (Flask's send_file)."""
    wrapper = environ.get("wsgi.file_wrapper")
    return isinstance(wrapper, type) and isinstance(body, wrapper)


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
    a minimum; the exporter's overhead is measured against bare Flask in bench/.
    """

    __slots__ = (
        "_body",
        "_middleware",
        "_start_response",
        "children",
        "endpoint",
        "exception",
        "finished",
        "method",
        "start",
        "status",
        "traceparent",
    )  # fmt: skip

    def __init__(
        self,
        method: str,
        start: float,
        traceparent: str | None,
        start_response: StartResponse,
        middleware: InstrumentedWSGI,
    ) -> None:
        self.method = method
        self.start = start
        self.endpoint: str | None = None
        self.status = "500"
        self.exception: str | None = None
        #: Set by the routing hook when it counted this request as in flight.
        self.children: RequestChildren | None = None
        self.finished = False
        # Not the environ itself: environ -> state -> environ would be a reference cycle,
        # keeping every request's environ alive until the cyclic GC runs.
        self.traceparent = traceparent
        self._start_response = start_response
        self._middleware = middleware
        self._body: Iterable[bytes] = ()

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        """The ``start_response`` the app sees: remembers the status code, then delegates."""
        self.status = status[:3]
        return self._start_response(status, headers, exc_info)

    def record_exception(self, exc: BaseException) -> None:
        """Remember the class of the first unhandled exception of this request."""
        if self.exception is None:
            self.exception = type(exc).__name__

    def finish(self) -> None:
        """Record this request once (later calls do nothing)."""
        if not self.finished:
            self.finished = True
            try:
                self._middleware.record(self, perf_counter() - self.start)
            except Exception as exc:  # metrics must never fail a response
                _failsafe.report("request recording", exc)

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
        self.excluded = excluded
        self.exemplars = exemplars

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == self.metrics_path:
            return self.metrics_app(environ, start_response)
        if path in self.excluded:
            return self.wsgi_app(environ, start_response)
        method = normalise_method(environ.get("REQUEST_METHOD", ""))
        traceparent = environ.get("HTTP_TRACEPARENT") if self.exemplars else None
        state = RequestState(method, perf_counter(), traceparent, start_response, self)
        environ[STATE_KEY] = state
        try:
            body = self.wsgi_app(environ, state.start_response)
        except BaseException as exc:
            state.status = "500"
            state.record_exception(exc)
            state.finish()
            raise
        if _is_server_file(environ, body) and _finish_on_close(body, state):
            return body
        state._body = body
        return state

    def record(self, state: RequestState, elapsed: float) -> None:
        """Observe one finished request: duration, count, exception; free its in-flight slot."""
        endpoint = state.endpoint or c.ENDPOINT_UNMATCHED
        inst = self.instruments
        children = state.children or inst.request_children(state.method, endpoint)
        trace_id = trace_id_from(state.traceparent) if state.traceparent else None
        if trace_id is None:
            children.observe(elapsed)
        else:
            children.duration.observe(elapsed, exemplar={"trace_id": trace_id})
        inst.count_request(state.method, endpoint, state.status)
        if state.exception is not None:
            inst.exceptions.labels(state.method, endpoint, state.exception).inc()
        if state.children is not None:
            children.in_progress(-1.0)
