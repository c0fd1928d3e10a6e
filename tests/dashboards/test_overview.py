"""The overview answers first: every SLO, the targets, the alerts, then where; over time below."""

from __future__ import annotations

from typing import Any

import pytest

from limone_obs import conventions as c
from limone_obs.dashboards.generate import build_from
from limone_obs.dashboards.lint import panels
from limone_obs.dashboards.slo_inputs import load_service
from tests.support import ROOT

#: Rows below this y are under the fold of a laptop screen (about 20 grid units).
FOLD = 20


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    """The overview built from the committed spec."""
    return build_from(ROOT)["overview.json"]


def panel(board: dict[str, Any], title: str) -> dict[str, Any]:
    """The one panel of ``board`` titled ``title``."""
    (found,) = [p for p in panels(board) if p.get("title") == title]
    return found


def exprs(p: dict[str, Any]) -> list[str]:
    """The queries of panel ``p``, in order."""
    return [t["expr"] for t in p["targets"]]


def overrides(p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{matcher options: {property id: value}}`` of panel ``p``'s field overrides."""
    return {
        o["matcher"]["options"]: {prop["id"]: prop["value"] for prop in o["properties"]}
        for o in p["fieldConfig"]["overrides"]
    }


def test_first_row_is_slos_targets_and_firing_alerts(board: dict[str, Any]) -> None:
    """The first row holds the SLO table, the targets as UP/DOWN and the firing alerts."""
    first = [p["title"] for p in board["panels"] if p["type"] != "row" and p["gridPos"]["y"] < 8]
    assert ["SLOs", "Targets", "Firing alerts"] == first


def test_slo_table_has_sli_budget_and_burning_tier_of_every_slo(board: dict[str, Any]) -> None:
    """The SLO table reads objective, SLI, budget left and the firing tier, per SLO."""
    a, b, cc, d = exprs(panel(board, "SLOs"))
    rules = (c.RULE_OBJECTIVE, c.RULE_PERIOD_SLI_ERROR, c.RULE_PERIOD_BUDGET_REMAINING)
    tiers = {
        f'long_window="{t.long_window}", short_window="{t.short_window}"'
        for slo in load_service(ROOT).slos
        for t in slo.tiers
    }
    assert (True, True, True, set()) == (
        rules[0] in a,
        rules[1] in b,
        rules[2] in cc,
        {t for t in tiers if t not in d},
    )


def test_burning_column_names_each_tier(board: dict[str, Any]) -> None:
    """The firing-tier value maps to "page 1h/5m (14.4x)", 0 to "none"."""
    mappings = overrides(panel(board, "SLOs"))["Value #D"]["mappings"][0]["options"]
    assert ("none", "page 1h/5m (14.4x)") == (mappings["0"]["text"], mappings["14.4"]["text"])


def test_targets_read_down_when_the_scrape_fails_or_the_target_vanishes(
    board: dict[str, Any],
) -> None:
    """``up`` maps 0 to DOWN, is read now (an instant query: no old value stays green), a
    target seen in the range but gone now is 0, and no target at all is DOWN."""
    p = panel(board, "Targets")
    defaults = p["fieldConfig"]["defaults"]
    values = defaults["mappings"][0]["options"]
    shape = (values["0"]["text"], values["1"]["text"], defaults["noValue"])
    assert (("DOWN", "UP", "DOWN"), ["last"], True) == (
        shape,
        p["options"]["reduceOptions"]["calcs"],
        "or on (instance)\nmax_over_time(up{" in exprs(p)[0]
        and 'or on ()\nlabel_replace(vector(0), "instance", "no target"' in exprs(p)[0]
        and p["targets"][0]["instant"],
    )


def test_firing_alerts_are_the_services_alerts(board: dict[str, Any]) -> None:
    """The overview lists every firing alert of the service (ALERTS by slo_service)."""
    (expr,) = exprs(panel(board, "Firing alerts"))
    assert 'ALERTS{alertstate="firing", slo_service="limoneide"}' in expr


def test_where_is_above_the_fold(board: dict[str, Any]) -> None:
    """The endpoints and instances tables start above the fold (they started at y = 32)."""
    ys = [panel(board, title)["gridPos"]["y"] for title in ("Endpoints", "Instances")]
    assert [True, True] == [y < FOLD for y in ys]


@pytest.mark.parametrize("title", ["Endpoints", "Instances"])
def test_tables_summarise_the_selected_range(board: dict[str, Any], title: str) -> None:
    """Table queries use ``[$__range]`` (the zoomed incident), never ``$__rate_interval``."""
    found = exprs(panel(board, title))
    assert (3, []) == (
        len([e for e in found if "[$__range]" in e]),
        [e for e in found if "$__rate_interval" in e],
    )


def test_drill_down_link_keeps_time_range_and_instances(board: dict[str, Any]) -> None:
    """The endpoint link carries ``${__url_time_range}`` and ``$instance``."""
    (link,) = overrides(panel(board, "Endpoints"))[c.LABEL_ENDPOINT]["links"]
    assert (True, True, True) == (
        link["url"].startswith(f"/d/{c.dashboard_uid('limoneide', 'endpoint')}?"),
        "${__url_time_range}" in link["url"],
        "${instance:queryparam}" in link["url"],
    )


def test_per_instance_breakdown_of_5xx_and_p95(board: dict[str, Any]) -> None:
    """The instances table groups rate, 5xx and p95 by instance."""
    found = exprs(panel(board, "Instances"))
    assert [True, True, True] == [f"by ({c.LABEL_INSTANCE}" in e for e in found]


def test_status_classes_have_fixed_colours(board: dict[str, Any]) -> None:
    """On the stacked rate by status class, 5xx is red and 2xx green whatever the palette."""
    found = overrides(panel(board, "Rate by status class"))
    colours = {name: props["color"]["fixedColor"] for name, props in found.items()}
    assert ("red", "green") == (colours["/^5/"], colours["/^2/"])


def test_saturation_draws_in_flight_against_a_dashed_capacity(board: dict[str, Any]) -> None:
    """In flight vs capacity: the in-flight gauge, busy workers and their sum dashed."""
    p = panel(board, "In flight vs capacity")
    names = c.MetricNames(c.DEFAULT_NAMESPACE)
    in_flight, busy, capacity = exprs(p)
    style = overrides(p)["capacity"]["custom.lineStyle"]["fill"]
    assert (True, True, True, "dash") == (
        names.requests_in_progress in in_flight,
        f'{names.workers}{{job="$job", instance=~"$instance", state="busy"}}' in busy,
        capacity == f'sum ({names.workers}{{job="$job", instance=~"$instance"}})',
        style,
    )


def test_slo_rules_are_shown_only_for_the_specs_job(board: dict[str, Any]) -> None:
    """The SLO table (rules over the spec's job, all instances) is empty for another $job."""
    guard = 'and on ()\n(count(up{job="$job", job="limoneide"}) > 0)'
    assert [True] * 4 == [e.endswith(guard) for e in exprs(panel(board, "SLOs"))]


def test_job_opens_on_the_specs_job(board: dict[str, Any]) -> None:
    """$job is preselected to the spec's scrape job, not the first job Prometheus lists."""
    (job,) = [v for v in board["templating"]["list"] if v["name"] == c.VAR_JOB]
    assert "limoneide" == job["current"]["value"]


@pytest.mark.parametrize("title", ["SLOs", "Endpoints", "Instances"])
def test_table_columns_are_named_by_their_own_override(board: dict[str, Any], title: str) -> None:
    """Columns get displayName, unit and decimals in one override on the query's field
    (``Value #A``...), and no rename transformation hides that name from the matchers."""
    p = panel(board, title)
    values = {k: v for k, v in overrides(p).items() if k.startswith("Value #")}
    renames = [t for t in p["transformations"] if "renameByName" in t.get("options", {})]
    assert ([], True) == (renames, all("displayName" in v and "unit" in v for v in values.values()))
