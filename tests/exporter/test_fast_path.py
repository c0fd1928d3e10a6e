"""The fast-path gate: prometheus-client internals only on tested releases, same output."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator

import pytest
from flask import Flask
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from limone_obs import Metrics, lifecycle
from limone_obs import conventions as c
from limone_obs.exporter import _recorder, fast_path, templates, tracking
from tests.exporter.helpers import make_app, value
from tests.support import race

N = c.MetricNames()
TICK = 1 / 64  # exact in binary: sums of ticks compare exactly in both modes


@pytest.fixture(autouse=True)
def fresh_gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts with the variable unset and the one-time warnings not yet given."""
    monkeypatch.delenv(c.ENV_FAST_PATH, raising=False)
    fast_path._warned.clear()
    yield
    fast_path._warned.clear()


def _gate_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "limone_obs.exporter"]


def test_tested_release_uses_the_fast_path() -> None:
    """prometheus-client as installed for the tests is a tested release: fast path on.

    The one test that fails on another release (the other fast-path tests skip there).
    """
    found = fast_path.client_version()
    assert found in fast_path.TESTED_VERSIONS, (
        f"prometheus-client {found} is not in TESTED_VERSIONS: the tests marked fast_path "
        "were skipped. To support it, move scripts/constraints.txt's prometheus-client pin "
        "to it, add it to exporter/fast_path.py's TESTED_VERSIONS, and run ./scripts/test"
    )
    assert Metrics(registry=CollectorRegistry()).fast_path


def test_switch_selects_the_public_api_with_one_warning_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """LIMONE_OBS_FAST_PATH=0: public API, one warning line however many apps, logged when
    an app is instrumented (a Metrics made at import comes before configure_logging())."""
    monkeypatch.setenv(c.ENV_FAST_PATH, "0")
    with caplog.at_level(logging.WARNING, logger="limone_obs.exporter"):
        extensions = [Metrics(registry=CollectorRegistry()) for _ in range(3)]
        assert [] == _gate_warnings(caplog)
        for i, metrics in enumerate(extensions):
            metrics.init_app(Flask(f"app{i}"))
    assert [False, False, False] == [metrics.fast_path for metrics in extensions]
    [line] = _gate_warnings(caplog)
    assert f"{c.ENV_FAST_PATH}=0" in line


def test_untested_release_selects_the_public_api(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A prometheus-client release the fast path was not tested with: public API, warned."""
    monkeypatch.setattr(fast_path, "client_version", lambda: "0.99.0")
    with caplog.at_level(logging.WARNING, logger="limone_obs.exporter"):
        metrics = Metrics(Flask("untested"), registry=CollectorRegistry())
    assert not metrics.fast_path
    [line] = _gate_warnings(caplog)
    assert "prometheus-client 0.99.0" in line


def test_public_api_counts_every_request_under_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the fast path off, 8 threads x 50 requests count 400, none left in flight."""
    monkeypatch.setenv(c.ENV_FAST_PATH, "0")
    app, metrics = make_app()

    def serve() -> None:
        client = app.test_client()
        for _ in range(50):
            client.get("/projects/1", buffered=True)

    race(serve)
    labels = {"method": "GET", "endpoint": "/projects/<int:project_id>"}
    assert 400 == value(metrics, N.requests_total, {**labels, "status": "200"})
    assert 0 == value(metrics, N.requests_in_progress, labels)


def _traffic(app: Flask, metrics: Metrics) -> None:
    client = app.test_client()
    for path in ("/projects/1", "/projects/2", "/nope", "/boom", "/forbidden", "/stream"):
        client.get(path, buffered=True)
    client.post("/projects/1", buffered=True)
    client.get("/page", buffered=True, headers={c.QUEUE_START_HEADER: "t=1699999999.5"})
    client.get("/health", buffered=True, headers={c.QUEUE_START_HEADER: "garbage"})
    with metrics.track("db", "select"):
        pass
    metrics.cache_hit("languages")


def _exposition(monkeypatch: pytest.MonkeyPatch, switch: str) -> tuple[str, str]:
    """Serve the same traffic on a fixed clock; return both expositions, sans _created."""
    monkeypatch.setenv(c.ENV_FAST_PATH, switch)
    ticks = itertools.count(1)
    clock = lambda: next(ticks) * TICK  # noqa: E731 - a clock is a one-liner
    for module in (lifecycle, templates, tracking):
        monkeypatch.setattr(module, "perf_counter", clock)
    monkeypatch.setattr(_recorder, "time", lambda: 1700000000.0)
    app, metrics = make_app(PROPAGATE_EXCEPTIONS=False)
    assert (switch == "1") == metrics.fast_path
    _traffic(app, metrics)
    registry = metrics.exposition_registry()
    texts = (generate_latest(registry), openmetrics_latest(registry))  # type: ignore[no-untyped-call]
    return tuple(  # type: ignore[return-value]
        "".join(
            line for line in text.decode().splitlines(True) if "_created" not in line.split(" ")[0]
        )
        for text in texts
    )


@pytest.mark.fast_path
def test_both_paths_serve_identical_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same traffic gives the same /metrics text in both formats, fast path on or off."""
    fast = _exposition(monkeypatch, "1")
    public = _exposition(monkeypatch, "0")
    assert N.request_queue_count in fast[0]
    assert public == fast


@pytest.mark.fast_path
def test_exposition_parses_with_the_strict_openmetrics_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every family of the OpenMetrics exposition passes prometheus-client's parser."""
    _, text = _exposition(monkeypatch, "1")
    parse = openmetrics_parser.text_string_to_metric_families
    names = {family.name for family in parse(text)}  # type: ignore[no-untyped-call]
    assert {N.request_duration, N.requests, N.request_queue} <= names
