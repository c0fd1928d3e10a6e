"""Every dashboard query runs against a real Prometheus scraping the example app under load.

The fault scenario: the example app (tests/dashboards/example_app.py) scraped together
with a second, dead target (so the ``up`` SLO has something to show), the generated rules
loaded (see tests/dashboards/scenario.py), and a bounded load producing slow requests,
5xx, exceptions and failing dependency calls. The healthy counterpart is
test_prometheus_healthy.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from limone_obs import conventions as c
from limone_obs.dashboards import promql
from limone_obs.dashboards.common import NO_BASELINE, VAR_BASELINE
from limone_obs.dashboards.overview import FIRING_WITHOUT_TIER
from limone_obs.dashboards.slo_inputs import KIND_UP, load_service
from tests.dashboards.example_app import DEPENDENCIES, OWN_DEPENDENCY, PROJECT_ENDPOINT, create_app
from tests.dashboards.helpers import (
    BASELINE_READY,
    PanelQuery,
    prometheus_queries,
    variable_values,
)
from tests.dashboards.scenario import Scenario, instant, run, run_all, running
from tests.support import ROOT, need

pytestmark = pytest.mark.integration

#: Alerts the scenario must make fire before the panels are queried.
EXPECTED_ALERTS = frozenset(
    {"AvailabilityErrorBudgetBurn", "ErrorsHigh", "LatencyP95High", c.ALERT_TARGET_DOWN}
)
#: How far back a comparison of two queries looks, so no sample of that moment is in flight.
SETTLED_SECONDS = 5
#: Panels (dashboard, title, SLO) allowed to return no series, and why. Everything else
#: must return data (error ratios without any failure show 0, see test_zero_fallback.py).
ALLOWED_EMPTY = {
    ("slos.json", "Firing alerts", "ai-latency"): (
        "ai-latency has ticket tiers only, guarded by >= 0.05 calls/s over a whole day"
    ),
    ("slos.json", "Firing alerts", "page-load"): "ticket tiers only, like ai-latency",
    ("slos.json", "Firing alerts", "ai-answer-shown"): "ticket tiers only, like ai-latency",
}
#: Panels (dashboard, title) allowed to return no series, and why.
ALLOWED_EMPTY_PANELS = {
    ("ux.json", "Worker saturation"): (
        "worker slots are published by gunicorn and uWSGI workers; the example app runs "
        "single-process (tests/exporter/test_workers_process.py covers gunicorn)"
    ),
}


def _firing(url: str) -> set[str]:
    return {r["metric"]["alertname"] for r in instant(url, 'ALERTS{alertstate="firing"}')}


def _long_window_rules() -> tuple[str, ...]:
    """The long-window rules of every budget SLO exist.

    They are a group of their own that sums the recorded 5m rates, so they can lag the
    alerts by an evaluation; budget remaining is the group's last rule, so its presence
    means the 1d, 3d and period SLIs before it are there too.
    """
    budget_slos = len([slo for slo in load_service(ROOT).slos if slo.tiers])
    return (f"count({c.RULE_PERIOD_BUDGET_REMAINING}) >= {budget_slos}", BASELINE_READY)


def _wait_for_alerts(url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    firing: set[str] = set()
    pending: list[str] = list(_long_window_rules())
    while time.monotonic() < deadline:
        firing = _firing(url)
        pending = [expr for expr in _long_window_rules() if not instant(url, expr)]
        if firing >= EXPECTED_ALERTS and not pending:
            return
        time.sleep(1)
    missing = sorted(EXPECTED_ALERTS - firing)
    pytest.fail(f"after {timeout:.0f} s: alerts {missing} not firing, no data for {pending}")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Prometheus + faulty example app + a dead target + load, while the module runs."""
    folder = tmp_path_factory.mktemp("prometheus")
    app = create_app()
    with running(app, folder, need("prometheus"), _wait_for_alerts, extra_targets=1) as live:
        yield live


def _allowed_empty(query: PanelQuery) -> bool:
    if (query.dashboard, query.title) in ALLOWED_EMPTY_PANELS:
        return True
    return any(
        (board, title) == (query.dashboard, query.title) and f'slo="{slo}"' in query.expr
        for board, title, slo in ALLOWED_EMPTY
    )


@pytest.fixture(scope="module")
def results(scenario: Scenario) -> list[tuple[PanelQuery, dict[str, Any]]]:
    """Every panel query with Prometheus' answer, run once for the module."""
    return run_all(scenario)


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
    assert {"overview.json", "slos.json", "dependencies.json", "endpoint.json", "ux.json"} == boards


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


