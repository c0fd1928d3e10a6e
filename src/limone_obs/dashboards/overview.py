"""Service overview (RED): is the service healthy, and where does it hurt?"""

from __future__ import annotations

from typing import Any

from grafanalib.core import Dashboard

from limone_obs import conventions as c
from limone_obs.dashboards import _grafana as gf
from limone_obs.dashboards import common
from limone_obs.dashboards._grafana import Look, Query
from limone_obs.dashboards.queries import Queries, matchers, rate
from limone_obs.dashboards.slo_inputs import ServiceView, SloView

QUANTILES = (0.5, 0.95, 0.99)


def build(queries: Queries, service: ServiceView) -> Dashboard:
    """The RED overview of ``service`` (uid ``conventions.DASHBOARD_UID_OVERVIEW``)."""
    grid = gf.Grid()
    grid.row("Service level")
    grid.add_all(_request_stats(queries, common.error_limit(service)))
    slo = common.availability(service)
    if slo is not None:
        grid.add_all(_slo_stats(service, slo))
    grid.row("Traffic")
    grid.add_all([(_rate_by(queries, label), 8, 8) for label in _BREAKDOWNS])
    grid.row("Errors and latency")
    grid.add_all(_errors_and_latency(queries, service))
    grid.row("Endpoints")
    grid.add_all([(endpoint_table(queries), 16, 9), (_in_flight(queries), 8, 9)])
    grid.row("Process")
    grid.add_all([(panel, 6, 7) for panel in _process_panels()])
    return gf.dashboard(
        c.DASHBOARD_UID_OVERVIEW,
        "LimoneIDE / Service overview",
        "Rate, errors and duration of the LimoneIDE service against its SLOs.",
        grid,
        common.variables(queries),
    )


def _request_stats(q: Queries, limit: float) -> list[tuple[Any, int, int]]:
    rate_look = Look("Requests answered per second, all endpoints.", "reqps")
    error_look = Look(
        f"Share of responses with a 5xx status; the limit is {limit:.0%}.",
        "percentunit",
        gf.higher_is_worse(limit / 2, limit),
    )
    cells = [
        (gf.stat("Request rate", [Query(q.request_rate())], rate_look), 4, 4),
        (gf.stat("5xx ratio", [Query(q.error_ratio())], error_look), 3, 4),
    ]
    for quantile in (0.95, 0.99):
        look = Look(
            f"{quantile:.0%} of requests finish within this time (target 1 s, then 0.6 s).",
            "s",
            common.LATENCY_STEPS,
        )
        title = f"p{quantile * 100:.0f} latency"
        cells.append((gf.stat(title, [Query(q.latency(quantile))], look), 3, 4))
    return cells


def _slo_stats(service: ServiceView, slo: SloView) -> list[tuple[Any, int, int]]:
    availability = Look(
        f"Non-5xx share of requests over the last {service.period} (objective "
        f"{slo.objective} %), request-weighted.",
        "percentunit",
        gf.lower_is_worse(slo.target, 1 - slo.budget / 2),
    )
    budget = Look(
        f"Share of the {service.period} availability error budget not yet spent; below 0 "
        "the SLO is missed.",
        "percentunit",
        gf.lower_is_worse(0.0, 0.25),
    )
    burn = Look(
        "How fast the availability budget burns over the last hour: 1 spends exactly "
        "the budget over the period; colours mark the alert factors.",
        "x",
        common.burn_steps(slo),
    )
    period = Query(common.period_availability(service, slo))
    return [
        (gf.stat(f"{service.period} availability", [period], availability), 4, 4),
        (
            gf.stat("Error budget left", [Query(common.budget_remaining(service, slo))], budget),
            4,
            4,
        ),
        (gf.stat("Burn rate 1h", [Query(common.burn_rate(service, slo, "1h"))], burn), 3, 4),
    ]


#: Traffic breakdowns: label, title, description.
_BREAKDOWNS = (
    (c.LABEL_ENDPOINT, "Requests per second by Flask URL rule; <unmatched> collects 404/405."),
    ("status_class", "Requests per second by status class (2xx, 3xx, 4xx, 5xx)."),
    (c.LABEL_METHOD, "Requests per second by HTTP method (unknown methods count as OTHER)."),
)


def _rate_by(q: Queries, breakdown: tuple[str, str]) -> Any:
    label, description = breakdown
    expr = q.status_class_rate() if label == "status_class" else q.request_rate(by=label)
    title = f"Rate by {label.replace('_', ' ')}"
    return gf.timeseries(
        title, [Query(expr, f"{{{{{label}}}}}")], Look(description, "reqps"), stacked=True
    )


