"""Service overview (RED): is the service healthy, and where does it hurt?"""

from __future__ import annotations

from grafanalib.core import Dashboard

from limone_obs import conventions as c
from limone_obs.dashboards import _grafana as gf
from limone_obs.dashboards import common
from limone_obs.dashboards._grafana import Look, Query
from limone_obs.dashboards.queries import Queries, matchers, rate
from limone_obs.dashboards.slo_inputs import ServiceView


def build(queries: Queries, service: ServiceView) -> Dashboard:
    """The RED overview of ``service`` (uid ``conventions.DASHBOARD_UID_OVERVIEW``)."""
    grid = gf.Grid()
    _top_stats(grid, queries, service)
    _traffic(grid, queries)
    _errors_and_latency(grid, queries, service)
    _endpoints(grid, queries)
    _process(grid)
    return gf.dashboard(
        c.DASHBOARD_UID_OVERVIEW,
        "LimoneIDE / Service overview",
        "Rate, errors and duration of the LimoneIDE service against its SLOs.",
        grid,
        common.variables(queries),
    )


def _top_stats(grid: gf.Grid, q: Queries, service: ServiceView) -> None:
    limit = common.error_limit(service)
    grid.row("Service level")
    grid.add(
        gf.stat(
            "Request rate",
            [Query(q.request_rate())],
            Look("Requests answered per second, all endpoints.", "reqps"),
        ),
        4,
        4,
    )
    grid.add(
        gf.stat(
            "5xx ratio",
            [Query(q.error_ratio())],
            Look(
                f"Share of responses with a 5xx status; the limit is {limit:.0%}.",
                "percentunit",
                gf.higher_is_worse(limit / 2, limit),
            ),
        ),
        3,
        4,
    )
    for quantile in (0.95, 0.99):
        grid.add(
            gf.stat(
                f"p{quantile * 100:.0f} latency",
                [Query(q.latency(quantile))],
                Look(
                    f"{quantile:.0%} of requests finish within this time (target 1 s, then 0.6 s).",
                    "s",
                    common.LATENCY_STEPS,
                ),
            ),
            3,
            4,
        )
    _slo_stats(grid, service)


def _slo_stats(grid: gf.Grid, service: ServiceView) -> None:
    slo = common.availability(service)
    if slo is None:
        return
    grid.add(
        gf.stat(
            f"{service.period} availability",
            [Query(common.period_availability(service, slo))],
            Look(
                f"Non-5xx share of requests over the last {service.period} (objective "
                f"{slo.objective} %), request-weighted.",
                "percentunit",
                gf.lower_is_worse(slo.target, 1 - slo.budget / 2),
            ),
        ),
        4,
        4,
    )
    grid.add(
        gf.stat(
            "Error budget left",
            [Query(common.budget_remaining(service, slo))],
            Look(
                f"Share of the {service.period} availability error budget not yet spent; below 0 "
                "the SLO is missed.",
                "percentunit",
                gf.lower_is_worse(0.0, 0.25),
            ),
        ),
        4,
        4,
    )
    grid.add(
        gf.stat(
            "Burn rate 1h",
            [Query(common.burn_rate(service, slo, "1h"))],
            Look(
                "How fast the availability budget burns over the last hour: 1 spends exactly "
                "the budget over the period; colours mark the alert factors.",
                "x",
                common.burn_steps(slo),
            ),
        ),
        3,
        4,
    )


def _traffic(grid: gf.Grid, q: Queries) -> None:
    grid.row("Traffic")
    grid.add(
        gf.timeseries(
            "Rate by endpoint",
            [Query(q.request_rate(by=c.LABEL_ENDPOINT), "{{endpoint}}")],
            Look("Requests per second by Flask URL rule; <unmatched> collects 404/405.", "reqps"),
            stacked=True,
        ),
        8,
        8,
    )
    grid.add(
        gf.timeseries(
            "Rate by status class",
            [Query(q.status_class_rate(), "{{status_class}}")],
            Look("Requests per second by status class (2xx, 3xx, 4xx, 5xx).", "reqps"),
            stacked=True,
        ),
        8,
        8,
    )
    grid.add(
        gf.timeseries(
            "Rate by method",
            [Query(q.request_rate(by=c.LABEL_METHOD), "{{method}}")],
            Look("Requests per second by HTTP method (unknown methods count as OTHER).", "reqps"),
            stacked=True,
        ),
        8,
        8,
    )


