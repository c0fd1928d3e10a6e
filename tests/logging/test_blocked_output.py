"""A stdout reader that stops reading never blocks the app for long (issue 12, point 4).

The sink waits at most ``write_timeout`` for room, then drops and counts lines without
waiting until the reader is back, and then writes one line saying how many were dropped.
"""

from __future__ import annotations

import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import pytest
import requests
from flask import Flask

from limone_obs import health
from limone_obs.logging import configure_logging, get_logger, init_app
from limone_obs.stack import procs
from tests.support import ROOT, stop_server, wait_answering, wait_until

TIMEOUT = 0.1
PAUSE = 5.0


class PausingReader:
    """Reads a pipe in a thread; ``pause()`` stops reading until ``resume()``.

    Both return only once the thread has done as asked (polled, with a deadline), so a
    test never guesses with a fixed sleep: after ``pause()`` nothing more is read, and
    after ``resume()`` the pipe has been drained at least once.
    """

    #: How often the thread looks at its orders while no data comes.
    TICK = 0.02

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._reading = threading.Event()
        self._reading.set()
        self._parked = threading.Event()
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        #: Reads done so far (``resume()`` waits for one more).
        self.reads = 0
        self.data = bytearray()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            if not self._reading.is_set():
                self._parked.set()
                self._reading.wait()
                self._parked.clear()
            if not self._poll.poll(self.TICK * 1000):
                continue
            chunk = os.read(self._fd, 65536)
            if not chunk:
                self._parked.set()  # end of file: nothing more will be read
                return
            self.data += chunk
            self.reads += 1

    def pause(self) -> None:
        """Stop reading; returns once the thread reads no more (parked or ended)."""
        self._reading.clear()
        wait_until(
            lambda: self._parked.is_set() or not self._thread.is_alive(),
            "the reader thread to stop reading",
            timeout=10,
        )

    def resume(self) -> None:
        """Read again; returns once a read was done (call it with data in the pipe)."""
        reads = self.reads
        self._reading.set()
        wait_until(
            lambda: self.reads > reads or not self._thread.is_alive(),
            "the reader thread to read again",
            timeout=10,
        )

    def join(self) -> None:
        self._thread.join(timeout=30)


@pytest.fixture
def pipe() -> Iterator[tuple[IO[bytes], PausingReader]]:
    """A real pipe: our write end as a stream, its read end in a pausing reader thread."""
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(write_fd, "wb")
    reader = PausingReader(read_fd)
    health.reset()
    yield stream, reader
    health.reset()


def _app() -> Flask:
    app = Flask(__name__)
    init_app(app)
    log = get_logger("blocked")

    @app.get("/work")
    def work() -> str:
        for step in range(3):
            log.info("working", step=step, payload="x" * 200)
        return "ok"

    return app


def _timed_requests(app: Flask, until: float) -> list[float]:
    client = app.test_client()
    durations: list[float] = []
    while time.monotonic() < until or not durations:
        start = time.perf_counter()
        with client.get("/work") as response:  # closed: the access line is written
            assert 200 == response.status_code
        durations.append(time.perf_counter() - start)
    return durations


def _close_and_read(stream: IO[bytes], reader: PausingReader) -> list[dict[str, Any]]:
    from limone_obs.logging.setup import reset_for_tests  # noqa: PLC0415 - closes the sink

    reset_for_tests()
    stream.close()
    reader.join()
    return [json.loads(line) for line in bytes(reader.data).splitlines()]


