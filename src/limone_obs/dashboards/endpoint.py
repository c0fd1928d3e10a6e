"""Endpoint drill-down: one Flask URL rule (variable ``$endpoint``) in detail."""

from __future__ import annotations

from grafanalib.core import Dashboard

from limone_obs import conventions as c
from limone_obs.dashboards import _grafana as gf
from limone_obs.dashboards import common
from limone_obs.dashboards._grafana import Look, Query
from limone_obs.dashboards.queries import Queries
from limone_obs.dashboards.slo_inputs import ServiceView

ENDPOINT = f'{c.LABEL_ENDPOINT}="${c.VAR_ENDPOINT}"'


def build(queries: Queries, service: ServiceView) -> Dashboard:
    """The drill-down of one endpoint (uid ``conventions.DASHBOARD_UID_ENDPOINT``)."""
    grid = gf.Grid()
    _stats(grid, queries, service)
    _traffic(grid, queries, common.error_limit(service))
    _latency(grid, queries)
    return gf.dashboard(
        c.DASHBOARD_UID_ENDPOINT,
        "LimoneIDE / Endpoint drill-down",
        "Rate, errors, latency and exceptions of one URL rule; pick it in $endpoint.",
        grid,
        common.variables(queries, endpoint=True),
    )


def _stats(grid: gf.Grid, q: Queries, service: ServiceView) -> None:
    limit = common.error_limit(service)
    grid.row("$endpoint")
    grid.add(
        gf.stat("Request rate", [Query(q.request_rate(ENDPOINT))], Look("Requests/s.", "reqps")),
        6,
        4,
    )
    grid.add(
        gf.stat(
            "5xx ratio",
            [Query(q.error_ratio(ENDPOINT))],
            Look("Share of 5xx responses.", "percentunit", gf.higher_is_worse(limit / 2, limit)),
        ),
        6,
        4,
    )
    grid.add(
        gf.stat(
            "p95 latency",
            [Query(q.latency(0.95, ENDPOINT))],
            Look("95 % of requests finish within this time.", "s", common.LATENCY_STEPS),
        ),
        6,
        4,
    )
    grid.add(
        gf.stat(
            "In flight",
            [Query(q.in_progress(ENDPOINT))],
            Look("Requests of this endpoint being served now.", "short"),
        ),
        6,
        4,
    )


def _traffic(grid: gf.Grid, q: Queries, limit: float) -> None:
    grid.row("Traffic and errors")
    grid.add(
        gf.timeseries(
            "Rate by status",
            [Query(q.request_rate(ENDPOINT, by=c.LABEL_STATUS), "{{status}}")],
            Look("Requests per second by status code.", "reqps"),
            stacked=True,
        ),
        12,
        8,
    )
    grid.add(
        gf.timeseries(
            "Rate by method",
            [Query(q.request_rate(ENDPOINT, by=c.LABEL_METHOD), "{{method}}")],
            Look("Requests per second by HTTP method.", "reqps"),
            stacked=True,
        ),
        12,
        8,
    )
    grid.add(
        gf.timeseries(
            "Exceptions by class",
            [Query(q.exceptions(ENDPOINT), "{{exception}}")],
            Look(
                "Unhandled exceptions per second by class; each one became a 500. "
                "Find the lines in the Logs dashboard.",
                "ops",
                (("green", None), ("red", 0.001)),
            ),
        ),
        12,
        8,
    )
    grid.add(
        gf.timeseries(
            "5xx ratio",
            [Query(q.error_ratio(ENDPOINT), "5xx ratio")],
            Look(
                "Share of 5xx responses of this endpoint; dashed line at the limit.",
                "percentunit",
                gf.higher_is_worse(limit, limit),
            ),
            lines=True,
        ),
        12,
        8,
    )


def _latency(grid: gf.Grid, q: Queries) -> None:
    grid.row("Latency")
    grid.add(
        gf.timeseries(
            "Latency percentiles",
            [Query(q.latency(p, ENDPOINT), f"p{p * 100:.0f}") for p in (0.5, 0.95, 0.99)],
            Look("Duration percentiles; dashed lines at 0.6 s and 1 s.", "s", common.LATENCY_STEPS),
            lines=True,
        ),
        12,
        8,
    )
    grid.add(
        gf.heatmap(
            "Latency distribution",
            Query(q.heatmap(ENDPOINT), "{{le}}", heatmap=True),
            Look("Requests per duration bucket over time.", "s"),
        ),
        12,
        8,
    )
