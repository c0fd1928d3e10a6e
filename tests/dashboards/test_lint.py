"""The dashboard linter: each rule fires on a bad dashboard, none on the generated ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from limone_obs.cli import main
from limone_obs.dashboards import promql
from limone_obs.dashboards.generate import build_from
from limone_obs.dashboards.lint import lint, lint_file, repeated_by
from limone_obs.errors import DashboardError
from tests.support import ROOT

GOOD_EXPR = 'sum(rate(limoneide_requests_total{job="$job"}[$__rate_interval]))'


def _panel(pid: int, x: int = 0, y: int = 0, expr: str = GOOD_EXPR) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "timeseries",
        "title": f"panel {pid}",
        "description": "Requests per second.",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": 12, "h": 8},
        "fieldConfig": {
            "defaults": {
                "unit": "reqps",
                "thresholds": {"steps": [{"color": "green", "value": None}]},
            }
        },
        "targets": [
            {
                "refId": "A",
                "expr": expr,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
            }
        ],
    }


def good() -> dict[str, Any]:
    """A small dashboard that breaks no rule."""
    return {
        "uid": "good",
        "schemaVersion": 41,
        "templating": {"list": [{"name": "datasource"}, {"name": "job"}]},
        "panels": [_panel(1), _panel(2, x=12)],
    }


def rules(dashboard: dict[str, Any]) -> list[str]:
    """The rule names of the findings on ``dashboard``."""
    return [finding.rule for finding in lint("test.json", dashboard)]


def test_a_good_dashboard_has_no_findings() -> None:
    """The reference dashboard of these tests is clean (each test below breaks one thing)."""
    assert [] == rules(good())


def test_generated_dashboards_have_no_findings() -> None:
    """Every generated dashboard passes every rule."""
    findings = [str(f) for name, board in build_from(ROOT).items() for f in lint(name, board)]
    assert [] == findings


@pytest.mark.parametrize("kind", ["graph", "singlestat", "table-old"])
def test_legacy_panel_types_are_reported(kind: str) -> None:
    """graph, singlestat and table-old are legacy panel types."""
    board = good()
    board["panels"][0]["type"] = kind
    assert ["legacy-panel"] == rules(board)


def test_pre_91_heatmap_options_are_reported() -> None:
    """A heatmap with dataFormat/cards/yAxis uses the pre-9.1 format."""
    board = good()
    board["panels"][0].update(type="heatmap", dataFormat="tsbuckets", cards={})
    assert ["legacy-panel"] == rules(board)


def test_old_schema_version_is_reported() -> None:
    """grafanalib's default schemaVersion 12 is too old."""
    board = good()
    board["schemaVersion"] = 12
    assert ["schema-version"] == rules(board)


def test_missing_description_is_reported() -> None:
    """A panel without a description is reported."""
    board = good()
    del board["panels"][0]["description"]
    assert ["missing-description"] == rules(board)


def test_missing_unit_is_reported() -> None:
    """A numeric panel without fieldConfig.defaults.unit is reported."""
    board = good()
    del board["panels"][0]["fieldConfig"]["defaults"]["unit"]
    assert ["missing-unit"] == rules(board)


def test_missing_thresholds_are_reported() -> None:
    """A numeric panel without threshold steps is reported."""
    board = good()
    board["panels"][0]["fieldConfig"]["defaults"]["thresholds"] = {"steps": []}
    assert ["missing-thresholds"] == rules(board)


def test_datasource_as_plain_string_is_reported() -> None:
    """Datasources must be {type, uid} objects, not names."""
    board = good()
    board["panels"][0]["datasource"] = "Prometheus"
    assert ["datasource-string"] == rules(board)


def test_duplicate_ids_are_reported() -> None:
    """Two panels with the same id are reported once, on the second."""
    board = good()
    board["panels"][1]["id"] = 1
    assert ["duplicate-id"] == rules(board)


def test_duplicate_ids_inside_collapsed_rows_are_reported() -> None:
    """Panels nested in a collapsed row share the id space with the top level."""
    board = good()
    row = {"id": 3, "type": "row", "title": "r", "gridPos": {"x": 0, "y": 8, "w": 24, "h": 1}}
    row["panels"] = [_panel(2, y=9)]
    board["panels"].append(row)
    assert ["duplicate-id"] == rules(board)


def test_overlapping_gridpos_is_reported() -> None:
    """Two panels covering the same cells overlap."""
    board = good()
    board["panels"][1]["gridPos"]["x"] = 6
    assert ["overlapping-gridpos"] == rules(board)


def test_gridpos_outside_the_grid_is_reported() -> None:
    """A panel reaching past column 24 is reported."""
    board = good()
    board["panels"][1]["gridPos"]["x"] = 16
    assert ["gridpos"] == rules(board)


