"""Service overview (RED): is the service healthy, and where does it hurt?

The first row is the answer (every SLO's state, the scrape targets, the firing alerts),
the next the request numbers now, then "where" (endpoints, instances): all above the fold.
Graphs over time, saturation and process panels follow.
"""

from __future__ import annotations

from typing import Any

from grafanalib.core import Dashboard

from limone_obs import conventions as c
from limone_obs.dashboards import _grafana as gf
from limone_obs.dashboards import common
from limone_obs.dashboards._grafana import Look, Query, override
from limone_obs.dashboards.queries import (
    RANGE,
    Queries,
    known,
    matchers,
    over_range,
    rate,
    slo_matchers,
)
from limone_obs.dashboards.slo_inputs import ServiceView, SloView

QUANTILES = (0.5, 0.95, 0.99)
Cell = tuple[Any, int, int]


def build(queries: Queries, service: ServiceView) -> Dashboard:
    """The RED overview of ``service`` (uid ``dashboard_uid(service, "overview")``)."""
    grid = gf.Grid()
    grid.row("Service level")
    grid.add_all([(slo_table(service), 10, 7), (_targets(), 4, 7), (_firing(service), 10, 7)])
    grid.row("Now")
    targets = common.latency_targets(service, queries.names.request_duration)
    limit = common.error_limit(service, queries.names.requests_total)
    grid.add_all(_request_stats(queries, limit, targets))
    grid.row("Where")
    grid.add_all([(endpoint_table(queries, service), 14, 9), (_instance_table(queries), 10, 9)])
    grid.row("Errors and latency")
    grid.add_all(_errors_and_latency(queries, service))
    grid.row("Traffic")
    grid.add_all([(_rate_by(queries, label), 8, 8) for label in _BREAKDOWNS])
    grid.row("Saturation")
    grid.add_all([(saturation(queries), 12, 8), (_in_flight(queries), 12, 8)])
    grid.row("Process")
    grid.add_all([(panel, 6, 7) for panel in _process_panels()])
    grid.row("Kit health")
    grid.add_all([(_kit_health(queries), 24, 6)])
    return common.board(
        service,
        common.OVERVIEW,
        "Service overview",
        f"Every SLO of {service.service} first, then rate, errors and duration, and where.",
        grid,
        variables=common.variables(queries, baseline=True, service=service),
        annotations=common.timeline(queries, service),
    )


# --- first row: the answer -----------------------------------------------------------
#: Value of the "burning" column for an alert of an SLO without burn tiers (ErrorsHigh).
FIRING_WITHOUT_TIER = -1


def _by_slo(expr: str) -> str:
    return f"max by ({c.LABEL_SLO}) ({expr})"


def _tier_firing(service: ServiceView, slo: SloView) -> list[str]:
    """One term per tier: the tier's factor while its alert fires."""
    scope = slo_matchers(service.service, slo.name)[1:-1]
    out = []
    for tier in slo.tiers:
        windows = (
            f'{c.LABEL_LONG_WINDOW}="{tier.long_window}", '
            f'{c.LABEL_SHORT_WINDOW}="{tier.short_window}"'
        )
        alert = f'{c.SERIES_ALERTS}{{alertstate="firing", {scope}, {windows}}}'
        out.append(f"{alert} * 0 + {tier.factor:g}")
    return out


def fastest_tier(service: ServiceView) -> str:
    """Per SLO: the factor of its fastest-burning tier firing now, else 0 (an SLO with an
    objective record, or with an SLI from the raw series: see :func:`_raw_slis`).

    An alert of an SLO without tiers (a threshold, an up SLO) shows as
    ``FIRING_WITHOUT_TIER``.
    """
    terms = [term for slo in service.slos for term in _tier_firing(service, slo)]
    scope = f'{c.LABEL_SLO_SERVICE}="{service.service}"'
    untiered = [slo.name for slo in service.slos if not slo.tiers]
    parts = [_by_slo("\nor\n".join(terms))] if terms else []
    if untiered:
        alert = f'{c.SERIES_ALERTS}{{alertstate="firing", {scope}, slo=~"{"|".join(untiered)}"}}'
        parts.append(f"{_by_slo(alert)} * 0 + {FIRING_WITHOUT_TIER}")
    listed = "\nor\n".join([f"{c.RULE_OBJECTIVE}{{{scope}}}", *_raw_slis(service)])
    parts.append(_by_slo(listed) + " * 0")
    return "\nor\n".join(f"({part})" for part in parts)


