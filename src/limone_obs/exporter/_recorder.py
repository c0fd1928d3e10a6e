"""The exporter's part of the request lifecycle: label, count in flight, record at the end.

:class:`RequestRecorder` is a :class:`limone_obs.lifecycle.Participant`: it labels a
request with its method, counts it in flight once Flask has routed it (the URL rule is
the endpoint label), measures the queue time a proxy announces, and at the end of the
request records its duration, count and exception in one call.
"""

from __future__ import annotations

from time import time
from typing import TYPE_CHECKING, Any

from limone_obs import conventions as c
from limone_obs._tracecontext import parse_traceparent
from limone_obs.exporter import _failsafe
from limone_obs.exporter._instruments import RequestChildren

if TYPE_CHECKING:
    from collections.abc import Callable

    from _typeshed.wsgi import WSGIEnvironment

    from limone_obs.exporter._instruments import Instruments
    from limone_obs.exporter.queue_time import QueueTime
    from limone_obs.lifecycle import RequestState

_METHOD_LABELS = {method: method for method in c.KNOWN_METHODS}
_QUEUE_TAKEN = c.ENVIRON_QUEUE_TAKEN


def normalise_method(raw: str) -> str:
    """Return the method label: the upper-cased method if it is a known one, else OTHER."""
    return _METHOD_LABELS.get(raw) or _METHOD_LABELS.get(raw.upper(), c.METHOD_OTHER)


def trace_id_from(traceparent: str | None) -> str | None:
    """Return the trace id of a valid W3C ``traceparent`` header, else None."""
    parsed = parse_traceparent(traceparent)
    return parsed[0] if parsed is not None else None


class _Traced:
    """``RequestState.metrics`` of a request carrying a W3C ``traceparent`` (exemplars on).

    Untraced requests allocate nothing: their ``metrics`` is the recorder itself until
    routed, then the :class:`RequestChildren` of their URL rule.
    """

    __slots__ = ("children", "traceparent")

    def __init__(self, traceparent: str) -> None:
        #: Not the environ: environ -> state -> environ would be a reference cycle.
        self.traceparent = traceparent
        self.children: RequestChildren | None = None


class RequestRecorder:
    """Records every request the lifecycle serves, except the ``excluded`` paths."""

    def __init__(
        self,
        instruments: Instruments,
        *,
        excluded: frozenset[str],
        exemplars: bool,
        queue: QueueTime,
        first_request: Callable[[WSGIEnvironment], bool] | None = None,
    ) -> None:
        self.instruments = instruments
        self.excluded = excluded
        self.exemplars = exemplars
        self.queue = queue
        #: Called with each request's environ until it returns True, then dropped (one
        #: test per request while it is set): the first request's checks.
        self.first_request = first_request

    def begin(self, state: RequestState, environ: WSGIEnvironment) -> None:
        """Mark the request as recorded; observe its queue time if a proxy sent it."""
        check = self.first_request
        if check is not None and check(environ):
            self.first_request = None
        if state.path in self.excluded:
            return
        state.metrics = self  # recorded, not routed yet
        if self.exemplars:
            traceparent = environ.get("HTTP_TRACEPARENT")
            if traceparent is not None:
                state.metrics = _Traced(traceparent)
        queue_start = environ.get("HTTP_X_REQUEST_START")
        if queue_start is not None and _QUEUE_TAKEN not in environ:
            # The server's wait, once per request: by the outermost instrumented app (an
            # app mounted inside its wrapper sees the same header).
            environ[_QUEUE_TAKEN] = True
            self.queue.observe(queue_start, time())

    def routed(self, state: RequestState) -> None:
        """Count the request in flight under its method and URL rule."""
        marker = state.metrics
        if marker is None:
            return
        try:
            # The usual case inline: a known method and a URL rule seen before.
            endpoint = state.endpoint or c.ENDPOINT_UNMATCHED
            by_endpoint = self.instruments.children_by_method.get(state.method)
            children = by_endpoint.get(endpoint) if by_endpoint is not None else None
            if children is None:
                children = self._children(state.method, endpoint)
            enter = children.enter  # loaded, then called: see lifecycle.Lifecycle.__call__
            enter(1.0)
            if marker is self:
                state.metrics = children
            else:
                marker.children = children
        except Exception as exc:  # metrics must never fail a request
            _failsafe.report("the routing hook", exc)

    def _children(self, method: str, endpoint: str) -> RequestChildren:
        label = _METHOD_LABELS.get(method) or normalise_method(method)
        children = self.instruments.children_by_method[label].get(endpoint)
        if children is None:
            children = self.instruments.request_children(label, endpoint)
        return children

    def end(self, state: RequestState, elapsed: float) -> None:
        """Record the request: duration, count, exception; free its in-flight slot."""
        recorded = state.metrics
        if recorded is None:
            return
        try:
            if (
                type(recorded) is RequestChildren
                and state.exception is None
                and state.inner is None
            ):
                record = recorded.record  # loaded, then called: see lifecycle.Lifecycle.__call__
                record(elapsed, state.status, True)  # the common case: one call
            else:
                self._record_rare(state, recorded, elapsed)
        except Exception as exc:  # metrics must never fail a response
            _failsafe.report("request recording", exc)
        per_request = self.instruments.per_request
        if state.tally is None and not per_request.seen:
            return  # no dependency call in this request, nor ever one to record as 0
        if state.inner is not None:
            return  # the app it was handed on to records it (or none: its metrics path)
        # The one place that knows the request's endpoint and its end (never raises).
        route = recorded.children if type(recorded) is _Traced else recorded
        route = route if type(route) is RequestChildren else None
        per_request.flush(state, route)

    def unnest(self, state: RequestState) -> None:
        """Nothing to give back: the recorder keeps no per-request data in the context."""

    def reenter(self, state: RequestState) -> None:
        """Nothing to make current: the lifecycle's own context variable suffices."""

    def _record_rare(self, state: RequestState, recorded: Any, elapsed: float) -> None:
        """Record a request that was not routed, carries a trace context or raised."""
        traced = recorded if type(recorded) is _Traced else None
        children = recorded.children if traced is not None else recorded
        routed = type(children) is RequestChildren  # then it was counted in flight
        if state.inner is not None:  # another instrumented app served it: it records it
            if routed:
                children.leave()
            return
        if not routed:  # failed before routing, or served by inner middleware
            children = self._children(state.method, c.ENDPOINT_UNMATCHED)
        trace_id = trace_id_from(traced.traceparent) if traced is not None else None
        if trace_id is None:
            children.record(elapsed, state.status, routed)
        else:  # single-process only: exemplars are off in multiprocess mode
            children.record_exemplar(elapsed, state.status, trace_id, routed)
        if state.exception is not None:
            exception = type(state.exception).__name__
            self.instruments.exceptions.labels(children.method, children.endpoint, exception).inc()