def test_undefined_variable_is_reported() -> None:
    """$endpoint used in a query but not defined in templating is reported."""
    board = good()
    expr = 'sum(rate(limoneide_requests_total{job="$job", endpoint="$endpoint"}[$__rate_interval]))'
    board["panels"][0]["targets"][0]["expr"] = expr
    findings = lint("test.json", board)
    assert [("undefined-variable", True)] == [(f.rule, "$endpoint" in f.message) for f in findings]


DEP_EXPR = (
    'sum(rate(limoneide_dependency_duration_seconds_count{job="$job", dependency=~"$dependency"}'
    "[$__rate_interval]))"
)


def repeated(multi: bool = True, expr: str = DEP_EXPR, var: str = "dependency") -> dict[str, Any]:
    """``good()`` plus a row repeated over ``$var`` holding one panel querying ``expr``."""
    board = good()
    board["templating"]["list"].append({"name": "dependency", "multi": multi, "includeAll": multi})
    row = {"id": 3, "type": "row", "title": "$dependency", "repeat": var, "panels": []}
    row["gridPos"] = {"x": 0, "y": 8, "w": 24, "h": 1}
    board["panels"] += [row, _panel(4, y=9, expr=expr)]
    return board


def test_a_row_repeated_over_a_multi_value_variable_its_panels_use_is_clean() -> None:
    """The good shape: $dependency multi-value, the row's panel filters on it."""
    assert [] == rules(repeated())


def test_a_panel_of_a_repeated_row_not_using_the_variable_is_reported() -> None:
    """Every copy of such a panel would draw the same lines."""
    findings = lint("test.json", repeated(expr=GOOD_EXPR))
    assert [("repeat-unused", 'panel 4 "panel 4"')] == [(f.rule, f.panel) for f in findings]


def test_a_row_repeated_over_a_single_value_variable_is_reported() -> None:
    """Grafana repeats only over the values of a multi-value (or All) variable."""
    assert ["repeat-single-value"] == rules(repeated(multi=False))


def test_a_row_repeated_over_an_undefined_variable_is_reported() -> None:
    """The repeat names a variable templating does not define (a typo)."""
    findings = lint("test.json", repeated(var="dependencies"))
    assert [("undefined-variable", True)] == [
        (f.rule, "$dependencies" in f.message) for f in findings if f.panel.startswith("panel 3")
    ]


def test_panels_of_a_collapsed_repeated_row_are_its_own() -> None:
    """A collapsed row holds its panels; the panel after it belongs to no repeat."""
    board = repeated()
    row, inner = board["panels"][2], board["panels"].pop()
    row["collapsed"], row["panels"] = True, [inner]
    board["panels"].append(_panel(5, y=10))
    assert {4: "dependency"} == repeated_by(board)


def test_builtin_and_regex_group_variables_are_not_reported() -> None:
    """$__rate_interval, ${__value.raw} and label_replace's ${1} are not dashboard variables."""
    board = good()
    board["panels"][0]["description"] = "Open ${__value.raw:percentencode} for $__range."
    expr = f'label_replace({GOOD_EXPR}, "class", "${{1}}xx", "status", "(.).*")'
    board["panels"][0]["targets"][0]["expr"] = expr
    assert [] == rules(board)


def test_rate_on_a_gauge_is_reported() -> None:
    """rate() of a series without a counter suffix is reported."""
    board = good()
    expr = 'sum(rate(limoneide_requests_in_progress{job="$job"}[$__rate_interval]))'
    board["panels"][0]["targets"][0]["expr"] = expr
    assert ["rate-on-non-counter"] == rules(board)


def test_selector_without_job_is_reported() -> None:
    """An exporter series queried without job="$job" is reported."""
    board = good()
    board["panels"][0]["targets"][0]["expr"] = (
        "sum(rate(limoneide_requests_total[$__rate_interval]))"
    )
    assert ["missing-job"] == rules(board)


def test_one_selector_without_job_in_a_ratio_is_reported() -> None:
    """Each selector needs the filter: a ratio filtering only its numerator is reported."""
    board = good()
    expr = f"{GOOD_EXPR} / sum(rate(limoneide_requests_total{{status='5xx'}}[$__rate_interval]))"
    board["panels"][0]["targets"][0]["expr"] = expr
    assert ["missing-job"] == rules(board)


def test_recording_rules_and_alerts_need_no_job() -> None:
    """slo:* rules are scoped by slo_service and ALERTS by its labels, not by $job."""
    board = good()
    expr = 'slo:sli_error:ratio_rate1h{slo="a"} / on (slo) sum by (slo) (ALERTS{slo="a"})'
    board["panels"][0]["targets"][0]["expr"] = expr
    assert [] == rules(board)


def test_hard_coded_range_is_reported() -> None:
    """rate(...[5m]) instead of [$__rate_interval] is reported."""
    board = good()
    board["panels"][0]["targets"][0]["expr"] = GOOD_EXPR.replace("$__rate_interval", "5m")
    assert ["missing-rate-interval"] == rules(board)


