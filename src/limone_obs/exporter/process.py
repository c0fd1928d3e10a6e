"""Process metrics of a gunicorn or uWSGI server (master + live workers), multiprocess mode.

prometheus-client's process collector describes one process, and a multiprocess scrape
merges every worker's files, so the exporter leaves it out there. This module brings the
series back for the whole server, read from Linux's ``/proc`` at scrape time by the
worker serving the scrape, with no ``pid`` label (recycled workers add no series):

- ``process_resident_memory_bytes`` and ``process_open_fds``: summed over the master and
  every live worker; ``process_worker_max_resident_memory_bytes`` and
  ``process_worker_max_open_fds``: the largest single worker;
  ``process_worker_sum_resident_memory_bytes``: the live workers alone, summed (over
  ``process_workers``, how many live workers were read: the mean per worker; a worker
  that exited and is not reaped yet, a zombie, is none);
- ``process_cpu_seconds_total``: the master's and live workers' CPU plus that of every
  worker the master has reaped (the kernel's ``cutime``/``cstime``), so it never goes
  down when a worker is recycled;
- ``python_gc_collections_total{generation}``: each process counts its own collections
  (a daemon thread adds them to a multiprocess counter every few seconds, and a worker
  exiting normally adds its last ones, so a retired worker's count is kept like any
  counter's; a killed worker loses those of its last few seconds). Under uWSGI without fork hooks
  (:mod:`limone_obs._forking`) a worker starts counting at the first scrape it answers.

The server is this process's parent and the parent's children when the process is a
gunicorn worker (its worker object names its master: pid 1 too, gunicorn as a
container's first process, where only children running the master's command count: pid
1 also adopts the container's orphans), or the parent and its workers under a uWSGI
master; under another server, the parent and its children that run this process's
command line, numbers aside, when it runs several (uvicorn or hypercorn ``--workers``) or
is one itself (a server forking per request: :func:`copies`); otherwise just this process.
A worker whose master died (SIGKILL: it was adopted by pid 1 or a subreaper, and a
gunicorn worker exits soon after) reads itself alone.
Single-process mode keeps prometheus-client's own collectors (see ``Metrics``).
"""

from __future__ import annotations

import atexit
import gc
import os
import re
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from limone_obs import _forking
from limone_obs import conventions as c
from limone_obs.exporter import _failsafe, _procfs, workers

if TYPE_CHECKING:
    from limone_obs.exporter.extension import Metrics

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: Seconds between two flushes of this process's GC counts.
GC_FLUSH_SECONDS = 5.0


@dataclass(frozen=True)
class ProcStat:
    """What ``/proc/<pid>`` says about one process."""

    cpu: float  # own user + system seconds
    children_cpu: float  # seconds of reaped children
    rss: float  # bytes
    fds: float
    #: False for a zombie: a worker that exited and its master has not reaped yet. Its CPU
    #: seconds still count (they move to the master's ``cutime`` only once it is reaped),
    #: but it holds no memory or descriptors and serves nothing: no live worker.
    live: bool = True


def read_stat(pid: int) -> ProcStat | None:
    """Read ``/proc/<pid>/stat`` and count ``/proc/<pid>/fd``; None if the process is gone."""
    fields = _procfs.stat_fields(pid)
    if fields is None:
        return None
    try:
        fds = float(len(os.listdir(f"/proc/{pid}/fd")))
    except OSError:  # a zombie or another user's process
        fds = 0.0
    return ProcStat(
        cpu=(int(fields[11]) + int(fields[12])) / _TICKS,
        children_cpu=(int(fields[13]) + int(fields[14])) / _TICKS,
        rss=float(int(fields[21]) * _PAGE),
        fds=fds,
        live=not _procfs.zombie(fields),
    )


