"""Every dashboard query runs against a real Prometheus scraping the example app under load.

One scenario per module: the example app (tests/dashboards/example_app.py) served on
127.0.0.1, a real Prometheus scraping it every second as the spec's job together with a
second, dead target (so the ``up`` SLO has something to show), the generated recording
and alerting rules loaded (``for:`` shortened to 0s so alerts fire within the test), and
a bounded load producing slow requests, 5xx, exceptions and failing dependency calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from limone_obs import conventions as c
from limone_obs.alerts import build as alerts_build
from limone_obs.dashboards.generate import build_from
from limone_obs.dashboards.slo_inputs import load_service
from limone_obs.stack import procs
from tests.dashboards.example_app import PROJECT_ENDPOINT, create_app, drive, serve
from tests.dashboards.helpers import PanelQuery, prometheus_queries, variable_values
from tests.support import ROOT, need

pytestmark = pytest.mark.integration

#: Upper bound of the load; it stops earlier, once the queries have run.
MAX_REQUESTS = 4000
#: Alerts the scenario must make fire before the panels are queried.
EXPECTED_ALERTS = frozenset(
    {"AvailabilityErrorBudgetBurn", "ErrorsHigh", "LatencyP95High", c.ALERT_TARGET_DOWN}
)
#: Panels allowed to return no series, and why. Everything else must return data.
ALLOWED_EMPTY = {
    ("dependencies.json", "Templates: error ratio"): "template rendering has no error outcome",
    ("slos.json", "Firing alerts", "ai-latency"): (
        "ai-latency has ticket tiers only, guarded by >= 0.05 calls/s over a whole day"
    ),
}
RANGE_SECONDS = 60


@dataclass(frozen=True)
class Scenario:
    """The running scenario: Prometheus' URL and the dashboards built from the spec."""

    url: str
    dashboards: dict[str, dict[str, Any]]
    job: str

    def queries(self) -> list[PanelQuery]:
        """Every Prometheus panel query, expanded for this scenario."""
        return list(prometheus_queries(self.dashboards, variable_values(self.job)))


def _fast_rules(folder: Path) -> list[str]:
    """Write the generated rule files with every ``for:`` set to 0s; return their paths."""
    paths = []
    for rel, content in sorted(alerts_build.artifacts(ROOT).files.items()):
        if not rel.startswith("alerts/rules/"):
            continue
        doc = yaml.safe_load(content)
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "0s"
        path = folder / Path(rel).name
        path.write_text(yaml.safe_dump(doc))
        paths.append(str(path))
    return paths


def _config(folder: Path, job: str, targets: list[str]) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": _fast_rules(folder),
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}],
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _firing(url: str) -> set[str]:
    resp = requests.get(
        f"{url}/api/v1/query", params={"query": 'ALERTS{alertstate="firing"}'}, timeout=5
    )
    return {r["metric"]["alertname"] for r in resp.json()["data"]["result"]}