@pytest.mark.parametrize(
    ("expr", "windows"),
    [
        ("last_over_time(x[1h] offset 1m)", []),
        ("present_over_time(x[1h])", []),
        ("max_over_time(x[1h])", ["1h"]),
        ("last_over_time(rate(x_total[5m])[1h:1m])", ["5m"]),
        # A rate window beside a lookback is still one (a review: nodes told apart by
        # id() lost it whenever the allocator reused an address).
        ("max(last_over_time(foo[1h])) + rate(bar_total[7m])", ["7m"]),
        ("present_over_time(foo[2h]) * on() group(rate(bar_total[9m]))", ["9m"]),
        ("rate(x_total[1h]) + last_over_time(x_total[1h])", ["1h"]),
        ("last_over_time(x_total[1h]) + rate(x_total[1h])", ["1h"]),
    ],
)
def test_a_lookback_window_is_no_rate_window(expr: str, windows: list[str]) -> None:
    """The window of last_over_time / present_over_time says how far back a value
    counts as seen (the deploy marks' hour), not a rate's: it is no hard-coded rate
    window. Every other window, a rate's inside one included, still is."""
    assert windows == promql.ranges(expr)


def test_findings_name_dashboard_panel_and_query() -> None:
    """A finding's text says which dashboard, panel and query, and what to do."""
    board = good()
    board["panels"][0]["targets"][0]["expr"] = GOOD_EXPR.replace("$__rate_interval", "5m")
    text = str(lint("overview.json", board)[0])
    assert text.startswith('overview.json: panel 1 "panel 1" query A: range [5m] is hard-coded')


def test_lint_file_rejects_invalid_json(tmp_path: Path) -> None:
    """A file that is not JSON raises DashboardError naming the file."""
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(DashboardError, match=r"broken\.json: cannot read a dashboard"):
        lint_file(path)


def test_cli_lint_passes_on_the_committed_dashboards() -> None:
    """`limone-obs dashboards lint dashboards/` exits 0 on the committed files."""
    result = CliRunner().invoke(main, ["dashboards", "lint", str(ROOT / "dashboards")])
    assert (0, "6 dashboard(s), no findings\n") == (result.exit_code, result.output)


def test_cli_lint_fails_with_exit_1_on_findings(tmp_path: Path) -> None:
    """`limone-obs dashboards lint` prints the findings and exits 1."""
    board = copy.deepcopy(good())
    board["panels"][0]["type"] = "graph"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(board))
    result = CliRunner().invoke(main, ["dashboards", "lint", str(path)])
    assert (1, True) == (result.exit_code, "[legacy-panel]" in result.output)


def test_unbalanced_parenthesis_is_reported() -> None:
    """A query missing a ``)`` is a syntax error (the old tokenizer let it through)."""
    board = good()
    board["panels"][0]["targets"][0]["expr"] = GOOD_EXPR[:-1]
    findings = lint("test.json", board)
    assert [("promql-syntax", True)] == [(f.rule, "parenthesis" in f.message) for f in findings]


def test_cli_lint_keeps_going_past_an_unreadable_file(tmp_path: Path) -> None:
    """An unreadable file is reported, the files after it are still linted, exit 1."""
    (tmp_path / "a_broken.json").write_text("{not json")
    board = copy.deepcopy(good())
    board["panels"][0]["type"] = "graph"
    (tmp_path / "b_bad.json").write_text(json.dumps(board))
    (tmp_path / "c_list.json").write_text("[]")
    result = CliRunner().invoke(main, ["dashboards", "lint", str(tmp_path)])
    assert (1, True, True, True) == (
        result.exit_code,
        "a_broken.json: cannot read a dashboard" in result.output,
        "[legacy-panel]" in result.output,
        "c_list.json: a dashboard is a JSON object" in result.output,
    )


def test_annotation_queries_are_checked() -> None:
    """A Prometheus annotation query without $job is reported like a panel query."""
    board = good()
    board["annotations"] = {
        "list": [
            {
                "name": "Deploys",
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "expr": "limoneide_build_info",
            }
        ]
    }
    findings = lint("test.json", board)
    assert [("missing-job", 'annotation "Deploys"')] == [(f.rule, f.panel) for f in findings]


def test_cli_lint_reports_a_missing_file_and_lints_the_others(tmp_path: Path) -> None:
    """A path that does not exist is reported; the other files are still linted."""
    (tmp_path / "ok.json").write_text(json.dumps(good()))
    missing = tmp_path / "gone.json"
    result = CliRunner().invoke(main, ["dashboards", "lint", str(missing), str(tmp_path)])
    assert (1, True, True) == (
        result.exit_code,
        "gone.json: cannot read a dashboard" in result.output,
        "0 finding(s) in 2 dashboard(s), 1 unreadable" in result.output,
    )


def test_cli_lint_without_a_dashboards_folder_says_what_to_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a project without dashboards/ (built with --root elsewhere), lint without
    arguments is an error naming the folder to pass, not one unreadable "dashboard"."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["dashboards", "lint"])
    assert (2, True, False) == (
        result.exit_code,
        "limone-obs build --root DIR" in result.output,
        "unreadable" in result.output,
    ), result.output
