"""The committed SLO spec loads into the model with the mission's defaults."""

from __future__ import annotations

import pytest

from limone_obs import conventions as c
from limone_obs.alerts.spec import (
    KIND_LATENCY,
    KIND_RATIO,
    KIND_THRESHOLD,
    KIND_UP,
    load_spec,
    parse_spec,
)
from limone_obs.errors import CollectedSpecError, SpecError
from tests.alerts.helpers import SPEC_FILE, edited, parse_edited

MINIMAL = """
service: shop
slos:
  - name: availability
    kind: ratio
    objective: 99.5
"""


def test_committed_spec_has_the_mission_slos() -> None:
    """availability 99.9 ratio, latency 95 at 1 s, errors < 1 %, ai-latency, up, and the
    user-experience SLOs page-load (2 s) and ai-answer-shown (1 s)."""
    spec = load_spec(SPEC_FILE)
    expected = [
        ("availability", KIND_RATIO, 99.9),
        ("latency", KIND_LATENCY, 95.0),
        ("errors", KIND_THRESHOLD, 99.0),
        ("ai-latency", KIND_LATENCY, 95.0),
        ("up", KIND_UP, None),
        ("page-load", KIND_LATENCY, 95.0),
        ("ai-answer-shown", KIND_LATENCY, 95.0),
    ]
    assert expected == [(s.name, s.kind, s.objective) for s in spec.slos]


def test_service_fields() -> None:
    """service, job, namespace and period are read from the top level."""
    spec = load_spec(SPEC_FILE)
    assert ("limoneide", "limoneide", "limoneide", "30d") == (
        spec.service,
        spec.job,
        spec.namespace,
        spec.period,
    )


def test_default_tier_factors_are_computed_from_the_period() -> None:
    """2 %, 5 %, 10 %, 10 % of a 30 d budget over 1h, 6h, 1d, 3d give 14.4, 6, 3, 1."""
    tiers = load_spec(SPEC_FILE).slo("availability").tiers
    expected = [
        ("page-fast", "page", "1h", "5m", 14.4),
        ("page-slow", "page", "6h", "30m", 6.0),
        ("ticket-fast", "ticket", "1d", "2h", 3.0),
        ("ticket-slow", "ticket", "3d", "6h", 1.0),
    ]
    assert expected == [
        (t.name, t.severity, t.long_window, t.short_window, t.factor) for t in tiers
    ]


def test_a_28_day_period_changes_the_factors() -> None:
    """The factor follows the period: 2 % of 28 d in 1 h is 13.44, not a typed-in 14.4."""
    text = edited("period: 30d", "period: 28d")
    text = edited("budget_percent: 10, for: 3h", "budget_percent: 10.72, for: 3h", text)
    tiers = parse_spec(text).slo("availability").tiers
    assert [13.44, 5.6, 2.8, 1.000533] == [t.factor for t in tiers]


def test_a_tier_burning_slower_than_the_period_is_refused() -> None:
    """10 % of a 28 d budget in 3 d is a burn rate of 0.93: the ticket would fire while
    the SLO is met (the trial's copied tiers). The message gives the least share."""
    with pytest.raises(CollectedSpecError) as raised:
        parse_edited("period: 30d", "period: 28d")
    assert str(raised.value) == (
        "alerts/slo.yaml: tiers.ticket-slow.budget_percent: 10 % of the 28d error budget in "
        "3d is a burn rate of 0.9333, below 1: the tier would fire while the budget lasts the "
        "whole period (the SLO met); set it to at least 10.72 (100 x 3d / 28d), or use a "
        "shorter long_window"
    )


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("30d", [(2, 14.4), (5, 6), (10, 3), (10, 1)]),
        ("28d", [(2, 13.44), (5, 5.6), (10, 2.8), (100 * 3 / 28, 1)]),
        ("2d", [(100 / 48, 1), (12.5, 1), (50, 1)]),
    ],
)
def test_default_tiers_never_burn_slower_than_the_period(
    period: str, expected: list[tuple[float, float]]
) -> None:
    """Without ``tiers:``, a share that would be a burn rate below 1 is raised to 1 (3d
    of 28d: 10.71 %), and a tier longer than the period (3d of 2d) is left out."""
    text = MINIMAL.replace("service: shop", f"service: shop\nperiod: {period}")
    tiers = parse_spec(text).slo("availability").tiers
    found = [(round(t.budget_percent, 6), round(t.factor, 6)) for t in tiers]
    assert found == [(round(share, 6), round(factor, 6)) for share, factor in expected]


def test_a_tier_switched_off_is_left_out() -> None:
    """ai-latency switches both page tiers off: only the tickets remain."""
    tiers = load_spec(SPEC_FILE).slo("ai-latency").tiers
    assert ["ticket-fast", "ticket-slow"] == [t.name for t in tiers]


def test_a_tier_severity_can_be_overridden_per_slo() -> None:
    """tiers: {page-slow: ticket} turns that tier into a ticket for one SLO."""
    spec = parse_edited('tiers: {page-fast: "off", page-slow: "off"}', "tiers: {page-slow: page}")
    assert ["page", "page", "ticket", "ticket"] == [
        t.severity for t in spec.slo("ai-latency").tiers
    ]


