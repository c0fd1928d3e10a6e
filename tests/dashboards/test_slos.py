"""The SLO dashboard: time series of SLI and burn rate with each tier's factor, per-window
thresholds, the stage progress of a staged SLO, the recorded 5m ratio of the errors SLO,
and a uid and title per service."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
import yaml

from limone_obs import conventions as c
from limone_obs.alerts import build as alerts_build
from limone_obs.alerts.model import Panel, PanelName
from limone_obs.alerts.spec import parse_spec
from limone_obs.dashboards import slos
from limone_obs.dashboards.generate import build_all, build_from
from limone_obs.dashboards.lint import panels
from limone_obs.dashboards.queries import known, slo_matchers
from limone_obs.dashboards.slo_inputs import ServiceView, from_spec, load_service
from limone_obs.errors import DashboardError
from tests.alerts.helpers import edited
from tests.support import ROOT


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    """The SLO dashboard built from the committed spec."""
    return build_from(ROOT)["slos.json"]


def _titled(board: dict[str, Any], title: str) -> list[dict[str, Any]]:
    return [p for p in panels(board) if p.get("title") == title]


def test_burn_rate_over_time_draws_every_tier_factor(board: dict[str, Any]) -> None:
    """Availability's burn-rate series has one query per window and a dashed line at each
    tier's factor (14.4, 6, 3, 1 for 30 days)."""
    panel = _titled(board, "Burn rate over time")[0]
    steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    style = panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"]
    legends = [t["legendFormat"] for t in panel["targets"]]
    assert (["5m", "30m", "1h", "2h", "6h", "1d", "3d"], "dashed", [3.0, 6.0, 14.4]) == (
        legends,
        style,
        [v for v in steps if v is not None and v > 1],
    )


def test_each_window_turns_red_at_its_own_tiers_factor(board: dict[str, Any]) -> None:
    """The 1h and 5m windows (page-fast) turn red at 14.4; 1d (ticket-fast) orange at 3."""
    panel = _titled(board, "Burn rate by window")[0]
    overrides = {
        o["matcher"]["options"]: [
            (s["color"], s["value"]) for s in o["properties"][0]["value"]["steps"]
        ]
        for o in panel["fieldConfig"]["overrides"]
    }
    assert (
        [("green", None), ("yellow", 1.0), ("red", 14.4)],
        [("green", None), ("yellow", 1.0), ("orange", 3.0)],
    ) == (overrides["1h"], overrides["1d"])


def test_the_staged_latency_slo_shows_progress_toward_1_s_and_0_6_s(board: dict[str, Any]) -> None:
    """One progress panel (the latency SLO; ai-latency has one too): committed share and
    one recorded stage series per next stage."""
    latency = _titled(board, "Progress toward the next stages")[0]
    exprs = [t["expr"] for t in latency["targets"]]
    scope = slo_matchers("limoneide", "latency")[1:-1]
    assert [
        known(f"1 - slo:sli_error:ratio_rate1h{{{scope}}}"),
        known(f'slo:stage_sli:ratio_rate1h{{{scope},stage_seconds="1"}}'),
        known(f'slo:stage_sli:ratio_rate1h{{{scope},stage_seconds="0.6"}}'),
    ] == exprs


def test_the_errors_bad_ratio_now_reads_the_recorded_5m_rule(board: dict[str, Any]) -> None:
    """ "Bad event ratio now" is the recorded ratio over the alert's window, as ErrorsHigh."""
    (panel,) = _titled(board, "Bad event ratio now")
    expected = known(f"{c.sli_error_ratio_rule('5m')}{slo_matchers('limoneide', 'errors')}")
    assert [expected] == [t["expr"] for t in panel["targets"]]


def test_another_service_gets_its_own_slo_dashboard_uid_and_title() -> None:
    """service: billing builds uid billing-slos titled "billing / SLOs and error budgets"."""
    text = edited("service: limoneide", "service: billing")
    board = build_all(from_spec(parse_spec(text)))["slos.json"]
    assert ("billing-slos", "billing / SLOs and error budgets") == (board["uid"], board["title"])


def _with_row(slo_name: str, *row: Panel) -> ServiceView:
    """The committed spec's SLOs with ``slo_name``'s row replaced by ``row``."""
    service = load_service(ROOT)
    changed = [replace(s, panels=row) if s.name == slo_name else s for s in service.slos]
    return replace(service, slos=tuple(changed))


def test_an_unknown_panel_in_a_kinds_row_names_the_slo_kind_and_panel() -> None:
    """A kind laying out a panel the dashboards cannot draw gets a DashboardError naming
    the SLO, its kind and the panel, and listing the panels there are."""
    broken = _with_row("availability", Panel(PanelName.DEFINITION, 6), Panel("sparkline", 6))
    with pytest.raises(DashboardError) as caught:
        build_all(broken)
    known = ", ".join(sorted(slos.PANELS))
    expected = (
        f"SLO 'availability' (kind 'ratio') lays out an unknown dashboard panel 'sparkline'; "
        f"known panels: {known}"
    )
    assert (expected, True) == (str(caught.value), PanelName.DEFINITION in known)


def test_a_panel_the_slo_has_nothing_for_names_what_it_needs() -> None:
    """Burn rates laid out for an SLO without burn tiers (``up``) is a DashboardError
    saying the panel needs burn tiers, not a panel of empty queries."""
    broken = _with_row("up", Panel(PanelName.DEFINITION, 6), Panel(PanelName.BURN_RATES, 6))
    with pytest.raises(DashboardError) as caught:
        build_all(broken)
    expected = (
        "SLO 'up' (kind 'up') lays out the dashboard panel 'burn-rates', which needs burn "
        "tiers; the SLO has none: remove the panel from its kind's row"
    )
    assert expected == str(caught.value)


def test_every_sli_over_time_plots_recorded_5m_1h_and_6h(board: dict[str, Any]) -> None:
    """Each budget SLO's "SLI over time" plots its 5m, 1h and 6h SLI, each a series its
    recording rules write. An SLO with ticket tiers only (ai-latency: 1d/2h, 3d/6h)
    plotted the 6h SLI alone: an hour-long incident barely moved it."""
    recorded = set()
    for rel, content in alerts_build.artifacts(ROOT).files.items():
        if rel.startswith("alerts/rules/"):
            for group in yaml.safe_load(content)["groups"]:
                recorded |= {(r["record"], r["labels"]["slo"]) for r in group["rules"]
                             if "record" in r}  # fmt: skip
    plotted = _titled(board, "SLI over time")
    assert len(plotted) >= 4  # availability, latency, ai-latency and the browser SLOs
    for panel in plotted:
        assert ["SLI 5m", "SLI 1h", "SLI 6h"] == [t["legendFormat"] for t in panel["targets"]]
        for target in panel["targets"]:
            found = re.fullmatch(r'\(1 - ([^{]+)\{.*\bslo="([^"]+)".*\}\) > -Inf', target["expr"])
            assert found is not None, target["expr"]
            assert found.groups() in recorded


def test_progress_says_what_the_committed_threshold_alerts_with(board: dict[str, Any]) -> None:
    """latency has page tiers, ai-latency tickets only: its panel said "(it pages)" too."""
    said = {
        p["targets"][0]["expr"].split('slo="')[1].split('"')[0]: p["description"]
        for p in _titled(board, "Progress toward the next stages")
    }
    assert "committed threshold (it pages)" in said["latency"]
    assert "committed threshold (it opens tickets)" in said["ai-latency"]
