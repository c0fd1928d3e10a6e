"""Compaction of dead workers' files: exact merges, crash safety, concurrent deaths.

The reference is always prometheus-client's own MultiProcessCollector over the files as
they were before the merge (with its ``mark_process_dead`` applied for the dead pid, which
drops live gauges): after compaction our collector must report exactly that.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import multiprocess as pc_multiprocess
from prometheus_client import values

from limone_obs import conventions as c
from limone_obs.exporter import compaction, multiprocess
from tests.exporter.test_multiprocess import KINDS, Snapshot, flat, mpdir, reference, write_worker

__all__ = ["mpdir"]  # the fixture, re-exported so pytest finds it here


def expected_after_death(path: Path, tmp_path: Path, *dead: int) -> Snapshot:
    """MultiProcessCollector's view of a copy of ``path`` once ``dead`` are marked dead."""
    copy = tmp_path / "reference"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(path, copy)
    for pid in dead:
        pc_multiprocess.mark_process_dead(pid, str(copy))  # type: ignore[no-untyped-call]
    return reference(copy)


def db_files(path: Path) -> list[str]:
    """The multiprocess files left in ``path``."""
    return sorted(n for n in os.listdir(path) if n.endswith(".db"))


@pytest.mark.parametrize("kind", KINDS)
def test_merge_keeps_samples_of_each_kind(mpdir: Path, tmp_path: Path, kind: str) -> None:
    """After one of three workers is compacted, scrapes equal prometheus-client's before."""
    for pid in (11, 12, 13):
        write_worker(mpdir, pid, (kind,))
    expected = expected_after_death(mpdir, tmp_path, 12)
    compaction.compact(str(mpdir), [12])
    assert expected == flat(mpdir)


@pytest.mark.parametrize("kind", KINDS)
def test_merge_removes_the_dead_workers_files(mpdir: Path, kind: str) -> None:
    """The dead worker's files are gone; the live workers' files are untouched."""
    for pid in (11, 12):
        write_worker(mpdir, pid, (kind,))
    compaction.compact(str(mpdir), [12])
    assert [f"{kind}_11.db"] == db_files(mpdir)


def test_successive_deaths_accumulate(mpdir: Path, tmp_path: Path) -> None:
    """Sixty-four workers retired one by one: every sample kept, one file per live worker."""
    for pid in range(1000, 1066):
        write_worker(mpdir, pid, scale=pid)
    expected = expected_after_death(mpdir, tmp_path, *range(1000, 1064))
    for pid in range(1000, 1064):
        compaction.compact(str(mpdir), [pid])
    assert expected == flat(mpdir)
    assert 2 * len(KINDS) == len(db_files(mpdir))


def test_reused_pid_after_merge_is_counted(mpdir: Path, tmp_path: Path) -> None:
    """A new worker that gets a retired worker's pid has its samples counted, not skipped."""
    write_worker(mpdir, 21, ("counter",))
    compaction.compact(str(mpdir), [21])
    archived = flat(mpdir)
    write_worker(mpdir, 21, ("counter",))
    doubled = {k: [(n, lb, 2 * v) for n, lb, v in s] for k, s in archived.items()}
    assert doubled == flat(mpdir)


def test_compact_without_files_changes_nothing(mpdir: Path) -> None:
    """Compacting a pid that left no files writes no archive."""
    assert 0 == compaction.compact(str(mpdir), [999])
    assert not (mpdir / compaction.ARCHIVE).exists()


@pytest.fixture
def crash_scene(mpdir: Path, tmp_path: Path) -> tuple[Path, Snapshot, int]:
    """Three workers: 31 retired earlier, 32 dying now, 33 alive; the expected scrape.

    Only kinds that outlive their process: a live gauge of 32 is rightly shown until the
    merge drops it, so the expected scrape would depend on the step.
    """
    kinds = tuple(k for k in KINDS if "live" not in k)
    for pid in (31, 32, 33):
        write_worker(mpdir, pid, kinds)
    expected = expected_after_death(mpdir, tmp_path, 31, 32)
    compaction.compact(str(mpdir), [31])
    with compaction.locked(str(mpdir), exclusive=True):
        steps, _ = compaction.plan(str(mpdir), ["32"])
    return mpdir, expected, len(steps)


def _crash_after(path: Path, k: int) -> None:
    # A kill after step k: the first k steps ran, then the lock was released by the kernel.
    with compaction.locked(str(path), exclusive=True):
        steps, _ = compaction.plan(str(path), ["32"])
        for step in steps[:k]:
            step()


@pytest.mark.parametrize("k", range(13))
def test_crash_between_steps_scrapes_correctly(
    crash_scene: tuple[Path, Snapshot, int], k: int
) -> None:
    """A merge killed after any step leaves a directory that scrapes exactly once."""
    path, expected, total = crash_scene
    if k > total:
        pytest.skip(f"the merge has {total} steps")
    _crash_after(path, k)
    assert expected == flat(path)


