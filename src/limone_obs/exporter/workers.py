"""Worker saturation: ``<ns>_workers{state="busy"|"idle"}``, derived at scrape time.

``busy`` is the number of requests the app is serving right now, summed over the live
processes: the in-flight gauge (``<ns>_requests_in_progress``) the exporter keeps anyway,
so saturation costs nothing per request. ``idle`` is the request slots of the live
workers (``<ns>_worker_threads``: threads for gunicorn's gthread, 1 for sync,
``worker_connections`` for async workers; uWSGI's threads or async cores) minus ``busy``.

Each worker publishes its slots (``<ns>_worker_threads``, a livesum gauge) as soon as it
knows them: in gunicorn's ``post_worker_init`` hook (:func:`post_worker_init`, wired by
``exporter/gunicorn.conf.py``), else by itself (:func:`publish_slots`): when the app is
instrumented inside a worker, on the worker's first request and on every scrape it
answers. A gunicorn worker is found as the owner of its SIGQUIT handler (gunicorn sets it
before it loads the app), so a config of your own, or none, needs no hook; a uWSGI worker
reads its threads or async cores (``uwsgi.cores``). A multiprocess process that is neither
says so in one warning line. Without slots only ``busy`` is published: an ``idle`` that
could be wrong is worse than none.

A scrape is served by a worker too. Under a saturated pool (sync workers, or gthread with
every thread busy) it waits in the server's queue like any request, and the slot that
serves it is counted idle (it is not serving the app); the scrape itself is never counted
busy. So a scrape of a saturated pool reads at most ``slots - 1`` busy: for "every worker
busy for 5 minutes" use the mean over time, ``sum(rate(<ns>_request_duration_seconds_sum[5m]))
/ sum(<ns>_worker_threads)`` (request seconds per second per slot, Little's law), as the
dashboard's saturation panel does. Files of processes that are no longer alive are
ignored, and each multiprocess scrape removes their live gauges
(:func:`limone_obs.exporter.multiprocess.retire_dead_live`), so a killed worker's
in-flight requests and slots do not stay.
"""

from __future__ import annotations

import glob
import logging
import os
import signal
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from limone_obs import conventions as c
from limone_obs.exporter import _failsafe, compaction, multiprocess
from limone_obs.exporter.name_clash import Family

if TYPE_CHECKING:
    from limone_obs.exporter.extension import Metrics

logger = logging.getLogger("limone_obs.exporter")
SLOTS_HELP = "Request slots (threads) of the live workers, summed."
#: Request slots of this process (``"slots"``), once known, and the pid they were learnt in
#: (``"pid"``: a forked child learns its own); ``"pid"`` alone once this process was found
#: to be no worker (and said so); ``"told"`` 1 when the app gave them (:func:`set_slots`).
_state: dict[str, int] = {}
_gauges: weakref.WeakSet[Any] = weakref.WeakSet()
#: The file descriptors of gunicorn's listening sockets in this worker, and its pid (a
#: forked child has its own), learnt by :func:`post_worker_init`.
_listeners: list[tuple[int, tuple[int, ...]]] = []
#: Metrics objects whose scrape has the collector already (one Metrics may serve many apps).
_registered: weakref.WeakSet[Metrics] = weakref.WeakSet()
_lock = threading.Lock()


#: gunicorn's own worker classes that serve at most ``worker_connections`` at once.
_CONNECTION_WORKERS = frozenset(
    {"gunicorn.workers.ggevent", "gunicorn.workers.geventlet", "gunicorn.workers.gtornado"}
)


def worker_slots(worker: Any) -> int | None:
    """Requests one gunicorn worker serves at once: threads (gthread), 1 (sync),
    ``worker_connections`` (gunicorn's gevent, eventlet and tornado workers); None for a
    worker class of another package (uvicorn's ``UvicornWorker`` limits nothing to
    ``worker_connections``: the app's adapter decides, a2wsgi's thread pool for one)."""
    cfg = worker.cfg
    # The class or the first of its bases that is one of gunicorn's (a subclass of
    # gunicorn's gthread worker serves threads too).
    for klass in type(worker).__mro__:
        where = (klass.__module__, klass.__name__)
        if where == ("gunicorn.workers.gthread", "ThreadWorker"):
            return max(1, int(cfg.threads))
        if where == ("gunicorn.workers.sync", "SyncWorker"):
            return 1
        if klass.__module__ in _CONNECTION_WORKERS:
            return max(1, int(getattr(cfg, "worker_connections", 1)))
    return None