def _raw_slis(service: ServiceView) -> list[str]:
    """The SLI now of each SLO without recording rules (an up SLO: the share of its
    targets up), labelled ``slo="<name>"``: the table's row of an SLO that has no objective
    record to list it."""
    return [
        f'label_replace({slo.raw_sli}, "{c.LABEL_SLO}", "{slo.name}", "", "")'
        for slo in service.slos
        if slo.raw_sli is not None
    ]


def _unrecorded_note(service: ServiceView) -> str:
    names = [slo.name for slo in service.slos if slo.raw_sli is not None]
    if not names:
        return ""
    return (
        f" SLOs without recording rules ({', '.join(names)}) have no objective or budget: "
        "their SLI is read now from the raw series (an up SLO: the share of its scrape "
        "targets up)."
    )


def _tier_mappings(service: ServiceView) -> list[dict[str, Any]]:
    texts: dict[str, dict[str, Any]] = {
        "0": {"text": "none", "color": "green", "index": 0},
        str(FIRING_WITHOUT_TIER): {"text": "firing", "color": "red", "index": 1},
    }
    for slo in service.slos:
        for tier in slo.tiers:
            colour = "red" if tier.severity == c.SEVERITY_PAGE else "orange"
            text = f"{tier.severity} {tier.long_window}/{tier.short_window} ({tier.factor:g}x)"
            texts.setdefault(f"{tier.factor:g}", {"text": text, "color": colour})
    for index, value in enumerate(texts.values()):
        value["index"] = index
    return [{"type": "value", "options": texts}]


def slo_table(service: ServiceView) -> Any:
    """One row per SLO of the spec: objective, SLI, budget left, the fastest burn tier
    firing now. An SLO without recording rules (``up``) has no objective or budget: its
    row comes from its SLI read from the raw series (:func:`_raw_slis`)."""
    scope = f'{{{c.LABEL_SLO_SERVICE}="{service.service}"}}'
    # Each recorded ratio without its NaN (no event counted: see queries.known), so an
    # SLO whose SLI counted nothing shows an empty cell, not NaN.
    period = known(f"{c.RULE_PERIOD_SLI_ERROR}{scope}")
    recent = known(f"{c.sli_error_ratio_rule(c.SLI_WINDOWS[0])}{scope}")
    recorded = f"1 - ({period}\nor on ({c.LABEL_SLO})\n{recent})"
    sli = f"\nor on ({c.LABEL_SLO})\n".join([f"({recorded})", *_raw_slis(service)])
    exprs = (
        _by_slo(f"{c.RULE_OBJECTIVE}{scope}"),
        _by_slo(sli),
        _by_slo(known(f"{c.RULE_PERIOD_BUDGET_REMAINING}{scope}")),
        fastest_tier(service),
    )
    columns = (("Value #A", "objective"), ("Value #B", "SLI"), ("Value #C", "budget left"))
    overrides = [gf.column(field, title, "percentunit") for field, title in columns]
    overrides.append(gf.column("Value #D", "burning", "none", mappings=_tier_mappings(service)))
    look = Look(
        f"Every SLO of {service.service}, service-wide (all instances of job "
        f"{service.job}; empty while $job is another job): objective, SLI over "
        f"{service.period} (over "
        f"{c.SLI_WINDOWS[0]} for SLOs without a budget), share of the error budget left, "
        f"and the fastest burn-rate tier firing now.{_unrecorded_note(service)}",
        "short",
        extra={
            "fieldConfig": {"overrides": overrides},
            "transformations": [
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {"excludeByName": {"Time": True}}},
            ],
        },
    )
    queries = [Query(common.for_spec_job(e, service), instant=True, table=True) for e in exprs]
    return gf.table("SLOs", queries, look)