@pytest.mark.parametrize("k", range(13))
def test_next_merge_finishes_a_crashed_one(crash_scene: tuple[Path, Snapshot, int], k: int) -> None:
    """After a crash at any step, the next compaction leaves exact samples and no leftovers."""
    path, expected, total = crash_scene
    if k > total:
        pytest.skip(f"the merge has {total} steps")
    _crash_after(path, k)
    compaction.compact(str(path), [32])
    assert expected == flat(path)
    assert all(n.endswith("_33.db") for n in db_files(path))
    assert frozenset() == compaction.read_archive(str(path)).retiring


def _retire(path: str, pids: list[int], start: multiprocessing.synchronize.Event) -> None:
    start.wait(10)
    for pid in pids:
        compaction.compact(path, [pid])


def test_concurrent_deaths_and_scrapes_never_double_or_drop(mpdir: Path, tmp_path: Path) -> None:
    """Two processes compacting different workers at once while this one scrapes:
    every scrape sees exactly the same samples, and so does the end state."""
    pids = list(range(500, 540))
    for pid in pids:
        write_worker(mpdir, pid, ("counter", "histogram", "gauge_max"))
    expected = expected_after_death(mpdir, tmp_path, *pids)
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    workers = [ctx.Process(target=_retire, args=(str(mpdir), pids[i::2], start)) for i in (0, 1)]
    for proc in workers:
        proc.start()
    try:
        start.set()
        scrapes = [flat(mpdir) for _ in range(60)]
    finally:
        for proc in workers:
            proc.join(30)
    assert [0, 0] == [p.exitcode for p in workers]
    assert [expected] * len(scrapes) == scrapes
    assert expected == flat(mpdir)
    assert [] == db_files(mpdir)


def test_dead_pids_skips_live_processes(mpdir: Path) -> None:
    """Files of this (running) process and of listed live workers are never retired."""
    gone = multiprocessing.get_context("fork").Process(target=int)
    gone.start()
    gone.join()
    for pid in (os.getpid(), gone.pid or 0, 4_000_000):
        write_worker(mpdir, pid, ("counter",))
    assert {gone.pid} == compaction.dead_pids(str(mpdir), [4_000_000])


def _zombies(count: int) -> list[int]:
    """Fork ``count`` children that exit at once; this process reaps none of them yet."""
    pids = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        pids.append(pid)
    deadline = time.monotonic() + 30
    while any(compaction.running(pid) for pid in pids):  # exited: zombies until reaped
        assert time.monotonic() < deadline, "a forked child did not exit"
        time.sleep(0.01)
    return pids


def test_workers_awaiting_their_masters_reap_are_not_unretired(mpdir: Path) -> None:
    """Several workers exited at once (a reload, recycling) and not reaped yet by the
    master: its child_exit retires each when it reaps it, so a worker's check counts
    none of them; once reaped with their files still there (no hook ran), all count."""
    pids = _zombies(3)
    try:
        for pid in pids:
            write_worker(mpdir, pid, ("counter",))
        assert set() == multiprocess.unretired(str(mpdir), os.getpid())
        assert set(pids) == multiprocess.unretired(str(mpdir), os.getppid())  # not ours
    finally:
        for pid in pids:
            os.waitpid(pid, 0)
    assert set(pids) == multiprocess.unretired(str(mpdir), os.getpid())


