"""The kit's own health as series, and a multi-process server without storage made loud."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client import CollectorRegistry

from limone_obs import conventions as c
from limone_obs import health
from limone_obs.exporter import Metrics, health_series
from tests.exporter.helpers import make_app, metrics_text, value
from tests.support import ROOT

PROBLEMS = health_series.problems_name(c.DEFAULT_NAMESPACE)
DROPPED = health_series.dropped_name(c.DEFAULT_NAMESPACE)


@pytest.fixture(autouse=True)
def _fresh_health() -> Iterator[None]:
    health.reset()
    yield
    health.reset()


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_every_problem_has_a_sample_zero_without_problems() -> None:
    """No problem: each problem value is exposed as 0 (an alert can tell "none" from "no data")."""
    _, metrics = make_app()
    exposed = {p: value(metrics, PROBLEMS, {c.LABEL_PROBLEM: p}) for p in c.EXPORTER_PROBLEMS}
    assert dict.fromkeys(c.EXPORTER_PROBLEMS, 0.0) == exposed


def test_a_reported_problem_and_dropped_lines_are_exposed() -> None:
    """A reported problem is 1 and dropped log lines are counted, in a single process."""
    _, metrics = make_app()
    health.report_problem(c.PROBLEM_STORAGE_FULL, "full")
    health.add_dropped_lines(3)
    assert 1.0 == value(metrics, PROBLEMS, {c.LABEL_PROBLEM: c.PROBLEM_STORAGE_FULL})
    assert 0.0 == value(metrics, PROBLEMS, {c.LABEL_PROBLEM: c.PROBLEM_STORAGE_UNWRITABLE})
    assert 3.0 == value(metrics, DROPPED, {})


def _copies(start: str, count: int) -> list[dict[str, Any]]:
    """Run ``tests/exporter/copies_app.py``: each copy's problem value and error lines."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.exporter.copies_app", start, str(count)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert 0 == done.returncode, done.stdout + done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize(
    ("start", "count"), [("spawn", 2), ("fork", 1)], ids=["spawned-workers", "forked-copy"]
)
def test_a_multiprocess_server_without_storage_is_reported_on_the_first_request(
    start: str, count: int
) -> None:
    """wsgi.multiprocess, no PROMETHEUS_MULTIPROC_DIR, and copies of the process (two
    spawned workers, as uvicorn --workers; a copy forked by its parent, as a server
    forking per request): in each, one error line naming the fix and the processes, and
    problem 1."""
    served = _copies(start, count)
    assert [1.0] * count == [copy["problem"] for copy in served]
    assert [1] * count == [len(copy["errors"]) for copy in served]
    pids = sorted(copy["pid"] for copy in served)
    for copy in served:
        assert f"gunicorn -c python:{c.GUNICORN_CONFIG_MODULE}" in copy["errors"][0]
        assert f"(processes {', '.join(map(str, pids))})" in copy["errors"][0]
        # The process series read the parent as the master, and every copy as a worker.
        assert (copy["ppid"], pids) == (copy["master"], copy["workers"])


def test_a_multiprocess_claim_of_a_lone_process_is_not_reported() -> None:
    """An ASGI adapter says wsgi.multiprocess whatever the server runs: a lone spawned
    worker (uvicorn without --workers) has no copy, and neither its first request nor a
    scrape reports the problem."""
    (served,) = _copies("spawn", 1)
    assert (0.0, []) == (served["problem"], served["errors"])
    assert (None, [served["pid"]]) == (served["master"], served["workers"])


