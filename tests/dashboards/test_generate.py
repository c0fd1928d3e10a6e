"""Generated dashboards: deterministic, committed, modern JSON, drawn from the SLO spec."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from limone_obs import artifacts
from limone_obs import conventions as c
from limone_obs.alerts.spec import parse_spec
from limone_obs.dashboards import _grafana as gf
from limone_obs.dashboards import build, provisioning
from limone_obs.dashboards._fixups import SCHEMA_VERSION, modernise
from limone_obs.dashboards.common import PROCESS_NOTE
from limone_obs.dashboards.generate import build_all, build_from, render
from limone_obs.dashboards.lint import panels
from limone_obs.dashboards.slo_inputs import from_spec, load_service
from limone_obs.dashboards.slos import good_bad
from limone_obs.errors import SpecError
from tests.support import ROOT

GENERATOR = "limone_obs.dashboards.build:artifacts"
SPEC = ROOT / "alerts" / "slo.yaml"


@pytest.fixture(scope="module")
def boards() -> dict[str, dict[str, Any]]:
    """The dashboards built from the committed spec."""
    return build_from(ROOT)


def all_panels(boards: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel of every dashboard."""
    for board in boards.values():
        yield from panels(board)


def by_title(board: dict[str, Any], title: str) -> list[dict[str, Any]]:
    """The panels of ``board`` titled ``title``."""
    return [p for p in panels(board) if p.get("title") == title]


def spec_with(old: str, new: str) -> str:
    """The committed spec text with one replacement (which must apply)."""
    text = SPEC.read_text()
    assert old in text
    return text.replace(old, new, 1)


def test_two_builds_are_byte_identical() -> None:
    """Building twice gives the same bytes for every file."""
    first = build.artifacts(ROOT).files
    assert dict(first) == dict(build.artifacts(ROOT).files)


def test_committed_files_match_a_fresh_build() -> None:
    """dashboards/ and compose/grafana/provisioning/ on disk are what the generator writes."""
    assert [] == artifacts.diff(ROOT, artifacts.collect(ROOT, [GENERATOR]))


def test_check_reports_a_hand_edited_dashboard(tmp_path: Path) -> None:
    """`build --check` logic flags a committed dashboard edited by hand, and a leftover file."""
    (tmp_path / "alerts").mkdir()
    shutil.copy(SPEC, tmp_path / "alerts" / "slo.yaml")
    artifacts.build(tmp_path, [GENERATOR])
    edited = tmp_path / "dashboards" / "overview.json"
    edited.write_text(edited.read_text().replace("Request rate", "Requests"))
    (tmp_path / "dashboards" / "old.json").write_text("{}")
    problems = artifacts.diff(tmp_path, artifacts.collect(tmp_path, [GENERATOR]))
    expected = ["stale: dashboards/overview.json", "not written by limone-obs: dashboards/old.json"]
    assert expected == [line.split(" (")[0] for line in problems]


def test_files_and_uids_are_the_conventions_ones(boards: dict[str, dict[str, Any]]) -> None:
    """Each file carries its stable uid from conventions.py."""
    uids = {name: board["uid"] for name, board in boards.items()}
    expected = {
        "overview.json": c.DASHBOARD_UID_OVERVIEW,
        "slos.json": c.DASHBOARD_UID_SLOS,
        "dependencies.json": c.DASHBOARD_UID_DEPENDENCIES,
        "endpoint.json": c.DASHBOARD_UID_ENDPOINT,
        "logs.json": c.DASHBOARD_UID_LOGS,
        "ux.json": c.dashboard_uid(c.DEFAULT_NAMESPACE, c.DASHBOARD_UX),
    }
    assert expected == uids


def test_schema_version_is_set_explicitly(boards: dict[str, dict[str, Any]]) -> None:
    """Every dashboard says schemaVersion 41 (grafanalib would write 12)."""
    assert {SCHEMA_VERSION} == {board["schemaVersion"] for board in boards.values()}


def test_only_modern_panel_types(boards: dict[str, dict[str, Any]]) -> None:
    """Panel types are among timeseries, stat, table, heatmap, logs, text, row."""
    allowed = {"timeseries", "stat", "table", "heatmap", "logs", "text", "row"}
    assert set() == {p["type"] for p in all_panels(boards)} - allowed


