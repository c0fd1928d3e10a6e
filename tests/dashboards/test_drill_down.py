"""The endpoint drill-down says where that endpoint's time goes; the dependencies dashboard
counts calls per request and judges AI calls as the SLO does."""

from __future__ import annotations

from typing import Any

import pytest

from limone_obs import conventions as c
from limone_obs.dashboards.dependencies import CALLS_PER_REQUEST_TITLE
from limone_obs.dashboards.generate import build_from
from limone_obs.dashboards.lint import panels
from tests.support import ROOT

NAMES = c.MetricNames(c.DEFAULT_NAMESPACE)


@pytest.fixture(scope="module")
def boards() -> dict[str, dict[str, Any]]:
    """The dashboards built from the committed spec."""
    return build_from(ROOT)


def panel(board: dict[str, Any], title: str) -> dict[str, Any]:
    """The one panel of ``board`` titled ``title``."""
    (found,) = [p for p in panels(board) if p.get("title") == title]
    return found


def test_time_per_request_by_dependency_of_the_endpoint(
    boards: dict[str, dict[str, Any]],
) -> None:
    """Seconds of each dependency per request of $endpoint, from the per-request counter."""
    p = panel(boards["endpoint.json"], "Time per request by dependency")
    deps, other = (t["expr"] for t in p["targets"])
    endpoint = 'endpoint="$endpoint"'
    assert (True, True, True, True, True, "other", True) == (
        NAMES.request_dependency_seconds_total in deps,
        f"by ({c.LABEL_DEPENDENCY})" in deps,
        deps.count(endpoint) == 2,
        NAMES.request_duration_sum in other,
        NAMES.request_dependency_busy_seconds_total in other,
        p["targets"][1]["legendFormat"],
        p["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal",
    )


def test_endpoint_links_to_its_logs_on_the_same_time_range(
    boards: dict[str, dict[str, Any]],
) -> None:
    """The drill-down links to the logs dashboard with $endpoint and the time range."""
    p = panel(boards["endpoint.json"], "Time per request by dependency")
    (link,) = p["links"]
    assert (True, True, True) == (
        link["url"].startswith(f"/d/{c.dashboard_uid('limoneide', 'logs')}?"),
        "var-endpoint=${endpoint:percentencode}" in link["url"],
        "${__url_time_range}" in link["url"],
    )


def test_status_codes_have_fixed_colours(boards: dict[str, dict[str, Any]]) -> None:
    """On the drill-down's stacked rate by status, 5xx codes are red."""
    p = panel(boards["endpoint.json"], "Rate by status")
    colours = {
        o["matcher"]["options"]: o["properties"][0]["value"]["fixedColor"]
        for o in p["fieldConfig"]["overrides"]
    }
    assert "red" == colours["/^5/"]


def test_calls_per_request_mean_and_p95_by_endpoint_and_dependency(
    boards: dict[str, dict[str, Any]],
) -> None:
    """The dependencies dashboard draws the mean and the p95 (whole calls) of calls per
    request, per endpoint and dependency."""
    p = panel(boards["dependencies.json"], CALLS_PER_REQUEST_TITLE)
    mean, p95 = (t["expr"] for t in p["targets"])
    by = f"by ({c.LABEL_ENDPOINT}, {c.LABEL_DEPENDENCY}"
    assert (True, True, True, True) == (
        p95.startswith("ceil(histogram_quantile(0.95,"),
        f"{by}, le)" in p95,
        NAMES.dependency_calls_per_request_sum in mean,
        f"{by})" in mean,
    )


def test_ai_calls_within_one_second_count_only_successful_calls(
    boards: dict[str, dict[str, Any]],
) -> None:
    """Good AI calls are fast AND outcome="ok" (like the SLI); the total is every call."""
    (expr,) = [
        t["expr"] for t in panel(boards["dependencies.json"], "Calls within 2.5 s")["targets"]
    ]
    good, total = expr.split("\n/\n")
    assert (True, False, True) == ('outcome="ok"' in good, "outcome" in total, "_count" in total)


def test_ai_latency_percentiles_are_of_successful_calls(
    boards: dict[str, dict[str, Any]],
) -> None:
    """ "$dependency: p50 / p95" leaves failed calls out (they are in the error ratio)."""
    p = panel(boards["dependencies.json"], "$dependency: p50 / p95")
    assert [True, True] == [f'{c.LABEL_OUTCOME}="ok"' in t["expr"] for t in p["targets"]]
