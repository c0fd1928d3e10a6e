"""The shared test helpers fail loudly: a helper thread's exception fails its test."""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from flask import Flask, Response

from limone_obs.errors import StackError
from limone_obs.stack import procs
from tests import support
from tests.support import on_a_free_port, race, settled, wait_until


class HelperError(RuntimeError):
    """Raised in a helper thread."""


def test_race_reraises_an_exception_of_its_threads() -> None:
    """Threads that all raise make race() raise, instead of a passing test."""

    def fail() -> None:
        raise HelperError("in a thread")

    with pytest.raises(HelperError, match="in a thread"):
        race(fail, threads=4)


def test_race_returns_when_every_thread_succeeds() -> None:
    """Without exceptions every thread runs the target once."""
    ran: list[int] = []
    race(lambda: ran.append(1), threads=4)
    assert [1, 1, 1, 1] == ran


def test_wait_until_fails_naming_what_it_waited_for() -> None:
    """A condition that never holds fails the test with its description."""
    with pytest.raises(pytest.fail.Exception, match="the flag"):
        wait_until(threading.Event().is_set, "the flag", timeout=0.1)


def test_settled_waits_until_the_value_is_reached() -> None:
    """A count still short of the expected value is read again until it gets there."""
    reads = iter([18.0, 19.0, 20.0, 21.0])
    assert 20.0 == settled(lambda: next(reads), lambda total: total >= 20)


def test_settled_returns_a_value_past_the_expected_one_at_once() -> None:
    """A count already above the expected value is returned as read (its test fails)."""
    reads = iter([21.0, 20.0])
    assert 21.0 == settled(lambda: next(reads), lambda total: total >= 20)


def test_settled_returns_the_last_value_read_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A count that never gets there is returned as last read once the time is up."""
    monkeypatch.setattr(support, "SETTLE_TIMEOUT", 0.1)
    reads: list[float] = []

    def read() -> float:
        reads.append(19.0)
        return 19.0

    assert 19.0 == settled(read, lambda total: total >= 20)
    assert len(reads) > 1


def test_a_server_whose_port_was_taken_starts_again_on_another(tmp_path: Path) -> None:
    """The first port is taken by another socket before the server binds it: the server
    exits (address already in use), and on_a_free_port starts it again on a new port."""
    taken = socket.socket()
    taken.bind((procs.LOOPBACK, 0))
    taken.listen()
    ports: list[int] = []

    def start(port: int) -> procs.Proc:
        port = taken.getsockname()[1] if not ports else port  # the race, made certain
        ports.append(port)
        argv = [sys.executable, "-m", "http.server", "--bind", procs.LOOPBACK, str(port)]
        return procs.start("http", argv, tmp_path / "http.log", cwd=tmp_path)

    def ready(proc: procs.Proc, port: int) -> None:
        procs.wait_http(proc, f"http://{procs.LOOPBACK}:{ports[-1]}/", timeout=30)

    try:
        with on_a_free_port(start, ready) as (_port, proc):
            answer = requests.get(f"http://{procs.LOOPBACK}:{ports[-1]}/", timeout=5)
            assert (2, 200, True) == (len(ports), answer.status_code, proc.alive())
    finally:
        taken.close()
    assert not proc.alive()  # stopped on exit
    # The taken port's attempt kept its own log; the second one started a fresh file.
    assert "already in use" in (tmp_path / "http.log.port-taken-1").read_text().lower()
    assert "already in use" not in (tmp_path / "http.log").read_text().lower()


def test_a_server_that_fails_otherwise_is_not_started_again(tmp_path: Path) -> None:
    """A server that exits for another reason fails at once, after one attempt."""
    starts: list[int] = []

    def start(port: int) -> procs.Proc:
        starts.append(port)
        argv = [sys.executable, "-c", "raise SystemExit('broken config')"]
        return procs.start("broken", argv, tmp_path / "broken.log", cwd=tmp_path)

    def ready(proc: procs.Proc, port: int) -> None:
        procs.wait_http(proc, f"http://{procs.LOOPBACK}:{port}/", timeout=30)

    with pytest.raises(StackError) as raised, on_a_free_port(start, ready):
        pass
    assert (1, False) == (len(starts), isinstance(raised.value, procs.PortInUseError))


def test_serve_waits_for_the_request_threads_still_ending_a_request() -> None:
    """The client has the whole body before the server's request thread closes the
    response (where the kit records it): serve() returns only after that thread ended."""
    app = Flask("serve_waits")
    closed: list[str] = []

    def slow_close() -> None:
        time.sleep(0.5)
        closed.append("closed")

    @app.get("/")
    def index() -> Response:
        response = Response("done")
        response.call_on_close(slow_close)
        return response

    with support.serve(app, quiet=True) as base:
        assert "done" == requests.get(base, timeout=10).text
        assert [] == closed  # still closing: the wait below is serve()'s
    assert ["closed"] == closed