def _errors_and_latency(grid: gf.Grid, q: Queries, service: ServiceView) -> None:
    limit = common.error_limit(service)
    grid.row("Errors and latency")
    grid.add(
        gf.timeseries(
            "5xx ratio",
            [Query(q.error_ratio(), "5xx ratio")],
            Look(
                f"Share of 5xx responses; the dashed line is the {limit:.0%} limit.",
                "percentunit",
                gf.higher_is_worse(limit, limit),
                bounds=(0, None),
            ),
            lines=True,
        ),
        12,
        8,
    )
    grid.add(
        gf.timeseries(
            "Latency percentiles",
            [
                Query(q.latency(quantile), f"p{quantile * 100:.0f}")
                for quantile in (0.5, 0.95, 0.99)
            ],
            Look(
                "Request duration percentiles; dashed lines at the 0.6 s and 1 s targets.",
                "s",
                common.LATENCY_STEPS,
                bounds=(0, None),
            ),
            lines=True,
        ),
        12,
        8,
    )
    grid.add(_share_within(q, service), 12, 8)
    grid.add(
        gf.heatmap(
            "Latency distribution",
            Query(q.heatmap(), "{{le}}", heatmap=True),
            Look("Requests per duration bucket over time; darker cells hold more requests.", "s"),
        ),
        12,
        8,
    )


def _share_within(q: Queries, service: ServiceView) -> object:
    slo = common.latency_slo(service, q.names.request_duration)
    threshold = slo.threshold_seconds if slo and slo.threshold_seconds else 1.0
    objective = slo.target if slo else 0.95
    return gf.timeseries(
        f"Requests within {threshold:g} s",
        [Query(q.share_within(t), f"within {t:g} s") for t in sorted(c.SLO_LATENCY_THRESHOLDS)],
        Look(
            f"Share of requests served within the latency targets; the latency SLO wants "
            f"{objective:.0%} within {threshold:g} s (dashed line).",
            "percentunit",
            gf.lower_is_worse(objective, objective),
            bounds=(0, 1),
        ),
        lines=True,
    )


def _endpoints(grid: gf.Grid, q: Queries) -> None:
    grid.row("Endpoints")
    grid.add(endpoint_table(q), 16, 9)
    grid.add(
        gf.timeseries(
            "In-flight requests",
            [Query(q.in_progress(by=c.LABEL_ENDPOINT), "{{endpoint}}")],
            Look("Requests being served right now, by endpoint (summed over workers).", "short"),
            stacked=True,
        ),
        8,
        9,
    )


def endpoint_table(q: Queries) -> object:
    """Per-endpoint rate, error % and p95, each row linking to the drill-down."""
    by = c.LABEL_ENDPOINT
    link = {
        "title": "Drill down into ${__value.raw}",
        "url": f"/d/{c.DASHBOARD_UID_ENDPOINT}?${{{c.VAR_DATASOURCE}:queryparam}}"
        f"&${{{c.VAR_JOB}:queryparam}}&var-{c.VAR_ENDPOINT}=${{__value.raw:percentencode}}",
    }
    columns = (
        ("Value #A", "req/s", "reqps"),
        ("Value #B", "5xx", "percentunit"),
        ("Value #C", "p95", "s"),
    )
    overrides = [_column(name, unit) for name, _, unit in columns]
    overrides.append(
        {
            "matcher": {"id": "byName", "options": by},
            "properties": [{"id": "links", "value": [link]}],
        }
    )
    rename = {"excludeByName": {"Time": True}, "renameByName": {n: t for n, t, _ in columns}}
    return gf.table(
        "Endpoints",
        [
            Query(q.request_rate(by=by), instant=True, table=True),
            Query(q.error_ratio(by=by), instant=True, table=True),
            Query(q.latency(0.95, by=by), instant=True, table=True),
        ],
        Look(
            "Per URL rule: requests/s, 5xx share and p95 latency now. Click an endpoint to "
            "open its drill-down.",
            "short",
            extra={
                "fieldConfig": {"overrides": overrides},
                "transformations": [
                    {"id": "merge", "options": {}},
                    {"id": "organize", "options": rename},
                ],
                "options": {"sortBy": [{"displayName": "req/s", "desc": True}]},
            },
        ),
    )


def _column(name: str, unit: str) -> dict[str, object]:
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": "unit", "value": unit}],
    }


def _process(grid: gf.Grid) -> None:
    grid.row("Process")
    note = common.PROCESS_NOTE
    grid.add(
        gf.timeseries(
            "CPU",
            [Query(rate(c.SERIES_PROCESS_CPU), "{{instance}}")],
            Look("CPU time used per second (1 = one core)." + note, "percentunit"),
        ),
        6,
        7,
    )
    grid.add(
        gf.timeseries(
            "Resident memory",
            [Query(f"{c.SERIES_PROCESS_MEMORY}{matchers()}", "{{instance}}")],
            Look("Resident set size of the process." + note, "bytes"),
        ),
        6,
        7,
    )
    grid.add(
        gf.timeseries(
            "Open file descriptors",
            [Query(f"{c.SERIES_PROCESS_FDS}{matchers()}", "{{instance}}")],
            Look("File descriptors held open (sockets, files)." + note, "short"),
        ),
        6,
        7,
    )
    gc_query = f"sum by ({c.LABEL_GC_GENERATION}) ({rate(c.SERIES_GC_COLLECTIONS)})"
    grid.add(
        gf.timeseries(
            "GC collections",
            [Query(gc_query, "gen {{generation}}")],
            Look("Python garbage collections per second by generation." + note, "ops"),
        ),
        6,
        7,
    )
