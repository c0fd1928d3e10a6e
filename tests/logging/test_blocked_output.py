"""A stdout reader that stops reading never blocks the app for long (issue 12, point 4).

The sink waits at most ``write_timeout`` for room, then drops and counts lines without
waiting until the reader is back, and then writes one line saying how many were dropped.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import requests
from flask import Flask

from limone_obs import health
from limone_obs.logging import _pipeline, configure_logging, get_logger, init_app
from limone_obs.logging._sink import PipeWriter
from limone_obs.stack import procs
from tests.logging.helpers import parse_lines
from tests.support import ROOT, stop_server, wait_answering, wait_until

TIMEOUT = 0.1
#: Longest the requests made while the reader stops may take before the test calls them
#: stuck: a guard against a hang, far above what they take on a loaded machine.
HANG_GUARD = 90.0


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


def _requests(app: Flask, count: int) -> int:
    """Serve ``count`` requests of ``/work`` on the test client; return how many."""
    client = app.test_client()
    for _ in range(count):
        with client.get("/work") as response:  # closed: the access line is written
            assert 200 == response.status_code
    return count


def _done_while_stopped(work: Callable[[], object], reader: PausingReader) -> None:
    """Run ``work`` in a thread while ``reader`` reads nothing; fail if it does not end.

    A sink that blocked on the full pipe would never let it end while the reader is
    stopped: after the guard the reader is resumed (the blocked writes can go on) and the
    test fails. The guard only stops a hang; no speed is asserted.
    """
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported by the test, below
            failures.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=HANG_GUARD)
    stuck = worker.is_alive()
    if stuck:
        reader.resume()
        worker.join(timeout=HANG_GUARD)
    assert not stuck, f"the requests did not end within {HANG_GUARD} s while the reader stopped"
    assert [] == failures


def _close(stream: IO[bytes], reader: PausingReader) -> bytes:
    """Close the output (the sink, the stream); return all the reader read."""
    from limone_obs.logging.setup import reset_for_tests  # noqa: PLC0415 - closes the sink

    reset_for_tests()
    stream.close()
    reader.join()
    return bytes(reader.data)


def _close_and_read(stream: IO[bytes], reader: PausingReader) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _close(stream, reader).splitlines()]


def test_stopped_reader_costs_requests_one_wait(
    pipe: tuple[IO[bytes], PausingReader], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the reader stops, requests end without it: the line that finds the pipe full
    waits (at most the timeout) and is dropped, and every later line is dropped without
    waiting, so 200 requests (800 lines, far more than the pipe holds) are all served
    before the reader is back. Lines are dropped and counted; when the reader is back a
    line says how many; every line read is whole. Counted, not timed: a machine's speed
    changes nothing here."""
    stream, reader = pipe
    waits: list[bool] = []  # per PipeWriter.write given time to wait: was the line taken?
    write = PipeWriter.write

    def counting_write(self: PipeWriter, line: bytes, wait: float) -> bool:
        taken = write(self, line, wait)
        if wait > 0:
            waits.append(taken)
        return taken

    monkeypatch.setattr(PipeWriter, "write", counting_write)
    configure_logging(stream=stream, write_timeout=TIMEOUT)
    app = _app()
    baseline = _requests(app, 20)
    assert [] == [taken for taken in waits if not taken]  # the reader took every line
    reader.pause()
    waited = len(waits)
    _done_while_stopped(lambda: _requests(app, 200), reader)
    # Lines taken until the pipe filled, one wait that timed out, then no more waiting.
    during = waits[waited:]
    assert 1 == during.count(False), during
    assert not during[-1], during
    assert health.dropped_lines() > 0
    reader.resume()
    after = _requests(app, 10)
    dropped = health.dropped_lines()
    events = _close_and_read(stream, reader)

    notices = [e for e in events if "dropped_lines" in e]
    # Each notice counts the lines dropped since the previous one (a nearly full pipe may
    # take a short notice between two dropped lines): together they count every one.
    assert dropped == sum(e["dropped_lines"] for e in notices)
    requests = baseline + 200 + after
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
def test_gunicorn_workers_keep_serving_when_stdout_stops() -> None:
    """gunicorn (shipped config, 2 workers, gunicorn's access lines on) with stdout and
    stderr on one pipe whose reader stops: 300 requests (several pipes' worth of lines)
    are all answered before the reader is back, no worker is killed for hanging; lines
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
            _http(f"{base}/work/1", 20)
            reader.pause()
            # About 1.5 KB of lines a request (the app's two, the access line, gunicorn's
            # own): 300 requests are several times what the pipe holds.
            _done_while_stopped(lambda: _http(f"{base}/work/2", 300), reader)
            reader.resume()
            _http(f"{base}/work/3", 20)
        finally:
            stop_server(proc)
        reader.join()
    lines = bytes(reader.data).splitlines()
    # stderr shares the pipe: the sink's plain-text report of dropped lines may be there.
    broken = [line for line in lines if not _is_json(line) and b"limone-obs logging:" not in line]
    assert [] == broken
    events = [json.loads(line) for line in lines if _is_json(line)]
    assert not any(b"WORKER TIMEOUT" in line for line in lines)
    notices = [e for e in events if "dropped_lines" in e]
    assert sum(e["dropped_lines"] for e in notices) > 0


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _http(url: str, count: int) -> None:
    """Ask ``url`` ``count`` times on one connection; each must answer 200."""
    with requests.Session() as session:
        for _ in range(count):
            assert 200 == session.get(url, timeout=30).status_code


_PRINTED_BEFORE_SCRIPT = """
import fcntl, os, sys
from limone_obs.logging import configure_logging, get_logger
configure_logging(stream=sys.stdout, write_timeout=0.1)
log = get_logger("t")
# The reader stopped with one free page left in the pipe.
fd = os.open("/proc/self/fd/1", os.O_WRONLY | os.O_NONBLOCK)
left = fcntl.fcntl(1, fcntl.F_GETPIPE_SZ) - 4096
while left:
    left -= os.write(fd, b"f" * (left - 1) + b"\\n" if left > 1 else b"\\n")