def children(pid: int) -> list[int]:
    """Child pids of ``pid`` (the kernel's list, or a scan of /proc where it is missing)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _procfs.stat_fields(entry)
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry))
    return found


def started(pid: int) -> float | None:
    """Unix time process ``pid`` started (Linux ``/proc``), to a clock tick, or None when
    unknown. /proc gives the start in ticks since boot: it is placed by its distance from
    now on the same clock (boot time plus ticks would be off by up to a second: the boot
    time is in whole seconds)."""
    fields = _procfs.stat_fields(pid)
    boot_clock = getattr(time, "CLOCK_BOOTTIME", None)
    try:
        ticks = int(fields[19]) if fields is not None else None  # field 22: starttime
    except (ValueError, IndexError):
        return None
    if ticks is None or boot_clock is None:
        return None
    return time.time() - (time.clock_gettime(boot_clock) - ticks / _TICKS)


def server_pids() -> tuple[int | None, Callable[[], list[int]]]:
    """(master pid or None, a function listing the live worker pids) of this process's
    server; without a known master the list is this process alone (also once the master
    has died: see :func:`_orphaned`)."""
    me, parent = os.getpid(), os.getppid()
    if _orphaned(me, parent):
        return None, lambda: [me]
    if "gunicorn" in sys.modules and _under_gunicorn(me, parent):
        return parent, partial(gunicorn_workers, parent)
    # No ``parent > 1`` here: a uWSGI master is often a container's pid 1.
    if "uwsgi" in sys.modules and me in _uwsgi_workers(parent):
        return parent, partial(_uwsgi_workers, parent)
    found = copies()
    if found is not None and found[0] is not None:
        return parent, partial(_copies_of, parent, _program(_cmdline(me)))
    return None, lambda: [me]


#: Numbers in a command line: workers a server spawned differ only in them (uvicorn's and
#: hypercorn's ``spawn_main(tracker_fd=5, pipe_handle=11)``).
_NUMBERS = re.compile(rb"[0-9]+")


def _program(cmdline: bytes | None) -> bytes | None:
    """``cmdline`` with its numbers blanked (None, or empty for a zombie: None)."""
    return _NUMBERS.sub(b"#", cmdline) if cmdline else None


def _copies_of(parent: int, program: bytes | None) -> list[int]:
    """The children of ``parent`` that run ``program`` (see :func:`_program`)."""
    if program is None:
        return []
    return [pid for pid in children(parent) if _program(_cmdline(pid)) == program]


def copies() -> tuple[int | None, list[int]] | None:
    """This process's server when the kit does not know it by name, from /proc.

    ``(parent, workers)`` when the parent runs several copies of this process, or is one
    itself (a server forking per request): ``workers`` are the parent's children running
    this process's command line, numbers aside (uvicorn or hypercorn ``--workers``), this
    one included. ``(None, [this pid])`` when it is alone, None when /proc cannot tell.
    """
    me, parent = os.getpid(), os.getppid()
    program = _program(_cmdline(me))
    if program is None:
        return None
    if parent <= 0:  # pid 1 itself, a container's first process: no parent to share
        return None, [me]
    try:
        workers = _copies_of(parent, program)
    except OSError:
        return None
    if me not in workers:  # /proc without this process among its parent's children
        return None
    if len(workers) > 1 or _program(_cmdline(parent)) == program:
        return parent, workers
    return None, [me]


#: ``(pid, parent pid)`` of this process when it first read its server (a fork has
#: another pid, so it records its own).
_first_parent: tuple[int, int] | None = None


def _orphaned(me: int, parent: int) -> bool:
    """True when this process's server master has died (killed with SIGKILL): its
    parent is not the one it had, but pid 1 or a subreaper that adopted it, whose other
    children are no workers of it and whose CPU time is no server's (a trial read pid 1's
    as the master's: 49,000 CPU seconds). A gunicorn worker knows its master's pid from
    the start; another process compares with its parent at its first read."""
    global _first_parent  # noqa: PLW0603 - one record per process
    worker = workers.gunicorn_worker() if "gunicorn" in sys.modules else None
    if worker is not None and isinstance(getattr(worker, "ppid", None), int):
        return bool(worker.ppid != parent)
    first = _first_parent
    if first is None or first[0] != me:
        _first_parent = (me, parent)
        return False
    return first[1] != parent


def _under_gunicorn(me: int, parent: int) -> bool:
    """True if ``parent`` is the gunicorn master of this worker process.

    The worker object knows its master's pid, whatever it is (1 where gunicorn is a
    container's first process). Without one (a worker class that handles SIGQUIT some
    other way) the parent must be no pid 1: the children of an init process are not a
    server's workers.
    """
    worker = workers.gunicorn_worker()
    if worker is not None:
        return bool(getattr(worker, "ppid", None) == parent)
    return parent > 1 and me in children(parent)


def gunicorn_workers(master: int) -> list[int]:
    """The live workers of gunicorn master ``master``: its children.

    As pid 1 (a container's first process) the master also adopts every orphan of the
    container (a background job an app started); then only the children that run what
    the master runs count: the same command line, or a gunicorn process title
    (``gunicorn: worker [...]`` where setproctitle is installed).
    """
    found = children(master)
    if master != 1:
        return found
    own = _cmdline(master)
    return [pid for pid in found if _same_server(_cmdline(pid), own)]


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None


def _same_server(cmdline: bytes | None, master: bytes | None) -> bool:
    if not cmdline or not master:
        return False
    titled = b"gunicorn: "
    return cmdline == master or (cmdline.startswith(titled) and master.startswith(titled))


def _uwsgi_workers(master: int) -> list[int]:
    """The live workers of uWSGI master ``master``; empty when this is not one.

    Its worker table, not all its children: the master also runs an HTTP router, mules
    and spoolers, which are no workers. Only pids that are still its children count (the
    table keeps the pid of a worker that is being respawned).
    """
    uwsgi = sys.modules["uwsgi"]
    try:
        if master <= 0 or uwsgi.masterpid() != master:
            return []
        table = {int(worker["pid"]) for worker in uwsgi.workers()}
    except Exception:  # another module called uwsgi, or an older one: not uWSGI's master
        return []
    return [pid for pid in children(master) if pid in table]


class ServerProcessCollector:
    """Yields the server-wide process series described in the module docstring."""

    def describe(self) -> list[Metric]:
        return []  # dynamic: no names claimed, so no clash with another registry's

    def collect(self) -> Iterator[Metric]:
        try:
            master, workers = server_pids()
            found = families(master, workers)
        except Exception as exc:  # /proc trouble must not fail the whole scrape
            _failsafe.report("process metrics", exc)
            return
        # Starts counting in a worker forked without Python's fork hooks, which
        # register() left alone (see there), and adds the latest collections.
        _GC.flush_safely(start=True)
        yield from found


def families(master: int | None, workers: Callable[[], list[int]]) -> list[Metric]:
    """The process series of master ``master`` (None: no master) and the workers that
    ``workers()`` lists, read now (see the module docstring)."""
    read, top = _snapshot(master, workers)
    # CPU from every worker read, exited ones too (see ProcStat.live); the rest from
    # the live ones alone, so an exited worker does not pull the mean per worker down.
    cpu = sum(s.cpu for s in read) + (top.cpu + top.children_cpu if top is not None else 0.0)
    stats = [s for s in read if s.live]
    every = [*stats, top] if top is not None else stats
    return [
        _counter(c.SERIES_PROCESS_CPU, "CPU seconds of the master and every worker, "
                 "retired workers included.", cpu),
        _gauge(c.SERIES_PROCESS_MEMORY, "Resident memory of the master and the live "
               "workers, summed, in bytes.", sum(s.rss for s in every)),
        _gauge(c.SERIES_PROCESS_FDS, "Open file descriptors of the master and the live "
               "workers, summed.", sum(s.fds for s in every)),
        _gauge(c.SERIES_PROCESS_WORKER_MAX_MEMORY, "Resident memory of the largest live "
               "worker, in bytes.", max((s.rss for s in stats), default=0.0)),
        _gauge(c.SERIES_PROCESS_WORKER_SUM_MEMORY, "Resident memory of the live workers, "
               "summed (the master left out), in bytes.", sum(s.rss for s in stats)),
        _gauge(c.SERIES_PROCESS_WORKER_MAX_FDS, "Open file descriptors of the live worker "
               "holding most.", max((s.fds for s in stats), default=0.0)),
        _gauge(c.SERIES_PROCESS_WORKERS, "Live workers read for the process series.",
               float(len(stats))),
    ]  # fmt: skip


#: Reads of the server's processes tried before taking one that raced with a reap.
_ATTEMPTS = 5


def _snapshot(
    master: int | None, workers: Callable[[], list[int]]
) -> tuple[list[ProcStat], ProcStat | None]:
    """The stats of the workers ``workers()`` lists and of the master, consistent with
    one another.

    A worker reaped while the workers are read would count twice (its own times, then in
    the master's ``cutime``) or not at all, and CPU seconds would go down at the next
    scrape. So the master is read before and after the workers and the read is repeated
    while its reaped-children time changed in between.
    """
    for _ in range(_ATTEMPTS):
        before = read_stat(master) if master is not None else None
        stats = [s for s in map(read_stat, workers()) if s is not None]
        after = read_stat(master) if master is not None else None
        if before is None or after is None or before.children_cpu == after.children_cpu:
            return stats, after
    return stats, after


def _counter(name: str, text: str, value: float) -> Metric:
    # prometheus-client's family appends _total to the sample name itself.
    return CounterMetricFamily(name.removesuffix("_total"), text, value=value)


def _gauge(name: str, text: str, value: float) -> Metric:
    return GaugeMetricFamily(name, text, value=value)


class _GcCounts:
    """Adds this process's new GC collections to a multiprocess counter, per generation.

    Never from a ``gc.callbacks`` hook: a collection may start while this thread holds
    prometheus-client's value lock, and taking it again there would deadlock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counter: Any = None
        self._seen: list[int] = []
        #: True from start() until the first flush of this process.
        self._fresh = False
        self._pid = 0

    def start(self) -> None:
        """Start counting in this process (once; again in each forked child)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            if self._counter is None:
                name = c.SERIES_GC_COLLECTIONS.removesuffix("_total")
                text = "Garbage collections of the server's processes, by generation."
                labels = (c.LABEL_GC_GENERATION,)
                self._counter = Counter(name, text, labels, registry=None)
                # Hold the lock across fork(): a flush in progress could otherwise leave
                # prometheus-client's value lock taken in the child (a preloaded master
                # forking its workers), and the child's first metric write would hang.
                os.register_at_fork(
                    before=self._lock_for_fork,
                    after_in_parent=self._unlock_after_fork,
                    after_in_child=self._forked,
                )
                # A worker recycled (max_requests) or stopped between two flushes adds
                # its last collections as it exits; forked children inherit the hook.
                atexit.register(self.flush_safely)
            self._pid = os.getpid()
            self._seen = [s["collections"] for s in gc.get_stats()]
            self._fresh = True
        threading.Thread(target=self._run, name="limone-obs-gc", daemon=True).start()

    def _lock_for_fork(self) -> None:
        self._lock.acquire()

    def _unlock_after_fork(self) -> None:
        self._lock.release()

    def _forked(self) -> None:
        self._lock = threading.Lock()  # the parent's is held (see start): start afresh
        self._pid = 0
        self.start()

    def flush(self) -> None:
        """Add the collections since the last flush (no-op before :meth:`start`)."""
        with self._lock:
            if self._counter is None or self._pid != os.getpid():
                return
            now = [s["collections"] for s in gc.get_stats()]
            for generation, (new, old) in enumerate(zip(now, self._seen, strict=False)):
                # The first flush of a process writes every generation, 0 included: a
                # series exists from the start (not only after its first collection, as
                # generation 2 may take a long while), and rate() counts from there.
                if new > old or self._fresh:
                    self._counter.labels(str(generation)).inc(new - old)
            self._seen, self._fresh = now, False

    def flush_safely(self, *, start: bool = False) -> None:
        """:meth:`flush` (after :meth:`start` if ``start``), a failure reported instead of
        raised: a write to the worker's files that fails must neither fail the scrape nor
        stop the counting thread, nor print a traceback at exit."""
        try:
            if start:
                self.start()
            self.flush()
        except Exception as exc:
            _failsafe.report("GC counting", exc)

    def _run(self) -> None:
        pid = os.getpid()
        event = threading.Event()
        while self._pid == pid and not event.wait(GC_FLUSH_SECONDS):
            self.flush_safely()


_GC = _GcCounts()
_registered: weakref.WeakSet[Metrics] = weakref.WeakSet()


def register(metrics: Metrics) -> None:
    """Add the server's process series to ``metrics``' scrape (multiprocess mode only)."""
    if not metrics.multiprocess or metrics in _registered:
        return
    _registered.add(metrics)
    metrics.exposition_registry().register(ServerProcessCollector())
    if _forking.unhooked_fork() is None:
        # Guarded: the GC counts must not keep the app from starting (the flush right
        # after the start has nothing to add).
        _GC.flush_safely(start=True)
    # Else the process is about to be forked without the hooks that restart the counting
    # thread in each worker (and that keep its lock from being copied while held): each
    # worker starts counting at the first scrape it answers (ServerProcessCollector).
