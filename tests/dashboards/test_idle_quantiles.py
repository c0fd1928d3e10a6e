"""Percentile and ratio panels show "No data", not NaN, while nothing was observed.

``histogram_quantile`` over buckets whose rates are all 0 returns NaN, which Grafana draws
as a NaN line or stat. Every percentile query of every generated dashboard must instead
return no sample for a group without observations in its window, and the value
``histogram_quantile`` gives when there were some. Checked on Prometheus' own engine
(promtool) for every such query, and on a real Prometheus scraping an instrumented app
for the queue-time panel (no ``X-Request-Start``, then requests carrying it).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flask import Flask

from limone_obs import Metrics
from limone_obs import conventions as c
from limone_obs.dashboards.generate import build_from
from limone_obs.dashboards.slo_inputs import load_service
from tests.dashboards.example_app import DEPENDENCIES, PROJECT_ENDPOINT
from tests.dashboards.helpers import RATE_INTERVAL, PanelQuery, prometheus_queries, variable_values
from tests.dashboards.test_zero_fallback import N, _assert_holds, _series
from tests.support import ROOT, prometheus_server, promtool_test, serve, wait_until

pytestmark = pytest.mark.integration

JOB = load_service(ROOT).job
QUEUE_PANEL = ("ux.json", "Queue time p50 / p95")
#: The queue panel's quantile per query ref.
QUEUE_QUANTILES = {"A": 0.5, "B": 0.95}
#: Samples one minute apart: observations (one per second) for 10 minutes, then none.
BUSY_THEN_IDLE = "0+60x10 600x20"
BUSY_AT, IDLE_AT = "5m", "20m"
#: Windows of the promtool evaluation: a 2m rate window holds three samples; the tables'
#: range ends 5 minutes into the idle stretch at IDLE_AT, wholly idle.
PROMTOOL_VALUES = {**variable_values(JOB), "__rate_interval": "2m", "__range": "5m"}
#: Every observation is at most 0.5 s (or calls): all in the first bucket.
BOUNDS = ("0.5", "1.0", "+Inf")
#: A proxy stamped the request this long before the app took it: inside (0.1, 0.25],
#: 0.1 s below its top, as the app takes the request later than the stamp says (by up
#: to 0.1 s on a loaded machine; 0.2 left 50 ms, and a busy run read the next bucket).
QUEUED_SECONDS = 0.15
#: How far back the compared instant lies, so every scrape up to it is stored.
SETTLED_SECONDS = 5


def _histogram(bucket: str, labels: dict[str, str]) -> list[dict[str, str]]:
    """One histogram's buckets (``labels``), busy for 10 minutes, then idle."""
    return [_series(bucket, {**labels, c.LABEL_LE: le}, BUSY_THEN_IDLE) for le in BOUNDS]


def _every_histogram() -> list[dict[str, str]]:
    """Every histogram the dashboards take quantiles of, in every group they select."""
    endpoint = {c.LABEL_ENDPOINT: PROJECT_ENDPOINT}
    phases = (*c.RUM_PHASES, c.MARK_AI_ANSWER_SHOWN)
    groups = [
        (N.request_duration_bucket, {**endpoint, c.LABEL_METHOD: "GET"}),
        (N.request_queue_bucket, {}),
        *((N.page_load_bucket, {c.LABEL_PAGE: "/editor", c.LABEL_PHASE: p}) for p in phases),
        *(
            (N.dependency_duration_bucket, {c.LABEL_DEPENDENCY: d, c.LABEL_OUTCOME: c.OUTCOME_OK})
            for d in DEPENDENCIES
        ),
        *(
            (N.dependency_calls_per_request_bucket, {**endpoint, c.LABEL_DEPENDENCY: d})
            for d in DEPENDENCIES
        ),
    ]
    return [series for bucket, labels in groups for series in _histogram(bucket, labels)]


def _quantile_queries() -> list[PanelQuery]:
    """Every panel query of the generated dashboards that takes a histogram quantile."""
    boards = build_from(ROOT)
    found = prometheus_queries(boards, PROMTOOL_VALUES)
    return [q for q in found if "histogram_quantile" in q.expr]


def _busy_and_idle_checks(query: PanelQuery) -> list[dict[str, Any]]:
    """While busy the query has a sample (it selects the test's series); idle, none."""
    busy = {"labels": "{}", "value": 1}
    return [
        {"expr": f"count({query.expr}) > bool 0", "eval_time": BUSY_AT, "exp_samples": [busy]},
        {"expr": query.expr, "eval_time": IDLE_AT, "exp_samples": []},
    ]