def test_grafanalib_leftovers_are_removed(boards: dict[str, dict[str, Any]]) -> None:
    """No maxDataPoints: 100, no legacy dashboard keys, no Graphite target keys."""
    leftovers = [
        (p["title"], key)
        for p in all_panels(boards)
        for key in ("maxDataPoints", "span", "error", "cards", "dataFormat", "styles")
        if key in p
    ]
    targets = [t for p in all_panels(boards) for t in p.get("targets", [])]
    target_keys = {k for t in targets for k in t} & {"query", "target", "metric", "step"}
    board_keys = {k for b in boards.values() for k in b} & {"rows", "style", "sharedCrosshair"}
    assert ([], set(), set()) == (leftovers, target_keys, board_keys)


def test_datasources_are_type_uid_objects(boards: dict[str, dict[str, Any]]) -> None:
    """Every panel and target datasource is {type, uid} with the variable as uid."""
    refs = {
        (ref["type"], ref["uid"])
        for p in all_panels(boards)
        for ref in [p.get("datasource"), *(t["datasource"] for t in p.get("targets", []))]
        if ref is not None
    }
    assert {("prometheus", "${datasource}"), ("loki", "${loki}")} == refs


def test_panel_ids_are_unique_and_stable(boards: dict[str, dict[str, Any]]) -> None:
    """Panel ids run 1..n in layout order in every dashboard."""
    ids = {name: [p["id"] for p in panels(board)] for name, board in boards.items()}
    assert {name: list(range(1, len(v) + 1)) for name, v in ids.items()} == ids


def test_variables_of_the_prometheus_dashboards(boards: dict[str, dict[str, Any]]) -> None:
    """datasource, job and instance everywhere; endpoint on the drill-down; dependency on
    the dependencies; baseline on the overview and the drill-down; env and endpoint on the
    logs (Prometheus for its alerts)."""
    names = {n: [v["name"] for v in b["templating"]["list"]] for n, b in boards.items()}
    base = ["datasource", "job", "instance"]
    expected = {
        "overview.json": [*base, "baseline"],
        "slos.json": base,
        "dependencies.json": [*base, "dependency"],
        "endpoint.json": [*base, "endpoint", "baseline"],
        "logs.json": ["loki", "datasource", "service", "env", "endpoint", "request_id"],
        "ux.json": base,
    }
    assert expected == names


def test_heatmaps_use_the_current_options(boards: dict[str, dict[str, Any]]) -> None:
    """Heatmaps read Prometheus buckets as-is (calculate off) with a y axis in seconds."""
    heatmaps = [p for p in all_panels(boards) if p["type"] == "heatmap"]
    shapes = {
        (p["options"]["calculate"], p["options"]["yAxis"]["unit"], p["targets"][0]["format"])
        for p in heatmaps
    }
    assert (2, {(False, "s", "heatmap")}) == (len(heatmaps), shapes)


def test_stat_panels_do_not_print_none(boards: dict[str, dict[str, Any]]) -> None:
    """grafanalib's noValue "none" is gone from every stat panel."""
    stats = [p for p in all_panels(boards) if p["type"] == "stat"]
    no_value = [p["title"] for p in stats if p["fieldConfig"]["defaults"].get("noValue") == "none"]
    assert [] == no_value


def test_decimal_bounds_survive_the_fixups() -> None:
    """min/max like 0.99 (grafanalib accepts only ints) reach the JSON unchanged."""
    look = gf.Look("d", "percentunit", bounds=(0.5, 0.99))
    grid = gf.Grid()
    grid.add(gf.timeseries("t", [gf.Query("up")], look), 12, 4)
    board = modernise(gf.dashboard("u", "t", "d", grid, []))
    defaults = board["panels"][0]["fieldConfig"]["defaults"]
    assert (0.5, 0.99) == (defaults["min"], defaults["max"])


