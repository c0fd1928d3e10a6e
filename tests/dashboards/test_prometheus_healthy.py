"""On a healthy service the dashboards show 0 % errors, not "No data".

The healthy scenario: the example app with ``faults=False`` (no 5xx, no exception, no
failed or slow dependency call) scraped by a real Prometheus with the generated rules
loaded (tests/dashboards/scenario.py). No error counter series exists then, which is
exactly when a ratio without a zero fallback returns nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from limone_obs import conventions as c
from limone_obs.dashboards.slo_inputs import KIND_UP, load_service
from tests.dashboards.example_app import DEPENDENCIES, create_app
from tests.dashboards.helpers import BASELINE_READY, RATE_INTERVAL, PanelQuery
from tests.dashboards.scenario import instant, run_all, running
from tests.support import ROOT, need

pytestmark = pytest.mark.integration

NAMES = c.MetricNames(c.DEFAULT_NAMESPACE)
#: (dashboard, panel title, query ref) of every error-ratio query (and the other counts
#: of failures): each must return series, all of value 0, on the healthy service.
ZERO_QUERIES = frozenset(
    {
        ("overview.json", "5xx ratio", "A"),
        ("overview.json", "Endpoints", "B"),
        ("endpoint.json", "5xx ratio", "A"),
        ("endpoint.json", "Exceptions by class", "A"),
        ("dependencies.json", "Error ratio by dependency", "A"),
        *(("dependencies.json", f"{name}: error ratio", "A") for name in DEPENDENCIES),
        ("slos.json", "Bad event ratio now", "A"),
        ("slos.json", "Good and bad events", "B"),
    }
)
#: Panels that rightly stay empty on a healthy service.
EMPTY_WHEN_HEALTHY = frozenset(
    {
        ("slos.json", "Firing alerts"),
        ("overview.json", "Firing alerts"),
        # Worker slots are published by gunicorn and uWSGI workers; this app is single-process.
        ("ux.json", "Worker saturation"),
    }
)
#: What the load must have produced before the panels are queried (denominators only).
READY = (
    f"count(sum by ({c.LABEL_DEPENDENCY}) (rate({NAMES.dependency_duration_count}"
    f"[{RATE_INTERVAL}]))) >= {len(DEPENDENCIES)}",
    f"count(sum by ({c.LABEL_ENDPOINT}) (rate({NAMES.requests_total}[{RATE_INTERVAL}]))) >= 3",
    f"count({c.RULE_PERIOD_BUDGET_REMAINING}) >= 3",
    BASELINE_READY,
)


def _wait_for_traffic(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(instant(url, expr) for expr in READY):
            return
        time.sleep(0.5)
    missing = [expr for expr in READY if not instant(url, expr)]
    pytest.fail(f"no data for {missing} after {timeout:.0f} s of load")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[PanelQuery, Any]]]:
    """Every panel query with Prometheus' answer, over the healthy scenario."""
    folder = tmp_path_factory.mktemp("prometheus-healthy")
    app = create_app(faults=False)
    with running(app, folder, need("prometheus"), _wait_for_traffic) as scenario:
        yield run_all(scenario)


def _key(query: PanelQuery) -> tuple[str, str, str]:
    return query.dashboard, query.title, query.ref


def _values(body: dict[str, Any]) -> list[float]:
    """Every sample value of an instant (``value``) or range (``values``) answer."""
    out: list[float] = []
    for series in body["data"]["result"]:
        samples = series["values"] if "values" in series else [series["value"]]
        out.extend(float(value) for _, value in samples)
    return out


def test_every_zero_query_exists(results: list[tuple[PanelQuery, Any]]) -> None:
    """Each listed error-ratio query is a query of the generated dashboards (none renamed)."""
    found = {_key(q) for q, _ in results}
    assert set() == ZERO_QUERIES - found


def test_error_ratio_panels_show_zero(results: list[tuple[PanelQuery, Any]]) -> None:
    """Every error-ratio query returns series, and every value is 0 (not "No data")."""
    shown = {q.where: sorted(set(_values(body))) for q, body in results if _key(q) in ZERO_QUERIES}
    assert {where: [0.0] for where in shown} == shown


def test_core_panels_return_series(results: list[tuple[PanelQuery, Any]]) -> None:
    """Every non-process panel query returns series on the healthy service (but the panels
    of ``EMPTY_WHEN_HEALTHY``)."""
    empty = [
        q.where
        for q, body in results
        if not q.process
        and (q.dashboard, q.title) not in EMPTY_WHEN_HEALTHY
        and not body["data"]["result"]
    ]
    assert [] == empty


def test_the_healthy_load_answers_no_5xx(results: list[tuple[PanelQuery, Any]]) -> None:
    """The healthy load really has no 5xx: the rate-by-status-class panel lists no 5xx."""
    classes = {
        series["metric"].get("status_class")
        for q, body in results
        if q.title == "Rate by status class"
        for series in body["data"]["result"]
    }
    assert (True, False) == ("2xx" in classes, "5xx" in classes)


def _answer(results: list[tuple[PanelQuery, Any]], key: tuple[str, str, str]) -> Any:
    (body,) = [body for q, body in results if _key(q) == key]
    return body


def test_slo_table_shows_no_burning_tier(results: list[tuple[PanelQuery, Any]]) -> None:
    """On the healthy service every SLO's "burning" column is 0 ("none")."""
    body = _answer(results, ("overview.json", "SLOs", "D"))
    assert (True, [0.0]) == (len(body["data"]["result"]) >= 3, sorted(set(_values(body))))


def test_slo_table_has_a_row_for_the_up_slo(results: list[tuple[PanelQuery, Any]]) -> None:
    """The up SLO, which records no rules and so no objective, has its row in the overview's
    SLO table: SLI 1 (its one target up) and nothing burning (0)."""
    (up,) = [slo.name for slo in load_service(ROOT).slos if slo.kind == KIND_UP]
    sli, burning = _slo_column(results, "B"), _slo_column(results, "D")
    assert (1.0, 0.0) == (sli.get(up), burning.get(up))


def _slo_column(results: list[tuple[PanelQuery, Any]], ref: str) -> dict[str, float]:
    """The overview SLO table's query ``ref`` (a column): value by SLO name."""
    series = _answer(results, ("overview.json", "SLOs", ref))["data"]["result"]
    return {s["metric"][c.LABEL_SLO]: float(s["value"][1]) for s in series}


def test_targets_are_all_up(results: list[tuple[PanelQuery, Any]]) -> None:
    """The one scrape target reads UP (1) and no "no target" fallback is drawn."""
    series = _answer(results, ("overview.json", "Targets", "A"))["data"]["result"]
    now = {s["metric"].get(c.LABEL_INSTANCE, ""): float(s["value"][1]) for s in series}
    assert ([1.0], False) == (sorted(set(now.values())), "no target" in now)
