"""Endpoint drill-down: one Flask URL rule (variable ``$endpoint``) in detail."""

from __future__ import annotations

from typing import Any

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
    limit = common.error_limit(service)
    grid = gf.Grid()
    grid.row("$endpoint")
    grid.add_all([(panel, 6, 4) for panel in _stats(queries, limit)])
    grid.row("Traffic and errors")
    grid.add_all([(panel, 12, 8) for panel in _traffic(queries, limit)])
    grid.row("Latency")
    grid.add_all([(panel, 12, 8) for panel in _latency(queries)])
    return gf.dashboard(
        c.DASHBOARD_UID_ENDPOINT,
        "LimoneIDE / Endpoint drill-down",
        "Rate, errors, latency and exceptions of one URL rule; pick it in $endpoint.",
        grid,
        common.variables(queries, endpoint=True),
    )


def _stats(q: Queries, limit: float) -> list[Any]:
    errors = gf.higher_is_worse(limit / 2, limit)
    return [
        gf.stat("Request rate", [Query(q.request_rate(ENDPOINT))], Look("Requests/s.", "reqps")),
        gf.stat(
            "5xx ratio",
            [Query(q.error_ratio(ENDPOINT))],
            Look("Share of 5xx responses.", "percentunit", errors),
        ),
        gf.stat(
            "p95 latency",
            [Query(q.latency(0.95, ENDPOINT))],
            Look("95 % of requests finish within this time.", "s", common.LATENCY_STEPS),
        ),
        gf.stat(
            "In flight",
            [Query(q.in_progress(ENDPOINT))],
            Look("Requests of this endpoint being served now.", "short"),
        ),
    ]


def _rate_by(q: Queries, label: str, description: str) -> Any:
    query = Query(q.request_rate(ENDPOINT, by=label), f"{{{{{label}}}}}")
    return gf.timeseries(f"Rate by {label}", [query], Look(description, "reqps"), stacked=True)


def _traffic(q: Queries, limit: float) -> list[Any]:
    exceptions = Look(
        "Unhandled exceptions per second by class; each one became a 500. "
        "Find the lines in the Logs dashboard.",
        "ops",
        (("green", None), ("red", 0.001)),
    )
    errors = Look(
        "Share of 5xx responses of this endpoint; dashed line at the limit.",
        "percentunit",
        gf.higher_is_worse(limit, limit),
    )
    return [
        _rate_by(q, c.LABEL_STATUS, "Requests per second by status code."),
        _rate_by(q, c.LABEL_METHOD, "Requests per second by HTTP method."),
        gf.timeseries(
            "Exceptions by class", [Query(q.exceptions(ENDPOINT), "{{exception}}")], exceptions
        ),
        gf.timeseries(
            "5xx ratio", [Query(q.error_ratio(ENDPOINT), "5xx ratio")], errors, lines=True
        ),
    ]


def _latency(q: Queries) -> list[Any]:
    percentiles = [Query(q.latency(p, ENDPOINT), f"p{p * 100:.0f}") for p in (0.5, 0.95, 0.99)]
    lines = Look("Duration percentiles; dashed lines at 0.6 s and 1 s.", "s", common.LATENCY_STEPS)
    heatmap = Query(q.heatmap(ENDPOINT), "{{le}}", heatmap=True)
    return [
        gf.timeseries("Latency percentiles", percentiles, lines, lines=True),
        gf.heatmap(
            "Latency distribution", heatmap, Look("Requests per duration bucket over time.", "s")
        ),
    ]
