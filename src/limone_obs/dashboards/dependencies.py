"""Dependencies: where the 2 s go (the AI API, the database, the cache, templates...).

One section per dependency the service tracks, whatever the app calls it: the section is
a row Grafana repeats over ``$dependency`` (the job's ``dependency`` label values, all
selected), so a service tracking ``stripe`` and ``s3`` gets their rows, and none stays
empty for a name it never uses.
"""

from __future__ import annotations

from typing import Any

from grafanalib.core import Dashboard

from limone_obs import conventions as c
from limone_obs.dashboards import _grafana as gf
from limone_obs.dashboards import common
from limone_obs.dashboards._grafana import Look, Query
from limone_obs.dashboards.queries import Queries, le_matcher, ratio, sum_rate
from limone_obs.dashboards.slo_inputs import ServiceView, SloView
from limone_obs.errors import DashboardError

#: The repeated section's dependency, as each of its copies sees it.
DEPENDENCY = f"${c.VAR_DEPENDENCY}"


def build(queries: Queries, service: ServiceView) -> Dashboard:
    """The dependency breakdown (uid ``dashboard_uid(service, "dependencies")``)."""
    grid = gf.Grid()
    grid.row("Where the time goes")
    targets = common.latency_targets(service, queries.names.request_duration)
    grid.add_all(
        [(_seconds_per_request(queries, targets), 16, 9), (_cache_hit_ratio(queries), 8, 9)]
    )
    grid.add_all([(calls_per_request(queries), 16, 8), (_outside_requests(queries), 8, 8)])
    grid.row("All dependencies")
    lines = _slo_lines(service, queries.names.dependency_duration)
    grid.add_all([(panel, 8, 8) for panel in _all_dependencies(queries, lines)])
    grid.row(DEPENDENCY, repeat=c.VAR_DEPENDENCY)
    grid.add_all([(panel, 8, 7) for panel in _dependency_panels(queries, lines)])
    for slo in common.latency_slos(service, queries.names.dependency_duration):
        grid.row(f"SLO {slo.name}")
        grid.add_all(_dependency_slo(service, slo))
    return common.board(
        service,
        common.DEPENDENCIES,
        "Dependencies",
        "Where a request's time goes, and the calls, errors and latency of every dependency "
        "the service tracks (one row each).",
        grid,
        variables=common.variables(queries, dependency=True, service=service),
        annotations=common.timeline(queries, service),
    )


CALLS_PER_REQUEST_TITLE = "Calls per request: mean / p95"


def calls_per_request(q: Queries) -> Any:
    """Mean and p95 of the calls one request makes to each dependency, by endpoint."""
    legend = "{{endpoint}} {{dependency}}"
    queries = [
        Query(q.mean_calls_per_request(), f"mean {legend}"),
        Query(q.calls_per_request(0.95), f"p95 {legend}"),
    ]
    bounds = ", ".join(f"{b:g}" for b in c.CALLS_PER_REQUEST_BUCKETS)
    look = Look(
        "How many times one request calls each dependency, by endpoint (counted by track() "
        "per request). The mean is exact; the p95 is in whole calls, exact when the "
        f"calls sit on the bucket bounds ({bounds}), else an estimate inside its bucket. "
        "A count that grows with the "
        "data, not 1, is an N+1 query loop; the cache cutting AI or DB calls shows here too.",
        "short",
        gf.higher_is_worse(10, 20),
        bounds=(0, None),
    )
    return gf.timeseries(CALLS_PER_REQUEST_TITLE, queries, look)


def _seconds_per_request(q: Queries, targets: common.LatencyTargets) -> Any:
    queries = [
        Query(q.dependency_seconds_per_request(), "{{dependency}}"),
        Query(q.app_seconds_per_request(), "app (outside dependencies)"),
    ]
    look = Look(
        "Average seconds each request spends in each dependency, and while no tracked "
        "call works for it (app: the app's own time), stacked; the top of the stack is the "
        f"mean request duration; {targets.lines}. Calls that run at the same time (a "
        "thread pool, asyncio.gather) or inside another tracked call each add their whole "
        "time to their dependency, so the stack then rises above the mean duration; the "
        "app's time counts such overlapping time once, and stays the app's own. Calls of "
        "no request are in Dependency time outside requests.",
        "s",
        targets.steps,
    )
    return gf.timeseries("Seconds per request", queries, look, stacked=True, lines=True)


def _outside_requests(q: Queries) -> Any:
    look = Look(
        "Seconds per second each dependency spends in calls that no request is charged "
        "with (not in Seconds per request): background jobs, thread-pool work submitted "
        "without the request's context (limone_obs.context.submit carries it), and "
        "requests to the excluded paths (LIMONE_OBS_EXCLUDED_PATHS: a health check "
        "pinging the database). A request's calls are charged when it ends, so a long "
        "(streamed) request's show here until then.",
        "s",
        bounds=(0, None),
    )
    query = Query(q.dependency_seconds_outside_requests(), "{{dependency}}")
    return gf.timeseries("Dependency time outside requests", [query], look)


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


