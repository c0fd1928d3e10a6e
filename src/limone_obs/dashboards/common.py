"""What several dashboards share: variables, SLO lookups, SLO queries, thresholds."""

from __future__ import annotations

from limone_obs import conventions as c
from limone_obs.dashboards import _grafana as gf
from limone_obs.dashboards.queries import Queries, slo_matchers
from limone_obs.dashboards.slo_inputs import (
    KIND_LATENCY,
    KIND_RATIO,
    KIND_THRESHOLD,
    ServiceView,
    SloView,
)

#: Latency lines drawn on latency panels: orange at the 0.6 s target, red at 1 s.
LATENCY_STEPS: gf.Steps = (
    ("green", None),
    ("orange", min(c.SLO_LATENCY_THRESHOLDS)),
    ("red", max(c.SLO_LATENCY_THRESHOLDS)),
)
#: Error ratio limit when the spec has no ``errors`` SLO (1 %, the mission's).
DEFAULT_ERROR_LIMIT = 0.01
PROCESS_NOTE = (
    " Under gunicorn (multiprocess mode): the master and every live worker, summed; CPU "
    "and GC include retired workers."
)


def variables(queries: Queries, *, endpoint: bool = False) -> list[object]:
    """``$datasource``, ``$job``, ``$instance`` (multi) and optionally ``$endpoint``."""
    series = queries.names.requests_total
    job_filter = f'{c.LABEL_JOB}="${c.VAR_JOB}"'
    out: list[object] = [
        gf.datasource_variable(
            c.VAR_DATASOURCE,
            c.DATASOURCE_TYPE_PROMETHEUS,
            "Prometheus",
            c.DATASOURCE_UID_PROMETHEUS,
        ),
        gf.query_variable(
            c.VAR_JOB,
            f"label_values({series}, {c.LABEL_JOB})",
            "Job",
            datasource=gf.PROMETHEUS,
        ),
        gf.query_variable(
            c.VAR_INSTANCE,
            f"label_values({series}{{{job_filter}}}, {c.LABEL_INSTANCE})",
            "Instance",
            datasource=gf.PROMETHEUS,
            multi=True,
        ),
    ]
    if endpoint:
        query = f"label_values({series}{{{job_filter}}}, {c.LABEL_ENDPOINT})"
        out.append(gf.query_variable(c.VAR_ENDPOINT, query, "Endpoint", datasource=gf.PROMETHEUS))
    return out


def find_slo(service: ServiceView, kind: str) -> SloView | None:
    """The first SLO of ``kind`` in the spec, or None."""
    return next((slo for slo in service.slos if slo.kind == kind), None)


def availability(service: ServiceView) -> SloView | None:
    """The first ``ratio`` SLO with burn tiers: availability (drawn on the overview)."""
    return next((s for s in service.slos if s.kind == KIND_RATIO and s.tiers), None)


def latency_slo(service: ServiceView, histogram: str) -> SloView | None:
    """The ``latency`` SLO counting the histogram ``histogram`` (base name), or None."""
    return next(
        (
            slo
            for slo in service.slos
            if slo.kind == KIND_LATENCY and slo.histogram and slo.histogram.metric == histogram
        ),
        None,
    )


def error_limit(service: ServiceView) -> float:
    """The highest acceptable 5xx ratio: the budget of the ``threshold`` SLO (1 %)."""
    slo = find_slo(service, KIND_THRESHOLD)
    return slo.budget if slo is not None else DEFAULT_ERROR_LIMIT


def period_availability(service: ServiceView, slo: SloView) -> str:
    """SLI over the SLO period, from the request-weighted period rule."""
    return f"1 - {c.RULE_PERIOD_SLI_ERROR}{slo_matchers(service.service, slo.name)}"


def budget_remaining(service: ServiceView, slo: SloView) -> str:
    """Share of the period's error budget still left (1 = untouched, < 0 = overspent)."""
    return f"{c.RULE_PERIOD_BUDGET_REMAINING}{slo_matchers(service.service, slo.name)}"


def burn_rate(service: ServiceView, slo: SloView, window: str) -> str:
    """How fast ``slo`` spends its budget over ``window`` (1 = exactly on budget)."""
    scope = slo_matchers(service.service, slo.name)
    return (
        f"{c.sli_error_ratio_rule(window)}{scope}\n"
        f"/ on ({c.LABEL_SLO_SERVICE}, {c.LABEL_SLO})\n{c.RULE_ERROR_BUDGET}{scope}"
    )


def burn_steps(slo: SloView) -> gf.Steps:
    """Green below 1x, then one colour per alert factor (ticket orange, page red)."""
    out: list[tuple[str, float | None]] = [("green", None), ("yellow", 1.0)]
    for tier in sorted(slo.tiers, key=lambda t: t.factor):
        colour = "red" if tier.severity == c.SEVERITY_PAGE else "orange"
        if tier.factor > 1.0:
            out.append((colour, tier.factor))
    return tuple(out)
