"""Alerting rules generated from a :class:`ServiceSpec` (pure; see :mod:`.rules`).

Every alert carries the labels ``severity``, ``slo``, ``slo_service`` (plus the spec's
extra labels) and the annotations ``summary``, ``description``, ``runbook_url`` (the SLO's
runbook page, anchored at the alert's section) and ``dashboard_url``. Annotations are
fixed text computed here, so promtool tests can expect them exactly.
"""

from __future__ import annotations

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
    job_matcher,
)
from limone_obs.alerts.rules import (
    Group,
    Rule,
    burn_threshold,
    number,
    slo_selector,
    total_rate,
)
from limone_obs.alerts.selectors import Selector

#: Window of the latency quantile alert's rate (the quantile of the last 5 minutes).
QUANTILE_WINDOW = "5m"


def percent(ratio: float) -> str:
    """A ratio as a short percentage for humans (0.0144 -> ``1.44 %``)."""
    return f"{ratio * 100:.4g} %"


def alert_labels(spec: ServiceSpec, slo: Slo, severity: str, **extra: str) -> dict[str, str]:
    """Labels of an alert of ``slo``: the spec's extra labels, then the fixed ones."""
    return {
        **slo.labels,
        c.LABEL_SEVERITY: severity,
        c.LABEL_SLO: slo.name,
        c.LABEL_SLO_SERVICE: spec.service,
        **extra,
    }


def alert_annotations(slo: Slo, alert: str, summary: str, description: str) -> dict[str, str]:
    """Annotations of the alert ``alert`` of ``slo``: extra ones, then the fixed four."""
    return {
        **slo.annotations,
        c.ANNOTATION_SUMMARY: summary,
        c.ANNOTATION_DESCRIPTION: description,
        c.ANNOTATION_RUNBOOK: f"{slo.runbook_url}#{alert.lower()}",
        c.ANNOTATION_DASHBOARD: slo.dashboard_url,
    }


def _alert(name: str, expr: str, for_: str, labels: dict[str, str], notes: dict[str, str]) -> Rule:
    return {"alert": name, "expr": expr, "for": for_, "labels": labels, "annotations": notes}


def _guard(spec: ServiceSpec, slo: Slo, window: str) -> str:
    """``and`` clause keeping the alert quiet below the SLO's minimum request rate."""
    if slo.min_rate <= 0:
        return ""
    return f"\nand on ()\n{total_rate(spec, slo, window)} >= {number(slo.min_rate)}"


def burn_alert(spec: ServiceSpec, slo: Slo, tier: BurnTier) -> Rule:
    """The alert of one burn tier: both windows above factor x budget, enough traffic."""
    name = c.slo_alert_name(slo.name, c.ALERT_SUFFIX_BURN)
    threshold, sel = number(burn_threshold(slo, tier)), slo_selector(spec, slo)
    expr = (
        f"{c.sli_error_ratio_rule(tier.long_window)}{sel} > {threshold}\n"
        f"and\n{c.sli_error_ratio_rule(tier.short_window)}{sel} > {threshold}"
        f"{_guard(spec, slo, tier.long_window)}"
    )
    exhaustion = _durations.humanize(spec.period_seconds / tier.factor)
    description = (
        f"{slo.description} The error ratio is above {percent(burn_threshold(slo, tier))} over "
        f"both the last {tier.long_window} and {tier.short_window}: {tier.factor:g} times the "
        f"{percent(slo.error_budget)} that the {slo.objective:g} % objective allows. At this "
        f"rate the {spec.period} error budget is spent in {exhaustion}."
    )
    summary = f"{spec.service} {slo.name}: error budget burning {tier.factor:g}x too fast"
    windows = {c.LABEL_LONG_WINDOW: tier.long_window, c.LABEL_SHORT_WINDOW: tier.short_window}
    labels = alert_labels(spec, slo, tier.severity, **windows)
    return _alert(name, expr, tier.for_, labels, alert_annotations(slo, name, summary, description))


def threshold_alert(spec: ServiceSpec, slo: Slo) -> Rule:
    """The error ratio over ``window`` above ``100 - objective`` percent, enough traffic."""
    assert slo.window is not None
    assert slo.for_ is not None
    assert slo.severity is not None
    name = c.slo_alert_name(slo.name, c.ALERT_SUFFIX_THRESHOLD)
    limit = slo.error_budget
    expr = (
        f"{c.sli_error_ratio_rule(slo.window)}{slo_selector(spec, slo)} > {number(limit)}"
        f"{_guard(spec, slo, slo.window)}"
    )
    summary = f"{spec.service} {slo.name}: error ratio above {percent(limit)}"
    description = (
        f"{slo.description} More than {percent(limit)} of events failed over the last "
        f"{slo.window}, for {slo.for_} (objective {slo.objective:g} %)."
    )
    notes = alert_annotations(slo, name, summary, description)
    return _alert(name, expr, slo.for_, alert_labels(spec, slo, slo.severity), notes)


