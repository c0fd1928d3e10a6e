"""What several dashboards share: names per service, variables, SLO lookups and queries.

The service name (``slo_service`` of the spec) drives every name a dashboard carries in
Grafana: its uid (``conventions.dashboard_uid``), its title, its tag (the dashboards of
one service link to each other by it) and its folder, so several services share one
Grafana without overwriting each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafanalib.core import Dashboard

from limone_obs import conventions as c
from limone_obs.dashboards import _grafana as gf
from limone_obs.dashboards.queries import RATE_INTERVAL, Queries, known, matchers, slo_matchers
from limone_obs.dashboards.slo_inputs import (
    KIND_LATENCY,
    KIND_RATIO,
    KIND_THRESHOLD,
    ServiceView,
    SloView,
)

#: The request latency targets when the spec has no latency SLO on the request
#: histogram: the kit's 0.6 s and 1 s.
DEFAULT_LATENCY_TARGETS: tuple[float, ...] = tuple(sorted(c.SLO_LATENCY_THRESHOLDS))
#: Error ratio limit when the spec has no ``errors`` SLO (1 %, the mission's).
DEFAULT_ERROR_LIMIT = 0.01
#: The dashboards of one service, by the name given to ``conventions.dashboard_uid``.
OVERVIEW, SLOS, DEPENDENCIES, ENDPOINT, LOGS, UX = (
    c.DASHBOARD_OVERVIEW,
    c.DASHBOARD_SLOS,
    c.DASHBOARD_DEPENDENCIES,
    c.DASHBOARD_ENDPOINT,
    c.DASHBOARD_LOGS,
    c.DASHBOARD_UX,
)
PROCESS_NOTE = " Under gunicorn (multiprocess mode): the master and every live worker, summed."
#: Said of the process counters (CPU, GC) only: memory and descriptors are live values.
RETIRED_NOTE = " Retired workers' count too: it never goes down when a worker is recycled."


def uid(service: ServiceView, dashboard: str) -> str:
    """uid of ``dashboard`` (``overview``, ``slos``...) of ``service``."""
    return c.dashboard_uid(service.service, dashboard)


def service_title(service: ServiceView) -> str:
    """Display name of ``service``: "LimoneIDE" for the kit's own service, else its name."""
    if service.service == c.DASHBOARD_FOLDER_UID:
        return c.DASHBOARD_FOLDER_TITLE
    return service.service


def title(service: ServiceView, what: str) -> str:
    """Dashboard title ``<service title> / <what>``, unique per service."""
    return f"{service_title(service)} / {what}"


