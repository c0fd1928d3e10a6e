"""Reserved multiprocess storage: a full or read-only filesystem is reported, never a SIGBUS.

Each test mounts a small real tmpfs (see ``tests.exporter.tmpfs``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import mmap_dict, values

from limone_obs import conventions as c
from limone_obs import health
from limone_obs.exporter import multiprocess  # noqa: F401 - installs the reserved storage
from limone_obs.exporter._mp_reserved import ReservedMmapedDict
from tests.exporter.tmpfs import fill, small_tmpfs


@pytest.fixture(autouse=True)
def _fresh_health() -> Iterator[None]:
    health.reset()
    yield
    health.reset()


@pytest.mark.fast_path
def test_prometheus_client_creates_reserved_files() -> None:
    """Importing the exporter makes prometheus-client's multiprocess values reserve space."""
    assert values.MmapedDict is ReservedMmapedDict  # type: ignore[attr-defined]


def test_no_space_at_creation_keeps_values_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Full filesystem: the dict works in memory, leaves no file, reports storage_full once."""
    with small_tmpfs(tmp_path / "mp", "64k") as mp:
        fill(mp)
        store = ReservedMmapedDict(str(mp / "counter_1.db"))
        store.write_value("k", 2.5, 0.0)
        again = ReservedMmapedDict(str(mp / "histogram_1.db"))
        again.write_value("h", 1.0, 0.0)
        leftovers = sorted(p.name for p in mp.iterdir())
        store.close()
        again.close()
    assert (2.5, 0.0) == store.read_value("k")
    assert ["filler"] == leftovers
    assert [c.PROBLEM_STORAGE_FULL] == list(health.problems())
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert 1 == len(errors)
    assert "is full" in errors[0].getMessage()


def test_writes_after_close_stay_in_memory(tmp_path: Path) -> None:
    """A value updated after its file was closed (prometheus-client's
    ``close_all_multiprocess_files``) keeps counting in memory and leaves the file as it
    was at the close, instead of raising."""
    name = str(tmp_path / "counter_1.db")
    store = ReservedMmapedDict(name)
    store.write_value("k", 3.0, 0.0)
    store.close()
    store.write_value("k", 4.0, 0.0)
    store.write_value("new", 1.0, 0.0)
    stored = mmap_dict.MmapedDict.read_all_values_from_file(name)  # type: ignore[no-untyped-call]
    assert [("k", 3.0)] == [(k, v) for k, v, _, _ in stored]
    assert (4.0, 0.0) == store.read_value("k")
    assert (1.0, 0.0) == store.read_value("new")
    store.close()


def test_no_space_to_grow_keeps_earlier_keys_in_the_file(tmp_path: Path) -> None:
    """Keys written before the filesystem filled stay in the file; later ones go to memory."""
    with small_tmpfs(tmp_path / "mp", "96k") as mp:
        name = str(mp / "counter_1.db")
        store = ReservedMmapedDict(name)
        store.write_value("first", 7.0, 0.0)
        fill(mp)
        keys = [f"key-{i}-" + "x" * 200 for i in range(400)]  # more than 64 KiB of keys
        for i, key in enumerate(keys):
            store.write_value(key, float(i), 0.0)
        stored = mmap_dict.MmapedDict.read_all_values_from_file(name)  # type: ignore[no-untyped-call]
        in_file = {k: v for k, v, _, _ in stored}
        store.close()
    assert 7.0 == in_file["first"]
    assert len(in_file) < len(keys) + 1
    assert (399.0, 0.0) == store.read_value(keys[-1])
    assert c.PROBLEM_STORAGE_FULL in health.problems()


def test_read_only_filesystem_is_reported_as_unwritable(tmp_path: Path) -> None:
    """A read-only directory ends in the storage_unwritable problem, not an exception."""
    with small_tmpfs(tmp_path / "ro", "64k", read_only=True) as mp:
        store = ReservedMmapedDict(str(mp / "counter_1.db"))
        store.write_value("k", 1.0, 0.0)
    assert (1.0, 0.0) == store.read_value("k")
    assert [c.PROBLEM_STORAGE_UNWRITABLE] == list(health.problems())


PROCESS = """
import os, sys
from prometheus_client import Counter, CollectorRegistry
from limone_obs import Metrics
counter = Counter("t_requests", "help", ["route"], registry=CollectorRegistry())
for i in range(2000):
    counter.labels(f"/route/{i}").inc()
from limone_obs import health
print(sorted(health.problems()))
"""


@pytest.mark.fast_path
def test_a_process_filling_the_disk_lives_on(tmp_path: Path) -> None:
    """A multiprocess counter on a filesystem that fills up: the process ends normally."""
    with small_tmpfs(tmp_path / "mp", "128k") as mp:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mp)}
        done = subprocess.run(
            [sys.executable, "-c", PROCESS],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert 0 == done.returncode, done.stderr
    assert f"['{c.PROBLEM_STORAGE_FULL}']" == done.stdout.strip()