def _wait_for_alerts(url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    firing: set[str] = set()
    while time.monotonic() < deadline:
        firing = _firing(url)
        if firing >= EXPECTED_ALERTS:
            return
        time.sleep(1)
    pytest.fail(f"alerts {sorted(EXPECTED_ALERTS - firing)} did not fire in {timeout:.0f} s")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Prometheus + example app + load, running while the module's tests query it."""
    binary = need("prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    job = load_service(ROOT).job
    stop = threading.Event()
    with serve(create_app()) as target:
        dead = f"{procs.LOOPBACK}:{procs.free_port()}"
        port = procs.free_port()
        argv = procs.prometheus_argv(binary, _config(folder, job, [target, dead]), folder, port)
        proc = procs.start("prometheus", argv, folder / "prometheus.log")
        loader = threading.Thread(target=drive, args=(target, MAX_REQUESTS, stop))
        url = f"http://{procs.LOOPBACK}:{port}"
        try:
            procs.wait_http(proc, f"{url}/-/ready")
            loader.start()
            _wait_for_alerts(url)
            yield Scenario(url=url, dashboards=build_from(ROOT), job=job)
        finally:
            stop.set()
            if loader.is_alive():
                loader.join(timeout=30)
            proc.stop()


def run(url: str, query: PanelQuery) -> dict[str, Any]:
    """Run ``query`` as Grafana would (instant or range over the last minute)."""
    now = time.time()
    if query.instant:
        params: dict[str, Any] = {"query": query.expr, "time": now}
        resp = requests.get(f"{url}/api/v1/query", params=params, timeout=30)
    else:
        params = {"query": query.expr, "start": now - RANGE_SECONDS, "end": now, "step": 2}
        resp = requests.get(f"{url}/api/v1/query_range", params=params, timeout=30)
    body: dict[str, Any] = resp.json()
    return body


def _allowed_empty(query: PanelQuery) -> bool:
    if (query.dashboard, query.title) in ALLOWED_EMPTY:
        return True
    return any(
        key[:2] == (query.dashboard, query.title) and f'slo="{key[2]}"' in query.expr
        for key in ALLOWED_EMPTY
        if len(key) == 3
    )


@pytest.fixture(scope="module")
def results(scenario: Scenario) -> list[tuple[PanelQuery, dict[str, Any]]]:
    """Every panel query with Prometheus' answer, run once for the module."""
    return [(query, run(scenario.url, query)) for query in scenario.queries()]


def test_every_panel_query_runs_without_error(
    results: list[tuple[PanelQuery, dict[str, Any]]],
) -> None:
    """No query of any panel makes Prometheus answer with an error (parse or execution)."""
    failed = [
        f"{q.where}: {body.get('error')}" for q, body in results if body.get("status") != "success"
    ]
    assert [] == failed


def test_core_panels_return_series(results: list[tuple[PanelQuery, dict[str, Any]]]) -> None:
    """Every non-process panel query returns at least one series in the scenario."""
    empty = [
        q.where
        for q, body in results
        if not q.process and not _allowed_empty(q) and not body["data"]["result"]
    ]
    assert [] == empty


def test_queries_cover_every_dashboard(results: list[tuple[PanelQuery, dict[str, Any]]]) -> None:
    """The Prometheus dashboards each contribute queries (nothing was silently skipped)."""
    boards = {q.dashboard for q, _ in results}
    assert {"overview.json", "slos.json", "dependencies.json", "endpoint.json"} == boards


def test_firing_alerts_panel_lists_the_scenario_alerts(
    results: list[tuple[PanelQuery, dict[str, Any]]],
) -> None:
    """The SLO dashboard's "Firing alerts" tables show the alerts the scenario fired."""
    shown = {
        series["metric"]["alertname"]
        for q, body in results
        if q.title == "Firing alerts"
        for series in body["data"]["result"]
    }
    assert EXPECTED_ALERTS <= shown


def test_process_panels_have_data_in_single_process_mode(
    results: list[tuple[PanelQuery, dict[str, Any]]],
) -> None:
    """The example app runs single-process, so its process panels do return series."""
    empty = [q.where for q, body in results if q.process and not body["data"]["result"]]
    assert [] == empty


def test_variable_queries_offer_the_scenario_values(scenario: Scenario) -> None:
    """``label_values`` of $job and $endpoint list the scraped job and the URL rule."""
    series = c.MetricNames(c.DEFAULT_NAMESPACE).requests_total
    jobs = _label_values(scenario.url, c.LABEL_JOB, series)
    endpoints = _label_values(scenario.url, c.LABEL_ENDPOINT, f'{series}{{job="{scenario.job}"}}')
    assert (True, True) == (scenario.job in jobs, PROJECT_ENDPOINT in endpoints)


def _label_values(url: str, label: str, match: str) -> list[str]:
    resp = requests.get(f"{url}/api/v1/label/{label}/values", params={"match[]": match}, timeout=5)
    values: list[str] = resp.json()["data"]
    return values
