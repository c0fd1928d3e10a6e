"""gunicorn's gevent worker: many requests interleaved in one thread, locks patched late.

gevent's worker patches the standard library (threads become greenlets, ``select.poll``
and sockets wait cooperatively) after the fork, so an app preloaded in the master keeps
the thread locks it made before. Under it the kit must still count every request once,
keep each request's log context its own, know the worker's slots (its connections), and
never let a stopped log reader hang the worker: a greenlet that switches out while
holding a thread lock leaves every other greenlet of the worker waiting for it for good,
so the log sink waits without switching and tells the kit's health outside its lock.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from limone_obs import conventions as c
from limone_obs.exporter import workers
from limone_obs.stack import procs
from tests.logging.test_blocked_output import PausingReader
from tests.servers.gevent_locks import GREENLETS
from tests.support import (
    ROOT,
    gunicorn_server,
    in_ci,
    on_a_free_port,
    per_endpoint,
    settled,
    statuses_of,
    stop_server,
    wait_answering,
    wait_until,
)

pytestmark = pytest.mark.integration
APP = "tests.servers.gevent_app:create_app()"
N = c.MetricNames()
#: Seconds gunicorn lets a worker stay silent before killing it: a hung worker shows as
#: failed requests within the test's time, not after a minute.
WORKER_TIMEOUT = 10
#: Longest a request may take while the log output takes nothing: the sink's wait
#: (0.1 s) plus a loaded 2-core machine's slack, well below WORKER_TIMEOUT.
SLOW_REQUEST = 5.0


@pytest.fixture(autouse=True)
def _gevent_installed() -> None:
    """The tests need gevent (the ``dev`` extra installs it); skip locally, fail in CI."""
    if importlib.util.find_spec("gevent") is None:
        message = f"gevent is not installed: {sys.executable} -m pip install 'gunicorn[gevent]'"
        if in_ci():
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)


def test_counts_slots_and_request_context(tmp_path: Path) -> None:
    """2 workers of 4 connections: 8 slots; 8 concurrent slow requests make all 8 busy,
    each is counted once and answers, and logs, its own tag and request id."""
    mp = tmp_path / "mp"
    mp.mkdir()
    server_env = {
        "GUNICORN_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(mp),
    }
    args = ["-k", "gevent", "--worker-connections", "4"]
    with gunicorn_server(APP, tmp_path, server_env, args=args, ready_path="/ready") as (url, _):
        wait_until(lambda: workers.read_files(str(mp), N)[1] == 8, "8 slots published")
        busy: list[float] = []

        def all_busy() -> bool:
            busy.append(workers.read_files(str(mp), N)[0])
            return busy[-1] == 8

        def slow(tag: int) -> requests.Response:
            # Longer than gunicorn's keepalive (2 s): a connection waiting for its next
            # request holds a worker's slot until then without being busy (seen right
            # after the readiness probe: 7 busy, the 8th request queued for 2 s), so
            # shorter requests need not all overlap.
            params: dict[str, str | float] = {"seconds": 4, "tag": f"t{tag}"}
            return requests.get(f"{url}/slow", params=params, timeout=60)

        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(slow, i) for i in range(8)]
            wait_until(all_busy, "all 8 slots busy")
            answers = [f.result() for f in futures]
        assert [200] * 8 == [a.status_code for a in answers]
        bodies = [a.json() for a in answers]
        assert [f"t{i}" for i in range(8)] == [b["tag"] for b in bodies]
        ids = [a.headers[c.REQUEST_ID_HEADER] for a in answers]
        assert ids == [b["request_id"] for b in bodies]
        assert 8 == len(set(ids))
        assert 8 == max(busy)
        assert 8 == settled(lambda: _counted_but_ready(url), lambda counted: counted >= 8)
        wait_until(lambda: workers.read_files(str(mp), N)[0] == 0, "no slot busy")
    slept = [e for e in _events(tmp_path / "gunicorn.log") if e.get("message") == "slept"]
    assert sorted(zip(ids, [f"t{i}" for i in range(8)], strict=True)) == sorted(
        (e["request_id"], e["seen"]) for e in slept
    )
    assert all(e["tag"] == e["seen"] for e in slept)


def _counted_but_ready(url: str) -> float:
    """Requests counted so far but the readiness checks (``/ready``), from one scrape."""
    counted = per_endpoint(requests.get(f"{url}/metrics", timeout=10).text, N.requests_total)
    return sum(counted.values()) - counted.get("/ready", 0.0)


def _events(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a plain line (gunicorn's own, before the config took over)
    return events


@pytest.mark.parametrize("case", ["sink", "health", "listener"])
def test_no_greenlet_switches_out_holding_a_thread_lock(case: str, tmp_path: Path) -> None:
    """tests/servers/gevent_locks.py, one case per process: 20 greenlets all finish (a
    switch while a thread lock is held hangs the process instead)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "tests.servers.gevent_locks", case]
    try:
        done = subprocess.run(
            argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=90, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: the greenlets hung: one switched out holding a thread lock")
    assert 0 == done.returncode, done.stdout + done.stderr
    assert f"{GREENLETS} of {GREENLETS} greenlets done" in done.stdout


@pytest.mark.parametrize(
    ("output", "preload"), [("pipe", True), ("socket", False)], ids=["pipe-preloaded", "socket"]
)
def test_worker_keeps_serving_when_stdout_stops(output: str, preload: bool) -> None:
    """stdout on a pipe whose reader stops, with the app preloaded (its locks made before
    gevent's patching), or on a socket whose peer stops reading, with the app loaded in
    the worker (after the patching: gevent's sockets and poll): 48 clients keep getting
    answers in bounded time, no worker is killed for hanging, and the worker's stdout
    keeps its blocking mode (a gevent socket would have made it non-blocking)."""
    with _stuck_server(output, preload) as (url, stop, stderr):
        _load(url, seconds=0.5)  # the output takes lines
        stop()
        durations = _load(url, seconds=4.0)
        flags = _fd_flags(_worker_of(url), 1)
        server_lines = stderr()
    assert max(durations) < SLOW_REQUEST, max(durations)
    assert not flags & os.O_NONBLOCK, oct(flags)
    assert "WORKER TIMEOUT" not in server_lines


@contextmanager
def _stuck_server(
    output: str, preload: bool
) -> Iterator[tuple[str, Callable[[], None], Callable[[], str]]]:
    """gunicorn (the kit's config, one gevent worker) writing its stdout to ``output``;
    yields (base URL, stop the reader, stderr so far)."""
    port = procs.free_port()
    env = {
        **os.environ,
        "GUNICORN_BIND": f"{procs.LOOPBACK}:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_TIMEOUT": str(WORKER_TIMEOUT),
        "PYTHONPATH": str(ROOT),
    }
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:limone_obs.gunicorn_conf",
            "-k", "gevent", *(["--preload"] if preload else []), APP]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "stderr", "w+b") as err:
        env["PROMETHEUS_MULTIPROC_DIR"] = tmp
        ours, stop = _output(output)
        proc = subprocess.Popen(argv, stdout=ours, stderr=err, env=env, cwd=ROOT)
        os.close(ours)
        try:
            url = f"http://{procs.LOOPBACK}:{port}"
            wait_answering(f"{url}/ready", proc)
            yield url, stop, lambda: Path(err.name).read_text(errors="replace")
        finally:
            stop_server(proc)
            stop(close=True)


