"""Worker slots learnt without gunicorn's hook: what a process that is no worker does.

The real servers are in tests/exporter/test_workers_process.py (gunicorn without our
config, preloaded or not) and tests/servers/test_uwsgi.py (uWSGI threads).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from limone_obs import conventions as c
from limone_obs.exporter import compaction, multiprocess, workers
from tests.exporter.helpers import make_app

N = c.MetricNames()


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no slots known in this process."""
    monkeypatch.setattr(workers, "_state", {})


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "slots are unknown" in r.getMessage()
    ]


def slots_series(mpdir: Path) -> tuple[float, float]:
    """(in flight, slots) of the live processes, as a scrape reads them."""
    return workers.read_files(str(mpdir), N)


def test_a_multiprocess_process_that_is_no_worker_says_so_once(
    mp_in_process: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The test client in multiprocess mode is neither a gunicorn nor a uWSGI worker: its
    first request and scrapes give one warning naming set_slots, and no idle series."""
    app, _ = make_app()
    client = app.test_client()
    for _ in range(3):
        client.get("/projects/1").close()
        client.get("/metrics")
    lines = warnings_of(caplog)
    assert 1 == len(lines), lines
    assert "limone_obs.exporter.workers.set_slots(n)" in lines[0]
    assert 0.0 == slots_series(mp_in_process)[1]
    assert f'{N.workers}{{state="idle"}}' not in client.get("/metrics").text


def test_set_slots_publishes_them(mp_in_process: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A server the kit does not recognise tells the slots itself: idle and
    worker_threads follow, and nothing is said about unknown slots."""
    app, _ = make_app()
    workers.set_slots(3)
    client = app.test_client()
    client.get("/projects/1").close()
    text = client.get("/metrics").text
    assert (0.0, 3.0) == slots_series(mp_in_process)
    assert f'{N.workers}{{state="idle"}} 3.0' in text
    assert [] == warnings_of(caplog)


def test_a_single_process_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """Outside multiprocess mode the slots are simply unknown (busy only), no warning."""
    app, _ = make_app()
    client = app.test_client()
    client.get("/projects/1").close()
    client.get("/metrics")
    assert [] == warnings_of(caplog)


def test_set_slots_in_a_single_process_publishes_idle_and_slots() -> None:
    """A threaded single-process server (waitress --threads=8) tells its slots with
    set_slots: idle and worker_threads, which the saturation panel and alert read."""
    app, _ = make_app()
    workers.set_slots(8)
    client = app.test_client()
    client.get("/projects/1").close()
    text = client.get("/metrics").text
    assert f"{N.worker_threads} 8.0" in text
    assert f'{N.workers}{{state="idle"}} 8.0' in text


def test_outside_a_server_the_role_is_neither() -> None:
    """This test process is no gunicorn or uWSGI worker, nor their master."""
    assert workers.NEITHER == workers.server_role()


def test_a_worker_first_scraped_shows_its_slots_in_that_scrape(
    mp_in_process: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose first request is a scrape publishes its slots before the files are
    read: worker_threads and idle agree within that very scrape."""
    app, _ = make_app()
    # This process as a worker from now on (the app was instrumented before it knew).
    monkeypatch.setattr(workers, "server_role", lambda: 3)
    text = app.test_client().get("/metrics").text
    assert f"{N.worker_threads} 3.0" in text
    assert f'{N.workers}{{state="idle"}} 3.0' in text


def test_live_gauges_of_dead_processes_are_retired(tmp_path: Path) -> None:
    """Only the live gauges (gauge_live*) of a process that is gone are removed: its
    counters stay (they keep their counts) and a running process keeps everything."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    mine = str(os.getpid())
    names = [
        f"gauge_livesum_{dead}.db", f"gauge_liveall_{dead}.db", f"counter_{dead}.db",
        f"gauge_all_{dead}.db", f"gauge_livesum_{mine}.db", "limone_archive.json",
    ]  # fmt: skip
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert 2 == multiprocess.retire_dead_live(str(tmp_path))
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != compaction.LOCK)
    assert left == sorted(names[2:])


def test_a_worker_file_caught_while_created_is_read_as_empty(
    mp_in_process: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A live worker's gauge file is empty for a moment after its creation (then sized):
    a scrape then reads the other files, and neither fails nor reports a problem."""
    app, _ = make_app()
    workers.set_slots(3)
    client = app.test_client()
    client.get("/projects/1").close()
    (mp_in_process / f"gauge_livesum_{os.getppid()}.db").touch()  # a live pid, empty file
    text = client.get("/metrics").text
    assert (0.0, 3.0) == slots_series(mp_in_process)
    assert f'{N.workers}{{state="idle"}} 3.0' in text
    assert [] == [r for r in caplog.records if r.levelno >= logging.ERROR]


def _worker_of(klass: type) -> object:
    """An instance of gunicorn worker class ``klass`` with a config, not started."""
    worker: Any = object.__new__(klass)
    worker.cfg = types.SimpleNamespace(threads=4, worker_connections=50)
    return worker


def test_slots_by_worker_class() -> None:
    """gunicorn's own classes (and subclasses of them) give threads, 1 or connections;
    another package's class (uvicorn's UvicornWorker) none: it holds to no
    worker_connections, the app's adapter decides."""
    from gunicorn.workers.ggevent import GeventWorker  # noqa: PLC0415 - needs gevent
    from gunicorn.workers.gthread import ThreadWorker  # noqa: PLC0415
    from gunicorn.workers.sync import SyncWorker  # noqa: PLC0415
    from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]  # noqa: PLC0415

    class OwnThreads(ThreadWorker):  # type: ignore[misc]
        pass

    found = [
        workers.worker_slots(_worker_of(k))
        for k in (SyncWorker, ThreadWorker, OwnThreads, GeventWorker, UvicornWorker)
    ]
    assert [1, 4, 4, 50, None] == found