def _targets() -> Any:
    up = f"{c.SERIES_UP}{matchers()}"
    # Now: up (0 after a failed scrape); a target seen in the range but gone now: 0; none
    # at all: one 0 named "no target". Instant, so nothing stays green on an old value.
    gone = f"max_over_time({up}[{RANGE}]) * 0"
    none = f'label_replace(vector(0), "{c.LABEL_INSTANCE}", "no target", "", "")'
    expr = f"{up}\nor on ({c.LABEL_INSTANCE})\n{gone}\nor on ()\n{none}"
    texts = {
        "0": {"text": "DOWN", "color": "red", "index": 0},
        "1": {"text": "UP", "color": "green", "index": 1},
    }
    null = {"match": "null", "result": {"text": "DOWN", "color": "red", "index": 2}}
    mappings = [{"type": "value", "options": texts}, {"type": "special", "options": null}]
    look = Look(
        "Each scrape target of $job now: UP when Prometheus scraped it last time, DOWN when "
        "the scrape failed, when the target was seen in the selected range but is gone, or "
        "when no target of $job is left.",
        "none",
        (("red", None), ("green", 1.0)),
        extra={"fieldConfig": {"defaults": {"mappings": mappings, "noValue": "DOWN"}}},
    )
    return gf.stat("Targets", [Query(expr, "{{instance}}", instant=True)], look, reduce="last")


def _firing(service: ServiceView) -> Any:
    scope = f'{c.LABEL_SLO_SERVICE}="{service.service}"'
    by = f"alertname, {c.LABEL_SEVERITY}, {c.LABEL_SLO}"
    expr = f'sum by ({by}) ({c.SERIES_ALERTS}{{alertstate="firing", {scope}}})'
    hide = {"excludeByName": {"Time": True, "Value": True}}
    look = Look(
        f"Alerts of {service.service} firing now, with severity and SLO (empty when all is "
        "well). Alerts also mark every time-series panel (annotations).",
        "short",
        (("green", None), ("red", 1.0)),
        extra={"transformations": [{"id": "organize", "options": hide}]},
    )
    return gf.table("Firing alerts", [Query(expr, instant=True, table=True)], look)


# --- now -----------------------------------------------------------------------------
def _request_stats(q: Queries, limit: float, targets: common.LatencyTargets) -> list[Cell]:
    rate_look = Look("Requests answered per second, all endpoints.", "reqps")
    error_look = Look(
        f"Share of responses with a 5xx status; the limit is {limit * 100:g} %.",
        "percentunit",
        gf.higher_is_worse(limit / 2, limit),
    )
    cells = [
        (gf.stat("Request rate", [Query(q.request_rate())], rate_look), 5, 4),
        (gf.stat("5xx ratio", [Query(q.error_ratio())], error_look), 5, 4),
    ]
    for quantile in (0.95, 0.99):
        look = Look(
            f"{quantile:.0%} of requests finish within this time; {targets.colours}.",
            "s",
            targets.steps,
        )
        title = f"p{quantile * 100:.0f} latency"
        cells.append((gf.stat(title, [Query(q.latency(quantile))], look), 5, 4))
    in_flight = Look("Requests being served right now (summed over workers).", "short")
    cells.append((gf.stat("In flight", [Query(q.in_progress())], in_flight), 4, 4))
    return cells


# --- where ---------------------------------------------------------------------------
#: Columns of the endpoint and instance tables: (query ref field, title, unit).
_COLUMNS = (
    ("Value #A", "req/s", "reqps"),
    ("Value #B", "5xx", "percentunit"),
    ("Value #C", "p95", "s"),
)


