"""gunicorn with the packaged config: a full disk is survived, a directory has one server.

Real gunicorn masters on 127.0.0.1 (``tests.support.gunicorn_server``); the full disk is a
small real tmpfs (``tests.exporter.tmpfs``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import requests

from limone_obs import conventions as c
from limone_obs.exporter import health_series
from limone_obs.stack import procs
from tests.exporter.tmpfs import small_tmpfs
from tests.support import ROOT, gunicorn_server, metric_sum, settled_total

pytestmark = pytest.mark.integration
CONFIG = f"python:{c.GUNICORN_CONFIG_MODULE}"
APP = "tests.exporter.mp_app:create_app()"
N = c.MetricNames()
PROBLEMS = health_series.problems_name(c.DEFAULT_NAMESPACE)
T = TypeVar("T")


def _messages(log: Path) -> list[str]:
    """Every line of a gunicorn log, the message of a JSON line, plain lines as they are."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            out.append(line)
            continue
        out.append(str(doc.get("message") or doc.get("event") or line))
    return out


def _problem(url: str, problem: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    pattern = rf'^{PROBLEMS}{{problem="{problem}"}} (\S+)$'
    found = re.search(pattern, text, re.MULTILINE)
    assert found is not None, f"no {problem} sample in:\n{text}"
    return float(found.group(1))


def test_a_full_multiprocess_directory_is_survived_and_reported(tmp_path: Path) -> None:
    """3 workers on a full tmpfs: every request answered, storage_full reported once per
    worker (log and series), no worker restarted, no file left after the stop."""
    with small_tmpfs(tmp_path / "mp", "64k") as mpdir:
        env = {"PROMETHEUS_MULTIPROC_DIR": str(mpdir), "GUNICORN_WORKERS": "3"}
        with gunicorn_server(APP, tmp_path, env, config=CONFIG) as (url, proc):
            answers = [requests.get(f"{url}/items/{i}", timeout=10).status_code for i in range(30)]
            full = _problem(url, c.PROBLEM_STORAGE_FULL)
        left = sorted(os.listdir(mpdir))
    messages = _messages(proc.log)
    booted = [m for m in messages if "Booting worker" in m]
    reported = [re.search(r"worker pid (\d+)", m) for m in messages if "is full" in m]
    pids = [m.group(1) for m in reported if m is not None]
    assert [200] * 30 == answers
    assert 1.0 == full
    assert 3 == len(booted), "\n".join(messages[-40:])
    assert sorted(set(pids)) == sorted(pids)
    assert 3 == len(pids)
    assert [] == left


def test_a_directory_filling_up_under_load_is_survived_and_reported(tmp_path: Path) -> None:
    """3 workers whose files grow until the tmpfs is full: every request answered, no
    worker restarted, storage_full at most once per worker and in the scrape."""
    grow_app = "tests.exporter.storage_app:create_app()"
    with small_tmpfs(tmp_path / "mp", "1200k") as mpdir:
        env = {"PROMETHEUS_MULTIPROC_DIR": str(mpdir), "GUNICORN_WORKERS": "3"}
        with gunicorn_server(grow_app, tmp_path, env, config=CONFIG) as (url, proc):
            answers = [requests.get(f"{url}/grow/{i}", timeout=10).status_code for i in range(400)]
            full = max(_problem(url, c.PROBLEM_STORAGE_FULL) for _ in range(6))
        left = sorted(os.listdir(mpdir))
    messages = _messages(proc.log)
    reported = [re.search(r"worker pid (\d+)", m) for m in messages if "is full" in m]
    pids = [m.group(1) for m in reported if m is not None]
    assert [200] * 400 == answers
    assert 3 == len([m for m in messages if "Booting worker" in m])
    assert pids
    assert sorted(set(pids)) == sorted(pids)
    assert 1.0 == full
    assert [] == left


def test_a_second_server_on_the_same_directory_refuses_to_start(tmp_path: Path) -> None:
    """Server B on server A's directory exits with a clear error; A's counts stay exact."""
    mpdir = tmp_path / "mp"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(mpdir), "GUNICORN_WORKERS": "2"}
    with gunicorn_server(APP, tmp_path, env, config=CONFIG, name="server-a") as (url, first):
        for i in range(20):
            requests.get(f"{url}/items/{i}", timeout=10).raise_for_status()
        before = settled_total(url, 20, N.requests_total)
        second = _start_on(tmp_path, mpdir, "server-b")
        code = second.popen.wait(timeout=60)
        for i in range(10):
            requests.get(f"{url}/items/{i}", timeout=10).raise_for_status()
        after = settled_total(url, 30, N.requests_total)
    output = second.log.read_text(errors="replace")
    assert 2 == code, output
    assert f"in use by another running server (master pid {first.pid})" in output
    assert "Traceback" not in output
    assert (20.0, 30.0) == (before, after)