def test_a_multiprocess_claim_in_this_lone_process_is_not_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same in the test process (no copy of it runs): no problem, no line."""
    app, metrics = make_app()
    client = app.test_client()
    for _ in range(3):
        client.get("/projects/1", environ_overrides={"wsgi.multiprocess": True})
    client.get("/metrics", buffered=True)
    problem = {c.LABEL_PROBLEM: c.PROBLEM_MULTIPROCESS_MISSING}
    assert (0.0, []) == (value(metrics, PROBLEMS, problem), _errors(caplog))


def test_the_first_request_check_runs_once_and_adds_no_wrapper() -> None:
    """The check is the request recorder's, dropped after the first request: the app's WSGI
    callable stays the lifecycle's one wrapper, and a later multiprocess request is not
    looked at (the problem was not set by it)."""
    app, metrics = make_app()
    wrapper = app.wsgi_app
    recorder = app.extensions["limone_obs"].recorder
    assert recorder.first_request is not None
    client = app.test_client()
    client.get("/projects/1")
    client.get("/projects/1", environ_overrides={"wsgi.multiprocess": True})
    problem = {c.LABEL_PROBLEM: c.PROBLEM_MULTIPROCESS_MISSING}
    assert (wrapper, None, 0.0) == (
        app.wsgi_app,
        recorder.first_request,
        value(metrics, PROBLEMS, problem),
    )


def test_a_single_process_server_is_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    """wsgi.multiprocess false (one process): no problem, no line."""
    app, metrics = make_app()
    app.test_client().get("/projects/1")
    assert 0.0 == value(metrics, PROBLEMS, {c.LABEL_PROBLEM: c.PROBLEM_MULTIPROCESS_MISSING})
    assert [] == _errors(caplog)


def test_metrics_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """LIMONE_OBS_METRICS_TOKEN in the environment protects /metrics like the config key."""
    monkeypatch.setenv(c.ENV_METRICS_TOKEN, "from-env")
    app, _ = make_app()
    client = app.test_client()
    missing = client.get("/metrics", buffered=True).status_code
    right = client.get("/metrics", headers={"Authorization": "Bearer from-env"}, buffered=True)
    assert (401, 200) == (missing, right.status_code)


def test_multiprocess_scrape_shows_problems_and_dropped_lines(mp_in_process: Path) -> None:
    """In multiprocess mode the series come from the files, this worker's problems merged in."""
    _, metrics = make_app()
    assert metrics.multiprocess
    health.report_problem(c.PROBLEM_STORAGE_UNWRITABLE, "read-only")
    health.add_dropped_lines(2)
    problem = {c.LABEL_PROBLEM: c.PROBLEM_STORAGE_UNWRITABLE}
    assert 1.0 == value(metrics, PROBLEMS, problem)
    deadline = time.monotonic() + 10  # the worker's writer thread writes the counter
    while value(metrics, DROPPED, {}) != 2.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 2.0 == value(metrics, DROPPED, {})
    assert any(p.name.startswith("gauge_livemax_") for p in mp_in_process.iterdir())


@pytest.mark.parametrize("written", [True, False], ids=["in-the-files", "never-written"])
@pytest.mark.parametrize(
    "fast",
    [pytest.param("1", id="fast-path", marks=pytest.mark.fast_path),
     pytest.param("0", id="public-api")],
)  # fmt: skip
def test_one_multiprocess_scrape_shows_this_worker_s_problems_in_every_namespace(
    mp_in_process: Path, monkeypatch: pytest.MonkeyPatch, fast: str, written: bool
) -> None:
    """Two apps of one server (one namespace each): a scrape of either path serves both
    namespaces' problem gauges, each once, with this worker's problems, which it cannot
    write to its files (storage full: simulated by a writer that never writes again, or
    never at all, when no file holds either gauge)."""
    monkeypatch.setenv(c.ENV_FAST_PATH, fast)
    monkeypatch.setattr(health_series.MultiprocessHealth, "changed", lambda _self: None)
    if not written:
        monkeypatch.setattr(health_series.MultiprocessHealth, "sync", lambda _self: None)
    _, metrics = make_app()
    other = Metrics(Flask("shop"), registry=CollectorRegistry(), namespace="shop")
    assert metrics.multiprocess
    assert other.multiprocess
    health.report_problem(c.PROBLEM_STORAGE_FULL, "full")
    full = {c.LABEL_PROBLEM: c.PROBLEM_STORAGE_FULL}
    shop = health_series.problems_name("shop")
    unwritable = {c.LABEL_PROBLEM: c.PROBLEM_STORAGE_UNWRITABLE}
    for scraped in (metrics, other):
        assert (1.0, 1.0) == (value(scraped, PROBLEMS, full), value(scraped, shop, full))
        assert (0.0, 0.0) == (
            value(scraped, PROBLEMS, unwritable), value(scraped, shop, unwritable)
        )  # fmt: skip
        text = metrics_text(scraped)
        assert (1, 1) == (
            text.count(f"# TYPE {PROBLEMS} gauge"),
            text.count(f"# TYPE {shop} gauge"),
        )


def test_the_namespaces_under_a_directory_whatever_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory named by another string (a trailing slash, a symlink) has the same
    namespaces; one whose series could not be set up (the first write refused) is among
    them: its problems still merge in."""
    real = tmp_path / "mp"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    monkeypatch.setattr(health_series.MultiprocessHealth, "__init__", _refused)
    with pytest.raises(OSError, match="refused"):
        health_series.MultiprocessHealth.of("broken", f"{real}/")
    for name in (str(real), f"{real}/", str(tmp_path / "link"), f"{real}/."):
        assert ["broken"] == health_series.MultiprocessHealth.namespaces_under(name)


def _refused(_self: object, _namespace: str) -> None:
    raise OSError("refused")
