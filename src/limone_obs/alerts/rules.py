"""Prometheus recording and alerting rules generated from a :class:`ServiceSpec` (pure).

Every function returns plain data (lists and dicts) in the shape of a Prometheus rule file;
:mod:`limone_obs.alerts.render` writes it. Recording rules (group ``slo-sli-<slo>``):

- ``slo:sli_error:ratio_rate<w>{slo_service, slo}``: the error ratio over each window of
  :data:`~limone_obs.conventions.SLI_WINDOWS` (and every tier window); a missing error
  series counts as 0, a missing total gives no sample (no traffic, no SLI);
- ``slo:period_sli_error:ratio``: the period's error ratio, request-weighted: increase of
  errors over increase of all events, never an average of short ratios;
- ``slo:objective:ratio``, ``slo:error_budget:ratio``, ``slo:current_burn_rate:ratio``
  (5m ratio / budget), ``slo:period_burn_rate:ratio``,
  ``slo:period_error_budget_remaining:ratio`` (1 = untouched, 0 = spent, < 0 = overspent).

Alerts (group ``slo-alerts-<slo>``): one burn-rate rule per enabled tier, the threshold
alert, the latency quantile alert, ``TargetDown`` and ``TargetAbsent``.
"""

from __future__ import annotations

from typing import Any

from limone_obs import conventions as c
from limone_obs.alerts import _durations
from limone_obs.alerts.model import (
    KIND_LATENCY,
    KIND_RATIO,
    KIND_THRESHOLD,
    KIND_UP,
    BurnTier,
    ServiceSpec,
    Slo,
)
from limone_obs.alerts.selectors import Matcher

Rule = dict[str, Any]
Group = dict[str, Any]


def number(value: float) -> str:
    """A float as PromQL text, rounded so promtool's exact comparisons hold (0.0144)."""
    return f"{round(value, 10):.10g}"


def le_matcher(threshold: float) -> Matcher:
    """The ``le`` matcher of a bucket boundary, for Prometheus 2 (``1.0``) and 3 (``1``)."""
    if float(threshold).is_integer():
        return Matcher(c.LABEL_LE, "=~", f"{int(threshold)}(\\.0)?")
    return Matcher(c.LABEL_LE, "=", repr(float(threshold)))


def slo_selector(spec: ServiceSpec, slo: Slo) -> str:
    """Matchers selecting one SLO's recorded series: ``{slo="x",slo_service="y"}``."""
    return f'{{{c.LABEL_SLO}="{slo.name}",{c.LABEL_SLO_SERVICE}="{spec.service}"}}'


def slo_labels(spec: ServiceSpec, slo: Slo) -> dict[str, str]:
    """The labels every recorded series of ``slo`` carries."""
    return {c.LABEL_SLO: slo.name, c.LABEL_SLO_SERVICE: spec.service}


def _rates(slo: Slo, window: str, func: str = "rate") -> tuple[str, str]:
    """PromQL (bad events, all events) per second over ``window`` (``func`` rate|increase)."""
    if slo.kind == KIND_LATENCY:
        assert slo.histogram is not None
        assert slo.threshold_seconds is not None
        count = slo.histogram.with_metric(f"{slo.histogram.metric}_count").promql()
        fast = slo.histogram.with_metric(f"{slo.histogram.metric}_bucket")
        fast_sel = fast.promql(le_matcher(slo.threshold_seconds))
        total = f"sum({func}({count}[{window}]))"
        return f"({total} - sum({func}({fast_sel}[{window}])))", total
    assert slo.errors is not None
    assert slo.total is not None
    bad = f"(sum({func}({slo.errors.promql()}[{window}])) or vector(0))"
    return bad, f"sum({func}({slo.total.promql()}[{window}]))"


def total_rate(slo: Slo, window: str) -> str:
    """PromQL for the SLO's events per second over ``window`` (the minimum-rate guard)."""
    return _rates(slo, window)[1]


def error_ratio_expr(slo: Slo, window: str, func: str = "rate") -> str:
    """PromQL for the SLO's error ratio over ``window``."""
    bad, total = _rates(slo, window, func)
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


def _budget_records(spec: ServiceSpec, slo: Slo) -> list[Rule]:
    labels, sel = slo_labels(spec, slo), slo_selector(spec, slo)
    on = f"on ({c.LABEL_SLO}, {c.LABEL_SLO_SERVICE})"
    return [
        _record(c.RULE_PERIOD_SLI_ERROR, error_ratio_expr(slo, spec.period, "increase"), labels),
        _record(c.RULE_ERROR_BUDGET, f"vector({number(slo.error_budget)})", labels),
        _record(
            c.RULE_CURRENT_BURN_RATE,
            f"{c.sli_error_ratio_rule('5m')}{sel}\n/ {on}\n{c.RULE_ERROR_BUDGET}{sel}",
            labels,
        ),
        _record(
            c.RULE_PERIOD_BURN_RATE,
            f"{c.RULE_PERIOD_SLI_ERROR}{sel}\n/ {on}\n{c.RULE_ERROR_BUDGET}{sel}",
            labels,
        ),
        _record(c.RULE_PERIOD_BUDGET_REMAINING, f"1 - {c.RULE_PERIOD_BURN_RATE}{sel}", labels),
    ]


def recording_group(spec: ServiceSpec, slo: Slo) -> Group | None:
    """The recording rules of ``slo`` (None for an ``up`` SLO, which records nothing)."""
    if slo.kind == KIND_UP:
        return None
    labels = slo_labels(spec, slo)
    rules = [
        _record(c.sli_error_ratio_rule(w), error_ratio_expr(slo, w), labels)
        for w in slo_windows(slo)
    ]
    rules.append(_record(c.RULE_OBJECTIVE, f"vector({number(slo.target)})", labels))
    if slo.kind in (KIND_RATIO, KIND_LATENCY):
        rules.extend(_budget_records(spec, slo))
    return {"name": f"slo-sli-{slo.name}", "rules": rules}


def recording_groups(spec: ServiceSpec) -> list[Group]:
    """Every recording group of the spec, in SLO order."""
    groups = (recording_group(spec, slo) for slo in spec.slos)
    return [g for g in groups if g is not None]


def burn_threshold(slo: Slo, tier: BurnTier) -> float:
    """The error ratio above which ``tier`` fires: factor x error budget."""
    return round(tier.factor * slo.error_budget, 12)