def test_every_percentile_query_is_empty_once_its_histogram_is_idle(tmp_path: Path) -> None:
    """Latency, dependency, calls-per-request, page-load and queue-time percentiles (every
    dashboard, every copy of a repeated row) return samples while their histogram observes
    and no sample, not NaN, once it has observed nothing over the window."""
    queries = _quantile_queries()
    boards = {q.dashboard for q in queries}
    assert {"overview.json", "endpoint.json", "dependencies.json", "ux.json"} == boards
    _assert_holds(_busy_then_idle(tmp_path, queries, _every_histogram()))


def _busy_then_idle(
    tmp_path: Path, queries: list[PanelQuery], series: list[dict[str, str]]
) -> subprocess.CompletedProcess[str]:
    """promtool's run of :func:`_busy_and_idle_checks` for each of ``queries`` over
    ``series`` (busy, then idle)."""
    checks = [check for q in queries for check in _busy_and_idle_checks(q)]
    test = {"interval": "1m", "input_series": series, "promql_expr_test": checks}
    path = tmp_path / "busy_then_idle_test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [], "tests": [test]}))
    return promtool_test(path, tmp_path)


def _counter(name: str, labels: dict[str, str]) -> dict[str, str]:
    return _series(name, labels, BUSY_THEN_IDLE)


#: The bounds the share-within panels read (the latency SLO's threshold and stages, the
#: AI API's 2.5 s), all busy then idle like every other counter here.
SHARE_BOUNDS = ("0.5", "0.6", "1.0", "2.5", "+Inf")


def _buckets(bucket: str, labels: dict[str, str]) -> list[dict[str, str]]:
    return [_counter(bucket, {**labels, c.LABEL_LE: le}) for le in SHARE_BOUNDS]


def _every_counter_divided() -> list[dict[str, str]]:
    """Every counter the dashboards divide by or into, busy for 10 minutes, then idle:
    requests (200s and 500s), their durations, dependency calls and seconds, calls per
    request, cache lookups, pages rendered with the RUM tag and their load beacons."""
    endpoint = {c.LABEL_ENDPOINT: PROJECT_ENDPOINT, c.LABEL_METHOD: "GET"}
    found = [_counter(N.requests_total, {**endpoint, c.LABEL_STATUS: s}) for s in ("200", "500")]
    found += [
        _counter(N.request_duration_sum, endpoint),
        _counter(N.request_duration_count, endpoint),
    ]
    found += _buckets(N.request_duration_bucket, endpoint)
    for dependency in DEPENDENCIES:
        call = {c.LABEL_DEPENDENCY: dependency, c.LABEL_OPERATION: "op"}
        for outcome in (c.OUTCOME_OK, c.OUTCOME_ERROR):
            found.append(_counter(N.dependency_duration_count, {**call, c.LABEL_OUTCOME: outcome}))
            found.append(_counter(N.dependency_duration_sum, {**call, c.LABEL_OUTCOME: outcome}))
        found += _buckets(N.dependency_duration_bucket, {**call, c.LABEL_OUTCOME: c.OUTCOME_OK})
        per_request = {c.LABEL_ENDPOINT: PROJECT_ENDPOINT, c.LABEL_DEPENDENCY: dependency}
        found.append(_counter(N.request_dependency_seconds_total, per_request))
        found.append(_counter(N.dependency_calls_per_request_sum, per_request))
        found.append(_counter(N.dependency_calls_per_request_count, per_request))
    for result in (c.CACHE_HIT, c.CACHE_MISS):
        found.append(_counter(N.cache_requests_total, {c.LABEL_CACHE: "c", c.LABEL_RESULT: result}))
    load = {c.LABEL_PAGE: "/p", c.LABEL_PHASE: c.PHASE_LOAD}
    found += [_counter(N.rum_pages_total, {c.LABEL_PAGE: "/p"}), _counter(N.page_load_count, load)]
    return found


def _division_queries() -> list[PanelQuery]:
    """Every panel query of the generated dashboards that divides by a rate (a ratio, a
    mean, time per request)."""
    boards = build_from(ROOT)
    found = prometheus_queries(boards, PROMTOOL_VALUES)
    return [q for q in found if "histogram_quantile" not in q.expr and "rate(" in _divisor(q.expr)]


#: A division sign as the dashboards' queries write it (``ratio``, time per request).
DIVISION = re.compile(r"\n/\n|\) / \(|\n/ on \(\) group_left")


def _divisor(expr: str) -> str:
    """What follows the first division sign of ``expr`` ("" without one)."""
    parts = DIVISION.split(expr, maxsplit=1)
    return parts[1] if len(parts) == 2 else ""


