"""A multiprocess directory belongs to one server: claimed with a lock, cleared only of the dead."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from limone_obs import conventions as c
from limone_obs import health
from limone_obs.errors import ConfigError
from limone_obs.exporter import compaction, multiprocess, process
from tests.exporter.tmpfs import small_tmpfs

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


def test_only_files_of_dead_processes_are_cleared(tmp_path: Path) -> None:
    """Files of a dead pid and an old archive go; a running process's files stay."""
    path = tmp_path / "mp"
    path.mkdir()
    dead, live = _dead_pid(), os.getpid()
    for name in (f"counter_{dead}.db", f"counter_{live}.db", compaction.ARCHIVE):
        (path / name).write_bytes(b"\0" * 8)
    try:
        multiprocess.claim_directory(str(path))
        left = sorted(p.name for p in path.iterdir())
    finally:
        (path / f"counter_{live}.db").unlink()
        multiprocess.clear_directory(str(path))
    assert sorted([f"counter_{live}.db", multiprocess.SERVER_LOCK]) == left


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


def test_process_start_is_this_process_start() -> None:
    """The start time read from /proc is this process's, to about a second."""
    started = process.started(os.getpid())
    assert started is not None
    assert time.time() - 3600 < started <= time.time()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        child_started = process.started(child.pid)
        assert child_started is not None
        assert child_started >= started - 1
    finally:
        child.kill()
        child.wait(timeout=10)
    assert process.started(_dead_pid()) is None


def test_a_directory_the_kit_manages_is_not_checked(tmp_path: Path) -> None:
    """With the kit's lock file in place (its gunicorn config claimed the directory, and a
    USR2 upgrade continues the old server's counts there), nothing is reported."""
    path = tmp_path / "mp"
    path.mkdir()
    (path / f"counter_{_dead_pid()}.db").write_bytes(b"\0" * 8)
    (path / multiprocess.SERVER_LOCK).write_bytes(b"")
    health.reset()
    try:
        multiprocess.check_leftovers(str(path), started=time.time() + 60)
        assert c.PROBLEM_MULTIPROCESS_LEFTOVERS not in health.problems()
        (path / multiprocess.SERVER_LOCK).unlink()
        multiprocess.check_leftovers(str(path), started=time.time() + 60)
        assert c.PROBLEM_MULTIPROCESS_LEFTOVERS in health.problems()
    finally:
        health.reset()