def _output(kind: str) -> tuple[int, Callable[..., None]]:
    """The server's stdout descriptor, and ``stop(close=False)``: stop reading (or close)."""
    if kind == "pipe":
        read_fd, write_fd = os.pipe()
        reader = PausingReader(read_fd)

        def stop_pipe(close: bool = False) -> None:
            if close:
                reader.resume()
                reader.join()
            else:
                reader.pause()

        return write_fd, stop_pipe
    theirs, peer = socket.socketpair()
    drained = _Drain(peer)

    def stop_socket(close: bool = False) -> None:
        drained.stop()
        if close:
            peer.close()

    return theirs.detach(), stop_socket


class _Drain:
    """Reads a socket in a thread until ``stop()``; then the peer never reads again."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._stopped = threading.Event()
        sock.settimeout(0.05)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                if not self._sock.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)


def _load(url: str, seconds: float, clients: int = 48) -> list[float]:
    """``clients`` threads asking ``/slow`` in turn for ``seconds``; every duration.

    A new connection per request, as from many browsers: the worker's accept loop then
    has new greenlets to run at any moment, the moments a greenlet switched out holding
    a lock would leave to the others.
    """
    until = time.monotonic() + seconds

    def client(n: int) -> list[float]:
        durations: list[float] = []
        while time.monotonic() < until:
            start = time.perf_counter()
            params: dict[str, str | float] = {"seconds": 0.05, "tag": f"c{n}"}
            answer = requests.get(f"{url}/slow", params=params, timeout=WORKER_TIMEOUT * 2)
            assert 200 == answer.status_code
            durations.append(time.perf_counter() - start)
        return durations

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return [d for ds in pool.map(client, range(clients)) for d in ds]


def _worker_of(url: str) -> int:
    """The pid of the worker answering ``url`` (``/slow`` answers it)."""
    return int(json.loads(requests.get(f"{url}/slow", timeout=10).text)["pid"])


def _fd_flags(pid: int, fd: int) -> int:
    """The open-file flags of descriptor ``fd`` of process ``pid`` (octal in fdinfo)."""
    for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8)
    raise AssertionError(f"no flags for descriptor {fd} of {pid}")


@pytest.mark.parametrize(
    ("path", "answered"), [("/stream-fails-first", 500), ("/stream-empty-then-fails", 500)]
)
def test_gevent_pywsgi_counts_a_stream_failing_before_any_byte_as_its_500(
    tmp_path: Path, path: str, answered: int
) -> None:
    """gevent's own server sends nothing for an empty chunk, not even the headers: a body
    failing after only empty chunks is answered 500, and counted 500 (it was counted as
    the view's 200, as under gunicorn and Werkzeug, which send the headers with it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def start(port: int) -> procs.Proc:
        argv = [sys.executable, "-m", "tests.servers.gevent_pywsgi_app", str(port)]
        return procs.start("gevent-pywsgi", argv, tmp_path / "server.log", env=env, cwd=ROOT)

    def ready(proc: procs.Proc, port: int) -> None:
        procs.wait_http(proc, f"http://{procs.LOOPBACK}:{port}/ready")

    with on_a_free_port(start, ready) as (port, _):
        url = f"http://{procs.LOOPBACK}:{port}"
        assert answered == requests.get(f"{url}{path}", timeout=10).status_code
        text = requests.get(f"{url}/metrics", timeout=10).text
    assert {str(answered)} == statuses_of(text, path)


def test_gunicorns_gevent_pywsgi_handler_skips_empty_chunks_too() -> None:
    """gunicorn's gevent_pywsgi worker serves through a subclass of gevent's handler (in a
    gunicorn module): its start_response is gevent's, which sends nothing for an empty
    chunk; gunicorn's own sync worker's is not."""
    from gunicorn.http.wsgi import Response  # noqa: PLC0415
    from gunicorn.workers.ggevent import PyWSGIHandler  # noqa: PLC0415

    from limone_obs.lifecycle import _skips_empty_chunks  # noqa: PLC0415

    handler = object.__new__(PyWSGIHandler)
    response = object.__new__(Response)
    assert (True, False) == (
        _skips_empty_chunks(handler.start_response),
        _skips_empty_chunks(response.start_response),
    )
