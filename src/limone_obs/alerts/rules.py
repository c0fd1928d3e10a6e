"""Prometheus recording and alerting rules generated from a :class:`ServiceSpec` (pure).

Every function returns plain data (lists and dicts) in the shape of a Prometheus rule file;
:mod:`limone_obs.alerts.render` writes it. Recording rules of a budget SLO (``ratio``,
``latency``) come in two groups, so the page tiers never wait for the long windows:

- ``slo-sli-<slo>`` (the global evaluation interval), from the raw series:
  ``slo:sli_error:ratio_rate<w>{slo_service, slo}`` for every window shorter than
  :data:`LONG_WINDOW` (a missing error series counts as 0, a missing total gives no sample:
  no traffic, no SLI); ``slo:sli_bad_events:rate5m`` and ``slo:sli_events:rate5m`` (bad
  and all events per second over 5m, bad 0 when its series is missing);
  ``slo:objective:ratio``, ``slo:error_budget:ratio``, ``slo:current_burn_rate:ratio``
  (5m ratio / budget);
- ``slo-sli-<slo>-long`` (``interval:`` :data:`LONG_GROUP_INTERVAL`), from the recorded
  5m rates only: ``slo:sli_error:ratio_rate<w>`` for the windows from :data:`LONG_WINDOW`
  on (1d, 3d), ``slo:period_sli_error:ratio``, ``slo:period_burn_rate:ratio``,
  ``slo:period_error_budget_remaining:ratio`` (1 = untouched, 0 = spent, < 0 =
  overspent). Each is ``sum_over_time(bad[w]) / sum_over_time(all[w])``: request-weighted
  (every request counts the same, never an average of short ratios) and reading one
  recorded series per SLO instead of every raw series over 30 days.

A threshold SLO records its one window's ratio; an ``up`` SLO records nothing. Alerts
(group ``slo-alerts-<slo>``): one burn-rate rule per enabled tier, the threshold alert, the
latency quantile alert, ``TargetDown``, ``TargetAbsent`` and ``MetricsAbsent``.
"""

from __future__ import annotations

from typing import Any, Final

from limone_obs import conventions as c
from limone_obs.alerts import _durations
from limone_obs.alerts.model import (
    BUDGET_KINDS,
    KIND_LATENCY,
    KIND_THRESHOLD,
    KIND_UP,
    BurnTier,
    ServiceSpec,
    Slo,
)
from limone_obs.alerts.selectors import Matcher

Rule = dict[str, Any]
Group = dict[str, Any]

#: Windows at least this long are computed from the recorded 5m rates, in the slow group.
LONG_WINDOW: Final = "1d"
#: Evaluation interval of the long-window groups (their SLIs move slowly anyway).
LONG_GROUP_INTERVAL: Final = "1m"
#: The window of the recorded event rates the long windows are summed from.
RATE_WINDOW: Final = "5m"


def number(value: float) -> str:
    """A float as PromQL text, rounded so promtool's exact comparisons hold (0.0144)."""
    return f"{round(value, 10):.10g}"


def le_matcher(threshold: float) -> Matcher:
    """The ``le`` matcher of a bucket boundary, for Prometheus 2 (``1.0``) and 3 (``1``)."""
    op, value = c.le_match(threshold)
    return Matcher(c.LABEL_LE, op, value)


def slo_selector(spec: ServiceSpec, slo: Slo) -> str:
    """Matchers selecting one SLO's recorded series: ``{slo="x",slo_service="y"}``."""
    return f'{{{c.LABEL_SLO}="{slo.name}",{c.LABEL_SLO_SERVICE}="{spec.service}"}}'


def slo_labels(spec: ServiceSpec, slo: Slo) -> dict[str, str]:
    """The labels every recorded series of ``slo`` carries."""
    return {c.LABEL_SLO: slo.name, c.LABEL_SLO_SERVICE: spec.service}


def _rates(slo: Slo, window: str) -> tuple[str, str]:
    """PromQL (bad events, all events) per second over ``window``, from the raw series."""
    if slo.kind == KIND_LATENCY:
        assert slo.histogram is not None
        assert slo.good is not None
        assert slo.threshold_seconds is not None
        count = slo.histogram.with_metric(f"{slo.histogram.metric}_count").promql()
        # Only good events count as fast: a call failing within the threshold is bad.
        fast = slo.good.with_metric(f"{slo.good.metric}_bucket")
        fast_sel = fast.promql(le_matcher(slo.threshold_seconds))
        total = f"sum(rate({count}[{window}]))"
        return f"({total} - sum(rate({fast_sel}[{window}])))", total
    assert slo.errors is not None
    assert slo.total is not None
    bad = f"(sum(rate({slo.errors.promql()}[{window}])) or vector(0))"
    return bad, f"sum(rate({slo.total.promql()}[{window}]))"


def is_long(slo: Slo, window: str) -> bool:
    """True if ``slo``'s SLI over ``window`` comes from the recorded 5m rates (slow group)."""
    return slo.kind in BUDGET_KINDS and _durations.seconds(window) >= _durations.seconds(
        LONG_WINDOW
    )