print("p" * 8000)  # kept in stdout's buffer: a pipe, and no PYTHONUNBUFFERED
log.info("after the print")
print("logged", file=sys.stderr, flush=True)
os._exit(0)  # without flushing stdout: the reader does not read
"""


def test_text_printed_before_a_line_does_not_make_it_wait_for_the_reader() -> None:
    """Block-buffered stdout holding 8 KB of the app's print() text, a pipe with one free
    page and a reader that stopped: the log call does not flush that text (it would wait
    for the reader as long as it stops), and its line is written."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    child = subprocess.Popen(
        [sys.executable, "-c", _PRINTED_BEFORE_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        # Nothing reads stdout until the child is gone: a flush would block it for good.
        code = child.wait(timeout=20)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        pytest.fail("the log call waited for the stopped reader")
    finally:
        out = child.stdout.read() if child.stdout else b""
        err = child.stderr.read() if child.stderr else b""
    assert 0 == code, err
    assert b"logged" in err
    lines = [json.loads(line) for line in out.splitlines() if line.startswith(b"{")]
    assert ["after the print"] == [e["message"] for e in lines]


def test_a_line_waiting_for_another_threads_wait_is_dropped_in_its_timeout(
    pipe: tuple[IO[bytes], PausingReader],
) -> None:
    """The wait for the sink's lock (another thread waiting for room in the pipe) counts
    in a line's timeout: the call returns while that thread still holds the lock, its
    line dropped and counted, and the next line that is written says so."""
    stream, reader = pipe
    configure_logging(stream=stream, write_timeout=TIMEOUT)
    sink = _pipeline.current.sink
    assert sink is not None
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # as a writer waiting for a stopped reader would
        with sink._lock:
            held.set()
            release.wait(5)  # a guard: the call is expected back long before

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        get_logger("t").info("while the lock is held")
        still_held = holder.is_alive() and not release.is_set()
    finally:
        release.set()
        holder.join()
    assert still_held, "the log call waited for the other thread to let go"
    assert 1 == health.dropped_lines()
    get_logger("t").info("after")
    events = _close_and_read(stream, reader)
    assert [1] == [e["dropped_lines"] for e in events if "dropped_lines" in e]
    assert ["after"] == [e["message"] for e in events if e["logger"] == "t"]


def test_lines_dropped_before_configure_logging_again_are_said_after_it(
    pipe: tuple[IO[bytes], PausingReader],
) -> None:
    """Lines dropped while the reader stopped, then ``configure_logging`` again on the same
    pipe: the new output's recovery line counts them (none is lost from the tally)."""
    stream, reader = pipe
    configure_logging(stream=stream, write_timeout=TIMEOUT)
    log = get_logger("t")
    reader.pause()
    _done_while_stopped(lambda: [log.info("filler", pad="x" * 1000) for _ in range(200)], reader)
    dropped = health.dropped_lines()
    assert dropped > 0
    configure_logging(stream=stream, write_timeout=TIMEOUT)
    reader.resume()
    log.info("after")
    events = _close_and_read(stream, reader)
    assert dropped == sum(e["dropped_lines"] for e in events if "dropped_lines" in e)
    assert "after" == events[-1]["message"]


def test_a_line_cut_short_before_configure_logging_again_leaves_the_next_whole(
    pipe: tuple[IO[bytes], PausingReader],
) -> None:
    """A line over PIPE_BUF (a raised cap) that the stopped reader's pipe took in part,
    then ``configure_logging`` again on the same pipe: the new output's first line starts
    on a line of its own, not glued to the cut one's head."""
    stream, reader = pipe
    configure_logging(stream=stream, write_timeout=TIMEOUT, max_line_bytes=65536)
    log = get_logger("t")
    reader.pause()
    for _ in range(10):
        log.info("filler", pad="x" * 1000)  # the pipe holds them: about 10 KB
    log.info("long", pad="y" * 60_000)  # more than the room left: goes out in part
    configure_logging(stream=stream, write_timeout=TIMEOUT, max_line_bytes=65536)
    reader.resume()
    log.info("after")
    whole = []
    for line in _close(stream, reader).splitlines():
        with contextlib.suppress(ValueError):
            whole.append(json.loads(line).get("message"))
    assert "long" not in whole
    assert "after" == whole[-1]


def test_write_timeout_zero_drops_no_line_of_threads_taking_turns(
    pipe: tuple[IO[bytes], PausingReader],
) -> None:
    """write_timeout=0 (never wait for the pipe): threads logging at once while the reader
    reads lose no line to each other's ordinary writes (fewer lines than the pipe holds:
    none is dropped for want of room)."""
    stream, reader = pipe
    configure_logging(stream=stream, write_timeout=0)
    log = get_logger("t")
    start = threading.Barrier(8)

    def burst() -> None:
        start.wait(10)
        for _ in range(40):
            log.info("line")

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    events = _close_and_read(stream, reader)
    assert 320 == sum(1 for e in events if e.get("message") == "line")
    assert 0 == health.dropped_lines()


def test_a_line_that_cannot_wait_for_the_pipe_still_reaches_the_file(
    pipe: tuple[IO[bytes], PausingReader], tmp_path: Path
) -> None:
    """Threads whose wait for the sink's lock runs out (another waits for a stopped reader)
    lose their line on the pipe only: the file= copy, on a disk that takes it, has every
    line, and the lost ones are counted once (for the pipe)."""
    stream, reader = pipe
    configure_logging(stream=stream, write_timeout=TIMEOUT, file=tmp_path / "app.log")
    log = get_logger("t")
    reader.pause()
    # The pipe full (not by the sink: it is not stalled yet, so its first writer waits).
    fd = os.open(f"/proc/self/fd/{stream.fileno()}", os.O_WRONLY | os.O_NONBLOCK)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(fd, b"x" * 4095 + b"\n")
    os.close(fd)
    start = threading.Barrier(20)

    def one(i: int) -> None:
        start.wait(10)
        log.info("racer", n=i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]

    def race() -> None:
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    _done_while_stopped(race, reader)
    lines = parse_lines((tmp_path / "app.log").read_bytes())
    assert 20 == sum(1 for e in lines if e["message"] == "racer")
    assert 0 < health.dropped_lines() <= 20  # lost on the pipe, once each
    reader.resume()
    _close(stream, reader)
