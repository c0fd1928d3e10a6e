"""Dependencies: where the 2 s go (AI API, database, cache, templates)."""

from __future__ import annotations

from typing import Any

from grafanalib.core import Dashboard

from limone_obs import conventions as c
from limone_obs.dashboards import _grafana as gf
from limone_obs.dashboards import common
from limone_obs.dashboards._grafana import Look, Query
from limone_obs.dashboards.queries import Queries
from limone_obs.dashboards.slo_inputs import ServiceView, SloView

#: Dependencies with their own row, in the order a request usually meets them.
DEPENDENCIES = (
    (c.DEPENDENCY_AI, "AI API"),
    (c.DEPENDENCY_DB, "Database"),
    (c.DEPENDENCY_CACHE, "Cache"),
    (c.DEPENDENCY_TEMPLATE, "Templates"),
)


def build(queries: Queries, service: ServiceView) -> Dashboard:
    """The dependency breakdown (uid ``conventions.DASHBOARD_UID_DEPENDENCIES``)."""
    grid = gf.Grid()
    grid.row("Where the time goes")
    grid.add_all([(_seconds_per_request(queries), 16, 9), (_cache_hit_ratio(queries), 8, 9)])
    grid.row("All dependencies")
    grid.add_all([(panel, 8, 8) for panel in _all_dependencies(queries)])
    for name, title in DEPENDENCIES:
        grid.row(title)
        grid.add_all([(panel, 8, 7) for panel in _dependency_panels(queries, name, title)])
    slo = common.latency_slo(service, queries.names.dependency_duration)
    if slo is not None:
        grid.row(f"SLO {slo.name}")
        grid.add_all(_dependency_slo(queries, service, slo))
    return gf.dashboard(
        c.DASHBOARD_UID_DEPENDENCIES,
        "LimoneIDE / Dependencies",
        "Calls, errors and latency of the AI API, the database, the cache and templates.",
        grid,
        common.variables(queries),
    )


def _seconds_per_request(q: Queries) -> Any:
    queries = [
        Query(q.dependency_seconds_per_request(), "{{dependency}}"),
        Query(q.app_seconds_per_request(), "app (outside dependencies)"),
    ]
    look = Look(
        "Average seconds each request spends in each dependency, stacked; the top of the "
        "stack is the mean request duration (dashed lines at 0.6 s and 1 s).",
        "s",
        common.LATENCY_STEPS,
    )
    return gf.timeseries("Seconds per request", queries, look, stacked=True, lines=True)


def _cache_hit_ratio(q: Queries) -> Any:
    look = Look(
        "Share of cache lookups that hit, by cache; misses fall through to the DB or the AI API.",
        "percentunit",
        gf.lower_is_worse(0.5, 0.8),
        bounds=(0, 1),
    )
    return gf.timeseries("Cache hit ratio", [Query(q.cache_hit_ratio(), "{{cache}}")], look)


#: Error ratio colours of dependency calls: orange from 1 %, red from 5 %.
ERROR_STEPS = gf.higher_is_worse(0.01, 0.05)


def _all_dependencies(q: Queries) -> list[Any]:
    legend = "{{dependency}}"
    return [
        gf.timeseries(
            "Calls by dependency",
            [Query(q.dependency_rate(), legend)],
            Look("Dependency calls per second.", "ops"),
        ),
        gf.timeseries(
            "Error ratio by dependency",
            [Query(q.dependency_error_ratio(), legend)],
            Look("Share of calls with outcome error.", "percentunit", ERROR_STEPS),
        ),
        gf.timeseries(
            "p95 by dependency",
            [Query(q.dependency_latency(0.95), legend)],
            Look("95th percentile call duration.", "s", common.LATENCY_STEPS),
            lines=True,
        ),
    ]


def _dependency_panels(q: Queries, name: str, title: str) -> list[Any]:
    dep, by, legend = f'{c.LABEL_DEPENDENCY}="{name}"', c.LABEL_OPERATION, "{{operation}}"
    calls = Look(f"Calls per second to {title}, by operation.", "ops")
    errors = Look(f"Share of {title} calls that failed, by operation.", "percentunit", ERROR_STEPS)
    latency = Look(
        f"Median and 95th percentile duration of {title} calls.", "s", common.LATENCY_STEPS
    )
    percentiles = [
        Query(q.dependency_latency(p, dep, by=""), f"p{p * 100:.0f}") for p in (0.5, 0.95)
    ]
    return [
        gf.timeseries(
            f"{title}: calls", [Query(q.dependency_rate(dep, by=by), legend)], calls, stacked=True
        ),
        gf.timeseries(
            f"{title}: error ratio", [Query(q.dependency_error_ratio(dep, by=by), legend)], errors
        ),
        gf.timeseries(f"{title}: p50 / p95", percentiles, latency, lines=True),
    ]


def _dependency_slo(q: Queries, service: ServiceView, slo: SloView) -> list[tuple[Any, int, int]]:
    threshold = slo.threshold_seconds or 1.0
    matchers = slo.histogram.matchers if slo.histogram else ()
    dependency = slo.histogram.label_value(c.LABEL_DEPENDENCY) if slo.histogram else None
    share = Look(
        f"Share of {dependency or 'dependency'} calls answered within {threshold:g} s; the SLO "
        f"wants {slo.objective:g} % (dashed line).",
        "percentunit",
        gf.lower_is_worse(slo.target, slo.target),
        bounds=(0, 1),
    )
    budget = Look(
        f"Share of the {slo.name} error budget left.", "percentunit", gf.lower_is_worse(0.0, 0.25)
    )
    window = slo.windows[0] if slo.windows else "1h"
    burn = Look(f"Budget burn rate of {slo.name} over {window}.", "x", common.burn_steps(slo))
    within = Query(q.dependency_share_within(threshold, *matchers), "within")
    return [
        (gf.timeseries(f"Calls within {threshold:g} s", [within], share, lines=True), 12, 7),
        (gf.stat("Budget left", [Query(common.budget_remaining(service, slo))], budget), 6, 7),
        (
            gf.stat(f"Burn rate {window}", [Query(common.burn_rate(service, slo, window))], burn),
            6,
            7,
        ),
    ]
