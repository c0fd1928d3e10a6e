"""The exporter's part of the request lifecycle: label, count in flight, record at the end.

:class:`RequestRecorder` is a :class:`limone_obs.lifecycle.Participant`: it labels a
request with its method, counts it in flight once Flask has routed it (the URL rule is
the endpoint label), measures the queue time a proxy announces, and at the end of the
request records its duration, count and exception in one call.
"""

from __future__ import annotations

from time import time
from typing import TYPE_CHECKING

from limone_obs import conventions as c
from limone_obs._tracecontext import parse_traceparent
from limone_obs.exporter import _failsafe
from limone_obs.exporter.tracking import RequestTally, start_request

if TYPE_CHECKING:
    from collections.abc import Callable

    from _typeshed.wsgi import WSGIEnvironment

    from limone_obs.exporter._instruments import Instruments, RequestChildren
    from limone_obs.exporter.queue_time import QueueTime
    from limone_obs.lifecycle import RequestState

_new = object.__new__
_METHOD_LABELS = {method: method for method in c.KNOWN_METHODS}


def normalise_method(raw: str) -> str:
    """Return the method label: the upper-cased method if it is a known one, else OTHER."""
    return _METHOD_LABELS.get(raw) or _METHOD_LABELS.get(raw.upper(), c.METHOD_OTHER)


def trace_id_from(traceparent: str | None) -> str | None:
    """Return the trace id of a valid W3C ``traceparent`` header, else None."""
    parsed = parse_traceparent(traceparent)
    return parsed[0] if parsed is not None else None


class _Request:
    """The exporter's data about one request (``RequestState.metrics``)."""

    __slots__ = ("children", "method", "tally", "traceparent")

    method: str
    #: Set once routed: the series of the request's URL rule, counted in flight.
    children: RequestChildren | None
    #: The W3C ``traceparent`` header when exemplars are on (not the environ: a cycle).
    traceparent: str | None
    #: The request's dependency calls (``metrics.track``), flushed at its end.
    tally: RequestTally


class RequestRecorder:
    """Records every request the lifecycle serves, except the ``excluded`` paths."""

    def __init__(
        self,
        instruments: Instruments,
        *,
        excluded: frozenset[str],
        exemplars: bool,
        queue: QueueTime,
        first_request: Callable[[WSGIEnvironment], None] | None = None,
    ) -> None:
        self.instruments = instruments
        self.excluded = excluded
        self.exemplars = exemplars
        self.queue = queue
        #: Called with the first request's environ, then dropped (one test per request).
        self.first_request = first_request

    def begin(self, state: RequestState, environ: WSGIEnvironment) -> None:
        """Label the request with its method; observe its queue time if a proxy sent it."""
        if self.first_request is not None:
            check, self.first_request = self.first_request, None
            check(environ)
        if state.path in self.excluded:
            return
        request = _new(_Request)
        method = state.method
        request.method = _METHOD_LABELS.get(method) or normalise_method(method)
        request.children = None
        request.traceparent = environ.get("HTTP_TRACEPARENT") if self.exemplars else None
        # Here, in the context that runs the app: its tasks and threads share the tally.
        request.tally = start_request()
        state.metrics = request
        queue_start = environ.get("HTTP_X_REQUEST_START")
        if queue_start is not None:
            self.queue.observe(queue_start, time())

    def routed(self, state: RequestState) -> None:
        """Count the request in flight under its URL rule."""
        request = state.metrics
        if request is None:
            return
        try:
            endpoint = state.endpoint or c.ENDPOINT_UNMATCHED
            children = self.instruments.children_by_method[request.method].get(endpoint)
            if children is None:
                children = self.instruments.request_children(request.method, endpoint)
            children.enter(1.0)
            request.children = children
        except Exception as exc:  # metrics must never fail a request
            _failsafe.report("the routing hook", exc)

    def end(self, state: RequestState, elapsed: float) -> None:
        """Record the request: duration, count, exception; free its in-flight slot."""
        request = state.metrics
        if request is None:
            return
        try:
            children = request.children
            if children is not None and request.traceparent is None and state.exception is None:
                children.record(elapsed, state.status, True)  # the common case: one call
            else:
                self._record_rare(state, request, elapsed)
        except Exception as exc:  # metrics must never fail a response
            _failsafe.report("request recording", exc)
        # The one place that knows the request's endpoint and its end (never raises).
        self.instruments.per_request.flush(request.tally, request.children)

    def _record_rare(self, state: RequestState, request: _Request, elapsed: float) -> None:
        """Record a request that was not routed, carries a trace context or raised."""
        children = request.children
        if children is None:  # not routed: failed before, or served by inner middleware
            children = self.instruments.request_children(request.method, c.ENDPOINT_UNMATCHED)
        routed = request.children is not None  # then it was counted in flight
        trace_id = trace_id_from(request.traceparent) if request.traceparent else None
        if trace_id is None:
            children.record(elapsed, state.status, routed)
        else:  # single-process only: exemplars are off in multiprocess mode
            children.record_exemplar(elapsed, state.status, trace_id, routed)
        if state.exception is not None:
            exception = type(state.exception).__name__
            self.instruments.exceptions.labels(children.method, children.endpoint, exception).inc()
