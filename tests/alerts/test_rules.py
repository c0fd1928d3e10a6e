"""The generated recording and alerting rules (pure generator, no Prometheus)."""

from __future__ import annotations

import re
from typing import Any

from limone_obs import conventions as c
from limone_obs.alerts import alerting, rules, unittests
from limone_obs.alerts.spec import load_spec, parse_spec
from tests.alerts.helpers import SPEC_FILE, edited

SPEC = load_spec(SPEC_FILE)


def _records(slo: str) -> dict[str, Any]:
    groups = rules.slo_recording_groups(SPEC, SPEC.slo(slo))
    return {rule["record"]: rule for group in groups for rule in group["rules"]}


def _group_records(slo: str) -> list[tuple[str, str | None, list[str]]]:
    """(name, interval, record names) of each recording group of ``slo``."""
    groups = rules.slo_recording_groups(SPEC, SPEC.slo(slo))
    return [(g["name"], g.get("interval"), [r["record"] for r in g["rules"]]) for g in groups]


def _raw_windows(expr: str) -> set[str]:
    """The range windows of ``expr`` applied to anything but a recorded slo: series."""
    found = re.findall(r"(?<![\w:])([a-zA-Z_][\w:]*)\{[^}]*\}\[(\w+)\]", expr)
    return {window for name, window in found if not name.startswith("slo:")}


def _alerts(slo: str) -> list[dict[str, Any]]:
    return alerting.alerts(SPEC, SPEC.slo(slo))


def test_every_sli_window_is_recorded() -> None:
    """slo:sli_error:ratio_rate<w> exists for each of 5m 30m 1h 2h 6h 1d 3d."""
    expected = {c.sli_error_ratio_rule(w) for w in c.SLI_WINDOWS}
    assert expected == expected & set(_records("availability"))


def test_budget_records_exist() -> None:
    """objective, error budget, period SLI, burn rates and budget remaining are recorded."""
    expected = {
        c.RULE_OBJECTIVE,
        c.RULE_ERROR_BUDGET,
        c.RULE_PERIOD_SLI_ERROR,
        c.RULE_CURRENT_BURN_RATE,
        c.RULE_PERIOD_BURN_RATE,
        c.RULE_PERIOD_BUDGET_REMAINING,
    }
    assert expected == expected & set(_records("latency"))


def test_recorded_series_carry_slo_labels() -> None:
    """Every recorded series has exactly the labels slo and slo_service."""
    labels = {tuple(sorted(r["labels"].items())) for r in _records("errors").values()}
    assert {(("slo", "errors"), ("slo_service", "limoneide"))} == labels


def test_period_sli_is_request_weighted_from_the_recorded_rates() -> None:
    """The 30d SLI sums the recorded 5m bad and total rates; it never averages ratios."""
    expr = _records("availability")[c.RULE_PERIOD_SLI_ERROR]["expr"]
    sel = '{slo="availability",slo_service="limoneide"}'
    expected = (
        f"sum_over_time(slo:sli_bad_events:rate5m{sel}[30d])\n/\n"
        f"sum_over_time(slo:sli_events:rate5m{sel}[30d])"
    )
    assert expected == expr


def test_long_windows_are_recorded_in_their_own_slower_group() -> None:
    """1d, 3d, the period SLI and budget live in slo-sli-<slo>-long, evaluated every 1m."""
    long_records = [
        "slo:sli_error:ratio_rate1d",
        "slo:sli_error:ratio_rate3d",
        c.RULE_PERIOD_SLI_ERROR,
        c.RULE_PERIOD_BURN_RATE,
        c.RULE_PERIOD_BUDGET_REMAINING,
    ]
    assert ("slo-sli-availability-long", "1m", long_records) == _group_records("availability")[1]