def quantile_alert(spec: ServiceSpec, slo: Slo) -> Rule:
    """A latency SLO's quantile (p95 for 95 %) over 5m above its threshold, enough traffic."""
    assert slo.quantile_alert is not None
    assert slo.histogram is not None
    assert slo.objective is not None
    assert slo.threshold_seconds is not None
    name = c.slo_alert_name(slo.name, c.quantile_suffix(slo.objective))
    buckets = slo.histogram.with_metric(f"{slo.histogram.metric}_bucket").promql()
    quantile = f"histogram_quantile({number(slo.target)}, sum by ({c.LABEL_LE}) "
    expr = (
        f"{quantile}(rate({buckets}[{QUANTILE_WINDOW}])))\n> {number(slo.threshold_seconds)}"
        f"{_guard(spec, slo, QUANTILE_WINDOW)}"
    )
    rank = c.quantile_suffix(slo.objective).removesuffix(c.ALERT_SUFFIX_THRESHOLD).lower()
    summary = f"{spec.service} {slo.name}: {rank} above {slo.threshold_seconds:g} s"
    description = (
        f"{slo.description} The {rank} over the last {QUANTILE_WINDOW} has been above "
        f"{slo.threshold_seconds:g} s for {slo.quantile_alert.for_}."
    )
    notes = alert_annotations(slo, name, summary, description)
    labels = alert_labels(spec, slo, slo.quantile_alert.severity)
    return _alert(name, expr, slo.quantile_alert.for_, labels, notes)


def target_alerts(spec: ServiceSpec, slo: Slo) -> list[Rule]:
    """``TargetDown`` (``up == 0``), ``TargetAbsent`` (no ``up`` series for the job) and
    ``MetricsAbsent`` (per instance: scraped, but no ``<namespace>_build_info``: the
    exporter is missing there, so the SLOs miss its traffic; a ticket, users are still
    served). MetricsAbsent matches on ``instance``, so one instance of a fleet without the
    exporter fires although the others have it."""
    assert slo.for_ is not None
    assert slo.severity is not None
    assert slo.absent_for is not None
    up = Selector(c.SERIES_UP, (job_matcher(spec.job),)).promql()
    info = Selector(spec.names.build_info, (job_matcher(spec.job),)).promql()
    return [
        _alert(
            c.ALERT_TARGET_DOWN,
            f"{up} == 0",
            slo.for_,
            alert_labels(spec, slo, slo.severity),
            _target_notes(spec, slo, c.ALERT_TARGET_DOWN),
        ),
        _alert(
            c.ALERT_TARGET_ABSENT,
            f"absent({up})",
            slo.absent_for,
            alert_labels(spec, slo, slo.severity),
            _target_notes(spec, slo, c.ALERT_TARGET_ABSENT),
        ),
        _alert(
            c.ALERT_METRICS_ABSENT,
            f"{up} == 1\nunless on ({c.LABEL_INSTANCE})\n{info}",
            slo.absent_for,
            alert_labels(spec, slo, c.SEVERITY_TICKET),
            _target_notes(spec, slo, c.ALERT_METRICS_ABSENT),
        ),
    ]


def _target_notes(spec: ServiceSpec, slo: Slo, alert: str) -> dict[str, str]:
    texts = {
        c.ALERT_TARGET_DOWN: (
            f"{spec.service}: scrape target {{{{ $labels.instance }}}} is down",
            f"Prometheus failed to scrape {{{{ $labels.instance }}}} of job {spec.job} for "
            f"{slo.for_}: the process is down, hung, or unreachable.",
        ),
        c.ALERT_TARGET_ABSENT: (
            f"{spec.service}: no scrape target of job {spec.job}",
            f"Prometheus has had no up series for job {spec.job} for {slo.absent_for}: the "
            "target left service discovery or the scrape config.",
        ),
        c.ALERT_METRICS_ABSENT: (
            f"{spec.service}: {{{{ $labels.instance }}}} exposes no limone-obs metrics",
            f"Instance {{{{ $labels.instance }}}} of job {spec.job} is scraped but has had no "
            f"{spec.names.build_info} series for {slo.absent_for}: the exporter is not "
            "installed there or its namespace differs, so the SLO alerts miss its traffic.",
        ),
    }
    summary, description = texts[alert]
    return alert_annotations(slo, alert, summary, f"{slo.description} {description}")


def alerts(spec: ServiceSpec, slo: Slo) -> list[Rule]:
    """Every alert of ``slo``, burn tiers in spec order first."""
    if slo.kind == KIND_UP:
        return target_alerts(spec, slo)
    if slo.kind == KIND_THRESHOLD:
        return [threshold_alert(spec, slo)]
    found = [burn_alert(spec, slo, tier) for tier in slo.tiers]
    if slo.kind == KIND_LATENCY and slo.quantile_alert is not None:
        found.append(quantile_alert(spec, slo))
    assert slo.kind in BUDGET_KINDS
    return found


def alert_groups(spec: ServiceSpec) -> list[Group]:
    """Every alerting group of the spec (``slo-alerts-<slo>``), in SLO order."""
    return [{"name": f"slo-alerts-{s.name}", "rules": alerts(spec, s)} for s in spec.slos]


def alert_names(spec: ServiceSpec, slo: Slo) -> list[str]:
    """The distinct alert names of ``slo``, in rule order (each has a runbook section)."""
    return list(dict.fromkeys(rule["alert"] for rule in alerts(spec, slo)))