def _summary_table(title: str, q: Queries, by: str, description: str, links: list[Any]) -> Any:
    overrides = [gf.column(field, title, unit) for field, title, unit in _COLUMNS]
    if links:
        overrides.append(override(by, "links", links))
    rename = {"excludeByName": {"Time": True}}
    look = Look(
        description,
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
    queries = [Query(over_range(e), instant=True, table=True) for e in exprs]
    return gf.table(title, queries, look)


def endpoint_table(q: Queries, service: ServiceView) -> Any:
    """Per-endpoint rate, error % and p95 over the selected range, linking to the drill-down."""
    return _summary_table(
        "Endpoints",
        q,
        c.LABEL_ENDPOINT,
        "Per URL rule over the selected time range: requests/s, 5xx share and p95 latency. "
        "Click an endpoint to open its drill-down on the same time range and instances.",
        [_drill_down_link(service)],
    )


def _instance_table(q: Queries) -> Any:
    return _summary_table(
        "Instances",
        q,
        c.LABEL_INSTANCE,
        "Per scrape target over the selected time range: requests/s, 5xx share and p95 "
        "latency; one bad host stands out here before it moves the service's numbers.",
        [],
    )


def _drill_down_link(service: ServiceView) -> dict[str, str]:
    params = "&".join(
        f"${{{var}:queryparam}}" for var in (c.VAR_DATASOURCE, c.VAR_JOB, c.VAR_INSTANCE)
    )
    return {
        "title": "Drill down into ${__value.raw}",
        "url": f"/d/{common.uid(service, common.ENDPOINT)}?{params}"
        f"&var-{c.VAR_ENDPOINT}=${{__value.raw:percentencode}}&${{__url_time_range}}",
    }


# --- over time -----------------------------------------------------------------------
#: Traffic breakdowns: label, title, description.
_BREAKDOWNS = (
    (c.LABEL_ENDPOINT, "Requests per second by Flask URL rule; <unmatched> collects 404/405."),
    ("status_class", "Requests per second by status class (2xx, 3xx, 4xx, 5xx)."),
    (c.LABEL_METHOD, "Requests per second by HTTP method (unknown methods count as OTHER)."),
)


def _rate_by(q: Queries, breakdown: tuple[str, str]) -> Any:
    label, description = breakdown
    expr = q.status_class_rate() if label == "status_class" else q.request_rate(by=label)
    extra = {"fieldConfig": {"overrides": gf.status_colours()}} if label == "status_class" else {}
    title = f"Rate by {label.replace('_', ' ')}"
    look = Look(description, "reqps", extra=extra)
    return gf.timeseries(title, [Query(expr, f"{{{{{label}}}}}")], look, stacked=True)


def _with_baseline(description: str) -> str:
    return f"{description} With $baseline set, the dashed grey line is the same series then."


def _errors_and_latency(q: Queries, service: ServiceView) -> list[Cell]:
    limit = common.error_limit(service, q.names.requests_total)
    targets = common.latency_targets(service, q.names.request_duration)
    dashed = {"fieldConfig": {"overrides": [common.baseline_style()]}}
    errors = Look(
        _with_baseline(f"Share of 5xx responses; the dashed line is the {limit * 100:g} % limit."),
        "percentunit",
        gf.higher_is_worse(limit, limit),
        bounds=(0, None),
        extra=dashed,
    )
    latency = Look(
        _with_baseline(f"Request duration percentiles; {targets.lines}. {common.QUANTILE_NOTE}"),
        "s",
        targets.steps,
        bounds=(0, None),
        extra=dashed,
    )
    ratio = [
        Query(q.error_ratio(), "5xx ratio"),
        Query(common.baseline(q.error_ratio()), f"5xx ratio {common.BASELINE_LEGEND}"),
    ]
    percentiles = [Query(q.latency(p), f"p{p * 100:.0f}") for p in QUANTILES]
    percentiles.append(Query(common.baseline(q.latency(0.95)), f"p95 {common.BASELINE_LEGEND}"))
    heatmap = Look("Requests per duration bucket over time; darker cells hold more requests.", "s")
    return [
        (gf.timeseries("5xx ratio", ratio, errors, lines=True), 12, 8),
        (gf.timeseries("Latency percentiles", percentiles, latency, lines=True), 12, 8),
        (_share_within(q, targets), 12, 8),
        (
            gf.heatmap("Latency distribution", Query(q.heatmap(), "{{le}}", heatmap=True), heatmap),
            12,
            8,
        ),
    ]


def _share_within(q: Queries, targets: common.LatencyTargets) -> Any:
    """The share of requests within each latency target, the committed one first."""
    threshold = targets.seconds[-1]
    objective = targets.objective if targets.objective is not None else 0.95
    wants = f"the latency SLO wants {objective * 100:g} %" if targets.objective else "95 % is"
    look = Look(
        f"Share of requests served within each latency target ({targets.goal}); {wants} "
        f"within {threshold:g} s (dashed line).",
        "percentunit",
        gf.lower_is_worse(objective, objective),
        bounds=(0, 1),
    )
    queries = [Query(q.share_within(t), f"within {t:g} s") for t in reversed(targets.seconds)]
    return gf.timeseries(f"Requests within {threshold:g} s", queries, look, lines=True)


# --- saturation ----------------------------------------------------------------------
CAPACITY_LEGEND = "capacity"


def saturation(q: Queries) -> Any:
    """In-flight requests against the workers able to serve them (dashed capacity line)."""
    dashed = {
        "matcher": {"id": "byName", "options": CAPACITY_LEGEND},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "custom.fillOpacity", "value": 0},
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
        ],
    }
    look = Look(
        "Requests being served against the capacity (dashed): busy plus idle workers "
        f"(threads) from {q.names.workers}, published by the packaged gunicorn config "
        f"({c.GUNICORN_CONFIG_MODULE}). Without that series only the in-flight requests are "
        "drawn: the capacity is then unknown, not infinite. A scrape is served by a worker "
        "too, so this scrape-time count reads at most one below the line (a saturated pool "
        "holds the scrape until a worker is free): the Worker saturation panel of the User "
        "experience dashboard shows saturation.",
        "short",
        bounds=(0, None),
        extra={"fieldConfig": {"overrides": [dashed]}},
    )
    queries = [
        Query(q.in_progress(), "in flight"),
        Query(q.workers(f'{c.LABEL_STATE}="{c.WORKER_BUSY}"'), "workers busy"),
        Query(q.workers(), CAPACITY_LEGEND),
    ]
    return gf.timeseries("In flight vs capacity", queries, look)


