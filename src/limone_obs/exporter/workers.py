"""Worker saturation: ``<ns>_workers{state="busy"|"idle"}``, derived at scrape time.

``busy`` is the number of requests the app is serving right now, summed over the live
processes: the in-flight gauge (``<ns>_requests_in_progress``) the exporter keeps anyway,
so saturation costs nothing per request. ``idle`` is the request slots of the live
gunicorn workers (``<ns>_worker_threads``: threads for gthread, 1 for sync,
``worker_connections`` for async workers) minus ``busy``.

Each worker learns its slots in gunicorn's ``post_worker_init`` hook: :func:`post_worker_init`
(wired by ``exporter/gunicorn.conf.py``; with a config of your own, call it from yours).
Without the hook, or outside gunicorn, only ``busy`` is published: an ``idle`` that could
be wrong is worse than none.

A scrape is served by a worker too. Under a saturated pool of sync workers it waits in
gunicorn's queue like any request, and the worker that serves it is counted idle (it is
not serving the app); the scrape itself is never counted busy. So a scrape of a saturated
sync pool reads at most ``slots - 1`` busy: for "every worker busy for 5 minutes" use the
mean over time, ``sum(rate(<ns>_request_duration_seconds_sum[5m])) /
sum(<ns>_worker_threads)`` (request seconds per second per slot, Little's law), as the
dashboard's saturation panel does. Files of processes that
are no longer alive are ignored, so a killed worker's in-flight requests do not stay busy.
"""

from __future__ import annotations

import glob
import os
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from limone_obs import conventions as c
from limone_obs.exporter import _failsafe, multiprocess

if TYPE_CHECKING:
    from limone_obs.exporter.extension import Metrics

#: Request slots of this process (``"slots"``), once the gunicorn hook told us.
_state: dict[str, int] = {}
_gauges: weakref.WeakSet[Any] = weakref.WeakSet()
#: Metrics objects whose scrape has the collector already (one Metrics may serve many apps).
_registered: weakref.WeakSet[Metrics] = weakref.WeakSet()
_lock = threading.Lock()


def worker_slots(worker: Any) -> int:
    """Requests one gunicorn worker serves at once: threads, 1 (sync) or connections (async)."""
    kind = type(worker).__name__
    cfg = worker.cfg
    if kind == "ThreadWorker":
        return max(1, int(cfg.threads))
    if kind == "SyncWorker":
        return 1
    return max(1, int(getattr(cfg, "worker_connections", 1)))


def post_worker_init(worker: Any) -> None:
    """gunicorn ``post_worker_init`` hook: publish this worker's request slots.

    Never raises (a metrics hook must not stop a worker from booting).
    """
    try:
        with _lock:
            slots = _state["slots"] = worker_slots(worker)
            for gauge in list(_gauges):
                gauge.set(slots)
    except Exception as exc:
        _failsafe.report("the worker slots hook", exc)


class WorkersCollector:
    """Yields ``<ns>_workers{state}`` for one :class:`Metrics` at each scrape."""

    def __init__(self, metrics: Metrics, slots: Any) -> None:
        self._metrics = metrics
        self._slots = slots
        self._names = metrics.names

    def describe(self) -> list[Metric]:
        return [self._family()]

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            self._names.workers,
            "Request slots of the live workers (gunicorn threads) busy serving the app, "
            "or idle (only when gunicorn's post_worker_init hook told the slots).",
            labels=(c.LABEL_STATE,),
        )

    def collect(self) -> Iterator[Metric]:
        try:
            busy, slots = self._read()
        except Exception as exc:  # a broken file must not fail the whole scrape
            _failsafe.report("worker saturation", exc)
            return
        family = self._family()
        family.add_metric((c.WORKER_BUSY,), busy)
        if slots:
            family.add_metric((c.WORKER_IDLE,), max(0.0, slots - busy))
        yield family

    def _read(self) -> tuple[float, float]:
        """(requests in flight, request slots) over the live processes."""
        path = multiprocess.multiprocess_dir() if self._metrics.multiprocess else None
        if path is not None:
            return read_files(path, self._names)
        in_flight = self._names.requests_in_progress
        registry = self._metrics.registry.restricted_registry([in_flight])
        return _sum(registry.collect(), in_flight), float(_state.get("slots", 0))


def read_files(path: str, names: c.MetricNames) -> tuple[float, float]:
    """(requests in flight, request slots) of the live processes writing below ``path``."""
    merge: Any = MultiProcessCollector.merge  # untyped in prometheus-client
    families = list(merge(live_gauge_files(path), accumulate=True))
    return _sum(families, names.requests_in_progress), _sum(families, names.worker_threads)


def _sum(families: Iterable[Metric], name: str) -> float:
    return sum(s.value for f in families for s in f.samples if s.name == name)


def live_gauge_files(path: str) -> list[str]:
    """``gauge_livesum_<pid>.db`` files below ``path`` whose process is alive."""
    return [f for f in glob.glob(os.path.join(path, "gauge_livesum_*.db")) if _alive(f)]


def _alive(file: str) -> bool:
    pid = os.path.basename(file)[len("gauge_livesum_") : -len(".db")]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def register(metrics: Metrics) -> None:
    """Add the workers collector to ``metrics``' scrape and publish this process's slots.

    Once per :class:`Metrics` (an app factory calls ``init_app`` on many apps).
    """
    with _lock:
        if metrics in _registered:
            return
        _registered.add(metrics)
    slots = Gauge(
        metrics.names.worker_threads,
        "Request slots (threads) of the live gunicorn workers, summed.",
        registry=None, multiprocess_mode="livesum",
    )  # fmt: skip
    with _lock:
        _gauges.add(slots)
        if "slots" in _state:
            slots.set(_state["slots"])
    metrics.exposition_registry().register(WorkersCollector(metrics, slots))
