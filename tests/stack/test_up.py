"""``limone-obs up`` end to end: app, Prometheus, rules, Alertmanager, page, clean stop."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from limone_obs import conventions as c
from limone_obs.stack import procs
from limone_obs.stack.procs import LOOPBACK
from tests.stack.helpers import process_groups_alive
from tests.support import ROOT, need

pytestmark = pytest.mark.integration


class UpProcess:
    """``python -m limone_obs up ...`` as a child; its stdout lines collected by a thread."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "limone_obs", "up", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # the test's Ctrl-C is not the stack's
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_line(self, predicate: Callable[[str], bool], timeout: float) -> str:
        """The first output line matching ``predicate``; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self.lines if predicate(line)), None)
                if found is not None:
                    return found
                if deadline - time.monotonic() <= 0 or self.popen.poll() is not None:
                    output = "\n".join(self.lines[-40:])
                    pytest.fail(f"no matching line within {timeout} s; output:\n{output}")
                self._changed.wait(0.5)

    def pids(self) -> dict[str, int]:
        """The child PIDs ``up`` printed on its ``pids`` line."""
        line = self.wait_line(lambda s: "pids " in s, 90)
        pairs = (item.split("=") for item in line.split("pids", 1)[1].split())
        return {name: int(pid) for name, pid in pairs}

    def finish(self, timeout: float = 60) -> int:
        """Wait for ``up`` to exit by itself; return the exit code."""
        code = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def interrupt(self, timeout: float = 60) -> int:
        """Send SIGINT (Ctrl-C) and return the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
        code = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def kill(self, children: dict[str, int]) -> None:
        """Last resort after a failed test: kill ``up`` and the process groups it started."""
        for pid in [self.popen.pid, *children.values()]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


def _query(prometheus: str, expr: str) -> list[dict[str, object]]:
    resp = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5)
    result: list[dict[str, object]] = resp.json()["data"]["result"]
    return result


def _poll(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(1)
    return False


def _is_page(line: str) -> bool:
    if not line.startswith("{"):
        return False
    alert = json.loads(line)
    return bool(alert["severity"] == "page" and alert["status"] == "firing")


@pytest.fixture
def ports() -> dict[str, int]:
    return {name: procs.free_port() for name in ("app", "prometheus", "alertmanager", "webhook")}


@pytest.fixture
def stack(tmp_path: Path, ports: dict[str, int]) -> Iterator[UpProcess]:
    need("prometheus")
    need("alertmanager")
    args = [f"--{name}-port={port}" for name, port in ports.items()]
    args += ["--workdir", str(tmp_path / "work"), "--duration", "150", "--workers", "2"]
    args += ["--scrape-interval", "1s", "--alert-for", "5s", "--ai-latency", "0.02-0.05"]
    args += ["--fault", "errors", "--error-rate", "1", "--fault-after", "10", "--fault-for", "120"]
    up = UpProcess(args)
    children: dict[str, int] = {}
    try:
        children = up.pids()
        yield up
    finally:
        if up.popen.poll() is None:
            try:
                up.interrupt()
            except subprocess.TimeoutExpired:
                up.kill(children)


def test_up_serves_scrapes_records_pages_and_stops_cleanly(
    stack: UpProcess, ports: dict[str, int]
) -> None:
    """The stack answers, Prometheus scrapes it and records SLO rules, the error fault
    pages the webhook receiver, and Ctrl-C leaves no child process behind."""
    children = stack.pids()
    app = f"http://{LOOPBACK}:{ports['app']}"
    prometheus = f"http://{LOOPBACK}:{ports['prometheus']}"
    assert 200 == requests.get(f"{app}/health", timeout=5).status_code
    up_series = lambda: _query(prometheus, 'up{job="limoneide"} == 1') != []  # noqa: E731
    assert _poll(up_series, 30), "Prometheus never reported the demo target up"
    rule = c.sli_error_ratio_rule("5m")
    assert _poll(lambda: _query(prometheus, rule) != [], 45), f"{rule} has no value"
    page = json.loads(stack.wait_line(_is_page, 90))
    assert page["slo"] in ("errors", "availability")
    assert 0 == stack.interrupt()
    assert "stopped every child process" in "\n".join(stack.lines)
    assert [] == process_groups_alive(children.values())


def test_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """A port already in use ends ``up`` with exit 2 and a message naming the port."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        port = sock.getsockname()[1]
        up = UpProcess(["--app-port", str(port), "--workdir", str(tmp_path), "--duration", "5"])
        code = (
            up.interrupt(timeout=60) if up.popen.wait(timeout=60) is None else up.popen.returncode
        )
    output = "\n".join(up.lines)
    assert 2 == code
    assert f"port {port} (--app-port) is in use" in output


def test_without_prometheus_the_app_runs_alone(tmp_path: Path, ports: dict[str, int]) -> None:
    """With no prometheus on PATH, ``up`` prints the apt command and runs app + load."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    args = ["--app-port", str(ports["app"]), "--workdir", str(tmp_path / "w"), "--duration", "4"]
    up = UpProcess([*args, "--fault", "none", "--ai-latency", "0.01-0.02"], env=env)
    code = up.finish()
    output = "\n".join(up.lines)
    assert 0 == code, output
    assert "apt-get install -y --no-install-recommends prometheus`" in output
    assert "requests  32 in" in output