def test_the_slo_dashboard_offers_only_its_specs_job(scenario: Scenario) -> None:
    """Every panel of the SLO dashboard is of the spec's SLOs: its $job lists the spec's
    job alone (two services in one namespace: another job beside these SLO numbers would
    mix the two), as Grafana runs the query; the overview still lists every job."""
    queries = {}
    for name in ("slos.json", "overview.json"):
        board = scenario.dashboards[name]
        (var,) = [v for v in board["templating"]["list"] if v["name"] == c.VAR_JOB]
        queries[name] = var["query"].removeprefix("label_values(").removesuffix(")")
    series, label = queries["slos.json"].rsplit(", ", 1)
    assert [scenario.job] == _label_values(scenario.url, label, series)
    assert f'{{job="{scenario.job}"}}' in series
    assert "{" not in queries["overview.json"]


def test_dependency_variable_offers_every_dependency_the_app_calls(scenario: Scenario) -> None:
    """$dependency's own query, as Grafana runs it, lists the app's dependency names: the
    kit's (template), the usual ones and one only this app knows (payments.v2)."""
    board = scenario.dashboards["dependencies.json"]
    (var,) = [v for v in board["templating"]["list"] if v["name"] == c.VAR_DEPENDENCY]
    query = promql.expand(var["query"], variable_values(scenario.job))
    series, label = query.removeprefix("label_values(").removesuffix(")").rsplit(", ", 1)
    assert sorted(DEPENDENCIES) == sorted(_label_values(scenario.url, label, series))


def test_each_repeated_dependency_row_shows_its_own_operations(
    results: list[tuple[PanelQuery, dict[str, Any]]],
) -> None:
    """Every copy of "$dependency: calls" draws the operations of its dependency only."""
    shown = {
        q.title: {s["metric"][c.LABEL_OPERATION] for s in body["data"]["result"]}
        for q, body in results
        if q.dashboard == "dependencies.json" and q.title.endswith(": calls")
    }
    expected = {
        f"{c.DEPENDENCY_AI}: calls": {"complete"},
        f"{c.DEPENDENCY_CACHE}: calls": {"get"},
        f"{c.DEPENDENCY_DB}: calls": {"select_project"},
        f"{OWN_DEPENDENCY}: calls": {"charge"},
    }
    assert expected == {title: ops for title, ops in shown.items() if title in expected}


def _label_values(url: str, label: str, match: str) -> list[str]:
    resp = requests.get(f"{url}/api/v1/label/{label}/values", params={"match[]": match}, timeout=5)
    values: list[str] = resp.json()["data"]
    return values


def _where(results: list[tuple[PanelQuery, dict[str, Any]]], key: tuple[str, str, str]) -> Any:
    """Prometheus' answer to the query (dashboard, title, ref)."""
    (body,) = [body for q, body in results if (q.dashboard, q.title, q.ref) == key]
    return body["data"]["result"]


def test_baseline_series_return_data(results: list[tuple[PanelQuery, dict[str, Any]]]) -> None:
    """Every baseline query (the same series $baseline ago) returns series."""
    baselines = [
        (q.where, bool(body["data"]["result"])) for q, body in results if "offset" in q.expr
    ]
    assert (4, []) == (len(baselines), [where for where, found in baselines if not found])


def test_baseline_none_runs_and_draws_nothing(scenario: Scenario) -> None:
    """With $baseline at its default ("none") every baseline query is valid PromQL for
    Prometheus (it refuses ``offset 0s``) and returns no series."""
    values = {**variable_values(scenario.job), VAR_BASELINE: NO_BASELINE}
    answers = [
        (q.where, run(scenario.url, q))
        for q in prometheus_queries(scenario.dashboards, values)
        if "offset" in q.expr
    ]
    outcome = [
        (where, body.get("error"), body.get("data", {}).get("result")) for where, body in answers
    ]
    assert (4, []) == (len(outcome), [o for o in outcome if o[1:] != (None, [])])


def test_targets_read_down_for_the_dead_target(
    results: list[tuple[PanelQuery, dict[str, Any]]],
) -> None:
    """The overview's Targets stat has a 1 (UP) for the app and a 0 (DOWN) for the dead one."""
    now = {float(s["value"][1]) for s in _where(results, ("overview.json", "Targets", "A"))}
    assert {0.0, 1.0} == now


def test_slo_table_lists_every_slo_with_a_budget(
    results: list[tuple[PanelQuery, dict[str, Any]]],
) -> None:
    """The overview's SLO table has the budget left of each SLO with burn tiers."""
    found = {s["metric"][c.LABEL_SLO] for s in _where(results, ("overview.json", "SLOs", "C"))}
    assert {slo.name for slo in load_service(ROOT).slos if slo.tiers} == found


