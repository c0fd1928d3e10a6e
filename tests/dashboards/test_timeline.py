"""Deploys and alerts on every Prometheus dashboard; a baseline to compare with; decimals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from limone_obs import conventions as c
from limone_obs.dashboards import common, promql
from limone_obs.dashboards.generate import build_from
from limone_obs.dashboards.lint import panels
from tests.dashboards.helpers import variable_values
from tests.dashboards.test_idle_quantiles import JOB
from tests.dashboards.test_zero_fallback import _assert_holds
from tests.support import ROOT, promtool_test

PROMETHEUS_BOARDS = ("overview.json", "slos.json", "dependencies.json", "endpoint.json")
#: Panels drawing a baseline series: (dashboard, title).
BASELINE_PANELS = (
    ("overview.json", "5xx ratio"),
    ("overview.json", "Latency percentiles"),
    ("endpoint.json", "5xx ratio"),
    ("endpoint.json", "Latency percentiles"),
)


@pytest.fixture(scope="module")
def boards() -> dict[str, dict[str, Any]]:
    """The dashboards built from the committed spec."""
    return build_from(ROOT)


def annotation_queries(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The dashboard's annotation queries by name."""
    return {a["name"]: a for a in board["annotations"]["list"]}


@pytest.mark.parametrize("name", PROMETHEUS_BOARDS)
def test_deploys_are_annotated(boards: dict[str, dict[str, Any]], name: str) -> None:
    """A new version/revision of build_info per instance is a deploy mark."""
    deploys = annotation_queries(boards[name])["Deploys"]
    build_info = c.MetricNames(c.DEFAULT_NAMESPACE).build_info
    assert (True, True, True) == (
        build_info in deploys["expr"],
        "unless" in deploys["expr"],
        "offset $__interval" in deploys["expr"],
    )


@pytest.mark.integration
def test_a_deploy_is_marked_and_a_restart_or_failed_scrapes_are_not(
    boards: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """On Prometheus' own engine (promtool): an instance starting, then restarting or
    missing scrapes with the same version (its series stale for a while: a trial saw a
    "deploy" mark at each), then running a new version. Marks: at its start and at the
    new version only."""
    deploys = annotation_queries(boards["overview.json"])["Deploys"]
    expr = promql.expand(deploys["expr"], {**variable_values(JOB), "__interval": "1m"})
    build_info = c.MetricNames(c.DEFAULT_NAMESPACE).build_info
    labels = f'{c.LABEL_JOB}="{JOB}", {c.LABEL_INSTANCE}="app:1", {c.LABEL_REVISION}="abc"'
    # One value a minute: 1.0 from 0m, stale at 4m (a restart) and 7m-8m (failed
    # scrapes), replaced by 1.1 at 11m.
    old = "1 1 1 1 stale 1 1 stale stale 1 1 stale _ _ _"
    new = "_ _ _ _ _ _ _ _ _ _ _ 1 1 1 1"
    series = [
        {"series": f'{build_info}{{{labels}, {c.LABEL_VERSION}="1.0"}}', "values": old},
        {"series": f'{build_info}{{{labels}, {c.LABEL_VERSION}="1.1"}}', "values": new},
    ]
    marked = {0: "1.0", 11: "1.1"}
    checks = [
        {
            "expr": expr,
            "eval_time": f"{minute}m",
            "exp_samples": [
                {
                    "labels": f'{{{c.LABEL_INSTANCE}="app:1", {c.LABEL_REVISION}="abc", '
                    f'{c.LABEL_VERSION}="{marked[minute]}"}}',
                    "value": 1,
                }
            ]
            if minute in marked
            else [],
        }
        for minute in range(14)
    ]
    test = {"interval": "1m", "input_series": series, "promql_expr_test": checks}
    path = tmp_path / "deploys_test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [], "tests": [test]}))
    _assert_holds(promtool_test(path, tmp_path))


@pytest.mark.parametrize("name", [*PROMETHEUS_BOARDS, "logs.json"])
def test_alerts_are_annotated(boards: dict[str, dict[str, Any]], name: str) -> None:
    """Firing alerts of the service are annotation regions titled by alert name."""
    alerts = annotation_queries(boards[name])["Alerts"]
    expected = ('ALERTS{alertstate="firing", slo_service="limoneide"}', "{{alertname}}")
    assert expected == (alerts["expr"], alerts["titleFormat"])


def test_baseline_variable_offers_none_a_day_and_a_week(
    boards: dict[str, dict[str, Any]],
) -> None:
    """$baseline: none (1 s: Prometheus refuses offset 0s), 1 d, 1 w in seconds, none
    selected."""
    (variable,) = [
        v for v in boards["overview.json"]["templating"]["list"] if v["name"] == "baseline"
    ]
    options = [(o["text"], o["value"]) for o in variable["options"]]
    expected = [("none", "1"), ("1 d", "86400"), ("1 w", "604800")]
    assert (expected, "1") == (options, variable["current"]["value"])


@pytest.mark.parametrize(("name", "title"), BASELINE_PANELS)
def test_baseline_series_are_the_same_query_offset(
    boards: dict[str, dict[str, Any]], name: str, title: str
) -> None:
    """Each baseline query is a current query with every window offset by $baseline."""
    (p,) = [
        p for p in panels(boards[name]) if p.get("title") == title and p["type"] == "timeseries"
    ]
    targets = {t["legendFormat"]: t["expr"] for t in p["targets"]}
    (legend,) = [k for k in targets if k.endswith(common.BASELINE_LEGEND)]
    current = targets[legend.removesuffix(f" {common.BASELINE_LEGEND}")]
    assert common.baseline(current) == targets[legend]


def test_no_baseline_draws_nothing() -> None:
    """The baseline query is guarded: with $baseline at "none" it returns nothing
    (tests/dashboards/test_prometheus.py runs it against Prometheus)."""
    expr = common.baseline('rate(x_total{job="$job"}[$__rate_interval])')
    assert expr.endswith("and on () (vector(${baseline}) > 1)")


def test_percentages_show_three_decimals(boards: dict[str, dict[str, Any]]) -> None:
    """Every percentunit field says decimals 3: 99.896 % and 99.904 % read differently."""
    missing = [
        (name, p["title"])
        for name, board in boards.items()
        for p in panels(board)
        if p.get("fieldConfig", {}).get("defaults", {}).get("unit") == "percentunit"
        and p["fieldConfig"]["defaults"].get("decimals") != 3
    ]
    assert [] == missing


def test_percent_columns_of_tables_show_three_decimals(
    boards: dict[str, dict[str, Any]],
) -> None:
    """Every table column overridden to percentunit also gets decimals 3."""
    missing = []
    for name, board in boards.items():
        for p in panels(board):
            for o in p.get("fieldConfig", {}).get("overrides", []):
                props = {prop["id"]: prop["value"] for prop in o["properties"]}
                field = o["matcher"]["options"]
                decimals = [
                    x
                    for x in p["fieldConfig"]["overrides"]
                    if x["matcher"]["options"] == field
                    for prop in x["properties"]
                    if prop["id"] == "decimals"
                ]
                if props.get("unit") == "percentunit" and not decimals:
                    missing.append((name, p["title"], field))
    assert [] == missing