def post_worker_init(worker: Any) -> None:
    """gunicorn ``post_worker_init`` hook: publish this worker's request slots, and learn
    gunicorn's listening sockets (see :func:`gunicorn_listeners`).

    Never raises (a metrics hook must not stop a worker from booting).
    """
    try:
        slots = worker_slots(worker)
        if slots is not None:
            _detected(slots)
        _listeners[:] = [(os.getpid(), tuple(sock.fileno() for sock in worker.sockets))]
    except Exception as exc:
        _failsafe.report("the worker slots hook", exc)


def gunicorn_listeners() -> tuple[int, ...] | None:
    """The file descriptors gunicorn's listening sockets have in this worker, or None
    where :func:`post_worker_init` did not run in this very process."""
    for pid, fds in _listeners:
        if pid == os.getpid():
            return fds
    return None


def known_slots() -> int | None:
    """The slots learnt in this very process (a forked child's are its own to learn)."""
    return _state.get("slots") if _state.get("pid") == os.getpid() else None


def set_slots(slots: int) -> None:
    """Publish ``slots``, the requests this process serves at once (for a server the kit
    does not recognise; gunicorn's own workers and uWSGI's are found by themselves).

    What the app tells wins over what the kit finds later in the same process (gunicorn's
    ``post_worker_init`` runs after the app module called this).
    """
    _publish(slots, told=True)


def _detected(slots: int) -> None:
    """Publish ``slots`` the kit found, unless the app told its own in this process."""
    _publish(slots, told=False)


def _publish(slots: int, *, told: bool) -> None:
    with _lock:
        pid = os.getpid()
        if not told and _state.get("pid") == pid and _state.get("told"):
            return
        _state.clear()
        _state.update(pid=pid, slots=slots, told=int(told))
        for gauge in list(_gauges):
            gauge.set(slots)


#: What :func:`server_role` finds: a worker (with its slots), a server's master (serves
#: no requests: nothing to publish yet, its workers will) or neither.
MASTER = "master"
NEITHER = "neither"


def server_role() -> int | str:
    """This process's request slots if it is a gunicorn or uWSGI worker, else MASTER or
    NEITHER. Never raises (an unexpected server object counts as NEITHER)."""
    try:
        gunicorn = _gunicorn_role()
        if gunicorn is not None:
            return gunicorn
        return _uwsgi_role()
    except Exception:  # an object of another version: say it is unknown, never fail
        return NEITHER


def _sigquit_owner() -> object:
    """The object whose bound method handles SIGQUIT here, or None.

    A gunicorn worker installs its bound methods as signal handlers before it loads the
    app, the master (the arbiter) once it starts, after loading a preloaded app; a
    handler's ``__self__`` is that object.
    """
    return getattr(signal.getsignal(signal.SIGQUIT), "__self__", None)


def gunicorn_worker() -> Any:
    """This process's gunicorn worker object, or None when it is no gunicorn worker.

    Not a process forked by a worker (``os.fork``, multiprocessing): it inherits the
    worker's handlers, but the worker object names another pid.
    """
    base = sys.modules.get("gunicorn.workers.base")
    owner = _sigquit_owner() if base is not None else None
    if base is None or not isinstance(owner, base.Worker):
        return None
    return owner if getattr(owner, "pid", None) == os.getpid() else None


def _gunicorn_role() -> int | str | None:
    """A gunicorn worker's slots, MASTER for gunicorn's arbiter, None outside gunicorn.

    The master loads a preloaded app (and serves any warm-up request the app makes)
    before it installs its handlers: gunicorn's arbiter imported and SIGQUIT still at its
    default is the master too.
    """
    worker = gunicorn_worker()
    if worker is not None:
        slots = worker_slots(worker)
        return NEITHER if slots is None else slots
    arbiter = sys.modules.get("gunicorn.arbiter")
    if arbiter is None:
        return None
    handler = signal.getsignal(signal.SIGQUIT)
    if handler == signal.SIG_DFL or isinstance(_sigquit_owner(), arbiter.Arbiter):
        return MASTER
    return None