def test_workers_retired_while_checked_are_not_unretired(
    mpdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The master retires exited workers while a worker's check looks at them: their
    files are gone when it lists the directory again, so they are not counted."""
    gone = multiprocessing.get_context("fork").Process(target=int)
    gone.start()
    gone.join()
    dead = gone.pid or 0
    write_worker(mpdir, dead, ("counter",))
    running = compaction.running

    def retired_meanwhile(pid: int) -> bool:
        for name in os.listdir(mpdir):  # the master's child_exit, right now
            if name.endswith(f"_{pid}.db"):
                os.remove(mpdir / name)
        return running(pid)

    monkeypatch.setattr(compaction, "running", retired_meanwhile)
    assert set() == multiprocess.unretired(str(mpdir), os.getpid())


@pytest.mark.fast_path
def test_child_exit_hook_compacts_the_worker(
    mpdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gunicorn's child_exit hook merges the dead worker's files into the archive."""
    monkeypatch.setenv(c.ENV_FAST_PATH, "1")
    write_worker(mpdir, 41)
    write_worker(mpdir, os.getpid())
    expected = expected_after_death(mpdir, tmp_path, 41)
    server = SimpleNamespace(WORKERS={os.getpid(): None}, log=None)
    multiprocess.child_exit(server, SimpleNamespace(pid=41))
    assert expected == flat(mpdir)
    assert all(n.endswith(f"_{os.getpid()}.db") for n in db_files(mpdir))


def test_child_exit_with_the_fast_path_off_only_drops_live_gauges(
    mpdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LIMONE_OBS_FAST_PATH=0: prometheus-client's mark_process_dead, its files stay read."""
    monkeypatch.setenv(c.ENV_FAST_PATH, "0")
    write_worker(mpdir, 42)
    expected = {k: v for k, v in reference(mpdir).items() if "live" not in k[0]}
    multiprocess.child_exit(SimpleNamespace(WORKERS={}, log=None), SimpleNamespace(pid=42))
    assert [] == [n for n in db_files(mpdir) if "live" in n]
    assert (expected, False) == (reference(mpdir), (mpdir / compaction.ARCHIVE).exists())


def _compact_forever(path: str, pids: list[int]) -> None:
    for pid in pids:
        compaction.compact(path, [pid])
    time.sleep(60)  # stay alive: the test kills this process


@pytest.mark.parametrize("generation", [0, 21, 77, 121])
def test_sigkill_during_compactions_loses_nothing(
    mpdir: Path, tmp_path: Path, generation: int
) -> None:
    """A process merging 80 workers one by one, SIGKILLed once the archive reaches
    ``generation`` (two per merged worker), leaves exact scrapes; the next compaction
    finishes its work."""
    kinds = tuple(k for k in KINDS if "live" not in k)
    pids = list(range(600, 680))
    for pid in pids:
        write_worker(mpdir, pid, kinds)
    expected = expected_after_death(mpdir, tmp_path, *pids)
    child = multiprocessing.get_context("fork").Process(
        target=_compact_forever, args=(str(mpdir), pids)
    )
    child.start()
    deadline = time.monotonic() + 30
    while compaction.read_archive(str(mpdir)).generation < generation:
        assert time.monotonic() < deadline
        time.sleep(0.0005)
    os.kill(child.pid or 0, signal.SIGKILL)
    child.join(10)
    assert db_files(mpdir), "the kill came after the last compaction: nothing was tested"
    assert expected == flat(mpdir)
    compaction.compact(str(mpdir), pids)
    assert (expected, []) == (flat(mpdir), db_files(mpdir))


OPS = st.lists(
    st.tuples(st.sampled_from(["write", "die", "crash"]), st.integers(1, 5), st.integers(0, 20)),
    max_size=14,
)


@settings(max_examples=40, deadline=None)
@given(ops=OPS)
def test_any_history_of_writes_deaths_and_crashes_scrapes_exactly(
    ops: list[tuple[str, int, int]],
) -> None:
    """Random histories of writes, compactions and crashed compactions: our collector on the
    compacted directory always equals prometheus-client's on an uncompacted mirror."""
    kinds = tuple(k for k in KINDS if "live" not in k)
    saved = values.ValueClass
    with tempfile.TemporaryDirectory() as tmp:
        ours, mirror = Path(tmp) / "ours", Path(tmp) / "mirror"
        ours.mkdir()
        mirror.mkdir()
        dead: set[int] = set()
        try:
            for op in ops:
                _apply(op, (ours, mirror), dead, kinds)
                assert reference(mirror) == flat(ours)
            compaction.compact(str(ours), dead)
            assert reference(mirror) == flat(ours)
        finally:
            values.ValueClass = saved
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def _apply(
    event: tuple[str, int, int], dirs: tuple[Path, Path], dead: set[int], kinds: tuple[str, ...]
) -> None:
    op, pid, n = event
    ours = dirs[0]
    if op == "write" and pid not in dead:
        for path in dirs:
            write_worker(path, pid, kinds, scale=n + 1)
    elif op == "die":
        dead.add(pid)
        compaction.compact(str(ours), [pid])
    elif op == "crash":
        dead.add(pid)
        with compaction.locked(str(ours), exclusive=True):
            steps, _ = compaction.plan(str(ours), [str(pid)])
            for step in steps[: n % (len(steps) + 1)]:
                step()


class _Log:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, message: str, *args: object) -> None:
        self.errors.append(message % args)


@pytest.mark.fast_path
def test_child_exit_logs_a_failure_and_keeps_the_files(
    mpdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corrupt archive makes the hook log an error naming it instead of raising (which
    would stop the gunicorn master); the worker's files stay where they were."""
    monkeypatch.setenv(c.ENV_FAST_PATH, "1")
    write_worker(mpdir, 42, ("counter",))
    (mpdir / compaction.ARCHIVE).write_bytes(b"not json")
    log = _Log()
    multiprocess.child_exit(SimpleNamespace(WORKERS={}, log=log), SimpleNamespace(pid=42))
    assert ["counter_42.db"] == db_files(mpdir)
    assert 1 == len(log.errors)
    assert compaction.ARCHIVE in log.errors[0]
