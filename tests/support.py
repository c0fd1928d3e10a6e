"""Helpers shared by the tests of every area (import as ``tests.support``).

Integration tests ask for real binaries with :func:`need`: missing locally, the test is
skipped with the install command; missing with ``CI=true``, the test fails, so CI can
never pass by skipping what it must run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler, make_server

from limone_obs import lifecycle
from limone_obs.exporter import fast_path
from limone_obs.stack import configs, procs

ROOT = Path(__file__).resolve().parent.parent

#: Why a ``fast_path`` test cannot run (None: it can). On a prometheus-client release the
#: fast path was not tested with (./scripts/compat with a new release), the exporter uses
#: the public API: those tests skip, and test_tested_release_uses_the_fast_path fails
#: saying what to do. CI installs a tested release (scripts/constraints.txt).
UNTESTED_CLIENT = (
    None
    if fast_path.tested_client()
    else f"prometheus-client {fast_path.client_version()} is not a release the fast path "
    "was tested with (exporter/fast_path.py TESTED_VERSIONS): the exporter uses the public API"
)

#: Attempts at starting a server on a port from free_port() (another process may take it).
PORT_ATTEMPTS = 3
#: Longest wait, in seconds, of :func:`settled` for the last answered requests' records.
SETTLE_TIMEOUT = 10.0
T = TypeVar("T")


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where missing binaries are failures."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(service: str) -> str:
    """Return the path of ``service`` (see ``procs.BINARIES``); skip locally, fail in CI."""
    path = procs.find_binary(service)
    if path is None:
        message = f"{service} is not installed: {procs.install_hint(service)}"
        if in_ci():
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return path


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's request handler without its one log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        del code, size


@contextmanager
def serve(app: Flask, *, quiet: bool = False) -> Iterator[str]:
    """Serve ``app`` threaded on a free 127.0.0.1 port; yield its base URL; stop on exit.

    On exit the request threads still running are waited for (10 s at most in all):
    werkzeug's are daemon threads that may still be ending a request (its metrics, its
    access line) after the client got the last byte.

    ``quiet`` drops werkzeug's line per request (tests that send many requests).
    """
    handler = _QuietHandler if quiet else None
    server = make_server(procs.LOOPBACK, 0, app, threaded=True, request_handler=handler)
    assert isinstance(server, ThreadedWSGIServer)
    requests_served: list[threading.Thread] = []

    def process_request(request: Any, client_address: Any) -> None:
        # ThreadingMixIn's, with each thread listed before it starts, by the serving
        # thread: shutdown() returns after the last one was listed.
        served = threading.Thread(
            target=server.process_request_thread, args=(request, client_address), daemon=True
        )
        requests_served.append(served)
        served.start()

    server.process_request = process_request  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://{procs.LOOPBACK}:{server.server_port}"
    finally:
        server.shutdown()
        deadline = time.monotonic() + 10
        thread.join(timeout=10)
        for served in requests_served:
            served.join(timeout=max(0.0, deadline - time.monotonic()))
        running = sum(served.is_alive() for served in requests_served)
        server.server_close()
        if running:
            warnings.warn(f"serve(): {running} request thread(s) still running after 10 s",
                          stacklevel=2)  # fmt: skip


@contextmanager
def gunicorn_server(
    app: str,
    logdir: Path,
    env: Mapping[str, str],
    *,
    ready_path: str = "/metrics",
    timeout: float = 60,
    name: str = "gunicorn",
    config: str | None = str(ROOT / "exporter" / "gunicorn.conf.py"),
    args: Sequence[str] = (),
    prefix: Sequence[str] = (),
) -> Iterator[tuple[str, procs.Proc]]:
    """Run ``app`` (``"module:factory()"``) under exporter/gunicorn.conf.py on 127.0.0.1.

    ``config`` is gunicorn's ``-c`` value (e.g. ``python:limone_obs.gunicorn_conf``); None
    runs gunicorn without a config file (as a user would), bound with ``--bind`` and
    without its control socket; ``args`` are more command-line options (e.g. ``-w 3``);
    ``prefix`` is a command gunicorn runs under (e.g. ``unshare``; it is the process
    stopped at the end).

    ``env`` is laid over this process's environment, from which PROMETHEUS_MULTIPROC_DIR
    is dropped (an outer value must not leak into a test's server); GUNICORN_BIND is set
    here. Yields ``(base URL, master process)`` once ``ready_path`` answers and stops the
    master on exit. gunicorn binds the port only after free_port() chose it: if another
    process took it meanwhile (PortInUseError), it starts again on a new port, up to
    PORT_ATTEMPTS times. The log is ``logdir / f"{name}.log"``.
    """
    argv = [*prefix, sys.executable, "-m", "gunicorn", *(["-c", config] if config else []), *args]
    log = logdir / f"{name}.log"

    def start(port: int) -> procs.Proc:
        bound = ["--no-control-socket", "--bind", f"{procs.LOOPBACK}:{port}"] if not config else []
        server_env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        server_env.update(env, GUNICORN_BIND=f"{procs.LOOPBACK}:{port}", PYTHONPATH=str(ROOT))
        return procs.start(name, [*argv, *bound, app], log, env=server_env, cwd=ROOT)

    def ready(proc: procs.Proc, port: int) -> None:
        procs.wait_http(proc, f"http://{procs.LOOPBACK}:{port}{ready_path}", timeout=timeout)

    with on_a_free_port(start, ready) as (port, proc):
        yield f"http://{procs.LOOPBACK}:{port}", proc


@contextmanager
def prometheus_server(
    tmp_path: Path, target: str, *, job: str, rule_files: Sequence[str] = ()
) -> Iterator[str]:
    """A real Prometheus scraping ``target`` as ``job`` every second and evaluating
    ``rule_files`` as often; yields its base URL, stops it on exit."""
    binary = need("prometheus")
    config = configs.prometheus_config(
        job=job, app_target=target, alertmanager_target=None,
        scrape_interval="1s", rule_files=list(rule_files),
    )  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(config)
    port = procs.free_port()
    argv = procs.prometheus_argv(binary, tmp_path / "prometheus.yml", tmp_path / "prom-data", port)
    proc = procs.start("prometheus", argv, tmp_path / "prometheus.log")
    try:
        url = f"http://{procs.LOOPBACK}:{port}"
        procs.wait_http(proc, f"{url}/-/ready", timeout=60)
        yield url
    finally:
        proc.stop()


@contextmanager
def on_a_free_port(
    start: Callable[[int], procs.Proc], ready: Callable[[procs.Proc, int], None]
) -> Iterator[tuple[int, procs.Proc]]:
    """Start a server with ``start(port)`` on a port from free_port(), wait with
    ``ready(proc, port)``, yield ``(port, proc)`` and stop it on exit.

    Another process may take the port between free_port() and the server's bind: when
    ``ready`` raises PortInUseError the server is stopped and started again on a new port,
    up to PORT_ATTEMPTS times. Any other failure stops it and propagates.
    """
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = procs.free_port()
        proc = start(port)
        try:
            ready(proc, port)
        except procs.PortInUseError:
            proc.stop()
            if attempt == PORT_ATTEMPTS:
                raise
            # The next attempt starts a fresh log: its own failure must not be judged by
            # this attempt's "address already in use" line.
            proc.log.replace(proc.log.with_name(f"{proc.log.name}.port-taken-{attempt}"))
            continue
        except BaseException:
            proc.stop()
            raise
        try:
            yield port, proc
        finally:
            proc.stop()
        return


def metric_sum(url: str, name: str) -> float:
    """Sum of every sample called ``name`` in one scrape of ``url``/metrics."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def settled(read: Callable[[], T], reached: Callable[[T], bool]) -> T:
    """``read()`` once ``reached`` holds for its value, or the last value read after
    SETTLE_TIMEOUT seconds; the caller then asserts the exact value.

    The kit records a request (count, duration, in-flight slot, calls per request, access
    line) after the server has sent its last byte. A scrape that another worker process
    or thread answers, or a read of a log another one writes, right after the client got
    the response may come before that. ``reached`` holds at or past the expected value
    (``total >= answered``, ``busy <= 0``): a value past it is returned at once, one that
    never gets there after the deadline, and either fails the caller's equality.
    """
    deadline = time.monotonic() + SETTLE_TIMEOUT
    value = read()
    while not reached(value) and time.monotonic() < deadline:
        time.sleep(0.02)
        value = read()
    return value


def settled_total(url: str, at_least: float, name: str) -> float:
    """:func:`metric_sum` of ``name`` once it counts ``at_least`` (see :func:`settled`)."""
    return settled(lambda: metric_sum(url, name), lambda total: total >= at_least)


def per_endpoint(text: str, name: str) -> dict[str, float]:
    """The samples called ``name`` in exposition ``text``, summed by their endpoint label."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                endpoint = sample.labels["endpoint"]
                out[endpoint] = out.get(endpoint, 0.0) + sample.value
    return out


def statuses_of(text: str, endpoint: str) -> set[str]:
    """The ``status`` labels of the request counter's samples of ``endpoint`` in exposition
    ``text`` (the default namespace's ``<ns>_requests_total``)."""
    return {
        sample.labels["status"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "limoneide_requests_total" and sample.labels["endpoint"] == endpoint
    }


def race(target: Callable[[], object], threads: int = 8) -> None:
    """Run ``target`` in ``threads`` threads released together, switching as often as
    the interpreter allows; return when all have finished. An exception raised in any
    thread is re-raised here (the first one, the others attached as notes), so a test
    whose threads fail cannot pass; assert on the shared state afterwards."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            target()
        except BaseException as exc:  # re-raised in the test's own thread below
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(previous)
    if errors:
        first = errors[0]
        for other in errors[1:]:
            first.add_note(f"also raised in another thread: {other!r}")
        raise first


def stop_server(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a server this test started: SIGTERM, then SIGKILL if it is not gone in time."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # only the server this test started
        proc.wait()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``check`` every 20 ms until it holds; fail after ``timeout`` s naming ``what``.

    Tests synchronise with servers and threads this way, never with a fixed sleep.
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.02)


def leave_mid_body(base: str, path: str) -> None:
    """GET ``path`` of server ``base`` (``http://host:port``) on a raw socket, read up to
    the end of the response's headers, then drop the connection: a client gone mid-body."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)


def wait_answering(url: str, proc: subprocess.Popen[Any] | None = None) -> None:
    """Wait until ``url`` answers 200 (a server starting); fail at once if ``proc`` (the
    server's process, when given) exits meanwhile, else after 30 s."""

    def ready() -> bool:
        assert proc is None or proc.poll() is None, f"the server of {url} exited"
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(ready, f"a server answering {url}")


def promtool_test(test: Path | str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``promtool test rules test`` in ``cwd`` (rule files are found from there);
    the caller reads the exit code and output. Without promtool: skipped, or failed
    under ``CI=true`` (:func:`need`)."""
    return subprocess.run(
        [need("promtool"), "test", "rules", str(test)],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def fork_while_held(lock: Any, child: Callable[[], object], timeout: float = 20.0) -> int:
    """Fork while another thread holds ``lock``; run ``child()`` in the child, which then
    leaves without pytest's teardown (exit 0, or 1 if it raised). Return the child's wait
    status; a child still running after ``timeout`` seconds (hung on the lock) is killed
    (SIGKILL)."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(timeout + 10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10), "the holding thread did not take the lock"
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                child()
                code = 0
            finally:
                os._exit(code)
        return wait_or_kill(pid, timeout)
    finally:
        release.set()
        holder.join()


def wait_or_kill(pid: int, timeout: float) -> int:
    """The wait status of child ``pid``; killed (SIGKILL) when still running after
    ``timeout`` seconds (hung)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.005)  # polling the child's exit, bounded by the deadline
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


class FailingEnd:
    """A lifecycle participant whose end of request raises (and that does nothing else)."""

    def begin(self, state: lifecycle.RequestState, environ: object) -> None:
        del state, environ

    def routed(self, state: lifecycle.RequestState) -> None:
        del state

    def end(self, state: lifecycle.RequestState, elapsed: float) -> None:
        del state, elapsed
        raise RuntimeError("end failed")

    def unnest(self, state: lifecycle.RequestState) -> None:
        del state

    def reenter(self, state: lifecycle.RequestState) -> None:
        del state