def _slo_lines(service: ServiceView, histogram: str) -> Look:
    """The latency look of dependency calls: a dashed line at each threshold of the
    spec's dependency latency SLOs, named in the description (the request latency SLO's
    targets are not a dependency's: a trial read a 0.37 s payments p95 as fine against
    the request's 1 s, while its own SLO wanted 0.25 s); none without such an SLO."""
    slos = common.latency_slos(service, histogram)
    if not slos:
        return Look(
            "no dashed line: the spec has no latency SLO on dependency calls (the request "
            "latency SLO's targets are not a dependency's)",
            "s",
        )
    thresholds = sorted({slo.threshold_seconds or 1.0 for slo in slos})
    named = ", ".join(
        f"{slo.threshold_seconds or 1.0:g} s for {_dependency_of(slo)} ({slo.name})" for slo in slos
    )
    steps: gf.Steps = (("green", None), *(("red", t) for t in thresholds))
    return Look(
        f"dashed lines at the thresholds of the spec's dependency SLOs: {named}", "s", steps
    )


def _dependency_of(slo: SloView) -> str:
    """The dependency an SLO's histogram selects (``payments calls``), or ``all calls``."""
    dependency = slo.histogram.label_value(c.LABEL_DEPENDENCY) if slo.histogram else None
    return f"{dependency} calls" if dependency else "all calls"


def _all_dependencies(q: Queries, lines: Look) -> list[Any]:
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
            Look(
                f"95th percentile call duration, {INTERPOLATED}; {lines.description}.",
                "s",
                lines.thresholds,
            ),
            lines=True,
        ),
    ]


#: What a percentile of a histogram is, said on the dependency latency panels.
INTERPOLATED = (
    "interpolated inside the bucket it falls in (calls of 10 ms in the 10-25 ms bucket "
    "read up to 25 ms: the fewer buckets around a dependency's usual time, the rougher)"
)


def _dependency_panels(q: Queries, lines: Look) -> list[Any]:
    """The repeated section's panels: calls, errors and latency of ``$dependency``."""
    # =~: Grafana regex-escapes a multi-value variable's value (a name may hold a dot).
    dep, by, legend = f'{c.LABEL_DEPENDENCY}=~"{DEPENDENCY}"', c.LABEL_OPERATION, "{{operation}}"
    calls = Look(f"Calls per second to {DEPENDENCY}, by operation.", "ops")
    errors = Look(
        f"Share of {DEPENDENCY} calls that failed, by operation.", "percentunit", ERROR_STEPS
    )
    latency = Look(
        f"Median and 95th percentile duration of successful {DEPENDENCY} calls (failures, "
        "often fast timeouts or refusals, are in the error ratio instead), "
        f"{INTERPOLATED}; {lines.description}.",
        "s",
        lines.thresholds,
    )
    ok = f'{c.LABEL_OUTCOME}="{c.OUTCOME_OK}"'
    percentiles = [
        Query(q.dependency_latency(p, dep, ok, by=""), f"p{p * 100:.0f}") for p in (0.5, 0.95)
    ]
    return [
        gf.timeseries(
            f"{DEPENDENCY}: calls",
            [Query(q.dependency_rate(dep, by=by), legend)],
            calls,
            stacked=True,
        ),
        gf.timeseries(
            f"{DEPENDENCY}: error ratio",
            [Query(q.dependency_error_ratio(dep, by=by), legend)],
            errors,
        ),
        gf.timeseries(f"{DEPENDENCY}: p50 / p95", percentiles, latency, lines=True),
    ]


def good_ratio(slo: SloView) -> str:
    """Share of ``slo``'s events that are good, exactly as its SLI counts them.

    Good: within the threshold AND in the SLO's good part (``outcome="ok"``: a failed AI
    call is never good, however fast); all: every call of the histogram.
    """
    if slo.histogram is None:
        raise DashboardError(f"SLO {slo.name!r} has no histogram to draw calls within")
    le = le_matcher(slo.threshold_seconds or 1.0)
    good = slo.good or slo.histogram
    fast = sum_rate(f"{good.metric}_bucket", *good.matchers, le)
    if good != slo.histogram:
        fast = f"{fast} or vector(0)"  # every call failed: no good series at all, share 0
    total = sum_rate(f"{slo.histogram.metric}_count", *slo.histogram.matchers)
    return ratio(fast, total)


def _dependency_slo(service: ServiceView, slo: SloView) -> list[tuple[Any, int, int]]:
    threshold = slo.threshold_seconds or 1.0
    share = Look(
        f"Share of {_dependency_of(slo)} answered successfully within "
        f"{threshold:g} s, the SLO's good ratio (a failed call is bad however fast); the SLO "
        f"wants {slo.objective:.10g} % (dashed line).",
        "percentunit",
        gf.lower_is_worse(slo.target, slo.target),
        bounds=(0, 1),
    )
    budget = Look(
        f"Share of the {slo.name} error budget left.", "percentunit", gf.lower_is_worse(0.0, 0.25)
    )
    window = slo.windows[0] if slo.windows else "1h"
    burn = Look(f"Budget burn rate of {slo.name} over {window}.", "x", common.burn_steps(slo))
    within = Query(good_ratio(slo), "good")
    return [
        (gf.timeseries(f"Calls within {threshold:g} s", [within], share, lines=True), 12, 7),
        (gf.stat("Budget left", [Query(common.budget_remaining(service, slo))], budget), 6, 7),
        (
            gf.stat(f"Burn rate {window}", [Query(common.burn_rate(service, slo, window))], burn),
            6,
            7,
        ),
    ]