def test_every_division_query_is_empty_once_its_counters_are_idle(tmp_path: Path) -> None:
    """5xx ratios, shares within a threshold, failure and hit ratios, means and time per
    request (every dashboard, every copy of a repeated row) return samples while their
    counters count and no sample, not NaN (0 / 0), once nothing was counted over the
    window."""
    queries = _division_queries()
    boards = {q.dashboard for q in queries}
    assert {"overview.json", "endpoint.json", "dependencies.json"} <= boards
    assert len(queries) >= 10
    _assert_holds(_busy_then_idle(tmp_path, queries, _every_counter_divided()))


def _app() -> Flask:
    """An instrumented app with one route (its Metrics keeps a private registry)."""
    app = Flask("idle_quantiles")
    Metrics(app)
    app.add_url_rule("/", "index", lambda: "ok")
    return app


@pytest.fixture
def scraped(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(app URL, Prometheus URL)``: a real Prometheus scraping the app every second."""
    with serve(_app(), quiet=True) as app_url:
        target = app_url.removeprefix("http://")
        with prometheus_server(tmp_path, target, job=JOB) as prometheus_url:
            yield app_url, prometheus_url


def _queue_panel() -> list[PanelQuery]:
    """The queue-time panel's queries as Grafana sends them (``$__rate_interval`` 10 s)."""
    found = prometheus_queries(build_from(ROOT), variable_values(JOB))
    return [q for q in found if (q.dashboard, q.title) == QUEUE_PANEL]


def _raw_quantile(q: float) -> str:
    """``histogram_quantile`` of the queue time as it is, NaN included: the reference."""
    rate = f'rate({N.request_queue_bucket}{{{c.LABEL_JOB}="{JOB}"}}[{RATE_INTERVAL}])'
    return f"histogram_quantile({q}, sum by ({c.LABEL_LE}) ({rate}))"


def _at(url: str, expr: str, at: float) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"query": expr, "time": at}
    body = requests.get(f"{url}/api/v1/query", params=params, timeout=5).json()
    assert "success" == body["status"], body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _values(url: str, expr: str, at: float) -> list[str]:
    return [sample["value"][1] for sample in _at(url, expr, at)]


def _scrapes_in_window(url: str, at: float) -> bool:
    """True once the rate window ending at ``at`` holds three scrapes of the histogram."""
    count = f'{N.request_queue_count}{{{c.LABEL_JOB}="{JOB}"}}'
    return bool(_at(url, f"count_over_time({count}[{RATE_INTERVAL}]) >= 3", at))


def test_queue_time_panel_has_no_sample_without_x_request_start(
    scraped: tuple[str, str],
) -> None:
    """Requests without X-Request-Start: the queue histogram is scraped with every bucket
    at 0, ``histogram_quantile`` reads NaN, and the panel's queries return no sample."""
    app_url, url = scraped

    def idle_window() -> bool:
        requests.get(f"{app_url}/", timeout=5)
        return _scrapes_in_window(url, time.time())

    wait_until(idle_window, "three scrapes of the unobserved queue histogram")
    at = time.time()
    shown = {q.ref: _values(url, q.expr, at) for q in _queue_panel()}
    raw = {ref: _values(url, _raw_quantile(q), at) for ref, q in QUEUE_QUANTILES.items()}
    assert ({"A": [], "B": []}, {"A": ["NaN"], "B": ["NaN"]}) == (shown, raw)


def test_queue_time_panel_reads_the_histogram_quantile_with_x_request_start(
    scraped: tuple[str, str],
) -> None:
    """Requests queued 0.15 s: each query of the panel returns the value
    ``histogram_quantile`` gives at the same instant, inside the (0.1, 0.25] bucket
    (p50 0.175, p95 0.2425)."""
    app_url, url = scraped
    panel = _queue_panel()

    def observed_window() -> bool:
        header = {c.QUEUE_START_HEADER: f"t={time.time() - QUEUED_SECONDS:.3f}"}
        requests.get(f"{app_url}/", headers=header, timeout=5)
        at = time.time() - SETTLED_SECONDS
        return _scrapes_in_window(url, at) and bool(_at(url, panel[0].expr, at))

    wait_until(observed_window, "queue times observed over a whole rate window")
    at = time.time() - SETTLED_SECONDS
    shown = {q.ref: _values(url, q.expr, at) for q in panel}
    raw = {ref: _values(url, _raw_quantile(q), at) for ref, q in QUEUE_QUANTILES.items()}
    values = {ref: round(float(found[0]), 9) for ref, found in shown.items()}
    assert (raw, {"A": 0.175, "B": 0.2425}) == (shown, values)