def test_threshold_base_step_is_null(boards: dict[str, dict[str, Any]]) -> None:
    """The first threshold step of every numeric panel has value null (minus infinity)."""
    firsts = {
        p["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["value"]
        for p in all_panels(boards)
        if p["type"] in ("timeseries", "stat", "table", "heatmap")
    }
    assert {None} == firsts


def test_latency_panels_draw_the_latency_slos_lines(boards: dict[str, dict[str, Any]]) -> None:
    """The overview's latency percentiles panel has dashed thresholds at the committed
    spec's latency SLO: its 2.5 s and its next stages, 1 s and 0.6 s."""
    panel = by_title(boards["overview.json"], "Latency percentiles")[0]
    steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    style = panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"]
    assert ([None, 0.6, 1.0, 2.5], "dashed") == (steps, style)


def test_error_ratio_line_comes_from_the_errors_slo() -> None:
    """The 5xx line sits at 100 - objective of the spec's threshold SLO (1 % -> 2 %)."""
    text = spec_with("kind: threshold\n    objective: 99\n", "kind: threshold\n    objective: 98\n")
    board = build_all(from_spec(parse_spec(text)))["overview.json"]
    panel = by_title(board, "5xx ratio")[1]
    assert 0.02 == panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]


def test_burn_rate_colours_switch_at_the_alert_factors(boards: dict[str, dict[str, Any]]) -> None:
    """The availability burn-rate stat turns orange/red at the tiers' computed factors."""
    panel = by_title(boards["slos.json"], "Burn rate by window")[0]
    steps = [
        (s["color"], s["value"]) for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    ]
    expected = [("green", None), ("yellow", 1.0), ("orange", 3.0), ("red", 6.0), ("red", 14.4)]
    assert expected == steps


def test_slo_dashboard_has_a_row_per_slo_of_the_spec(boards: dict[str, dict[str, Any]]) -> None:
    """Row titles follow the spec's SLOs and objectives."""
    rows = [p["title"] for p in panels(boards["slos.json"]) if p["type"] == "row"]
    expected = [
        "SLO availability: 99.9 %",
        "SLO latency: 95 %",
        "SLO errors: 99 %",
        "SLO ai-latency: 95 %",
        "SLO up",
        "SLO page-load: 95 %",
        "SLO ai-answer-shown: 95 %",
    ]
    assert expected == rows


def test_a_new_slo_in_the_spec_adds_a_row() -> None:
    """Adding an SLO to slo.yaml adds its row to the SLO dashboard."""
    extra = (
        "  - name: db-latency\n    kind: latency\n    objective: 99\n"
        "    description: DB queries within 0.6 s.\n"
        '    histogram: limoneide_dependency_duration_seconds{dependency="db"}\n'
        "    threshold_seconds: 0.6\n\n  # The scrape target:"
    )
    text = spec_with("  # The scrape target:", extra)
    board = build_all(from_spec(parse_spec(text)))["slos.json"]
    assert "SLO db-latency: 99 %" in [p["title"] for p in panels(board) if p["type"] == "row"]


def test_slo_rows_link_their_runbook(boards: dict[str, dict[str, Any]]) -> None:
    """Each SLO's definition panel links the runbook URL of the spec."""
    service = load_service(ROOT)
    texts = [p["options"]["content"] for p in by_title(boards["slos.json"], "Definition")]
    assert [True] * len(service.slos) == [
        f"({slo.runbook_url})" in text for slo, text in zip(service.slos, texts, strict=True)
    ]


def test_firing_alert_tables_are_scoped_to_their_slo(boards: dict[str, dict[str, Any]]) -> None:
    """Each "Firing alerts" table asks ALERTS for its own slo label."""
    exprs = [p["targets"][0]["expr"] for p in by_title(boards["slos.json"], "Firing alerts")]
    names = [slo.name for slo in load_service(ROOT).slos]
    assert [True] * len(names) == [f'slo="{n}"' in e for n, e in zip(names, exprs, strict=True)]


def test_process_panels_say_what_they_cover_under_gunicorn(
    boards: dict[str, dict[str, Any]],
) -> None:
    """CPU, memory, fds and GC panels explain they sum the master and workers under gunicorn."""
    titles = {"CPU", "Resident memory", "Open file descriptors", "GC collections"}
    found = {p["title"] for p in all_panels(boards) if PROCESS_NOTE in p.get("description", "")}
    assert titles == found


