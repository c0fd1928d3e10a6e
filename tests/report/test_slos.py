"""limone_obs.report.slos: what the report reads from the SLO spec (the roadmap, and
how each SLO's row is read from what its recording rules record)."""

from __future__ import annotations

from limone_obs import conventions as c
from limone_obs.alerts.spec import load_spec, parse_spec
from limone_obs.report.model import DEFAULT_ERROR_LIMITS
from limone_obs.report.queries import slo_lowest
from limone_obs.report.slos import (
    BASIS_RAW,
    ROADMAP_THRESHOLDS,
    Read,
    Roadmap,
    SloPlan,
    basis_lowest,
    error_limits,
    plans,
    roadmap,
    row,
)
from tests.alerts.helpers import edited
from tests.support import ROOT

SPEC = load_spec(ROOT / "alerts" / "slo.yaml")


def test_roadmap_is_the_request_latency_slos() -> None:
    """The shipped spec: the latency SLO's committed 2.5 s, then its stages 1 s and 0.6 s
    (not ai-latency, whose histogram is another)."""
    assert Roadmap((2.5, 1.0, 0.6), "latency") == roadmap(SPEC, SPEC.namespace)


def test_roadmap_of_a_scoped_slo_carries_its_matchers_without_the_job() -> None:
    """A latency SLO on /invoices only: its shares are of those requests (good: within
    the threshold among them), the job's matcher left to the report's own."""
    scoped = 'histogram: limoneide_request_duration_seconds{endpoint=~"/invoices/.*"}\n'
    spec = parse_spec(edited("histogram: limoneide_request_duration_seconds\n", scoped))
    got = roadmap(spec, spec.namespace)
    matchers = ('endpoint=~"/invoices/.*"',)
    assert Roadmap((2.5, 1.0, 0.6), "latency", matchers, matchers) == got


def test_roadmap_without_a_matching_slo_is_the_seeds() -> None:
    """No spec, or no SLO on the namespace's request histogram: the seed's roadmap."""
    assert Roadmap(ROADMAP_THRESHOLDS, None) == roadmap(None, "limoneide")
    assert Roadmap(ROADMAP_THRESHOLDS, None) == roadmap(SPEC, "shop")


def test_error_limits_are_the_budgets_of_the_slos_on_the_5xx_share() -> None:
    """The shipped spec: the errors SLO's 1 % (threshold kind) and the availability SLO's
    0.1 % (ratio kind), largest first, each named."""
    assert ((0.01, "1 %: errors SLO"), (0.001, "0.1 %: availability SLO")) == error_limits(
        SPEC, SPEC.namespace
    )


def test_error_limits_follow_the_objective_and_skip_narrower_slis() -> None:
    """Another objective moves its line; an SLI narrowed to some endpoints is not the
    chart's share of all requests and draws none; nothing left: the seed's 1 %."""
    text = (ROOT / "alerts" / "slo.yaml").read_text()
    assert "objective: 99.9\n" in text
    assert 'errors: limoneide_requests_total{status=~"5.."}\n    window: 5m' in text
    changed = text.replace("objective: 99.9\n", "objective: 99.5\n", 1).replace(
        'errors: limoneide_requests_total{status=~"5.."}\n    window: 5m',
        'errors: limoneide_requests_total{status=~"5..",endpoint="/api"}\n    window: 5m',
    )
    assert ((0.005, "0.5 %: availability SLO"),) == error_limits(parse_spec(changed), "limoneide")
    assert DEFAULT_ERROR_LIMITS == error_limits(None, "limoneide")
    assert DEFAULT_ERROR_LIMITS == error_limits(SPEC, "shop")


def plan(name: str) -> SloPlan:
    return next(p for p in plans(SPEC) if p.name == name)


def test_every_slo_of_the_spec_gets_a_plan_in_its_order() -> None:
    """The table lists every SLO of the spec (the up SLO too), then the names only
    Prometheus knows (rules or alerts of another spec), sorted."""
    names = [slo.name for slo in SPEC.slos]
    assert names == [p.name for p in plans(SPEC)]
    assert [*names, "other"] == [p.name for p in plans(SPEC, ["other", "availability", ""])]


def test_plans_follow_what_the_rules_record() -> None:
    """A budget SLO records event rates (request-weighted SLI); the threshold SLO only its
    5m error ratio; the up SLO nothing (its SLI is status's, from up)."""
    assert plan("availability").weighted
    assert plan("availability").records(c.RULE_PERIOD_BUDGET_REMAINING)
    errors = plan("errors")
    assert (False, "5m") == (errors.weighted, errors.ratio_window)
    assert not errors.records(c.RULE_PERIOD_BUDGET_REMAINING)
    up = plan("up")
    assert (frozenset(), None, None) == (up.recorded, up.objective, up.ratio_window)
    assert 'avg(up{job="limoneide"})' == up.raw_sli


