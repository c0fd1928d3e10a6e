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
#: Legend of the request time spent outside every tracked dependency.
OTHER_LEGEND = "other"


def build(queries: Queries, service: ServiceView) -> Dashboard:
    """The drill-down of one endpoint (uid ``dashboard_uid(service, "endpoint")``)."""
    limit = common.error_limit(service, queries.names.requests_total)
    targets = common.latency_targets(service, queries.names.request_duration)
    logs = [logs_link(service)]
    grid = gf.Grid()
    grid.row("$endpoint")
    grid.add_all([(panel, 6, 4) for panel in _stats(queries, limit, targets)])
    grid.row("Where the time goes")
    grid.add(time_breakdown(queries, logs, targets), 24, 9)
    grid.row("Traffic and errors")
    grid.add_all([(panel, 12, 8) for panel in _traffic(queries, limit, logs)])
    grid.row("Latency")
    grid.add_all([(panel, 12, 8) for panel in _latency(queries, targets)])
    return common.board(
        service,
        common.ENDPOINT,
        "Endpoint drill-down",
        "Rate, errors, latency, time per dependency and exceptions of one URL rule; pick it "
        "in $endpoint.",
        grid,
        variables=common.variables(queries, endpoint=True, baseline=True, service=service),
        annotations=common.timeline(queries, service),
    )


def logs_link(service: ServiceView) -> dict[str, object]:
    """Panel link to this endpoint's log lines, on the same time range."""
    url = (
        f"/d/{common.uid(service, common.LOGS)}?var-{c.LOG_SERVICE}={service.service}"
        f"&var-{c.LOG_ENDPOINT}=${{{c.VAR_ENDPOINT}:percentencode}}&${{__url_time_range}}"
    )
    return {"title": "Log lines of $endpoint", "url": url}


def time_breakdown(
    q: Queries, links: list[dict[str, object]], targets: common.LatencyTargets
) -> Any:
    """Seconds per request of ``$endpoint`` in each dependency, plus everything else."""
    queries = [
        Query(q.endpoint_dependency_seconds(ENDPOINT), "{{dependency}}"),
        Query(q.endpoint_other_seconds(ENDPOINT), OTHER_LEGEND),
    ]
    look = Look(
        "Average seconds one request of $endpoint spends in each dependency (AI API, "
        "database, cache, templates), and while no tracked call works for it (other: the "
        f"app's own time), stacked: the top is the endpoint's mean duration; "
        f"{targets.lines}. Counted by track() at the end of each request. Calls that run at "
        "the same time (a thread pool, asyncio.gather) or inside another tracked call each "
        "add their whole time to their dependency, so the stack then rises above the "
        "endpoint's duration; other counts such overlapping time once, and stays the app's "
        "own time.",
        "s",
        targets.steps,
        extra={"links": links},
    )
    return gf.timeseries("Time per request by dependency", queries, look, stacked=True, lines=True)


def _stats(q: Queries, limit: float, targets: common.LatencyTargets) -> list[Any]:
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
            Look(
                f"95 % of requests finish within this time; {targets.colours}.",
                "s",
                targets.steps,
            ),
        ),
        gf.stat(
            "In flight",
            [Query(q.in_progress(ENDPOINT))],
            Look("Requests of this endpoint being served now.", "short"),
        ),
    ]


def _rate_by(q: Queries, label: str, description: str) -> Any:
    query = Query(q.request_rate(ENDPOINT, by=label), f"{{{{{label}}}}}")
    extra = {"fieldConfig": {"overrides": gf.status_colours()}} if label == c.LABEL_STATUS else {}
    look = Look(description, "reqps", extra=extra)
    return gf.timeseries(f"Rate by {label}", [query], look, stacked=True)


def _traffic(q: Queries, limit: float, logs: list[dict[str, object]]) -> list[Any]:
    exceptions = Look(
        "Unhandled exceptions per second by class; each one became a 500. "
        "The panel link opens this endpoint's log lines on the same time range.",
        "ops",
        (("green", None), ("red", 0.001)),
        extra={"links": logs},
    )
    errors = Look(
        "Share of 5xx responses of this endpoint; dashed line at the limit. With $baseline "
        "set, the grey dashed line is the same ratio then.",
        "percentunit",
        gf.higher_is_worse(limit, limit),
        extra={"links": logs, "fieldConfig": {"overrides": [common.baseline_style()]}},
    )
    ratio = [
        Query(q.error_ratio(ENDPOINT), "5xx ratio"),
        Query(common.baseline(q.error_ratio(ENDPOINT)), f"5xx ratio {common.BASELINE_LEGEND}"),
    ]
    return [
        _rate_by(q, c.LABEL_STATUS, "Requests per second by status code."),
        _rate_by(q, c.LABEL_METHOD, "Requests per second by HTTP method."),
        gf.timeseries(
            "Exceptions by class", [Query(q.exceptions(ENDPOINT), "{{exception}}")], exceptions
        ),
        gf.timeseries("5xx ratio", ratio, errors, lines=True),
    ]


def _latency(q: Queries, targets: common.LatencyTargets) -> list[Any]:
    percentiles = [Query(q.latency(p, ENDPOINT), f"p{p * 100:.0f}") for p in (0.5, 0.95, 0.99)]
    baseline = common.baseline(q.latency(0.95, ENDPOINT))
    percentiles.append(Query(baseline, f"p95 {common.BASELINE_LEGEND}"))
    lines = Look(
        f"Duration percentiles; {targets.lines}. With $baseline set, the grey dashed line "
        f"is the p95 then. {common.QUANTILE_NOTE}",
        "s",
        targets.steps,
        extra={"fieldConfig": {"overrides": [common.baseline_style()]}},
    )
    heatmap = Query(q.heatmap(ENDPOINT), "{{le}}", heatmap=True)
    return [
        gf.timeseries("Latency percentiles", percentiles, lines, lines=True),
        gf.heatmap(
            "Latency distribution", heatmap, Look("Requests per duration bucket over time.", "s")
        ),
    ]