def test_selectors_carry_the_job_matcher() -> None:
    """Every selector is restricted to job="<job>", placed first."""
    spec = load_spec(SPEC_FILE)
    assert 'limoneide_requests_total{job="limoneide",status=~"5.."}' == (
        spec.slo("availability").sli.selectors()["errors"].promql()
    )
    histogram = spec.slo("ai-latency").sli.selectors()["histogram"]
    expected = 'limoneide_dependency_duration_seconds{job="limoneide",dependency="ai_api"}'
    assert expected == histogram.promql()


def test_ai_latency_counts_only_successful_calls_as_good() -> None:
    """ai-latency's good events are the fast calls with outcome="ok" (all calls count)."""
    selectors = load_spec(SPEC_FILE).slo("ai-latency").sli.selectors()
    expected = (
        'limoneide_dependency_duration_seconds{job="limoneide",dependency="ai_api",outcome="ok"}'
    )
    assert expected == selectors["good"].promql()


def test_good_defaults_to_the_whole_histogram() -> None:
    """A latency SLO without good counts every fast event as good (the latency SLO)."""
    selectors = load_spec(SPEC_FILE).slo("latency").sli.selectors()
    assert selectors["histogram"] == selectors["good"]


def test_a_minimal_spec_gets_every_default() -> None:
    """Only service and one SLO: job = service, namespace limoneide, 30d, default selectors."""
    spec = parse_spec(MINIMAL)
    slo = spec.slo("availability")
    assert ("shop", "limoneide", "30d", 'limoneide_requests_total{job="shop"}', 4) == (
        spec.job,
        spec.namespace,
        spec.period,
        slo.sli.selectors()["total"].promql(),
        len(slo.tiers),
    )


def test_error_budget_is_exact() -> None:
    """99.9 % leaves a budget of exactly 0.001 (no 0.0010000000000000009)."""
    assert 0.001 == load_spec(SPEC_FILE).slo("availability").error_budget


def test_runbook_and_dashboard_urls() -> None:
    """Each SLO links to <runbook_base_url>/<service>/<slo>.md and the service's SLO
    dashboard (uid dashboard_uid(service, "slos"))."""
    slo = load_spec(SPEC_FILE).slo("latency")
    assert (
        "https://github.com/limoneide/limone-obs/blob/main/alerts/runbooks/limoneide/latency.md",
        f"http://127.0.0.1:3000/d/{c.dashboard_uid('limoneide', 'slos')}",
    ) == (slo.runbook_url, slo.dashboard_url)


def test_extra_labels_and_annotations_pass_through() -> None:
    """labels: and annotations: of an SLO add to the service-wide labels."""
    text = edited(
        "    histogram: limoneide_request_duration_seconds\n",
        "    histogram: limoneide_request_duration_seconds\n"
        "    labels: {component: web}\n    annotations: {owner: perf-team}\n",
    )
    slo = parse_spec(text).slo("latency")
    expected = ({"component": "web", "team": "limoneide"}, {"owner": "perf-team"})
    assert expected == (dict(slo.labels), dict(slo.annotations))


def test_alertmanager_receivers_come_from_the_spec() -> None:
    """Both severities default to the webhook on 127.0.0.1:9095."""
    am = load_spec(SPEC_FILE).alertmanager
    urls = {sev: r.webhook_url for sev, r in am.receivers.items()}
    assert {
        "page": "http://127.0.0.1:9095/alerts",
        "ticket": "http://127.0.0.1:9095/alerts",
    } == urls


def test_the_model_is_frozen() -> None:
    """Slo is a frozen dataclass: later layers cannot change what was validated."""
    slo = load_spec(SPEC_FILE).slo("latency")
    with pytest.raises(AttributeError):
        slo.objective = 1  # type: ignore[misc]


def test_an_objective_written_as_a_ratio_asks_for_a_percentage() -> None:
    """objective: 0.999 is refused with "give a percentage" and the value it meant."""
    with pytest.raises(SpecError) as caught:
        parse_edited("objective: 99.9", "objective: 0.999")
    message = str(caught.value)
    assert (
        "slos[0] (availability).objective" in message,
        "give a percentage, e.g. 99.9" in message,
    ) == (True, True), message


def test_an_objective_of_1_asks_for_the_share_of_good_events() -> None:
    """objective: 1 (written for "errors under 1 %") was told "e.g. 100 for 1", and 100 is
    refused: the hint now gives the share of good events below 100."""
    with pytest.raises(SpecError) as caught:
        parse_edited("objective: 99.9", "objective: 1")
    message = str(caught.value)
    assert "e.g. 99 for at most 1 % bad" in message, message
    assert "100 for 1" not in message


def test_another_service_gets_its_own_dashboard_and_runbook_links() -> None:
    """service: billing links to /d/billing-slos and runbooks/billing/<slo>.md."""
    slo = parse_spec(MINIMAL.replace("service: shop", "service: billing")).slo("availability")
    assert (
        "https://github.com/limoneide/limone-obs/blob/main/alerts/runbooks/billing/availability.md",
        "http://127.0.0.1:3000/d/billing-slos",
    ) == (slo.runbook_url, slo.dashboard_url)