def test_threshold_row_says_how_its_sli_was_read_and_why_it_has_no_budget() -> None:
    """errors: the lowest 5m SLI, a note saying so, 'no budget (threshold SLO)'."""
    read = Read(0.99, (0.985, basis_lowest("5m")), None, None, ("ErrorsHigh (page)",))
    got = row(plan("errors"), read, baseline=True)
    assert (0.99, 0.985, None, "lowest 5m") == (got.objective, got.sli_now, got.sli_then,
                                                 got.basis)  # fmt: skip
    assert {"sli_then": "no events in the baseline window",
            "budget_left": "no budget (threshold SLO)"} == got.why  # fmt: skip
    assert "lowest 5m value in the window" in got.note


def test_a_threshold_slo_found_only_in_prometheus_says_it_has_no_budget() -> None:
    """Without a spec: an SLO whose SLI came from its recorded error ratio alone (no event
    rates) is a threshold SLO's rules, so its budget cell says there is none; one read
    from event rates keeps "not recorded at the window's end"."""
    (other,) = plans(None, ["other"])
    threshold = Read(0.99, (0.985, basis_lowest("5m")), None, None, ())
    budget = Read(0.999, (0.9995, ""), None, None, ())
    reasons = [row(other, read, baseline=False).why["budget_left"] for read in (threshold, budget)]
    assert [
        "no budget (only its error ratio is recorded: a threshold SLO)",
        "not recorded at the window's end",
    ] == reasons


def test_up_row_has_no_objective_nor_budget_and_says_so() -> None:
    """up: no objective, no budget (said as such); its SLI is the mean of status's."""
    got = row(plan("up"), Read(None, (1.0, BASIS_RAW), None, None, ()), baseline=False)
    assert {"objective": "none (up SLO)", "sli_then": "no baseline",
            "budget_left": "no budget (up SLO)"} == got.why  # fmt: skip
    assert 'mean of avg(up{job="limoneide"})' in got.note


def test_rules_missing_from_prometheus_are_named() -> None:
    """A spec SLO whose recorded objective Prometheus lacks: its rules are not loaded. A
    budget SLO's SLI is counted from the raw series, rules or not: without one, it had no
    events; a threshold SLO's is read from its rules."""
    got = row(plan("availability"), Read(None, None, None, None, ()), baseline=True)
    assert 0.999 == got.objective  # the spec's
    assert {
        "sli_now": "no events in the window", "sli_then": "no events in the baseline window",
        "budget_left": "rules not loaded in Prometheus",
    } == got.why  # fmt: skip
    errors = row(plan("errors"), Read(None, None, None, None, ()), baseline=True)
    assert "rules not loaded in Prometheus" == errors.why["sli_now"]


def test_an_slo_whose_rules_are_not_loaded_says_its_alerts_could_not_fire() -> None:
    """A new SLO added to the spec, its rules not loaded: its SLI is counted from the raw
    series as any, but "alerts fired: none" would read as a quiet SLO: the note under the
    table says none of its alerts could fire, and what to do."""
    got = row(plan("availability"), Read(None, (0.917, ""), None, -15.5, ()), baseline=False)
    assert (0.917, -15.5, ()) == (got.sli_now, got.budget_left, got.fired)
    assert got.note.startswith("availability: Prometheus has none of its rules")
    assert "none of its alerts could fire" in got.note
    loaded = row(plan("availability"), Read(0.999, (0.917, ""), None, -15.5, ()), baseline=False)
    assert "none of its rules" not in loaded.note


def test_the_sli_of_a_window_reads_the_reports_job() -> None:
    """A budget SLO's SLI over a window is counted from the spec's selectors, with the
    job the report reads (``--job``) in place of the spec's; other kinds have none."""
    (availability, *_) = [p for p in plans(SPEC, job="shop-api") if p.name == "availability"]
    assert availability.window_sli is not None
    expr = availability.window_sli("360s")
    assert 'job="shop-api"' in expr
    assert 'job="limoneide"' not in expr
    assert "[360s]" in expr
    assert (None, None) == (plan("errors").window_sli, plan("up").window_sli)
    own = plan("availability").window_sli
    assert own is not None
    assert 'job="limoneide"' in own("60s")


def test_the_lowest_ratio_leaves_out_values_reaching_before_the_window() -> None:
    """A threshold SLO's lowest 5m ratio over a 10-minute window reads the ratios from 5
    minutes into it on (a window after an incident read the incident's); a window of 5
    minutes or less has none such and reads its whole span."""
    assert "[300s]" in slo_lowest("shop", "errors", "5m", 600)
    assert "[240s]" in slo_lowest("shop", "errors", "5m", 240)
    assert "[300s]" in slo_lowest("shop", "errors", "5m", 300)
