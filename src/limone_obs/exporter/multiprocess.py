"""prometheus-client multiprocess mode for gunicorn (``PROMETHEUS_MULTIPROC_DIR``).

Each worker writes its samples to memory-mapped files in the directory; a scrape of any
worker reads them all (:class:`~limone_obs.exporter._mp_collector.FlatCollector`, the
same samples as prometheus-client's ``MultiProcessCollector`` at a flat cost).
:func:`child_exit` is the gunicorn hook that merges a dead worker's files into the
compaction archive (:mod:`limone_obs.exporter.compaction`), so scrape time does not grow
with worker churn; :func:`claim_directory` makes the directory one server's, and
:func:`clear_directory` removes what a stopped server leaves (``limone_obs.gunicorn_conf``
wires all three). The files' space is reserved as they grow
(:mod:`~limone_obs.exporter._mp_reserved`), so a full disk is reported, not a SIGBUS.

A multi-process server without the directory is reported loudly
(:func:`check_server`, :func:`check_environ`): each scrape would show one worker's
counts, a silent wrong number.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from limone_obs import conventions as c
from limone_obs import health
from limone_obs.errors import ConfigError
from limone_obs.exporter import (
    _failsafe,
    _mp_files,
    _mp_reserved,
    _procfs,
    compaction,
    fast_path,
    health_series,
    merge_rules,
    name_clash,
)
from limone_obs.exporter._mp_collector import FlatCollector
from limone_obs.exporter.name_clash import OwnSeries

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
#: Lock file of the server that owns a directory (holds its master's pid, under flock).
SERVER_LOCK = "limone_server.lock"
logger = logging.getLogger("limone_obs.exporter")
#: Directories this process owns (realpath -> the locked descriptor): a reload keeps them.
_claims: dict[str, int] = {}
# Every multiprocess file created from now on reserves its space (see _mp_reserved).
_mp_reserved.install()


def multiprocess_dir() -> str | None:
    """Return the multiprocess directory from the environment, or None in single-process mode.

    Raises ConfigError when the variable names a directory that does not exist, since
    prometheus-client would otherwise fail inside the first request.
    """
    path = os.environ.get(ENV_VAR) or os.environ.get(ENV_VAR.lower())
    if not path:
        return None
    if not os.path.isdir(path):
        raise ConfigError(
            f"{ENV_VAR}={path!r} is not a directory: create it (empty) before the server "
            "starts, or unset the variable for single-process mode"
        )
    if values.ValueClass is values.MutexValue:
        # prometheus-client picks its value storage once, at import time.
        raise ConfigError(_set_too_late(path))
    return path


def _set_too_late(path: str) -> str:
    """Why the variable, set to ``path`` after prometheus-client's import, cannot be used:
    the kit's gunicorn config imported in a process that is no server (a test loading
    it) sets it too, and the usual advice (import that config first) would mislead."""
    conf = sys.modules.get("limone_obs.gunicorn_conf")
    if conf is not None and getattr(conf, "_default_dir", None) == path:
        return (
            f"{ENV_VAR}={path!r} was set by importing limone_obs.gunicorn_conf in this "
            "process after prometheus_client was imported: that module is gunicorn's "
            "config, for the server's processes. A process that only reads it (a test "
            "loading the app's gunicorn config) gets the variable without multiprocess "
            "storage: read the config in a subprocess, or remove the variable again "
            f"(os.environ.pop({ENV_VAR!r})) before creating Metrics"
        )
    return (
        f"{ENV_VAR} was set after prometheus_client was imported, so this process "
        "keeps its samples in memory and scrapes would miss them: set the variable "
        "before the app (or gunicorn.conf.py) imports anything from prometheus_client "
        "(in a gunicorn config of your own, make `from limone_obs.gunicorn_conf import "
        "*` its first import: it sets the variable)"
    )


def exposition_registry(
    path: str,
    fast: bool = True,
    namespace: str = c.DEFAULT_NAMESPACE,
    before: Callable[[], object] | None = None,
    *,
    retire_dead: bool = False,
    own: Callable[[], OwnSeries] | None = None,
) -> CollectorRegistry:
    """Return a registry that reads every worker's files below ``path`` at each scrape.

    ``fast`` (the fast path is on): the flat collector, which also reads the compaction
    archive; else prometheus-client's own ``MultiProcessCollector``. This process's own
    problems are merged in (``<namespace>_exporter_problems``, and that of every other
    namespace it writes below ``path``): a worker whose storage is full cannot write them
    to its files. Each scrape first calls ``before`` (it must not raise), then, if
    ``retire_dead``, drops the live gauges of processes that are gone
    (:func:`retire_dead_live`: for a server's own directory, not files copied elsewhere).
    ``own`` returns the kit's series: both collectors then leave out, and report, the
    samples of other metrics stored under their names (:mod:`.name_clash`).
    """
    # No auto_describe: it would collect (read every worker's files) at registration, i.e.
    # while a worker boots, where a file another worker is creating (still 0 bytes) made
    # prometheus-client's reader raise and gunicorn stop the whole server.
    registry = CollectorRegistry(auto_describe=False)
    if before is not None or retire_dead:
        registry.register(_BeforeScrape(path, before, retire_dead))
    files: Any = FlatCollector(path, own) if fast else StartedFilesCollector(path, own)
    registry.register(health_series.WithLocalProblems(files, namespace, path))
    return registry


class _BeforeScrape:
    """A collector of no samples, first in the scrape: prepares what the others read."""

    def __init__(self, path: str, before: Callable[[], object] | None, retire: bool) -> None:
        self._path = path
        self._before = before
        self._retire = retire

    def collect(self) -> Iterable[Metric]:
        if self._before is not None:
            self._before()
        if not self._retire:
            return ()
        try:
            retire_dead_live(self._path)
        except OSError as exc:  # the files stay and are read as before: never fail a scrape
            logger.warning("limone-obs: could not drop dead processes' live gauges: %s", exc)
        return ()


def retire_dead_live(path: str) -> int:
    """Remove the live-gauge files (``gauge_live*_<pid>.db``) of processes that are gone;
    return how many.

    What prometheus-client's ``mark_process_dead`` does from a server's worker-exit hook
    (ours compacts, see :func:`child_exit`), done at scrape time so that a server run
    without that hook (gunicorn with a config of your own, uWSGI) does not keep counting a
    dead worker's requests in flight and request slots. Under the compaction lock, so no
    scrape reads a file while it goes.
    """
    dead = [
        name
        for name in os.listdir(path)
        if (parts := merge_rules.split_name(name)) is not None
        and parts[0] in merge_rules.LIVE_PREFIXES
        and parts[1].isdigit()
        and not compaction.running(int(parts[1]))
    ]
    if not dead:
        return 0
    with compaction.locked(path, exclusive=True):
        for name in dead:
            with contextlib.suppress(FileNotFoundError):  # another scrape was first
                os.remove(os.path.join(path, name))
    return len(dead)


class StartedFilesCollector:
    """prometheus-client's ``MultiProcessCollector`` over the files past their creation.

    The public-API path's collector. A worker's file is empty for a moment between its
    creation and its sizing; prometheus-client's reader raises on it, which answers the
    whole scrape with a 500. Such a file holds no samples yet, so it is left out, as the
    flat collector does. A file removed between listing and reading (a worker's files
    retired at its exit) makes the scrape list the directory once more. With ``own`` (the
    kit's series), the samples of other metrics under their names are left out and
    reported, as the flat collector does (:mod:`.name_clash`).
    """

    def __init__(self, path: str, own: Callable[[], OwnSeries] | None = None) -> None:
        self.path = path
        self._foreign = name_clash.ForeignKeyTexts(own) if own is not None else None
        # One scrape at a time, as FlatCollector: the foreign-key check keeps a cache.
        self._lock = threading.Lock()

    def collect(self) -> Iterable[Metric]:
        """The merged families of every started file (a prometheus-client collector)."""
        with self._lock:
            try:
                return self._merge()
            except FileNotFoundError:  # retired between listing and reading: list again
                return self._merge()

    def _merge(self) -> Iterable[Metric]:
        files = [f for f in glob.glob(os.path.join(self.path, "*.db")) if started(f)]
        merged = _merged(files)
        if self._foreign is None:
            return merged
        try:
            return _without_foreign(self._foreign, files, merged)
        except Exception as exc:  # a prometheus-client whose file class changed: serve, say so
            _failsafe.report("the check for other metrics under the kit's series names", exc)
            return merged


def _without_foreign(
    foreign: name_clash.ForeignKeyTexts, files: list[str], merged: Iterable[Metric]
) -> Iterable[Metric]:
    """``merged`` (prometheus-client's merge of ``files``) without the samples of other
    metrics under the kit's series names, which are reported."""
    # Read after the merge: files only grow, so no foreign key now means none merged.
    clashes = foreign.in_files(files)
    if not clashes:
        return merged
    name_clash.report(clashes, foreign.namespace)
    # prometheus-client merges by family name: merge copies without the foreign keys.
    with tempfile.TemporaryDirectory(prefix="limone-obs-") as folder:
        copies = (foreign.copy_without(f, folder) for f in files)
        return _merged([copy for copy in copies if copy is not None])


def _merged(files: list[str]) -> Iterable[Metric]:
    """prometheus-client's merge of ``files`` (done when it returns)."""
    merged: Iterable[Metric] = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
    return merged


def started(filename: str) -> bool:
    """True once ``filename`` is longer than its header (False if it is gone)."""
    try:
        # Shorter than the header (its used-bytes count): just created, no samples yet.
        return os.stat(filename).st_size >= _mp_files.HEADER_BYTES
    except FileNotFoundError:
        return False


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn ``child_exit`` hook (runs in the master): retire the dead worker's files.

    Its counters, histograms and non-live gauges go into the archive, its live gauges are
    dropped. With the fast path off (:mod:`.fast_path`) only its live gauges are removed,
    as prometheus-client's ``mark_process_dead`` does: its other files stay and are read.
    Files of other dead processes left by an earlier failure are retired too.
    A failure is logged and leaves the files in place, where scrapes still count them.
    """
    try:
        path = multiprocess_dir()
        if path is not None and not fast_path.enabled():
            mark_process_dead(worker.pid, path)  # type: ignore[no-untyped-call]
        elif path is not None:
            live = set(getattr(server, "WORKERS", None) or ()) - {worker.pid}
            compaction.compact(path, compaction.dead_pids(path, live) | {worker.pid})
    except Exception as exc:  # a metrics hook must never take the gunicorn master down
        log = getattr(server, "log", None)
        if log is not None:
            log.error("limone-obs: could not compact the files of worker %s: %s", worker.pid, exc)


def claim_directory(path: str) -> None:
    """Make ``path`` this server's multiprocess directory; clear what dead processes left.

    Creates the directory if needed and holds an exclusive ``flock`` on its
    ``limone_server.lock`` (holding this master's pid) for the master's life; forked
    workers share the lock, so it is free only when the whole server is gone. Then the
    files of processes that are no longer running and the archive of an earlier run are
    removed; files of running processes are kept. Calling it again in the same process
    (gunicorn reloads its config on SIGHUP) does nothing. A new master started by the
    running one (gunicorn's USR2 upgrade) shares its parent's directory, clears nothing,
    and takes the lock over (a background thread waits for it) once the old server is gone.

    Raises ConfigError when the directory cannot be created or written, or when another
    live server holds it: two servers on one directory would delete and mix each other's
    samples.
    """
    real = os.path.realpath(path)
    if real in _claims:
        return
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _read_pid(fd)
        os.close(fd)
        if owner is not None and owner == os.getppid():
            _take_over_later(path)  # our parent master hands over to us (USR2)
            return
        raise ConfigError(_in_use(path, owner)) from None
    _own(fd, real)
    try:
        _say_cleared(path, _clear_dead(path))
    except OSError as exc:
        raise ConfigError(
            f"{ENV_VAR}={path!r}: the files an earlier server left there cannot be removed "
            f"({exc.strerror or exc}: {exc.filename}); they would add to this server's "
            "counts. Empty the directory, or use another one"
        ) from None


def _in_use(path: str, owner: int | None) -> str:
    """Why ``path`` cannot be claimed: the server of master ``owner`` holds its lock."""
    if owner is not None and not compaction.running(owner):
        # Its workers share the lock: a master killed alone leaves them holding it.
        return (
            f"{ENV_VAR}={path!r} is still held by processes of a server whose master (pid "
            f"{owner}) has exited: its workers, orphaned, run until they notice (a gunicorn "
            "worker within about half its timeout: 30 s under the kit's config). Wait for "
            "them to exit (or stop them) and start again; two servers on one directory "
            "delete and mix each other's samples"
        )
    return (
        f"{ENV_VAR}={path!r} is in use by another running server (master pid "
        f"{owner if owner is not None else 'unknown'}): two servers on one directory "
        "delete and mix each other's samples. Give each server its own directory "
        f"(e.g. {ENV_VAR}=/dev/shm/<service>-<port>) or stop the other server first"
    )


def _own(fd: int, real: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _claims[real] = fd


def _take_over_later(path: str) -> None:
    """Wait (in a daemon thread) for the old server's lock, then hold it as our own."""
    real = os.path.realpath(path)
    fd = _open_lock(path)

    def wait() -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _own(fd, real)

    threading.Thread(target=wait, name="limone-obs-directory", daemon=True).start()


def remove_abandoned(base: str, prefix: str) -> list[str]:
    """Remove the directories ``<base>/<prefix><pid>`` that servers killed before they
    could remove them left behind (``kill -9``: on ``/dev/shm`` they hold RAM until the
    machine restarts); return their paths.

    A directory goes only when its pid is no running process and no process holds its
    lock (a server's workers hold it until the last one exits). Others' directories that
    cannot be read or removed (another user's) are left as they are; never raises.
    """
    removed = []
    with contextlib.suppress(OSError):
        for name in os.listdir(base):
            pid = name[len(prefix) :] if name.startswith(prefix) else ""
            path = os.path.join(base, name)
            if pid.isdigit() and not compaction.running(int(pid)) and _lock_free(path):
                shutil.rmtree(path, ignore_errors=True)
                if not os.path.exists(path):
                    removed.append(path)
    return removed


def _lock_free(path: str) -> bool:
    """True if directory ``path`` has a server lock (it is a server's directory: nothing
    else is touched) and no process holds it."""
    return _lock_state(path) is False


def _lock_held(path: str) -> bool:
    """True if a process holds the server lock of directory ``path`` (a live server of
    the kit's config: its master, or its workers, which share the master's lock)."""
    return _lock_state(path) is True


def _lock_state(path: str) -> bool | None:
    """Whether a process holds the server lock of directory ``path``; None without a lock
    file. Tested with a shared lock, released at once."""
    try:
        fd = os.open(os.path.join(path, SERVER_LOCK), os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases the lock if it was taken
    return False


def handing_over(server: Any) -> bool:
    """True when a gunicorn master exits because a new one took over (USR2 upgrade)."""
    return bool(getattr(server, "reexec_pid", 0))


def _open_lock(path: str) -> int:
    try:
        os.makedirs(path, exist_ok=True)
        return os.open(os.path.join(path, SERVER_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(
            f"{ENV_VAR}={path!r} cannot be used ({exc.strerror or exc}): the workers "
            "write their samples there. Point it at a writable directory (e.g. on "
            "/dev/shm), or create it with write access for this user"
        ) from None


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def _clear_dead(path: str, *, exiting: bool = False) -> list[str]:
    """Remove files of processes not running, and the archive of an earlier run; return
    the names removed.

    ``exiting``: this process (the master, at its exit) counts as gone too; it has files
    of its own when the app was preloaded.
    """
    dead = {str(pid) for pid in compaction.dead_pids(path, ())}
    if exiting:
        dead.add(str(os.getpid()))
    removed = []
    for name in os.listdir(path):
        parts = merge_rules.split_name(name)
        stale_archive = name.startswith(compaction.ARCHIVE)
        if stale_archive or (parts is not None and parts[1] in dead):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(path, name))
                removed.append(name)
    return removed


def _say_cleared(path: str, removed: list[str]) -> None:
    """One line when a server's start removed what an earlier one left (it was killed
    with SIGKILL, or stopped without the kit's exit hook): its counts start from zero, and
    an operator looking at that reset has the line to match it with."""
    if not removed:
        return
    pids = {parts[1] for name in removed if (parts := merge_rules.split_name(name)) is not None}
    logger.warning(
        "limone-obs: %s=%r held %d file(s) of %d process(es) that are no longer running "
        "(e.g. %s), left by an earlier server (killed, or stopped without the kit's exit "
        "hook): removed, so this server's counts start from zero.",
        ENV_VAR,
        path,
        len(removed),
        len(pids),
        sorted(removed)[0],
    )


def clear_directory(path: str) -> None:
    """gunicorn ``on_exit`` (master, every worker gone): remove this server's files.

    The samples of a stopped server are served by no one, and its next start would clear
    them: removing them now leaves no orphaned files (also when a full disk kept the last
    compaction from finishing). Only when this process owns the directory.
    """
    fd = _claims.pop(os.path.realpath(path), None)
    if fd is None:
        return
    _clear_dead(path, exiting=True)
    for name in (compaction.LOCK, SERVER_LOCK):
        with contextlib.suppress(OSError):
            os.remove(os.path.join(path, name))
    os.close(fd)


#: Seconds a leftover file must predate its server's start: the start is known to a
#: clock tick (see ``process.started``), a file's change time to the kernel's coarse
#: clock (a few milliseconds).
LEFTOVER_SLACK = 0.5


def leftover_files(path: str, started: float) -> list[str]:
    """Sample files below ``path`` (and an archive) of processes that are gone, last
    changed before ``started`` (Unix time): what a server stopped before this one left.

    A file's change time moves when it is created or grows, never by a sample write; a
    worker of this server that died (recycled) created its files after ``started``.
    """
    dead = {str(pid) for pid in compaction.dead_pids(path, ())}
    found = []
    for name in sorted(os.listdir(path)):
        parts = merge_rules.split_name(name)
        if not name.startswith(compaction.ARCHIVE) and (parts is None or parts[1] not in dead):
            continue
        try:
            changed = os.stat(os.path.join(path, name)).st_ctime
        except FileNotFoundError:
            continue  # retired meanwhile
        if changed < started - LEFTOVER_SLACK:
            found.append(name)
    return found


def check_leftovers(path: str, started: float | None) -> None:
    """In a server's worker: report files of an earlier server in ``path`` (once per
    process: a log line and the problem series); never raises. ``started``: when this
    server started (Unix time: its master's start, see ``process.started``); None (not
    known) checks nothing.

    They are summed into every scrape of this server, silently, when nothing cleared the
    directory at start (the kit's gunicorn config does: a directory whose lock a live
    server holds is left alone, since a gunicorn upgrade (USR2) continues the old
    server's counts there on purpose; a lock file no process holds is what a server
    killed with SIGKILL left, and is no reason to look away).
    """
    if started is None or _lock_held(path):
        return
    try:
        leftovers = leftover_files(path, started)
    except OSError:
        return  # the directory went away: the storage's own checks say so
    if not leftovers:
        return
    message = (
        f"limone-obs: {ENV_VAR}={path!r} holds {len(leftovers)} file(s) of processes that "
        f"ended before this server started (e.g. {leftovers[0]}): their counts are added "
        "to this server's in every scrape. Empty the directory before each start "
        f"(rm -rf {path} && mkdir {path}), or start gunicorn with the kit's config "
        f"(-c python:{c.GUNICORN_CONFIG_MODULE}), which clears it"
    )
    if health.report_problem(c.PROBLEM_MULTIPROCESS_LEFTOVERS, message):
        logger.error(message)


#: Dead workers whose files a worker may find at its first request while the kit's
#: ``child_exit`` runs: the master reaps one exited worker and retires its files before
#: it reaps the next, so at most one is reaped and not yet retired (those not reaped
#: yet, zombies of the master, are not counted: see :func:`unretired`).
UNRETIRED_ALLOWED = 1
_KIT_CONFIG = c.GUNICORN_CONFIG_MODULE


def compacting() -> bool:
    """Whether this process runs under the kit's gunicorn config with compaction on (its
    ``child_exit`` merges exited workers' files into the archive)."""
    return _KIT_CONFIG in sys.modules and fast_path.enabled()


def check_retiring(path: str) -> None:
    """In a gunicorn worker: report (once per process) dead workers' files that nothing
    retired. Under the kit's config, the sign that a config of the app's own replaced
    its ``child_exit`` hook; without it, nothing retires them (prometheus-client keeps
    them all). Counts stay exact, but every recycled worker leaves its files (about 230
    KiB) until the directory's filesystem is full, and every scrape reads them. Never
    raises. Nothing is checked with the fast path off (the kit's ``child_exit`` keeps
    dead workers' files on purpose there) or under another server (uWSGI has no such
    hook)."""
    if not fast_path.enabled() or "gunicorn" not in sys.modules:
        return
    try:
        dead = unretired(path, os.getppid())
    except OSError:
        return  # the directory went away: the storage's own checks say so
    if len(dead) <= UNRETIRED_ALLOWED:
        return
    why = (
        "the kit's child_exit hook, which retires them, does not run (a gunicorn config of "
        "your own defines child_exit)"
        if _KIT_CONFIG in sys.modules
        else "nothing retires them (gunicorn runs without the kit's config, whose "
        "child_exit merges them; prometheus-client alone keeps them all)"
    )
    message = (
        f"limone-obs: {ENV_VAR}={path!r} holds the files of {len(dead)} workers that have "
        f"exited: {why}. Counts stay exact, but the directory grows with every recycled "
        "worker and every scrape reads it. Start gunicorn with "
        f"-c python:{_KIT_CONFIG}, or call the kit's hook from your config's child_exit: "
        f"{_KIT_CONFIG}.child_exit(server, worker)"
    )
    if health.report_problem(c.PROBLEM_MULTIPROCESS_LEFTOVERS, message):
        logger.error(message)


def unretired(path: str, master: int) -> set[int]:
    """The pids of exited processes whose files are in ``path`` with nothing retiring them
    now, as a worker of ``master`` sees them.

    Not counted: exited workers that ``master`` has not reaped yet (zombies: a reload or
    several recycled workers leave a few at once, and its ``child_exit`` retires each one
    when it reaps it), and those retired while this looked (their files are gone when the
    directory is listed again). Raises OSError when the directory cannot be listed.
    """
    dead = {pid for pid in compaction.dead_pids(path, ()) if not _reaped_by(pid, master)}
    return dead & compaction.file_pids(path) if dead else dead


def _reaped_by(pid: int, master: int) -> bool:
    """True if ``pid`` is a zombie child of ``master``: its exit is still to be reaped."""
    fields = _procfs.stat_fields(pid)
    return fields is not None and _procfs.zombie(fields) and _procfs.parent(fields) == master


# --- a multi-process server without PROMETHEUS_MULTIPROC_DIR -------------------------


def multiprocess_server() -> str | None:
    """Describe the multi-process server this process runs under, if it can tell now.

    gunicorn: its worker (or, with ``--preload``, its arbiter) is on the call stack while
    the app is imported, and carries the worker count. uWSGI: its ``uwsgi`` module. None
    when not known at start-up (then :func:`check_environ` decides).
    """
    if "gunicorn" in sys.modules:
        workers = _gunicorn_settings()[0]
        if workers is not None and workers > 1:
            return f"gunicorn with {workers} workers"
    uwsgi = sys.modules.get("uwsgi")
    processes = getattr(uwsgi, "numproc", 0) if uwsgi is not None else 0
    if isinstance(processes, int) and processes > 1:
        return f"uWSGI with {processes} processes"
    return None


def _gunicorn_settings() -> tuple[int | None, int]:
    """(worker count, ``max_requests``) of the gunicorn objects on the call stack: the
    largest count any of them holds (the arbiter's ``num_workers`` has the ``TTIN``
    signals' extra workers, its config only the start's), ``(None, 0)`` when none is."""
    counts: list[int] = []
    max_requests = 0
    frame = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if type(owner).__module__.startswith("gunicorn."):
            cfg = getattr(owner, "cfg", None)
            for count in (getattr(owner, "num_workers", None), getattr(cfg, "workers", None)):
                if isinstance(count, int):
                    counts.append(count)
            recycle = getattr(cfg, "max_requests", 0)
            max_requests = max(max_requests, recycle if isinstance(recycle, int) else 0)
        frame = frame.f_back  # type: ignore[assignment]
    return (max(counts) if counts else None), max_requests


def check_at_scrape() -> None:
    """A single process's check at each scrape: report a gunicorn worker whose master has
    several live workers now (more than at start: ``TTIN``; a preloaded app checked in the
    master) or recycles it, and a server that said ``wsgi.multiprocess`` once this process
    has copies (:func:`check_environ`). Never raises (a scrape must answer)."""
    if c.PROBLEM_MULTIPROCESS_MISSING in health.problems():
        return
    try:
        _check_live_gunicorn()
        _check_claim()
    except Exception:  # /proc unreadable, a worker object of another version: no verdict
        return


def _check_live_gunicorn() -> None:
    """Report what is wrong with this gunicorn worker's server now; nothing when this
    process is no gunicorn worker (only its worker object makes the master certain)."""
    # Imported here: workers (and process through it) import this module.
    from limone_obs.exporter import process, workers  # noqa: PLC0415

    worker = workers.gunicorn_worker()
    if worker is None:
        return
    count = len(process.gunicorn_workers(os.getppid()))
    recycle = getattr(getattr(worker, "cfg", None), "max_requests", 0)
    if count > 1:
        report_not_configured(f"gunicorn with {count} live workers")
    elif isinstance(recycle, int) and recycle > 0:
        report_recycling(recycle)


def report_not_configured(server: str) -> None:
    """Report (once per process: a log line, and the problem series) the missing directory
    of ``server``, which serves the app from several processes."""
    _report_missing(
        f"{server} serves this app from several processes",
        "each scrape shows only the counts of the process that answered it",
    )


def report_recycling(max_requests: int) -> None:
    """Report (as :func:`report_not_configured`) one gunicorn worker recycled every
    ``max_requests`` requests without the directory."""
    _report_missing(
        f"gunicorn recycles its worker every {max_requests} requests (max_requests)",
        "each new worker starts its counts at 0, and what it counted since the last "
        "scrape is lost when it exits",
    )


def _report_missing(claim: str, what: str) -> None:
    # A preloaded app is set up in the master, which answers no request: its workers
    # inherit this report (and say it no more), so the line says whose it is.
    reporter = (
        f"said by gunicorn's master, pid {os.getpid()}, which preloaded the app: its "
        "workers answer the scrapes, and inherit this report"
        if _in_gunicorn_master()
        else f"this is pid {os.getpid()}"
    )
    message = (
        f"limone-obs: {claim}, but {ENV_VAR} is not set: {what} ({reporter}). "
        f"Fix: start gunicorn with the kit's config, gunicorn -c python:{c.GUNICORN_CONFIG_MODULE} "
        f"'yourapp:create_app()' (a gunicorn config of your own or another server: set "
        f"{ENV_VAR} to an empty directory before the server starts)"
    )
    if health.report_problem(c.PROBLEM_MULTIPROCESS_MISSING, message):
        logger.error(message)


def _in_gunicorn_master() -> bool:
    """True when gunicorn's arbiter is on the call stack and none of its workers is
    (``--preload``: the master imports the app before it forks its workers; a worker's
    stack holds the arbiter's frames that forked it, below its own)."""
    arbiter = False
    frame = sys._getframe(1)
    while frame is not None:
        # The module of the code running, not of its object's class: a worker class of
        # the app's own (-k yourapp.MyWorker) runs gunicorn's Worker.init_process (a review).
        module = frame.f_globals.get("__name__", "")
        if module.startswith("gunicorn.workers."):
            return False
        arbiter = arbiter or module == "gunicorn.arbiter"
        frame = frame.f_back  # type: ignore[assignment]
    return arbiter


def check_server(multiprocess: bool) -> None:
    """At start-up: report a detected multi-process server, or a gunicorn recycling its one
    worker, without multiprocess storage."""
    if multiprocess:
        return
    server = multiprocess_server()
    if server is not None:
        report_not_configured(server)
    elif "gunicorn" in sys.modules and (every := _gunicorn_settings()[1]) > 0:
        report_recycling(every)


#: The server that said ``wsgi.multiprocess`` while this process had no copy yet (see
#: :func:`check_environ`): looked at again at each scrape.
_claimed: list[str] = []


def check_environ(environ: WSGIEnvironment) -> bool:
    """On the first request: report a server that says ``wsgi.multiprocess`` (no storage).

    The exporter's request recorder calls this once (it returns True: done), only when
    the multiprocess directory is not set. ASGI adapters (asgiref's ``WsgiToAsgi``,
    a2wsgi) say ``wsgi.multiprocess`` whatever the server runs, so the claim is taken
    only with the processes to show for it (:func:`limone_obs.exporter.process.copies`):
    copies of this process under its parent, or /proc unable to tell. Until then each
    scrape looks again (a worker started after this one's first request).
    """
    if environ.get("wsgi.multiprocess"):
        _claimed[:] = [str(environ.get("SERVER_SOFTWARE") or "the WSGI server")]
        _check_claim()
    return True


def _check_claim() -> None:
    """Report the server :func:`check_environ` heard once this process has copies."""
    # Imported here: workers (and process through it) import this module.
    from limone_obs.exporter import process  # noqa: PLC0415

    if not _claimed:
        return
    found = process.copies()
    if found is None:
        report_not_configured(_claimed[0])
    elif found[0] is not None:
        report_not_configured(f"{_claimed[0]} (processes {', '.join(map(str, sorted(found[1])))})")
    else:
        return
    _claimed.clear()