def _url_of(proc: procs.Proc) -> str:
    """The base URL of a master started by :func:`_start_on` (its last argument binds it)."""
    args = proc.popen.args
    assert isinstance(args, list)
    return f"http://{args[-1]}"


def _start_on(tmp_path: Path, mpdir: Path, name: str, *, script: bool = False) -> procs.Proc:
    """Start a gunicorn master with the packaged config on ``mpdir`` (not waiting for it).

    ``script``: run the ``gunicorn`` console script instead of ``python -m gunicorn``.
    """
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        PROMETHEUS_MULTIPROC_DIR=str(mpdir), PYTHONPATH=str(ROOT), GUNICORN_WORKERS="2",
        GUNICORN_BIND=f"{procs.LOOPBACK}:{procs.free_port()}",
    )  # fmt: skip
    gunicorn = (
        [str(Path(sys.executable).with_name("gunicorn"))]
        if script
        else [sys.executable, "-m", "gunicorn"]
    )
    argv = [*gunicorn, "-c", CONFIG, APP, "--bind", env["GUNICORN_BIND"]]
    return procs.start(name, argv, tmp_path / f"{name}.log", env=env, cwd=ROOT)


def test_a_read_only_directory_ends_in_one_clear_line(tmp_path: Path) -> None:
    """gunicorn on a read-only multiprocess directory: exit 2 and a line saying what to
    do, not a traceback."""
    with small_tmpfs(tmp_path / "ro", "64k", read_only=True) as mpdir:
        server = _start_on(tmp_path, mpdir, "server-ro")
        code = server.popen.wait(timeout=60)
    output = server.log.read_text(errors="replace")
    assert 2 == code, output
    assert "cannot be used (Read-only file system)" in output
    assert "Traceback" not in output


def test_a_usr2_upgrade_hands_the_directory_over_with_its_counts(tmp_path: Path) -> None:
    """gunicorn's USR2 upgrade: the new master starts on the old one's directory, the old
    one leaves its files when it exits, the new one takes the lock and keeps the counts."""
    mpdir = tmp_path / "mp"
    # The console script: a re-executed ``python -m gunicorn`` finds gunicorn's own
    # ``http`` package first on its path and cannot start.
    old = _start_on(tmp_path, mpdir, "upgraded", script=True)
    url = _url_of(old)
    with contextlib.ExitStack() as stack:
        stack.callback(old.stop)
        procs.wait_http(old, f"{url}/metrics", timeout=60)
        for i in range(10):
            requests.get(f"{url}/items/{i}", timeout=10).raise_for_status()
        os.kill(old.pid, signal.SIGUSR2)
        new_pid = _wait_for(lambda: _new_master(old.log, old.pid), "a new master")
        booted = lambda: sum("Booting worker" in m for m in _messages(old.log)) >= 4 or None  # noqa: E731
        _wait_for(booted, "the new master's workers")
        try:
            os.kill(old.pid, signal.SIGTERM)
            old.popen.wait(timeout=60)
            lock = mpdir / "limone_server.lock"
            _wait_for(lambda: lock.read_text().strip() == str(new_pid) or None, "the lock")
            kept = metric_sum(url, N.requests_total)
            for i in range(5):
                requests.get(f"{url}/items/{i}", timeout=10).raise_for_status()
            after = settled_total(url, 15, N.requests_total)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(new_pid, signal.SIGTERM)
            _wait_for(lambda: not _running(new_pid) or None, "the new master to stop")
    assert (10.0, 15.0) == (kept, after)


def _new_master(log: Path, old_pid: int) -> int | None:
    pids = [int(p) for p in re.findall(r"Listening at: \S+ \((\d+)\)", log.read_text())]
    return next((p for p in pids if p != old_pid), None)


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (an orphan may wait to be reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _wait_for(check: Callable[[], T | None], what: str, timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None and found is not False:
            return found
        time.sleep(0.2)
    pytest.fail(f"no {what} within {timeout} s")