def test_slo_table_reads_the_up_slo_as_the_share_of_targets_up(
    results: list[tuple[PanelQuery, dict[str, Any]]],
) -> None:
    """The up SLO records no rules, yet has its row in the overview's SLO table: its SLI is
    the share of the job's targets up (the app up, the dead target down: 0.5), and it
    reads "firing" while TargetDown fires."""
    (up,) = [slo.name for slo in load_service(ROOT).slos if slo.kind == KIND_UP]
    sli, burning = _slo_column(results, "B"), _slo_column(results, "D")
    assert (0.5, FIRING_WITHOUT_TIER) == (sli.get(up), burning.get(up))


def _slo_column(results: list[tuple[PanelQuery, dict[str, Any]]], ref: str) -> dict[str, float]:
    """The overview SLO table's query ``ref`` (a column): value by SLO name."""
    series = _where(results, ("overview.json", "SLOs", ref))
    return {s["metric"][c.LABEL_SLO]: float(s["value"][1]) for s in series}


def test_slo_table_shows_the_burning_tier_of_availability(
    scenario: Scenario, results: list[tuple[PanelQuery, dict[str, Any]]]
) -> None:
    """Availability pages in the scenario: its "burning" value is a page tier's factor;
    errors (a threshold SLO, ErrorsHigh firing) reads "firing". Polled for up to a minute:
    the tiers' alerts fire on the evaluation after their windows fill, which a loaded
    machine can delay past the moment the other panels were read."""
    (availability,) = [slo for slo in load_service(ROOT).slos if slo.name == "availability"]
    pages = {t.factor for t in availability.tiers if t.severity == c.SEVERITY_PAGE}
    (query,) = [
        q for q, _ in results if (q.dashboard, q.title, q.ref) == ("overview.json", "SLOs", "D")
    ]
    deadline = time.monotonic() + 60
    while True:
        answer = run(scenario.url, query)["data"]["result"]
        burning = {s["metric"][c.LABEL_SLO]: float(s["value"][1]) for s in answer}
        if burning.get("availability") in pages or time.monotonic() > deadline:
            break
        time.sleep(1)
    found = (burning.get("availability") in pages, burning.get("errors"))
    assert (True, FIRING_WITHOUT_TIER) == found, burning


def _rule_expr(url: str, record: str, slo: str) -> str:
    groups = requests.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    (expr,) = [
        rule["query"]
        for group in groups
        for rule in group["rules"]
        if rule.get("name") == record and rule.get("labels", {}).get(c.LABEL_SLO) == slo
    ]
    return str(expr)


def test_ai_calls_within_one_second_equal_the_slo_good_ratio(scenario: Scenario) -> None:
    """The dependencies dashboard's "Calls within 2.5 s" is 1 - the ai-latency SLI error ratio,
    evaluated together over the same 5 m (and differs from counting failed calls as good)."""
    values = {**variable_values(scenario.job), "__rate_interval": "5m"}
    (panel,) = [
        q
        for q in prometheus_queries(scenario.dashboards, values)
        if q.title == "Calls within 2.5 s"
    ]
    rule = _rule_expr(scenario.url, c.sli_error_ratio_rule("5m"), "ai-latency")
    any_outcome = panel.expr.replace(f', {c.LABEL_OUTCOME}="{c.OUTCOME_OK}"', "")
    # Until a failed AI call lies in the 5 m window, the two counts agree: ask again (up
    # to a minute), each time about a moment whose scrapes (every second) are all stored.
    deadline = time.monotonic() + 60
    while True:
        at = time.time() - SETTLED_SECONDS
        shown = float(_instant_at(scenario.url, panel.expr, at)[0]["value"][1])
        good = float(_instant_at(scenario.url, f"1 - ({rule})", at)[0]["value"][1])
        naive = float(_instant_at(scenario.url, any_outcome, at)[0]["value"][1])
        if naive > shown or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert (True, True) == (good == pytest.approx(shown, rel=1e-9), naive > shown), (
        good,
        shown,
        naive,
    )


def _instant_at(url: str, expr: str, at: float) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"query": expr, "time": at}
    result: list[dict[str, Any]] = requests.get(
        f"{url}/api/v1/query", params=params, timeout=5
    ).json()["data"]["result"]
    return result


def test_deploy_annotation_marks_the_apps_start(scenario: Scenario) -> None:
    """The deploy annotation query finds the app's build_info appearing (once, one instance)."""
    (annotation,) = [
        a
        for a in scenario.dashboards["overview.json"]["annotations"]["list"]
        if a["name"] == "Deploys"
    ]
    values = {**variable_values(scenario.job), "__interval": "1s"}
    expr = promql.expand(annotation["expr"], values)
    now = time.time()
    params: dict[str, Any] = {"query": expr, "start": now - 600, "end": now, "step": 1}
    found = requests.get(f"{scenario.url}/api/v1/query_range", params=params, timeout=30).json()
    series = found["data"]["result"]
    assert (1, True) == (len(series), 1 <= len(series[0]["values"]) <= 2)
