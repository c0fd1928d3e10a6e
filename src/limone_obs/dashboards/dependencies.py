"""Dependencies: where the 2 s go (AI API, database, cache, templates)."""

from __future__ import annotations

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
    _where_time_goes(grid, queries)
    _all_dependencies(grid, queries)
    for name, title in DEPENDENCIES:
        _dependency_row(grid, queries, name, title)
    slo = common.latency_slo(service, queries.names.dependency_duration)
    if slo is not None:
        _dependency_slo(grid, queries, service, slo)
    return gf.dashboard(
        c.DASHBOARD_UID_DEPENDENCIES,
        "LimoneIDE / Dependencies",
        "Calls, errors and latency of the AI API, the database, the cache and templates.",
        grid,
        common.variables(queries),
    )


def _where_time_goes(grid: gf.Grid, q: Queries) -> None:
    grid.row("Where the time goes")
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
    grid.add(gf.timeseries("Seconds per request", queries, look, stacked=True, lines=True), 16, 9)
    grid.add(
        gf.timeseries(
            "Cache hit ratio",
            [Query(q.cache_hit_ratio(), "{{cache}}")],
            Look(
                "Share of cache lookups that hit, by cache; misses fall through to the DB "
                "or the AI API.",
                "percentunit",
                gf.lower_is_worse(0.5, 0.8),
                bounds=(0, 1),
            ),
        ),
        8,
        9,
    )


def _all_dependencies(grid: gf.Grid, q: Queries) -> None:
    grid.row("All dependencies")
    grid.add(
        gf.timeseries(
            "Calls by dependency",
            [Query(q.dependency_rate(), "{{dependency}}")],
            Look("Dependency calls per second.", "ops"),
        ),
        8,
        8,
    )
    grid.add(
        gf.timeseries(
            "Error ratio by dependency",
            [Query(q.dependency_error_ratio(), "{{dependency}}")],
            Look("Share of calls with outcome error.", "percentunit", _error_steps()),
        ),
        8,
        8,
    )
    grid.add(
        gf.timeseries(
            "p95 by dependency",
            [Query(q.dependency_latency(0.95), "{{dependency}}")],
            Look("95th percentile call duration.", "s", common.LATENCY_STEPS),
            lines=True,
        ),
        8,
        8,
    )


def _error_steps() -> gf.Steps:
    return gf.higher_is_worse(0.01, 0.05)


def _dependency_row(grid: gf.Grid, q: Queries, name: str, title: str) -> None:
    dep = f'{c.LABEL_DEPENDENCY}="{name}"'
    by = c.LABEL_OPERATION
    grid.row(title)
    grid.add(
        gf.timeseries(
            f"{title}: calls",
            [Query(q.dependency_rate(dep, by=by), "{{operation}}")],
            Look(f"Calls per second to {title}, by operation.", "ops"),
            stacked=True,
        ),
        8,
        7,
    )
    grid.add(
        gf.timeseries(
            f"{title}: error ratio",
            [Query(q.dependency_error_ratio(dep, by=by), "{{operation}}")],
            Look(
                f"Share of {title} calls that failed, by operation.", "percentunit", _error_steps()
            ),
        ),
        8,
        7,
    )
    latencies = [Query(q.dependency_latency(p, dep, by=""), f"p{p * 100:.0f}") for p in (0.5, 0.95)]
    grid.add(
        gf.timeseries(
            f"{title}: p50 / p95",
            latencies,
            Look(
                f"Median and 95th percentile duration of {title} calls.", "s", common.LATENCY_STEPS
            ),
            lines=True,
        ),
        8,
        7,
    )


def _dependency_slo(grid: gf.Grid, q: Queries, service: ServiceView, slo: SloView) -> None:
    threshold = slo.threshold_seconds or 1.0
    matchers = slo.histogram.matchers if slo.histogram else ()
    dependency = slo.histogram.label_value(c.LABEL_DEPENDENCY) if slo.histogram else None
    grid.row(f"SLO {slo.name}")
    grid.add(
        gf.timeseries(
            f"Calls within {threshold:g} s",
            [Query(q.dependency_share_within(threshold, *matchers), "within")],
            Look(
                f"Share of {dependency or 'dependency'} calls answered within "
                f"{threshold:g} s; the SLO wants {slo.objective:g} % (dashed line).",
                "percentunit",
                gf.lower_is_worse(slo.target, slo.target),
                bounds=(0, 1),
            ),
            lines=True,
        ),
        12,
        7,
    )
    grid.add(
        gf.stat(
            "Budget left",
            [Query(common.budget_remaining(service, slo))],
            Look(
                f"Share of the {slo.name} error budget left.",
                "percentunit",
                gf.lower_is_worse(0.0, 0.25),
            ),
        ),
        6,
        7,
    )
    window = slo.windows[0] if slo.windows else "1h"
    grid.add(
        gf.stat(
            f"Burn rate {window}",
            [Query(common.burn_rate(service, slo, window))],
            Look(f"Budget burn rate of {slo.name} over {window}.", "x", common.burn_steps(slo)),
        ),
        6,
        7,
    )