def test_no_rule_reads_a_day_or_more_of_raw_series() -> None:
    """Every raw-series range in any rule is shorter than 1d (long ones read recordings);
    10m and 15m are the kit-health windows of dropped log lines and of TrafficStopped."""
    groups = rules.recording_groups(SPEC) + alerting.alert_groups(SPEC)
    windows = {w for g in groups for r in g["rules"] for w in _raw_windows(r["expr"])}
    assert {"5m", "10m", "15m", "30m", "1h", "2h", "6h"} == windows


def test_the_fast_group_records_the_5m_event_rates() -> None:
    """The bad and total 5m rates are recorded every evaluation, bad 0 when missing."""
    records = _records("availability")
    bad, total = records[c.RULE_BAD_EVENTS_RATE5M], records[c.RULE_EVENTS_RATE5M]
    expected = (
        '(sum(rate(limoneide_requests_total{job="limoneide",status=~"5.."}[5m])) or vector(0))',
        'sum(rate(limoneide_requests_total{job="limoneide"}[5m]))',
    )
    assert expected == (bad["expr"], total["expr"])


def test_missing_error_series_count_as_zero() -> None:
    """The errors side of a ratio falls back to vector(0)."""
    assert "or vector(0)" in _records("availability")["slo:sli_error:ratio_rate5m"]["expr"]


def test_latency_stage_matches_both_bucket_notations() -> None:
    """The 1 s stage's bucket is matched with le=~"1(\\.0)?" ("1.0" and "1")."""
    groups = rules.slo_recording_groups(SPEC, SPEC.slo("latency"))
    (expr,) = [
        r["expr"]
        for g in groups
        for r in g["rules"]
        if r["record"] == c.stage_sli_rule("5m") and r["labels"].get(c.LABEL_STAGE) == "1"
    ]
    assert c.LE_ONE_SECOND_MATCHER in expr


def test_a_fractional_threshold_matches_exactly() -> None:
    """0.6 s is matched as le="0.6" (both Prometheus versions write it so)."""
    assert 'le="0.6"' == rules.le_matcher(0.6).promql()


def test_one_burn_rule_per_enabled_tier() -> None:
    """availability has four tiers, ai-latency two (pages switched off)."""
    counts = [
        len([r for r in _alerts(slo) if r["alert"].endswith(c.ALERT_SUFFIX_BURN)])
        for slo in ("availability", "ai-latency")
    ]
    assert [4, 2] == counts


def test_burn_threshold_is_factor_times_budget() -> None:
    """The page-fast alert compares both windows' burn rates (error ratio over the 0.001
    budget) with 14.4: the long window's is the alert's value, which its summary prints."""
    expr = _alerts("availability")[0]["expr"]
    expected = (
        'slo:sli_error:ratio_rate1h{slo="availability",slo_service="limoneide"} / 0.001 > 14.4\n'
        "and\n"
        'slo:sli_error:ratio_rate5m{slo="availability",slo_service="limoneide"} / 0.001 > 14.4\n'
        "and on ()\n"
        'avg_over_time(slo:sli_events:rate5m{slo="availability",slo_service="limoneide"}[1h])'
        " >= 0.05"
    )
    assert expected == expr


def test_min_rate_zero_drops_the_guard() -> None:
    """With min_rate 0 the burn alert has no traffic clause."""
    spec = parse_spec(edited("min_rate: 0.05", "min_rate: 0"))
    expr = alerting.alerts(spec, spec.slo("availability"))[0]["expr"]
    assert "and on ()" not in expr


def test_threshold_alert() -> None:
    """ErrorsHigh: 5m error ratio above 1 %, for 5m, page."""
    rule = _alerts("errors")[0]
    assert ("ErrorsHigh", "5m", "page", True) == (
        rule["alert"],
        rule["for"],
        rule["labels"]["severity"],
        rule["expr"].startswith(
            'slo:sli_error:ratio_rate5m{slo="errors",slo_service="limoneide"} > 0.01'
        ),
    )


