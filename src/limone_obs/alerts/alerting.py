"""Alerting rules generated from a :class:`ServiceSpec` (pure; see :mod:`.rules`).

Every alert carries the labels ``severity``, ``slo``, ``slo_service`` (plus the spec's
extra labels) and the annotations ``summary``, ``description``, ``runbook_url`` (the SLO's
runbook page, anchored at the alert's section) and ``dashboard_url``. Annotations are
fixed text, so promtool tests can expect them exactly. Each kind builds its own rules
(:meth:`~limone_obs.alerts.model.Sli.alerts`) from the helpers here.
"""

from __future__ import annotations

from limone_obs import conventions as c
from limone_obs.alerts import health
from limone_obs.alerts.model import Group, Rule, ServiceSpec, Slo


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


def make_alert(
    name: str, expr: str, for_: str, labels: dict[str, str], notes: dict[str, str]
) -> Rule:
    """One alerting rule."""
    return {"alert": name, "expr": expr, "for": for_, "labels": labels, "annotations": notes}


def alerts(spec: ServiceSpec, slo: Slo) -> list[Rule]:
    """Every alert of ``slo``, as its kind builds them (burn tiers in spec order first)."""
    return slo.sli.alerts(spec, slo)


def alert_groups(spec: ServiceSpec) -> list[Group]:
    """Every alerting group of the spec (``slo-alerts-<slo>``) in SLO order, then the
    kit-health tickets (:mod:`.health`)."""
    groups = [{"name": f"slo-alerts-{s.name}", "rules": alerts(spec, s)} for s in spec.slos]
    return groups + health.groups(spec)


def alert_names(spec: ServiceSpec, slo: Slo) -> list[str]:
    """The distinct alert names of ``slo``, in rule order (each has a runbook section)."""
    return list(dict.fromkeys(rule["alert"] for rule in alerts(spec, slo)))