def test_stopped_reader_keeps_request_latency(pipe: tuple[IO[bytes], PausingReader]) -> None:
    """While the reader stops for 5 s, requests keep their latency: no request waits
    longer than the timeout plus slack, and the median stays within 5x the baseline's
    (without the bound every request would wait the full 5 s). Lines are dropped and
    counted; when the reader is back a line says how many; every line read is whole."""
    stream, reader = pipe
    configure_logging(stream=stream, write_timeout=TIMEOUT)
    app = _app()
    baseline = _timed_requests(app, time.monotonic() + 1.0)
    reader.pause()
    during = _timed_requests(app, time.monotonic() + PAUSE)
    reader.resume()
    after = _timed_requests(app, time.monotonic() + 0.5)
    dropped = health.dropped_lines()
    events = _close_and_read(stream, reader)

    assert max(during) < TIMEOUT + 1.5, max(during)
    assert statistics.median(during) / statistics.median(baseline) < 5
    assert dropped > 0
    notices = [e for e in events if "dropped_lines" in e]
    # Each notice counts the lines dropped since the previous one (a nearly full pipe may
    # take a short notice between two dropped lines): together they count every one.
    assert dropped == sum(e["dropped_lines"] for e in notices)
    requests = len(baseline) + len(during) + len(after)
    # 3 app lines + 1 access line a request. Threads that earlier tests of this process
    # left running (collectors, servers) may log during the pause too: their lines are
    # dropped and counted like these, so allow a few lines more, never fewer.
    extra = len(events) - len(notices) + dropped - 4 * requests
    assert 0 <= extra <= 3, extra


def test_socket_reader_that_never_reads_does_not_block() -> None:
    """On a socket (stdout to a shipper over a socket) whose peer never reads, 5000 log
    calls all return and the lines that did not fit are counted as dropped."""
    ours, theirs = socket.socketpair()
    health.reset()
    try:
        stream = ours.makefile("wb")
        configure_logging(stream=stream, write_timeout=TIMEOUT)
        log = get_logger("sock")
        worker = threading.Thread(target=lambda: [log.info("x", n=n) for n in range(5000)])
        worker.start()
        worker.join(timeout=60)
        assert (False, True) == (worker.is_alive(), health.dropped_lines() > 0)
    finally:
        from limone_obs.logging.setup import reset_for_tests  # noqa: PLC0415

        reset_for_tests()
        ours.close()
        theirs.close()
        health.reset()


@pytest.mark.integration
def test_gunicorn_workers_keep_latency_when_stdout_stops() -> None:
    """gunicorn (shipped config, 2 workers, gunicorn's access lines on) with stdout and
    stderr on one pipe whose reader stops for 5 s: every request is answered, none waits
    longer than the timeout plus slack, the median stays within 5x the baseline's; lines
    were dropped and the notices after the pause count them; every line read is whole."""
    read_fd, write_fd = os.pipe()
    port = procs.free_port()
    env = {
        **os.environ,
        "GUNICORN_BIND": f"{procs.LOOPBACK}:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESSLOG": "-",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    argv = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "exporter" / "gunicorn.conf.py"),
            "tests.logging.gunicorn_app:create_app()"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        env["PROMETHEUS_MULTIPROC_DIR"] = tmp
        proc = subprocess.Popen(argv, stdout=write_fd, stderr=write_fd, env=env, cwd=ROOT)
        os.close(write_fd)
        reader = PausingReader(read_fd)
        try:
            base = f"http://{procs.LOOPBACK}:{port}"
            wait_answering(f"{base}/ready", proc)
            baseline = _timed_http(f"{base}/work/1", time.monotonic() + 1.0)
            reader.pause()
            during = _timed_http(f"{base}/work/2", time.monotonic() + PAUSE)
            reader.resume()
            _timed_http(f"{base}/work/3", time.monotonic() + 0.5)
        finally:
            stop_server(proc)
        reader.join()
    lines = bytes(reader.data).splitlines()
    # stderr shares the pipe: the sink's plain-text report of dropped lines may be there.
    broken = [line for line in lines if not _is_json(line) and b"limone-obs logging:" not in line]
    assert [] == broken
    events = [json.loads(line) for line in lines if _is_json(line)]
    assert max(during) < TIMEOUT * 3 + 1.5, max(during)
    assert statistics.median(during) / statistics.median(baseline) < 5
    notices = [e for e in events if "dropped_lines" in e]
    assert sum(e["dropped_lines"] for e in notices) > 0


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _timed_http(url: str, until: float) -> list[float]:
    durations: list[float] = []
    with requests.Session() as session:
        while time.monotonic() < until or not durations:
            start = time.perf_counter()
            assert 200 == session.get(url, timeout=30).status_code
            durations.append(time.perf_counter() - start)
    return durations