def test_latency_quantile_alert() -> None:
    """LatencyP95High: p95 over 5m above 2.5 s for 15m opens a ticket."""
    (rule,) = [r for r in _alerts("latency") if r["alert"] == "LatencyP95High"]
    assert ("LatencyP95High", "15m", "ticket", True) == (
        rule["alert"],
        rule["for"],
        rule["labels"]["severity"],
        rule["expr"].startswith("histogram_quantile(0.95, sum by (le) (rate("),
    )


def test_target_alerts() -> None:
    """TargetDown (up == 0, 1m), TargetAbsent (no up, 5m), MetricsAbsent (an up instance
    without build_info, 5m)."""
    found = [(r["alert"], r["expr"], r["for"], r["labels"]["severity"]) for r in _alerts("up")]
    assert [
        ("TargetDown", 'up{job="limoneide"} == 0', "1m", "page"),
        ("TargetAbsent", 'absent(up{job="limoneide"})', "5m", "page"),
        (
            "MetricsAbsent",
            'up{job="limoneide"} == 1\nunless on (instance)\nlimoneide_build_info{job="limoneide"}',
            "5m",
            "ticket",
        ),
    ] == found


def test_every_alert_has_the_required_labels_and_annotations() -> None:
    """severity, slo (SLO alerts; the kit-health tickets belong to no SLO), slo_service;
    summary, description, runbook_url, dashboard_url."""
    labels = {c.LABEL_SEVERITY, c.LABEL_SLO_SERVICE}
    notes = {c.ANNOTATION_SUMMARY, c.ANNOTATION_DESCRIPTION, c.ANNOTATION_RUNBOOK}
    notes.add(c.ANNOTATION_DASHBOARD)
    missing = [
        r["alert"]
        for g in alerting.alert_groups(SPEC)
        for r in g["rules"]
        if not (labels <= r["labels"].keys() and notes <= r["annotations"].keys())
        or ((c.LABEL_SLO in r["labels"]) != g["name"].startswith("slo-alerts-"))
    ]
    assert [] == missing


def test_runbook_url_points_at_the_alerts_section() -> None:
    """runbook_url = <base>/<service>/<slo>.md#<alertname lowercased>."""
    url = _alerts("errors")[0]["annotations"][c.ANNOTATION_RUNBOOK]
    expected = (
        "https://github.com/limoneide/limone-obs/blob/main/alerts/runbooks/limoneide/errors.md"
        "#errorshigh"
    )
    assert expected == url


def test_extra_labels_reach_every_alert() -> None:
    """The service-wide label team=limoneide is on every alert."""
    teams = {r["labels"].get("team") for g in alerting.alert_groups(SPEC) for r in g["rules"]}
    assert {"limoneide"} == teams


def test_a_burn_alert_summary_prints_its_measured_burn_rate() -> None:
    """The summary states the long window's burn rate (the alert's value) and the tier's
    factor; a generated test's load is steadied so that rate prints alike whatever the
    last bits of Prometheus' division (28.85 printed 28.8 or 28.9)."""
    summary = _alerts("availability")[0]["annotations"]["summary"]
    assert (
        f"limoneide availability: error budget burning {unittests.BURN_VALUE}x too fast over "
        "1h (fires from 14.4x)"
    ) == summary
    assert 0.0288 == unittests.steady(0.0288, 0.001)
    nudged = unittests.steady(0.02885, 0.001)
    assert nudged < 0.02885
    burn = nudged / 0.001
    assert f"{burn * (1 - 1e-9):.1f}" == f"{burn * (1 + 1e-9):.1f}"


def test_a_latency_burn_alert_names_what_it_counts_bad() -> None:
    """A latency SLO's burn alert speaks of slow (or not good) events, not of an error
    ratio (a trial read "the error ratio is above 30 %" of its latency SLO as errors)."""
    described = {
        name: _alerts(name)[0]["annotations"]["description"]
        for name in ("availability", "latency", "ai-latency")
    }
    assert "The error ratio is above 1.44 %" in described["availability"]
    assert "The share of events slower than 2.5 s is above" in described["latency"]
    assert (
        'The share of events slower than 2.5 s, or without outcome="ok", is above'
        in described["ai-latency"]
    )
