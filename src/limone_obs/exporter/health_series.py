"""The kit's own health as series: ``<ns>_exporter_problems``, ``<ns>_log_lines_dropped_total``.

The state lives in :mod:`limone_obs.health` (the exporter and the logging integration
report there). In a single process, :class:`HealthCollector` reads it at every scrape.
With several workers (``PROMETHEUS_MULTIPROC_DIR``), each worker writes its own state into
its multiprocess files whenever it changes (:class:`MultiprocessHealth`): a ``livemax``
gauge per problem, so a scrape of any worker shows a problem of any live worker, and a
counter of dropped lines, summed over all workers, dead ones included. A worker whose
storage is full cannot write there, so the scraping worker also merges in its own
problems (:func:`merge_local_problems`). Every problem has a sample, 0 or 1, so an alert
can tell "no problem" from "no data".
"""

from __future__ import annotations

import _thread
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import ClassVar

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

from limone_obs import conventions as c
from limone_obs import health
from limone_obs.exporter import _failsafe
from limone_obs.exporter.name_clash import Family

PROBLEMS_HELP = (
    "1 while the observability kit knows of a problem in itself (see the exporter's log "
    "line for what to do), else 0."
)
DROPPED_HELP = (
    "Log lines dropped because an output of the log sink did not take them in time or "
    "failed, once per output (stdout, the log file) that lost the line."
)


def problems_name(namespace: str) -> str:
    """``<ns>_exporter_problems``."""
    return f"{namespace}_{c.SUFFIX_EXPORTER_PROBLEMS}"


def dropped_name(namespace: str) -> str:
    """``<ns>_log_lines_dropped_total`` (as exposed and queried)."""
    return f"{namespace}_{c.SUFFIX_LOG_LINES_DROPPED_TOTAL}"


class HealthCollector:
    """Single-process collector: this process's problems and dropped lines at each scrape.

    ``before`` runs first at each scrape (it must not raise): a check whose problem the
    same scrape then shows.
    """

    def __init__(self, namespace: str, before: Callable[[], None] | None = None) -> None:
        self._namespace = namespace
        self._before = before

    def describe(self) -> Iterator[Metric]:
        """The families, without a check: registering the collector must not run ``before``."""
        yield _local_gauge(self._namespace, {})
        name = dropped_name(self._namespace).removesuffix("_total")
        yield CounterMetricFamily(name, DROPPED_HELP, value=0)

    def collect(self) -> Iterator[Metric]:
        """Yield the problems gauge (every problem, 0 or 1) and the dropped-lines counter."""
        if self._before is not None:
            self._before()
        yield _local_gauge(self._namespace, health.problems())
        name = dropped_name(self._namespace).removesuffix("_total")
        yield CounterMetricFamily(name, DROPPED_HELP, value=health.dropped_lines())


class MultiprocessHealth:
    """This worker's health written to its multiprocess files, one per namespace and process.

    A change is written by a background thread, never by the reporting thread: a storage
    problem is reported while prometheus-client holds its (non-reentrant) lock.
    """

    _instances: ClassVar[dict[tuple[str, str], MultiprocessHealth]] = {}
    #: (namespace, directory) of every :meth:`of` call, also those whose instance could
    #: not be made (a storage that refuses the first write): their problems still merge.
    _asked: ClassVar[set[tuple[str, str]]] = set()
    _guard: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def of(cls, namespace: str, path: str) -> MultiprocessHealth:
        """The one instance of ``namespace`` writing below ``path`` in this process.

        Created and synced on first use: several exporters of one namespace (an app
        factory called twice) must not add their dropped lines twice.
        """
        key = (namespace, os.path.realpath(path))
        with cls._guard:
            cls._asked.add(key)
            series = cls._instances.get(key)
            if series is None:
                series = cls._instances[key] = cls(namespace)
        return series

    @classmethod
    def namespaces_under(cls, path: str) -> list[str]:
        """The namespaces whose health series this process writes below ``path`` (or
        was asked to: see ``_asked``), whatever string names that directory.

        Not :func:`limone_obs.exporter.workers.namespaces`: that one lists the live
        ``Metrics`` of the process (the workers family is computed from them at each
        scrape); a problem of the process belongs to every namespace whose series it
        writes here, its ``Metrics`` gone or not.
        """
        where = os.path.realpath(path)
        with cls._guard:
            return sorted({namespace for namespace, at in cls._asked if at == where})

    def __init__(self, namespace: str) -> None:
        # registry=None: the values reach scrapes through the files, not a registry.
        self._problems = Gauge(
            problems_name(namespace), PROBLEMS_HELP, [c.LABEL_PROBLEM],
            registry=None, multiprocess_mode="livemax",
        )  # fmt: skip
        name = dropped_name(namespace).removesuffix("_total")
        self._dropped = Counter(name, DROPPED_HELP, registry=None)
        self._written_dropped = 0
        self._wake = threading.Event()
        self._thread_pid = 0
        self._start_lock = threading.Lock()
        self.sync()
        health.subscribe(self.changed)
        os.register_at_fork(after_in_child=self._after_fork_in_child)

    def changed(self) -> None:
        """health listener: wake this process's writer thread (started on first use).

        Runs inside whatever the reporter holds (a log handler's lock, prometheus-client's
        value lock), so it neither blocks nor switches greenlets: the writer is started
        with ``_thread.start_new_thread``, which returns at once, where
        ``threading.Thread.start`` waits for the thread to run (under gevent a switch to
        another greenlet, which could then wait for good on the lock held here).
        """
        pid = os.getpid()
        if self._thread_pid != pid:  # none yet, or the one of the parent (fork)
            with self._start_lock:
                if self._thread_pid != pid:
                    self._wake = threading.Event()
                    _thread.start_new_thread(self._run, (self._wake,))
                    self._thread_pid = pid
        self._wake.set()

    def _after_fork_in_child(self) -> None:
        # The parent's other thread may have held the lock at the fork.
        self._start_lock = threading.Lock()

    def _run(self, wake: threading.Event) -> None:
        while True:
            wake.wait()
            wake.clear()
            try:
                self.sync()
            except Exception as exc:  # the writer must outlive one failed write
                _failsafe.report("the kit's health series", exc)

    def sync(self) -> None:
        """Write the current problems (0 or 1 each) and the new dropped lines."""
        current = health.problems()
        for problem in c.EXPORTER_PROBLEMS:
            self._problems.labels(problem).set(1.0 if problem in current else 0.0)
        dropped = health.dropped_lines()
        if dropped > self._written_dropped:
            self._dropped.inc(dropped - self._written_dropped)
        self._written_dropped = dropped