def _uwsgi_role() -> int | str:
    """A uWSGI worker's threads or async cores, MASTER for uWSGI's master, else NEITHER."""
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is None or not hasattr(uwsgi, "worker_id"):
        return NEITHER
    if uwsgi.worker_id() <= 0:
        return MASTER  # the master (or a mule): it serves no request
    return max(1, int(uwsgi.cores))


def publish_slots() -> bool:
    """Publish this process's slots unless they are known here already; never raises.

    False only for a server's master (its workers publish their own; ask again in a
    worker). Elsewhere True: published, or, in multiprocess mode, one warning line saying
    that ``idle`` leaves this process out and how to tell its slots.
    """
    try:
        return _publish_slots()
    except Exception as exc:  # e.g. the multiprocess directory went away: say so, go on
        _failsafe.report("the worker slots", exc)
        return True


def _publish_slots() -> bool:
    pid = os.getpid()
    if _state.get("pid") == pid:
        return True
    role = server_role()
    if role == MASTER:
        return False
    if isinstance(role, int):
        _detected(role)  # the same value if the hook or another thread was first
        return True
    with _lock:
        if _state.get("pid") == pid:
            return True
        _state.clear()
        _state["pid"] = pid
    if multiprocess.multiprocess_dir() is not None:
        logger.warning(
            "limone-obs: process %d serves requests in multiprocess mode but is no worker "
            "of gunicorn's own classes (sync, gthread, gevent, eventlet, tornado) nor a "
            "uWSGI worker, so its request slots are unknown: the *_worker_threads series "
            'and workers{state="idle"} leave it out. If your server runs it as a worker, '
            "call limone_obs.exporter.workers.set_slots(n) when the worker starts (n: "
            "requests it serves at once, e.g. a2wsgi's workers under uvicorn).",
            pid,
        )
    return True


def first_request(_environ: Any) -> bool:
    """The request recorder's first-request check in multiprocess mode: publish the slots
    (True once done; False in a master, so its workers check again)."""
    return publish_slots()


class WorkersCollector:
    """Yields ``<ns>_workers{state}`` for one :class:`Metrics` at each scrape.

    In multiprocess mode a scrape serves every series of the process's files, those of
    other namespaces too (a mounted app on a ``Metrics`` of its own): it also yields
    their ``<ns>_workers``, so one metrics path carries the saturation of each.
    """

    def __init__(self, metrics: Metrics, slots: Any) -> None:
        self._metrics = metrics
        self._slots = slots
        self._names = metrics.names

    def describe(self) -> list[Metric]:
        return [_family(self._names)]

    def collect(self) -> Iterator[Metric]:
        if not self._metrics.multiprocess:
            # A single worker serving a scrape before any request (never raises); in
            # multiprocess mode the scrape did so before reading the files
            # (Metrics.exposition_registry).
            publish_slots()
        try:
            busy, spaces = self._read()
        except Exception as exc:  # a broken file must not fail the whole scrape
            _failsafe.report("worker saturation", exc)
            return
        for names, slots in spaces:
            family = _family(names)
            family.add_metric((c.WORKER_BUSY,), busy)
            if slots:
                family.add_metric((c.WORKER_IDLE,), max(0.0, slots - busy))
            yield family
        own_slots = spaces[0][1]
        if own_slots and not self._metrics.multiprocess:
            # One process has no file to carry them (set_slots on a threaded server such as
            # waitress): the saturation panel and alert read this series.
            yield GaugeMetricFamily(self._names.worker_threads, SLOTS_HELP, value=own_slots)

    def _read(self) -> tuple[float, list[tuple[c.MetricNames, float]]]:
        """(requests in flight, [(namespace, its request slots)]) over the live processes:
        this namespace's first, then in multiprocess mode every other one registered."""
        path = multiprocess.multiprocess_dir() if self._metrics.multiprocess else None
        if path is None:
            return _in_flight_here(self._metrics), [(self._names, float(known_slots() or 0))]
        # The workers serve every app of the process: a request of another namespace's
        # app (a mounted app with a Metrics of its own) holds a slot too.
        families = live_families(path)
        spaces = namespaces(self._names)
        busy = sum(_sum(families, names.requests_in_progress) for names in spaces)
        return busy, [(names, _sum(families, names.worker_threads)) for names in spaces]