def _locations(text: str) -> list[str]:
    """The location of each error parse_spec raises at once for ``text``."""
    with pytest.raises(CollectedSpecError) as info:
        parse_spec(text, source="slo.yaml")
    return [error.location for error in info.value.errors]


def test_parse_spec_raises_every_independent_error() -> None:
    """Errors in two top-level fields and in two SLOs come out together, each located."""
    text = edited("service: limoneide\n", "service: ''\n")
    text = edited("    objective: 99.9\n", "    objective: 0.999\n", text)
    text = edited("period: 30d\n", "period: 1h\n", text)
    text = edited("    threshold_seconds: 2.5\n", "    threshold_seconds: 0.7\n", text)
    assert _locations(text) == [
        "slo.yaml: service",
        "slo.yaml: period",
        "slo.yaml: slos[0] (availability).objective",
        "slo.yaml: slos[1] (latency).threshold_seconds",
    ]


def test_a_single_error_reads_as_before() -> None:
    """With one problem, the raised error's text is that problem's ``location: message``."""
    with pytest.raises(SpecError) as info:
        parse_spec(edited("service: limoneide\n", "service: ''\n"), source="slo.yaml")
    assert str(info.value) == "slo.yaml: service: must be a non-empty string, found a string ''"


def test_errors_of_another_exporter_metric_than_total_is_refused() -> None:
    """Cache-lookup errors over requests: both the exporter's, not the same metric: refused
    at ``errors``, naming both selectors."""
    text = edited(
        'errors: limoneide_requests_total{status=~"5.."}',
        'errors: limoneide_cache_requests_total{result="error"}',
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="slo.yaml")
    error = info.value
    assert (
        "slo.yaml: slos[0] (availability).errors",
        True,
    ) == (error.location, "limoneide_cache_requests_total" in error.detail and
          "is not a part of total limoneide_requests_total" in error.detail)  # fmt: skip


def test_errors_without_totals_matchers_is_refused() -> None:
    """errors on total's metric must keep total's matchers: GET requests over all methods'
    5xx would count POST errors that total leaves out."""
    text = edited(
        "total: limoneide_requests_total\n", 'total: limoneide_requests_total{method="GET"}\n'
    )
    with pytest.raises(SpecError, match="with total's matchers and more"):
        parse_spec(text, source="slo.yaml")


def test_errors_of_the_users_own_counters_are_not_checked_against_total() -> None:
    """Outside the exporter's namespace the series are the service's own: another counter
    as errors is accepted (the docs say the rule is checked only for the exporter's)."""
    text = edited("    total: limoneide_requests_total\n", "    total: shop_orders_total\n")
    text = edited(
        'errors: limoneide_requests_total{status=~"5.."}',
        'errors: shop_orders_failed_total{reason="payment"}',
        text,
    )
    assert parse_spec(text).slos[0].name == "availability"


def _beacons_spec(errors: str, total: str = "limoneide_rum_beacons_total") -> str:
    """The shipped spec with the availability SLO counting RUM beacons instead."""
    text = edited("    total: limoneide_requests_total\n", f"    total: {total}\n")
    return edited('errors: limoneide_requests_total{status=~"5.."}', f"errors: {errors}", text)


@pytest.mark.parametrize(
    "errors",
    [
        'limoneide_rum_beacons_total{result=~"malformed|too_large|bad_page|rate_limited"}',
        'limoneide_rum_beacons_total{result!="accepted"}',
    ],
)
def test_errors_over_the_beacons_own_values_are_accepted(errors: str) -> None:
    """A regex over the beacons' result values: tried with the values the exporter writes
    for that series (the usual HTTP-ish values matched none of them)."""
    assert parse_spec(_beacons_spec(errors)).slos[0].name == "availability"


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        # A typo in a negative matcher selects every beacon: refused, the values named.
        ('limoneide_rum_beacons_total{result!="acceptd"}', "selects every series of total"),
        (
            'limoneide_rum_beacons_total{result=~"acceptd|malfromed"}',
            "matches no value the exporter writes for 'result'",
        ),
    ],
)
def test_errors_over_values_the_beacons_never_have_are_refused(errors: str, expected: str) -> None:
    """Only values the exporter writes count: a typo shows instead of passing."""
    with pytest.raises(SpecError, match=expected) as info:
        parse_spec(_beacons_spec(errors), source="slo.yaml")
    assert "accepted, malformed, too_large, bad_page, rate_limited" in str(info.value)


def test_two_errors_of_one_slos_kind_fields_are_both_reported() -> None:
    """A missing objective does not hide a bad stages list or quantile_alert of that SLO."""
    text = edited("    objective: 95\n", "", edited("stages: [1.0, 0.6]", "stages: [3]"))
    text = edited("quantile_alert: {", "quantile_alert: {window: 5m, ", text)
    assert _locations(text) == [
        "slo.yaml: slos[1] (latency).objective",
        "slo.yaml: slos[1] (latency).stages[0]",
        "slo.yaml: slos[1] (latency).quantile_alert.window",
    ]