def _in_flight(q: Queries) -> Any:
    look = Look("Requests being served right now, by endpoint (summed over workers).", "short")
    query = Query(q.in_progress(by=c.LABEL_ENDPOINT), "{{endpoint}}")
    return gf.timeseries("In-flight requests", [query], look, stacked=True)


def _kit_health(q: Queries) -> Any:
    """What the ExporterProblem and LogLinesDropped tickets read (their alerts link here)."""
    ns = q.names.namespace
    problems = f"max by ({c.LABEL_PROBLEM}) ({ns}_{c.SUFFIX_EXPORTER_PROBLEMS}{matchers()})"
    dropped = f"sum({rate(f'{ns}_{c.SUFFIX_LOG_LINES_DROPPED_TOTAL}')}) or vector(0)"
    look = Look(
        "1 while the exporter knows of a problem in itself (by problem: multiprocess not "
        "configured, storage full or unwritable, leftover files, a metric name clash): its "
        "numbers are incomplete until it is fixed (runbook: health.md). And log lines "
        "dropped per second because the log sink was blocked.",
        "short",
    )
    return gf.timeseries(
        "Exporter problems and dropped log lines",
        [Query(problems, "{{problem}}"), Query(dropped, "log lines dropped/s")],
        look,
    )


def _process_panels() -> list[Any]:
    gc = f"sum by ({c.LABEL_GC_GENERATION}) ({rate(c.SERIES_GC_COLLECTIONS)})"
    counted = common.PROCESS_NOTE + common.RETIRED_NOTE
    specs = (
        ("CPU", rate(c.SERIES_PROCESS_CPU), "{{instance}}",
         "CPU time used per second (1 = one core)." + counted, "percentunit"),
        ("Resident memory", f"{c.SERIES_PROCESS_MEMORY}{matchers()}", "{{instance}}",
         "Resident set size of the process." + common.PROCESS_NOTE, "bytes"),
        ("Open file descriptors", f"{c.SERIES_PROCESS_FDS}{matchers()}", "{{instance}}",
         "File descriptors held open (sockets, files)." + common.PROCESS_NOTE, "short"),
        ("GC collections", gc, "gen {{generation}}",
         "Python garbage collections per second by generation." + counted, "ops"),
    )  # fmt: skip
    return [
        gf.timeseries(title, [Query(expr, legend)], Look(text, unit))
        for title, expr, legend, text, unit in specs
    ]
