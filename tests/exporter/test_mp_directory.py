"""A multiprocess directory belongs to one server: claimed with a lock, cleared only of the dead."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from limone_obs import conventions as c
from limone_obs import health
from limone_obs.errors import ConfigError
from limone_obs.exporter import compaction, multiprocess, process
from tests.exporter.tmpfs import small_tmpfs
from tests.support import gunicorn_server

HOLDER = """
import sys, time
from limone_obs.exporter import multiprocess
multiprocess.claim_directory(sys.argv[1])
print("claimed", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """Another live process that has claimed ``tmp_path / "mp"``: yields (path, its pid)."""
    path = tmp_path / "mp"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert "claimed" == proc.stdout.readline().strip()
        yield path, proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def test_a_directory_held_by_a_live_server_is_refused(holder: tuple[Path, int]) -> None:
    """Claiming a directory another live process holds raises ConfigError naming its pid."""
    path, pid = holder
    expected = rf"in use by another running server \(master pid {pid}\)"
    with pytest.raises(ConfigError, match=expected):
        multiprocess.claim_directory(str(path))


FORKING_HOLDER = """
import os, sys, time
from limone_obs.exporter import multiprocess
multiprocess.claim_directory(sys.argv[1])
worker = os.fork()
if worker == 0:
    time.sleep(60)  # a worker: shares the lock, outlives its master
    os._exit(0)
print(worker, flush=True)
time.sleep(60)
"""


def test_a_directory_held_by_the_workers_of_a_dead_master_says_so(tmp_path: Path) -> None:
    """A master killed alone (an OOM kill) leaves its workers holding the directory for a
    while: the refusal says the master has exited and to wait for its workers, not that
    the dead master runs."""
    path = tmp_path / "mp"
    master = subprocess.Popen(
        [sys.executable, "-c", FORKING_HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert master.stdout is not None
    worker = int(master.stdout.readline())
    try:
        master.kill()
        master.wait(timeout=10)
        with pytest.raises(ConfigError) as refused:
            multiprocess.claim_directory(str(path))
    finally:
        os.kill(worker, 9)
    assert f"a server whose master (pid {master.pid}) has exited" in str(refused.value)
    assert "in use by another running server" not in str(refused.value)


def test_a_directory_is_free_again_once_its_server_is_gone(holder: tuple[Path, int]) -> None:
    """The lock dies with its holder: a later server claims the directory."""
    path, _pid = holder
    os.kill(_pid, 9)
    os.waitpid(_pid, 0)
    try:
        multiprocess.claim_directory(str(path))
        assert str(os.getpid()) == (path / multiprocess.SERVER_LOCK).read_text().strip()
    finally:
        multiprocess.clear_directory(str(path))


def test_only_files_of_dead_processes_are_cleared(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Files of a dead pid and an old archive go, with one line saying so (the counts
    restart from zero); a running process's files stay."""
    path = tmp_path / "mp"
    path.mkdir()
    dead, live = _dead_pid(), os.getpid()
    for name in (f"counter_{dead}.db", f"histogram_{dead}.db", f"counter_{live}.db",
                 compaction.ARCHIVE):  # fmt: skip
        (path / name).write_bytes(b"\0" * 8)
    try:
        with caplog.at_level("WARNING", logger="limone_obs.exporter"):
            multiprocess.claim_directory(str(path))
        left = sorted(p.name for p in path.iterdir())
    finally:
        (path / f"counter_{live}.db").unlink()
        multiprocess.clear_directory(str(path))
    assert sorted([f"counter_{live}.db", multiprocess.SERVER_LOCK]) == left
    [said] = [r.getMessage() for r in caplog.records]
    assert "held 3 file(s) of 1 process(es)" in said
    assert "counts start from zero" in said


def test_files_of_an_exited_unreaped_server_are_cleared(holder: tuple[Path, int]) -> None:
    """A server killed with its workers, not reaped yet (zombies: its parent is slow to
    reap, or is an init that does not): its files are complete and nobody writes them any
    more, so a server claiming the directory meanwhile starts from zero (a trial: they
    were kept, and the dead server's requests were counted again)."""
    path, pid = holder
    (path / f"counter_{pid}.db").write_bytes(b"\0" * 8)
    os.kill(pid, 9)  # not waited for: a zombie, a child of this process, until reaped
    deadline = time.monotonic() + 30
    while (stat := process.read_stat(pid)) is None or stat.live:
        assert time.monotonic() < deadline, "the killed holder never became a zombie"
        time.sleep(0.01)
    try:
        multiprocess.claim_directory(str(path))
        left = sorted(p.name for p in path.iterdir())
    finally:
        multiprocess.clear_directory(str(path))
    assert [multiprocess.SERVER_LOCK] == left
    assert not compaction.running(pid)


def _server_dir(base: Path, pid: int, *, lock: bool = True) -> Path:
    path = base / f"limone-obs-{pid}"
    path.mkdir()
    (path / "counter_1.db").write_bytes(b"\0" * 8)
    if lock:
        (path / multiprocess.SERVER_LOCK).write_text(str(pid))
    return path


def test_directories_of_killed_servers_are_removed(tmp_path: Path) -> None:
    """A server killed with SIGKILL cannot remove its directory: the next one removes
    it, when its pid runs no more and nobody holds its lock. A running server's, one whose
    lock is still held (the workers of a killed master), one without a lock and any other
    name stay."""
    held = tmp_path / f"limone-obs-{_dead_pid()}"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(held)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert b"claimed" == holder.stdout.readline().strip()
        killed = _server_dir(tmp_path, _dead_pid())
        running = _server_dir(tmp_path, os.getpid())
        unlocked = _server_dir(tmp_path, _dead_pid(), lock=False)
        other = tmp_path / "limone-obs-report"
        other.mkdir()
        removed = multiprocess.remove_abandoned(str(tmp_path), "limone-obs-")
        left = {p.name for p in tmp_path.iterdir()}
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert [str(killed)] == removed
    assert {held.name, running.name, unlocked.name, other.name} == left


@pytest.mark.integration
def test_the_next_server_removes_a_killed_servers_default_directory(tmp_path: Path) -> None:
    """The kit's gunicorn config without PROMETHEUS_MULTIPROC_DIR: a server killed with
    its workers (SIGKILL) leaves its /dev/shm directory; the next server removes it."""
    app = "tests.exporter.ux_gunicorn_app:create_app()"
    config = "python:limone_obs.gunicorn_conf"
    env = {"GUNICORN_WORKERS": "2"}
    with gunicorn_server(app, tmp_path, env, config=config, name="killed") as (_, first):
        left = Path(multiprocess_base()) / f"limone-obs-{first.pid}"
        assert left.is_dir()
        first.signal(signal.SIGKILL)  # the master and its workers: one process group
        first.popen.wait(timeout=30)
    assert left.is_dir()  # nothing could remove it
    with gunicorn_server(app, tmp_path, env, config=config, name="next") as (_, second):
        assert not left.exists()
        assert (Path(multiprocess_base()) / f"limone-obs-{second.pid}").is_dir()


def multiprocess_base() -> str:
    """Where the kit's gunicorn config makes its default directory."""
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def test_clear_directory_leaves_no_file_of_the_stopped_server(tmp_path: Path) -> None:
    """on_exit: dead workers' files, the master's own (a preloaded app), the archive and
    the locks are removed."""
    path = tmp_path / "mp"
    multiprocess.claim_directory(str(path))
    own = f"gauge_livemax_{os.getpid()}.db"
    for name in (f"histogram_{_dead_pid()}.db", own, compaction.ARCHIVE, compaction.LOCK):
        (path / name).write_bytes(b"\0" * 8)
    multiprocess.clear_directory(str(path))
    assert [] == list(path.iterdir())


def test_a_read_only_directory_is_a_clear_error(tmp_path: Path) -> None:
    """A directory on a read-only filesystem: ConfigError saying what to do, no traceback."""
    expected = r"cannot be used \(Read-only file system\)"
    with (
        small_tmpfs(tmp_path / "ro", "64k", read_only=True) as path,
        pytest.raises(ConfigError, match=expected),
    ):
        multiprocess.claim_directory(str(path))


def test_leftover_files_are_those_of_the_dead_made_before_the_start(tmp_path: Path) -> None:
    """A dead process's files and an archive made before the server started are an earlier
    server's; a live process's files, and anything made after the start, are not."""
    path = tmp_path / "mp"
    path.mkdir()
    dead, live = _dead_pid(), os.getpid()
    names = (f"counter_{dead}.db", f"histogram_{dead}.db", f"counter_{live}.db")
    for name in (*names, compaction.ARCHIVE):
        (path / name).write_bytes(b"\0" * 8)
    after_them, before_them = time.time() + 60, time.time() - 60
    assert [*names[:2], compaction.ARCHIVE] == multiprocess.leftover_files(str(path), after_them)
    assert [] == multiprocess.leftover_files(str(path), before_them)


def test_process_start_is_known_to_a_clock_tick() -> None:
    """The start time read from /proc is the process's own, to a few clock ticks (a
    leftover file made half a second before a server's start must read as before it)."""
    started = process.started(os.getpid())
    assert started is not None
    assert time.time() - 3600 < started <= time.time()
    before = time.time()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    after = time.time()
    try:
        child_started = process.started(child.pid)
        assert child_started is not None
        assert before - 0.05 <= child_started <= after + 0.05
    finally:
        child.kill()
        child.wait(timeout=10)
    assert process.started(_dead_pid()) is None


def test_a_directory_the_kit_manages_is_not_checked(tmp_path: Path) -> None:
    """With the kit's lock held by a live server (its gunicorn config claimed the
    directory, and a USR2 upgrade continues the old server's counts there), nothing is
    reported; a lock file nobody holds (its server was killed with SIGKILL) hides no
    leftover, nor does a missing one."""
    path = tmp_path / "mp"
    path.mkdir()
    (path / f"counter_{_dead_pid()}.db").write_bytes(b"\0" * 8)
    lock = path / multiprocess.SERVER_LOCK
    lock.write_bytes(b"")
    health.reset()
    try:
        with lock.open("rb") as held:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX)
            multiprocess.check_leftovers(str(path), started=time.time() + 60)
            assert c.PROBLEM_MULTIPROCESS_LEFTOVERS not in health.problems()
        multiprocess.check_leftovers(str(path), started=time.time() + 60)
        assert c.PROBLEM_MULTIPROCESS_LEFTOVERS in health.problems()
        health.reset()
        lock.unlink()
        multiprocess.check_leftovers(str(path), started=time.time() + 60)
        assert c.PROBLEM_MULTIPROCESS_LEFTOVERS in health.problems()
    finally:
        health.reset()


_SET_TOO_LATE = """
import os, sys
import prometheus_client  # the app's import, before the variable is set
from limone_obs import Metrics
from limone_obs.errors import ConfigError
if sys.argv[1] == "config":
    import limone_obs.gunicorn_conf  # a test loading the app's gunicorn config
else:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[2]
try:
    Metrics()
except ConfigError as exc:
    print(exc)
"""


@pytest.mark.parametrize("how", ["config", "by_hand"])
def test_a_variable_set_after_prometheus_client_names_who_set_it(tmp_path: Path, how: str) -> None:
    """The variable set after prometheus-client's import: by the kit's gunicorn config
    imported in a process that is no server, the error says that (not "import the config
    first", which was done); set by hand, it says to set it before the import."""
    env = {k: v for k, v in os.environ.items() if k.upper() != "PROMETHEUS_MULTIPROC_DIR"}
    argv = [sys.executable, "-c", _SET_TOO_LATE, how, str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert 0 == done.returncode, done.stderr
    if how == "config":
        assert "was set by importing limone_obs.gunicorn_conf in this process" in done.stdout
        assert "read the config in a subprocess" in done.stdout
    else:
        assert "set the variable before the app" in done.stdout