def _errors_and_latency(q: Queries, service: ServiceView) -> list[tuple[Any, int, int]]:
    limit = common.error_limit(service)
    errors = Look(
        f"Share of 5xx responses; the dashed line is the {limit:.0%} limit.",
        "percentunit",
        gf.higher_is_worse(limit, limit),
        bounds=(0, None),
    )
    latency = Look(
        "Request duration percentiles; dashed lines at the 0.6 s and 1 s targets.",
        "s",
        common.LATENCY_STEPS,
        bounds=(0, None),
    )
    percentiles = [Query(q.latency(p), f"p{p * 100:.0f}") for p in QUANTILES]
    heatmap = Look("Requests per duration bucket over time; darker cells hold more requests.", "s")
    return [
        (
            gf.timeseries("5xx ratio", [Query(q.error_ratio(), "5xx ratio")], errors, lines=True),
            12,
            8,
        ),
        (gf.timeseries("Latency percentiles", percentiles, latency, lines=True), 12, 8),
        (_share_within(q, service), 12, 8),
        (
            gf.heatmap("Latency distribution", Query(q.heatmap(), "{{le}}", heatmap=True), heatmap),
            12,
            8,
        ),
    ]


def _share_within(q: Queries, service: ServiceView) -> Any:
    slo = common.latency_slo(service, q.names.request_duration)
    threshold = slo.threshold_seconds if slo and slo.threshold_seconds else 1.0
    objective = slo.target if slo else 0.95
    look = Look(
        f"Share of requests served within the latency targets; the latency SLO wants "
        f"{objective:.0%} within {threshold:g} s (dashed line).",
        "percentunit",
        gf.lower_is_worse(objective, objective),
        bounds=(0, 1),
    )
    queries = [
        Query(q.share_within(t), f"within {t:g} s") for t in sorted(c.SLO_LATENCY_THRESHOLDS)
    ]
    return gf.timeseries(f"Requests within {threshold:g} s", queries, look, lines=True)


def _in_flight(q: Queries) -> Any:
    look = Look("Requests being served right now, by endpoint (summed over workers).", "short")
    query = Query(q.in_progress(by=c.LABEL_ENDPOINT), "{{endpoint}}")
    return gf.timeseries("In-flight requests", [query], look, stacked=True)


def endpoint_table(q: Queries) -> Any:
    """Per-endpoint rate, error % and p95, each row linking to the drill-down."""
    by = c.LABEL_ENDPOINT
    columns = (
        ("Value #A", "req/s", "reqps"),
        ("Value #B", "5xx", "percentunit"),
        ("Value #C", "p95", "s"),
    )
    overrides = [_override(name, "unit", unit) for name, _, unit in columns]
    overrides.append(_override(by, "links", [_drill_down_link()]))
    rename = {"excludeByName": {"Time": True}, "renameByName": {n: t for n, t, _ in columns}}
    look = Look(
        "Per URL rule: requests/s, 5xx share and p95 latency now. Click an endpoint to open "
        "its drill-down.",
        "short",
        extra={
            "fieldConfig": {"overrides": overrides},
            "transformations": [
                {"id": "merge", "options": {}},
                {"id": "organize", "options": rename},
            ],
            "options": {"sortBy": [{"displayName": "req/s", "desc": True}]},
        },
    )
    exprs = (q.request_rate(by=by), q.error_ratio(by=by), q.latency(0.95, by=by))
    return gf.table("Endpoints", [Query(e, instant=True, table=True) for e in exprs], look)


def _drill_down_link() -> dict[str, str]:
    params = f"${{{c.VAR_DATASOURCE}:queryparam}}&${{{c.VAR_JOB}:queryparam}}"
    return {
        "title": "Drill down into ${__value.raw}",
        "url": f"/d/{c.DASHBOARD_UID_ENDPOINT}?{params}"
        f"&var-{c.VAR_ENDPOINT}=${{__value.raw:percentencode}}",
    }


def _override(field: str, prop: str, value: object) -> dict[str, object]:
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [{"id": prop, "value": value}],
    }


def _process_panels() -> list[Any]:
    gc = f"sum by ({c.LABEL_GC_GENERATION}) ({rate(c.SERIES_GC_COLLECTIONS)})"
    specs = (
        ("CPU", rate(c.SERIES_PROCESS_CPU), "{{instance}}",
         "CPU time used per second (1 = one core).", "percentunit"),
        ("Resident memory", f"{c.SERIES_PROCESS_MEMORY}{matchers()}", "{{instance}}",
         "Resident set size of the process.", "bytes"),
        ("Open file descriptors", f"{c.SERIES_PROCESS_FDS}{matchers()}", "{{instance}}",
         "File descriptors held open (sockets, files).", "short"),
        ("GC collections", gc, "gen {{generation}}",
         "Python garbage collections per second by generation.", "ops"),
    )  # fmt: skip
    return [
        gf.timeseries(title, [Query(expr, legend)], Look(text + common.PROCESS_NOTE, unit))
        for title, expr, legend, text, unit in specs
    ]