def variables(
    queries: Queries,
    *,
    endpoint: bool = False,
    dependency: bool = False,
    baseline: bool = False,
    service: ServiceView | None = None,
    spec_job_only: bool = False,
) -> list[object]:
    """``$datasource``, ``$job``, ``$instance`` (multi), optionally ``$endpoint``,
    ``$dependency`` (multi: the job's dependency names, all selected) and ``$baseline``;
    ``$job`` opens on ``service``'s scrape job when given, and offers no other job with
    ``spec_job_only`` (a dashboard whose every panel is of that job's SLOs: another
    service's traffic in the same namespace beside this one's SLO numbers would mix the
    two without a word)."""
    series = queries.names.requests_total
    job_filter = f'{c.LABEL_JOB}="${c.VAR_JOB}"'
    jobs = (
        f"{series}{{{c.LABEL_JOB}={c.promql_string(service.job)}}}"
        if spec_job_only and service is not None
        else series
    )
    out: list[object] = [
        gf.datasource_variable(
            c.VAR_DATASOURCE,
            c.DATASOURCE_TYPE_PROMETHEUS,
            "Prometheus",
            c.DATASOURCE_UID_PROMETHEUS,
        ),
        gf.query_variable(
            c.VAR_JOB,
            f"label_values({jobs}, {c.LABEL_JOB})",
            "Job",
            datasource=gf.PROMETHEUS,
            default=service.job if service is not None else None,
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
    if dependency:
        calls = queries.names.dependency_duration_count
        query = f"label_values({calls}{{{job_filter}}}, {c.LABEL_DEPENDENCY})"
        out.append(
            gf.query_variable(
                c.VAR_DEPENDENCY, query, "Dependency", datasource=gf.PROMETHEUS, multi=True
            )
        )
    if baseline:
        out.append(baseline_variable())
    return out


def for_spec_job(expr: str, service: ServiceView) -> str:
    """``expr`` (a recording rule of ``service``) only while ``$job`` is the spec's job.

    The SLO rules are computed over the spec's job, all instances: shown next to panels
    of another ``$job`` they would be wrong without a word; empty is honest.
    """
    spec_job = c.promql_string(service.job)
    up = f'{c.SERIES_UP}{{{c.LABEL_JOB}="${c.VAR_JOB}", {c.LABEL_JOB}={spec_job}}}'
    return f"({expr})\nand on ()\n(count({up}) > 0)"


def availability(service: ServiceView) -> SloView | None:
    """The first ``ratio`` SLO with burn tiers: availability (drawn on the overview)."""
    return next((s for s in service.slos if s.kind == KIND_RATIO and s.tiers), None)


def latency_slos(service: ServiceView, histogram: str, *, whole: bool = False) -> list[SloView]:
    """The ``latency`` SLOs counting the histogram ``histogram`` (base name), in the spec's
    order; with ``whole``, only those counting all of the job's observations (no other
    matcher)."""
    return [
        slo
        for slo in service.slos
        if slo.kind == KIND_LATENCY
        and slo.histogram
        and slo.histogram.metric == histogram
        and not (whole and slo.histogram.matchers)
    ]


def latency_slo(service: ServiceView, histogram: str, *, whole: bool = False) -> SloView | None:
    """The first of :func:`latency_slos`, or None."""
    return next(iter(latency_slos(service, histogram, whole=whole)), None)


@dataclass(frozen=True)
class LatencyTargets:
    """The latency lines of a service's panels, from its request latency SLO.

    ``seconds``: ascending, the last one the committed threshold (``threshold_seconds``),
    those below it the SLO's next ``stages``; without a latency SLO on the request
    histogram, the kit's 0.6 s and 1 s.
    """

    seconds: tuple[float, ...]
    #: What the lines are, for panel descriptions.
    goal: str
    #: The latency SLO's objective as a ratio (0.95), None without such an SLO.
    objective: float | None = None

    @property
    def steps(self) -> gf.Steps:
        """Green below the lowest target, red from the committed threshold, the stages
        between yellow and (the one just below the threshold) orange."""
        *stages, committed = self.seconds
        colours = ["yellow"] * (len(stages) - 1) + ["orange"] if stages else []
        return (("green", None), *zip(colours, stages, strict=True), ("red", committed))

    @property
    def lines(self) -> str:
        """``dashed lines at 0.6 s and 1 s (<goal>)``: the targets, ascending."""
        shown = [f"{t:g} s" for t in self.seconds]
        joined = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
        return f"dashed line{'s' if len(shown) > 1 else ''} at {joined} ({self.goal})"

    @property
    def colours(self) -> str:
        """``red from 1 s, orange from 0.6 s (<goal>)``: what :attr:`steps` colour."""
        named = [f"{colour} from {value:g} s" for colour, value in reversed(self.steps[1:])]
        return f"{', '.join(named)} ({self.goal})"


def latency_targets(service: ServiceView, histogram: str) -> LatencyTargets:
    """The latency lines of ``service``'s panels, from the latency SLO counting all of
    ``histogram`` (the request duration), else the kit's defaults. An SLO on some of it
    (one endpoint's requests) is no target for the whole service's panels."""
    slo = latency_slo(service, histogram, whole=True)
    if slo is None or not slo.threshold_seconds:
        some = latency_slo(service, histogram)
        why = (
            "the spec has no latency SLO over all requests"
            if some is None or some.histogram is None
            else f"SLO {some.name} counts only {', '.join(some.histogram.matchers)}"
        )
        return LatencyTargets(DEFAULT_LATENCY_TARGETS, f"the kit's default targets: {why}")
    committed = slo.threshold_seconds
    stages = sorted(t for t in slo.stages if t < committed)
    goal = f"SLO {slo.name}: {slo.objective:.10g} % within {committed:g} s"
    if stages:
        goal += f", next {' then '.join(f'{t:g} s' for t in reversed(stages))}"
    return LatencyTargets((*stages, committed), goal, slo.target)


def error_limit(service: ServiceView, requests_total: str) -> float:
    """The highest acceptable 5xx ratio of all the job's requests (``requests_total``):
    the budget of a ``threshold`` SLO over all of them, else of the availability SLO over
    all of them, else 1 %. An SLO whose total keeps a matcher besides the job (one
    endpoint's errors) is no limit for the whole service."""
    whole = [
        slo
        for slo in service.slos
        if slo.total is not None and slo.total.metric == requests_total and not slo.total.matchers
    ]
    for slo in (*(s for s in whole if s.kind == KIND_THRESHOLD), availability(service)):
        if slo is not None and slo in whole:
            return slo.budget
    return DEFAULT_ERROR_LIMIT


def period_availability(service: ServiceView, slo: SloView) -> str:
    """SLI over the SLO period, from the request-weighted period rule."""
    return known(f"1 - {c.RULE_PERIOD_SLI_ERROR}{slo_matchers(service.service, slo.name)}")


def budget_remaining(service: ServiceView, slo: SloView) -> str:
    """Share of the period's error budget still left (1 = untouched, < 0 = overspent)."""
    return known(f"{c.RULE_PERIOD_BUDGET_REMAINING}{slo_matchers(service.service, slo.name)}")


def burn_rate(service: ServiceView, slo: SloView, window: str) -> str:
    """How fast ``slo`` spends its budget over ``window`` (1 = exactly on budget)."""
    scope = slo_matchers(service.service, slo.name)
    return known(
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


def board(
    service: ServiceView,
    dashboard: str,
    what: str,
    description: str,
    grid: gf.Grid,
    *,
    variables: list[object],
    annotations: list[dict[str, object]] | None = None,
) -> Dashboard:
    """Dashboard ``dashboard`` of ``service``: its uid, title ``<service> / <what>``, the
    service's tag (links between its dashboards) and the given timeline annotations."""
    return gf.dashboard(
        uid(service, dashboard),
        title(service, what),
        description,
        grid,
        variables,
        tag=service.service,
        link_title=service_title(service),
        annotations=annotations or [],
    )


# --- timeline: deploys, alerts and the baseline --------------------------------------
VAR_BASELINE = c.VAR_BASELINE
#: "none" is 1 s, not 0: Prometheus refuses ``offset 0s`` (a parse error in every panel
#: drawing a baseline); :func:`baseline`'s guard hides a shift that short.
NO_BASELINE = "1"
BASELINES = (("none", NO_BASELINE), ("1 d", "86400"), ("1 w", "604800"))
#: Said on latency percentile panels: a quantile of a histogram is estimated.
QUANTILE_NOTE = (
    "Percentiles are interpolated within the histogram's buckets, so they read between "
    "two bounds (with the default buckets, a p99 between 0.75 s and 1 s may be up to "
    "0.25 s off); the share-within panel counts requests exactly."
)
BASELINE_LEGEND = "baseline"


def baseline_variable() -> dict[str, object]:
    """A custom variable offering no baseline, yesterday or last week (seconds)."""
    options = [
        {"text": text, "value": value, "selected": index == 0}
        for index, (text, value) in enumerate(BASELINES)
    ]
    return {
        "name": VAR_BASELINE,
        "label": "Baseline",
        "type": "custom",
        "description": "Draw the same series this long ago, dashed, to compare with today.",
        "query": ",".join(f"{text} : {value}" for text, value in BASELINES),
        "current": {"text": BASELINES[0][0], "value": BASELINES[0][1]},
        "options": options,
        "hide": 0,
        "multi": False,
        "includeAll": False,
    }


def baseline(expr: str) -> str:
    """``expr`` with every rate window shifted back by ``$baseline`` seconds.

    With ``$baseline`` at :data:`NO_BASELINE` ("none") the query is valid and returns
    nothing, so no line duplicates the current one. ``expr`` must be built from
    ``queries.rate`` (every selector in a window).
    """
    window = f"[{RATE_INTERVAL}]"
    if window not in expr:
        raise ValueError(f"no [{RATE_INTERVAL}] window to shift in {expr!r}")
    shifted = expr.replace(window, f"{window} offset ${{{VAR_BASELINE}}}s")
    return f"({shifted})\nand on () (vector(${{{VAR_BASELINE}}}) > {NO_BASELINE})"


def baseline_style() -> dict[str, object]:
    """Field override drawing the baseline series as a grey dashed line."""
    return {
        "matcher": {"id": "byRegexp", "options": f"/{BASELINE_LEGEND}/"},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "text"}},
            {"id": "custom.fillOpacity", "value": 0},
        ],
    }