def _family(names: c.MetricNames) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        names.workers,
        "Request slots of the live workers (gunicorn or uWSGI threads) busy serving "
        "the app, or idle (only where the workers' slots are known).",
        labels=(c.LABEL_STATE,),
    )


def namespaces(own: c.MetricNames) -> list[c.MetricNames]:
    """The series names of ``own`` and of every other namespace whose :class:`Metrics`
    is registered in this process in multiprocess mode (each once, ``own`` first): the
    namespaces one multiprocess scrape serves."""
    found = {own.namespace: own}
    for metrics in list(_registered):
        if metrics.multiprocess:
            found.setdefault(metrics.names.namespace, metrics.names)
    return list(found.values())


def families(names: c.MetricNames) -> list[Family]:
    """The slots gauge as the workers write it to the files (:mod:`.name_clash`)."""
    return [Family(names.worker_threads, "gauge", SLOTS_HELP, frozenset())]


def _in_flight_here(own: Metrics) -> float:
    """Requests in flight in this process (no files: a single-process server), over the
    in-flight series of every :class:`Metrics` registered here, each registry and name
    once: the server's threads serve every app of the process (a mounted app with a
    namespace of its own holds a thread too)."""
    seen: set[tuple[int, str]] = set()
    total = 0.0
    for metrics in (own, *list(_registered)):
        name = metrics.names.requests_in_progress
        key = (id(metrics.registry), name)
        if metrics.multiprocess or key in seen:
            continue
        seen.add(key)
        total += _sum(metrics.registry.restricted_registry([name]).collect(), name)
    return total


def read_files(path: str, names: c.MetricNames) -> tuple[float, float]:
    """(requests in flight, request slots) of namespace ``names`` over the live processes
    writing below ``path``."""
    families = live_families(path)
    return _sum(families, names.requests_in_progress), _sum(families, names.worker_threads)


def live_families(path: str) -> list[Metric]:
    """The live gauges (in flight, slots) of the live processes writing below ``path``,
    merged over the processes.

    As in the public-API collector (:class:`.multiprocess`'s): a file still being created
    holds nothing yet and is left out, and one retired between listing and reading (its
    worker exited) makes the directory be listed once more.
    """
    merge: Any = MultiProcessCollector.merge  # untyped in prometheus-client
    try:
        return list(merge(live_gauge_files(path), accumulate=True))
    except FileNotFoundError:
        return list(merge(live_gauge_files(path), accumulate=True))


def _sum(families: Iterable[Metric], name: str) -> float:
    return sum(s.value for f in families for s in f.samples if s.name == name)


def live_gauge_files(path: str) -> list[str]:
    """``gauge_livesum_<pid>.db`` files below ``path`` whose process is alive, past their
    creation (an empty file's reader would raise)."""
    files = glob.glob(os.path.join(path, "gauge_livesum_*.db"))
    return [f for f in files if _alive(f) and multiprocess.started(f)]


def _alive(file: str) -> bool:
    pid = os.path.basename(file)[len("gauge_livesum_") : -len(".db")]
    return pid.isdigit() and compaction.running(int(pid))


def register(metrics: Metrics) -> None:
    """Add the workers collector to ``metrics``' scrape and publish this process's slots.

    Once per :class:`Metrics` (an app factory calls ``init_app`` on many apps).
    """
    with _lock:
        if metrics in _registered:
            return
        _registered.add(metrics)
    slots = Gauge(
        metrics.names.worker_threads, SLOTS_HELP, registry=None, multiprocess_mode="livesum"
    )
    with _lock:
        _gauges.add(slots)
        known = known_slots()
        if known is not None:
            slots.set(known)
    metrics.exposition_registry().register(WorkersCollector(metrics, slots))
    if known is None:
        role = server_role()  # the app is instrumented inside a worker (no preload)
        if isinstance(role, int):
            set_slots(role)
