"""The series of the exporter, created once per :class:`~limone_obs.Metrics`.

Label children are cached in plain dicts: ``Counter.labels(...)`` costs about four times a
cached child's ``inc()``, and the label space is bounded (URL rules x methods x statuses),
so the caches cannot grow without bound.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from limone_obs import conventions as c
from limone_obs.exporter import value_lock
from limone_obs.exporter._updaters import Update
from limone_obs.exporter.fast_path import Updaters
from limone_obs.exporter.queue_time import QueueTime
from limone_obs.exporter.tracking import PerRequestSeries


class Instruments:
    """Owns the metric objects and caches their label children.

    Not part of the public API: use :class:`limone_obs.Metrics`.
    """

    def __init__(
        self,
        names: c.MetricNames,
        registry: CollectorRegistry,
        buckets: Sequence[float],
        dependency_buckets: Sequence[float],
        updaters: Updaters,
    ) -> None:
        self.names = names
        #: The fast path or the public API (``fast_path``): used for every request series.
        self.updaters = updaters
        self.requests = Counter(
            names.requests, "HTTP requests answered, by method, URL rule and status code.",
            c.REQUESTS_LABELS, registry=registry,
        )  # fmt: skip
        self.duration = Histogram(
            names.request_duration,
            "Time from receiving a request until its response body is fully sent, in seconds.",
            c.DURATION_LABELS, registry=registry, buckets=buckets,
        )  # fmt: skip
        self.in_progress = Gauge(
            names.requests_in_progress, "HTTP requests being served right now.",
            c.IN_PROGRESS_LABELS, registry=registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self.exceptions = Counter(
            names.request_exceptions,
            "Unhandled exceptions raised while serving a request, by exception class.",
            c.EXCEPTIONS_LABELS, registry=registry,
        )  # fmt: skip
        self.dependency = Histogram(
            names.dependency_duration,
            "Time spent in a call to a dependency (AI API, database, cache, template), in seconds.",
            c.DEPENDENCY_LABELS, registry=registry, buckets=dependency_buckets,
        )  # fmt: skip
        self.cache = Counter(
            names.cache_requests, "Cache lookups, by cache and result (hit, miss or error).",
            c.CACHE_LABELS, registry=registry,
        )  # fmt: skip
        #: Calls per request and seconds per request of each dependency (fed by track).
        self.per_request = PerRequestSeries(names, registry)
        # "max" survives worker restarts in multiprocess mode, unlike the live* modes.
        self.build_info = Gauge(
            names.build_info, "Always 1; labels carry the service's version and revision.",
            c.BUILD_INFO_LABELS, registry=registry, multiprocess_mode="max",
        )  # fmt: skip
        #: ``<ns>_request_queue_seconds`` and its ignored-header counter.
        self.queue = QueueTime(names, registry, updaters)
        self._children_lock = threading.Lock()
        #: method -> endpoint -> children: two lookups of strings whose hash is cached; a
        #: table for every method label, so the routing hook can index it directly.
        self.children_by_method: dict[str, dict[str, RequestChildren]] = {
            method: {} for method in (*sorted(c.KNOWN_METHODS), c.METHOD_OTHER)
        }

    def described(self) -> tuple[tuple[Any, tuple[str, ...]], ...]:
        """Each series object with its label names: what the catalogue lists and what a
        scrape tells other metrics of the same names apart by (:mod:`.name_clash`)."""
        return (
            (self.requests, c.REQUESTS_LABELS), (self.duration, c.DURATION_LABELS),
            (self.in_progress, c.IN_PROGRESS_LABELS), (self.exceptions, c.EXCEPTIONS_LABELS),
            (self.dependency, c.DEPENDENCY_LABELS), (self.cache, c.CACHE_LABELS),
            (self.build_info, c.BUILD_INFO_LABELS), (self.queue.histogram, ()),
            (self.queue.ignored, (c.LABEL_REASON,)),
            (self.per_request.calls, c.REQUEST_DEPENDENCY_LABELS),
            (self.per_request.seconds, c.REQUEST_DEPENDENCY_LABELS),
            (self.per_request.busy, (c.LABEL_ENDPOINT,)),
        )  # fmt: skip

    def set_build_info(self, version: str, revision: str) -> None:
        """Publish the build-info series (value 1)."""
        self.build_info.labels(version, revision, platform.python_version()).set(1)

    def request_children(self, method: str, endpoint: str) -> RequestChildren:
        """Return the cached updaters of the series labelled ``method, endpoint``.

        Created once per pair, under a lock: two threads of a gthread worker meeting a new
        URL rule at once must share one set of updaters (a second one would start from
        prometheus-client's outdated copies and lose the first one's counts).
        """
        with self._children_lock:
            by_endpoint = self.children_by_method.setdefault(method, {})
            children = by_endpoint.get(endpoint)
            if children is None:
                children = by_endpoint[endpoint] = RequestChildren(self, method, endpoint)
            return children


class RequestChildren:
    """The label children of one (method, endpoint) pair, bound for the hot path."""

    __slots__ = (
        "_counters", "_instruments", "duration", "endpoint", "enter", "leave", "method", "record",
    )  # fmt: skip

    def __init__(self, instruments: Instruments, method: str, endpoint: str) -> None:
        self._instruments = instruments
        self.method = method
        self.endpoint = endpoint
        #: The histogram child itself, for observations that carry an exemplar.
        self.duration: Any = instruments.duration.labels(method, endpoint)
        #: ``enter(1.0)`` / ``leave()``: count a request in / out of the in-flight gauge.
        updaters = instruments.updaters
        self.enter, self.leave = updaters.in_flight(
            instruments.in_progress.labels(method, endpoint)
        )
        #: ``record(elapsed, status, in_flight)`` of a finished request (``_updaters.recorder``).
        self.record = updaters.recorder(self.duration, self.enter, self.leave, self._counter_child)
        self._counters: dict[str, Update] = {}

    def _counter_child(self, status: str) -> Any:
        return self._instruments.requests.labels(self.method, self.endpoint, status)

    def record_exemplar(self, elapsed: float, status: str, trace_id: str, in_flight: bool) -> None:
        """Like :attr:`record`, with a ``trace_id`` exemplar on the duration (one process)."""
        # record() adds to these values under the exporter's lock instead of each value's
        # own, so the public observe() must run under it too.
        with value_lock.LOCK:
            self.duration.observe(elapsed, exemplar={"trace_id": trace_id})
        self.counter(status)(1.0)
        if in_flight:
            self.leave()

    def counter(self, status: str) -> Update:
        """Return ``inc(amount)`` of the request counter for ``status``."""
        inc = self._counters.get(status)
        if inc is None:
            inc = self._counters[status] = self._instruments.updaters.incrementer(
                self._counter_child(status)
            )
        return inc