def families(namespace: str) -> list[Family]:
    """The two series as :class:`MultiprocessHealth` writes them to the files (what a
    scrape tells other metrics of the same names apart by, :mod:`.name_clash`)."""
    dropped = dropped_name(namespace).removesuffix("_total")
    return [
        Family(problems_name(namespace), "gauge", PROBLEMS_HELP, frozenset({c.LABEL_PROBLEM})),
        Family(dropped, "counter", DROPPED_HELP, frozenset()),
    ]


def merge_local_problems(families: Iterable[Metric], namespaces: list[str]) -> Iterator[Metric]:
    """Yield ``families`` with this process's own problems raised to 1 in the problems
    gauge of each of ``namespaces`` (a gauge of them that no file holds is added).

    The problems are the process's, not a namespace's (one storage, one log sink): each
    namespace's gauge shows them.
    """
    unseen = {problems_name(namespace): namespace for namespace in namespaces}
    local = health.problems()
    for family in families:
        if unseen.pop(family.name, None) is not None:
            family.samples = [_raised(sample, local) for sample in family.samples]
        yield family
    for namespace in unseen.values():
        yield _local_gauge(namespace, local)


def _raised(sample: Sample, local: dict[str, str]) -> Sample:
    if sample.labels.get(c.LABEL_PROBLEM) in local:
        return sample._replace(value=max(sample.value, 1.0))
    return sample


def _local_gauge(namespace: str, local: dict[str, str]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(problems_name(namespace), PROBLEMS_HELP, labels=[c.LABEL_PROBLEM])
    for problem in c.EXPORTER_PROBLEMS:
        gauge.add_metric([problem], 1.0 if problem in local else 0.0)
    return gauge


class WithLocalProblems:
    """Collector wrapper: ``inner``'s families with :func:`merge_local_problems` applied,
    for ``namespace`` and every other namespace this process writes below ``path`` (a
    scrape of one app's metrics path serves the file series of every app of the server)."""

    def __init__(self, inner: object, namespace: str, path: str) -> None:
        self._inner = inner
        self._namespace = namespace
        self._path = path

    def collect(self) -> Iterator[Metric]:
        """Yield the inner collector's families, this process's problems merged in."""
        families = self._inner.collect()  # type: ignore[attr-defined]
        namespaces = [self._namespace]
        for other in MultiprocessHealth.namespaces_under(self._path):
            if other not in namespaces:
                namespaces.append(other)
        yield from merge_local_problems(families, namespaces)


def catalogue_rows(namespace: str) -> list[str]:
    """The two series as rows of ``exporter/METRICS.md`` (type, labels and values, help)."""
    values = ", ".join(f"`{p}`" for p in c.EXPORTER_PROBLEMS)
    return [
        f"| `{problems_name(namespace)}` | gauge (livemax) | `{c.LABEL_PROBLEM}` ({values}) "
        f"| {PROBLEMS_HELP} |",
        f"| `{dropped_name(namespace)}` | counter |  | {DROPPED_HELP} |",
    ]


def attach(
    namespace: str,
    registry: CollectorRegistry,
    mp_dir: str | None,
    before: Callable[[], None] | None = None,
) -> None:
    """Expose the kit's health for an exporter: a collector (which calls ``before`` at
    each scrape), or this worker's file series.

    Never raises: the kit's health must not keep the app from starting.
    """
    if mp_dir is not None:
        try:
            MultiprocessHealth.of(namespace, mp_dir)
        except Exception as exc:
            _failsafe.report("the kit's health series", exc)
    else:
        registry.register(HealthCollector(namespace, before))