def total_rate(spec: ServiceSpec, slo: Slo, window: str) -> str:
    """PromQL for the SLO's events per second over ``window`` (the minimum-rate guard);
    a long window averages the recorded 5m rate instead of reading every raw series."""
    if is_long(slo, window):
        return f"avg_over_time({c.RULE_EVENTS_RATE5M}{slo_selector(spec, slo)}[{window}])"
    return _rates(slo, window)[1]


def error_ratio_expr(slo: Slo, window: str) -> str:
    """PromQL for the SLO's error ratio over ``window``."""
    bad, total = _rates(slo, window)
    return f"{bad}\n/\n{total}"


def slo_windows(slo: Slo) -> list[str]:
    """Windows recorded for ``slo``: SLI_WINDOWS plus its tier windows, shortest first."""
    if slo.kind == KIND_THRESHOLD:
        assert slo.window is not None
        return [slo.window]
    found = set(c.SLI_WINDOWS)
    found.update(w for t in slo.tiers for w in (t.long_window, t.short_window))
    return sorted(found, key=_durations.seconds)


def _record(name: str, expr: str, labels: dict[str, str]) -> Rule:
    return {"record": name, "expr": expr, "labels": labels}


def long_ratio_expr(spec: ServiceSpec, slo: Slo, window: str) -> str:
    """PromQL for the error ratio over ``window`` from the recorded 5m rates, weighted by
    requests: the sum of bad rates over the sum of all rates (equal sample spacing)."""
    sel = slo_selector(spec, slo)
    return (
        f"sum_over_time({c.RULE_BAD_EVENTS_RATE5M}{sel}[{window}])\n/\n"
        f"sum_over_time({c.RULE_EVENTS_RATE5M}{sel}[{window}])"
    )


def _fast_budget_records(spec: ServiceSpec, slo: Slo) -> list[Rule]:
    labels, sel = slo_labels(spec, slo), slo_selector(spec, slo)
    bad, total = _rates(slo, RATE_WINDOW)
    on = f"on ({c.LABEL_SLO}, {c.LABEL_SLO_SERVICE})"
    return [
        _record(c.RULE_BAD_EVENTS_RATE5M, bad, labels),
        _record(c.RULE_EVENTS_RATE5M, total, labels),
        _record(c.RULE_ERROR_BUDGET, f"vector({number(slo.error_budget)})", labels),
        _record(
            c.RULE_CURRENT_BURN_RATE,
            f"{c.sli_error_ratio_rule(RATE_WINDOW)}{sel}\n/ {on}\n{c.RULE_ERROR_BUDGET}{sel}",
            labels,
        ),
    ]


def long_group(spec: ServiceSpec, slo: Slo) -> Group:
    """The slow group of a budget SLO: long-window SLIs, the period SLI and budget."""
    labels, sel = slo_labels(spec, slo), slo_selector(spec, slo)
    on = f"on ({c.LABEL_SLO}, {c.LABEL_SLO_SERVICE})"
    windows = [w for w in slo_windows(slo) if is_long(slo, w)]
    rules = [
        _record(c.sli_error_ratio_rule(w), long_ratio_expr(spec, slo, w), labels) for w in windows
    ]
    rules += [
        _record(c.RULE_PERIOD_SLI_ERROR, long_ratio_expr(spec, slo, spec.period), labels),
        _record(
            c.RULE_PERIOD_BURN_RATE,
            f"{c.RULE_PERIOD_SLI_ERROR}{sel}\n/ {on}\n{c.RULE_ERROR_BUDGET}{sel}",
            labels,
        ),
        _record(c.RULE_PERIOD_BUDGET_REMAINING, f"1 - {c.RULE_PERIOD_BURN_RATE}{sel}", labels),
    ]
    return {"name": f"slo-sli-{slo.name}-long", "interval": LONG_GROUP_INTERVAL, "rules": rules}


def slo_recording_groups(spec: ServiceSpec, slo: Slo) -> list[Group]:
    """The recording groups of ``slo``: the fast one, then (budget SLOs) the long one;
    none for an ``up`` SLO, which records nothing."""
    if slo.kind == KIND_UP:
        return []
    labels = slo_labels(spec, slo)
    rules = [
        _record(c.sli_error_ratio_rule(w), error_ratio_expr(slo, w), labels)
        for w in slo_windows(slo)
        if not is_long(slo, w)
    ]
    rules.append(_record(c.RULE_OBJECTIVE, f"vector({number(slo.target)})", labels))
    if slo.kind not in BUDGET_KINDS:
        return [{"name": f"slo-sli-{slo.name}", "rules": rules}]
    rules.extend(_fast_budget_records(spec, slo))
    return [{"name": f"slo-sli-{slo.name}", "rules": rules}, long_group(spec, slo)]


def recording_groups(spec: ServiceSpec) -> list[Group]:
    """Every recording group of the spec, in SLO order."""
    return [group for slo in spec.slos for group in slo_recording_groups(spec, slo)]


def burn_threshold(slo: Slo, tier: BurnTier) -> float:
    """The error ratio above which ``tier`` fires: factor x error budget."""
    return round(tier.factor * slo.error_budget, 12)