def test_endpoint_table_links_to_the_drill_down(boards: dict[str, dict[str, Any]]) -> None:
    """The overview's endpoint column links to the drill-down with var-endpoint."""
    panel = next(p for p in by_title(boards["overview.json"], "Endpoints") if p["type"] == "table")
    links = [
        link["url"]
        for override in panel["fieldConfig"]["overrides"]
        for prop in override["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]
    assert [True] == [
        f"/d/{c.DASHBOARD_UID_ENDPOINT}?" in u and "var-endpoint=" in u for u in links
    ]


def test_render_ends_with_one_newline_and_sorted_keys() -> None:
    """Rendered JSON has sorted keys and a single trailing newline."""
    assert b'{\n  "a": 1,\n  "b": 2\n}\n' == render({"b": 2, "a": 1})


def test_invalid_spec_fails_the_build_and_names_the_field(tmp_path: Path) -> None:
    """A bad objective in slo.yaml raises SpecError naming file and field; nothing is built."""
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "slo.yaml").write_text(spec_with("objective: 99.9", "objective: 120"))
    with pytest.raises(SpecError, match="objective"):
        build.artifacts(tmp_path)


def test_readme_lists_every_dashboard_and_says_do_not_edit() -> None:
    """dashboards/README.md names each file and uid and warns against editing."""
    text = build.artifacts(ROOT).files["dashboards/README.md"].decode()
    names = [f"[{n}]({n})" in text for n in build_from(ROOT)]
    assert (True, [True] * 6) == ("DO NOT EDIT" in text, names)


def test_provisioned_datasource_uids_are_the_dashboards_defaults() -> None:
    """The provisioned Prometheus and Loki uids are the ones the variables default to."""
    files = provisioning.files([load_service(ROOT)])
    doc = yaml.safe_load(files[f"{provisioning.OUTPUT_DIR}/datasources/datasources.yml"])
    uids = {d["type"]: d["uid"] for d in doc["datasources"]}
    expected = {"prometheus": c.DATASOURCE_UID_PROMETHEUS, "loki": c.DATASOURCE_UID_LOKI}
    assert expected == uids


def test_dashboard_provider_reads_the_mounted_folder() -> None:
    """The file provider reads the container path the dashboards are mounted at."""
    files = provisioning.files([load_service(ROOT)])
    doc = yaml.safe_load(files[f"{provisioning.OUTPUT_DIR}/dashboards/limoneide.yml"])
    provider = doc["providers"][0]
    expected = (provisioning.CONTAINER_DASHBOARDS, c.DASHBOARD_FOLDER_UID, "file")
    assert expected == (provider["options"]["path"], provider["folderUid"], provider["type"])


def test_ai_latency_good_events_are_fast_successful_calls() -> None:
    """The panels count good AI calls like the SLI: fast AND outcome="ok"; all calls in total."""
    (ai,) = [s for s in load_service(ROOT).slos if s.name == "ai-latency"]
    good, bad = good_bad(ai)
    assert 'outcome="ok"' in good
    total = bad.split("\n- ")[0]
    assert "_count" in total
    assert 'outcome="ok"' not in total


def test_scrape_target_up_shows_the_last_value(boards: dict[str, dict[str, Any]]) -> None:
    """ "Scrape target up" reduces with last, not lastNotNull (which stays green after the
    target vanished)."""
    (panel,) = by_title(boards["slos.json"], "Scrape target up")
    assert ["last"] == panel["options"]["reduceOptions"]["calcs"]


def test_the_dependency_section_repeats_over_every_dependency_of_the_job(
    boards: dict[str, dict[str, Any]],
) -> None:
    """One row, repeated over $dependency: multi-value, all selected when the dashboard
    opens, its values the job's dependency names, whatever the app calls them."""
    board = boards["dependencies.json"]
    (var,) = [v for v in board["templating"]["list"] if v["name"] == c.VAR_DEPENDENCY]
    (row,) = [p for p in board["panels"] if p.get("repeat")]
    shape = (row["repeat"], var["multi"], var["includeAll"], var["current"]["value"], var["query"])
    names = c.MetricNames(c.DEFAULT_NAMESPACE)
    query = f'label_values({names.dependency_duration_count}{{job="$job"}}, dependency)'
    assert (c.VAR_DEPENDENCY, True, True, ["$__all"], query) == shape