#: How far back a version counts as seen: a restart or failed scrapes within it are no
#: deploy (a rollback to a version run within it is not marked either).
DEPLOY_LOOKBACK = "1h"


def deploy_annotation(queries: Queries) -> dict[str, object]:
    """A mark where an instance starts reporting a version or revision it had not
    reported in the hour before (a deploy). Not an instant lookup one step back: a
    restart or a few failed scrapes (a saturated pool, a frozen worker) leave the series
    stale for a moment, and each put a "deploy" of the same version on every graph (a
    trial); a range selector skips those stale points."""
    keys = f"{c.LABEL_INSTANCE}, {c.LABEL_VERSION}, {c.LABEL_REVISION}"
    series = f"{queries.names.build_info}{matchers()}"
    seen = f"last_over_time({series}[{DEPLOY_LOOKBACK}] offset $__interval)"
    expr = f"group by ({keys}) ({series})\nunless\ngroup by ({keys}) ({seen})"
    return {
        "name": "Deploys",
        "datasource": gf.PROMETHEUS,
        "enable": True,
        "hide": False,
        "iconColor": "blue",
        "expr": expr,
        "step": "$__interval",
        "titleFormat": "Deploy {{version}}",
        "textFormat": "{{instance}} now runs {{version}} ({{revision}})",
        "tagKeys": f"{c.LABEL_INSTANCE},{c.LABEL_VERSION}",
        "useValueForTime": False,
    }


def alert_annotation(service: ServiceView) -> dict[str, object]:
    """A region while an alert of ``service`` fires (Prometheus' ``ALERTS`` series)."""
    scope = f'{c.LABEL_SLO_SERVICE}="{service.service}"'
    return {
        "name": "Alerts",
        "datasource": gf.PROMETHEUS,
        "enable": True,
        "hide": False,
        "iconColor": "red",
        "expr": f'{c.SERIES_ALERTS}{{alertstate="firing", {scope}}}',
        "step": "$__interval",
        "titleFormat": "{{alertname}}",
        "textFormat": "{{severity}}: SLO {{slo}}",
        "tagKeys": f"{c.LABEL_SEVERITY},{c.LABEL_SLO}",
        "useValueForTime": False,
    }


def timeline(queries: Queries, service: ServiceView) -> list[dict[str, object]]:
    """The annotations of every time-series dashboard: deploys, then alerts."""
    return [deploy_annotation(queries), alert_annotation(service)]
