"""User experience: what users feel (page load, AI answer shown) and why (queue, workers).

Real-user timing (``<ns>_page_load_seconds``, limone_obs.exporter.rum) against the
thresholds of the spec's page-load and AI-answer SLOs, the time requests wait before a
worker takes them
(``<ns>_request_queue_seconds``, from the proxy's ``X-Request-Start``), busy and idle
workers (``<ns>_workers``) and memory per worker (the server-wide process series).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grafanalib.core import Dashboard

from limone_obs import conventions as c
from limone_obs.dashboards import _grafana as gf
from limone_obs.dashboards import common
from limone_obs.dashboards._grafana import Look, Query
from limone_obs.dashboards.queries import (
    Queries,
    matchers,
    or_zero,
    positive,
    quantile,
    ratio,
    sum_rate,
)
from limone_obs.dashboards.slo_inputs import ServiceView

#: Targets drawn when the spec has no SLO on the phase (the seed's goals: 2 s, 1 s).
PAGE_LOAD_TARGET = max(c.RUM_THRESHOLDS)
AI_ANSWER_TARGET = min(c.RUM_THRESHOLDS)
#: Navigation phases drawn side by side (marks have their own panels).
NAVIGATION = "|".join(c.RUM_PHASES)


def _phase(value: str) -> str:
    return f'{c.LABEL_PHASE}="{value}"'


@dataclass(frozen=True)
class Target:
    """What a RUM panel draws its time against: the threshold (red from there), the next
    stage if the SLO has one (orange from there), and where they come from (the text)."""

    threshold: float
    stage: float | None
    source: str

    def steps(self) -> gf.Steps:
        """Grafana threshold steps: red from the threshold, orange from the next stage."""
        if self.stage is None:
            return (("green", None), ("red", self.threshold))
        return gf.higher_is_worse(self.stage, self.threshold)

    def text(self) -> str:
        """Where the dashed lines are, for the panel description."""
        if self.stage is None:
            return f"dashed line at the {self.threshold:g} s target ({self.source})"
        return (
            f"dashed lines at the {self.threshold:g} s target and the {self.stage:g} s next "
            f"stage ({self.source})"
        )


def rum_target(service: ServiceView, metric: str, phase: str, default: float) -> Target:
    """The target of ``phase`` of the page-load histogram ``metric``: the committed
    threshold and next stage of the spec's SLO on that phase (the first, if several),
    else ``default`` with no stage."""
    for slo in service.slos:
        series = slo.histogram
        if (
            series is not None
            and slo.threshold_seconds is not None
            and series.metric.removesuffix("_bucket") == metric
            and series.label_value(c.LABEL_PHASE) == phase
        ):
            stage = slo.stages[0] if slo.stages else None
            return Target(slo.threshold_seconds, stage, f"SLO {slo.name}")
    return Target(default, None, f"no SLO of {service.service} times it: the default")


def build(queries: Queries, service: ServiceView) -> Dashboard:
    """The user-experience dashboard of ``service`` (uid ``<service>-ux``)."""
    names = queries.names
    grid = gf.Grid()
    grid.row("In the browser (real users)")
    browser = _browser_panels(names, service)
    grid.add_all([(panel, 12 if i < 2 else 8, 8) for i, panel in enumerate(browser)])
    grid.row("Before the app: queueing and workers")
    grid.add_all([(panel, 8, 8) for panel in _server_panels(names, service.saturated_above)])
    grid.row("Memory")
    grid.add_all([(panel, 12, 8) for panel in _memory_panels()])
    return common.board(
        service,
        common.UX,
        "User experience",
        "Page load and AI answers as users' browsers time them, the queue before the "
        "workers, busy workers and memory per worker.",
        grid,
        variables=common.variables(queries, service=service),
        annotations=common.timeline(queries, service),
    )


def _browser_panels(names: c.MetricNames, service: ServiceView) -> list[Any]:
    bucket, load = names.page_load_bucket, _phase(c.PHASE_LOAD)
    load_target = rum_target(service, names.page_load, c.PHASE_LOAD, PAGE_LOAD_TARGET)
    ai_target = rum_target(service, names.page_load, c.MARK_AI_ANSWER_SHOWN, AI_ANSWER_TARGET)
    ai = _phase(c.MARK_AI_ANSWER_SHOWN)
    page_load = [
        Query(quantile(q, bucket, load, by=c.LABEL_PAGE), f"p{q * 100:.0f} {{{{page}}}}")
        for q in (0.75, 0.95)
    ]
    answers = [
        Query(quantile(q, bucket, ai, by=c.LABEL_PAGE), f"p{q * 100:.0f} {{{{page}}}}")
        for q in (0.75, 0.95)
    ]
    phases = f'{c.LABEL_PHASE}=~"{NAVIGATION}"'
    return [
        gf.timeseries(
            "Page load p75 / p95 by page",
            page_load,
            Look(
                f"Time from navigation start to the load event in users' browsers, 75th and "
                f"95th percentile by page (URL rule); {load_target.text()}.",
                "s", load_target.steps(),
            ),
            lines=True,
        ),
        gf.timeseries(
            "AI answer shown p75 / p95",
            answers,
            Look(
                f"Time from asking to the AI answer being shown (the page's "
                f"'{c.MARK_AI_ANSWER_SHOWN}' mark), by page; {ai_target.text()}.",
                "s", ai_target.steps(),
            ),
            lines=True,
        ),
        gf.timeseries(
            "Page load phases p75",
            [Query(quantile(0.75, bucket, phases, by=c.LABEL_PHASE), "{{phase}}")],
            Look(
                "75th percentile of each navigation phase: first byte, first contentful "
                "paint, DOM content loaded, load, largest contentful paint; colours "
                "from the page-load target.",
                "s", load_target.steps(),
            ),
            lines=True,
        ),
        gf.timeseries(
            "RUM beacons by result",
            [Query(sum_rate(names.rum_beacons_total, by=c.LABEL_RESULT), "{{result}}")],
            Look(
                "Beacons received per second: accepted, or refused as malformed, too large, "
                "for a page the server did not sign, or over the rate limit.",
                "ops",
            ),
            stacked=True,
        ),
        _timed_share_panel(names),
    ]  # fmt: skip


def _timed_share_panel(names: c.MetricNames) -> Any:
    """Page views whose browser sent the load phase, per page rendered with the tag."""
    rendered = sum_rate(names.rum_pages_total, by=c.LABEL_PAGE)
    timed = sum_rate(names.page_load_count, _phase(c.PHASE_LOAD), by=c.LABEL_PAGE)
    return gf.timeseries(
        "Page views timed",
        [Query(ratio(or_zero(timed, rendered, by=c.LABEL_PAGE), rendered), "{{page}}")],
        Look(
            "Page-load beacons received per page rendered with the RUM tag, by page: the "
            "share of page views the page-load panels are made of. Below 100 %: browsers "
            "without JavaScript (crawlers), content blockers, a Content-Security-Policy "
            "blocking the script or its beacon (exporter/README.md), users leaving before "
            "the load event; above: pages shown again from a cache without rendering. "
            "A page's series appear with its first views, which rate() cannot count: "
            "right after a restart the share of a page seen for the first time reads "
            "low, or No data, for a scrape or two. No data: no page rendered the tag "
            "over the interval.",
            "percentunit",
        ),
        lines=True,
    )


def _server_panels(names: c.MetricNames, saturated_above: float) -> list[Any]:
    queue = [Query(quantile(q, names.request_queue_bucket), f"p{q * 100:.0f}") for q in (0.5, 0.95)]
    workers = f"{names.workers}{matchers()}"
    slots = f"sum({names.worker_threads}{matchers()})"
    return [
        gf.timeseries(
            "Queue time p50 / p95",
            queue,
            Look(
                "Time requests waited between the proxy (X-Request-Start) and a worker "
                "taking them: a queue in front of too few workers (any lasting wait is; "
                "no SLO sets a line: it adds to every request's latency). Without a "
                "proxy sending X-Request-Start (the nginx and HAProxy lines: "
                "exporter/README.md), or without requests, the panel shows No data: "
                "nothing was measured.",
                "s",
            ),
        ),
        gf.timeseries(
            "Busy and idle workers",
            [Query(f"sum by ({c.LABEL_STATE}) ({workers})", "{{state}}")],
            Look(
                "Worker request slots (threads under gthread) serving the app, and idle "
                "ones (idle needs the workers' slots: gunicorn and uWSGI workers publish "
                "them), as counted at each scrape. Where the app's workers serve the "
                "metrics path, a scrape waits like a request for a free slot (or times "
                "out) while every slot is busy, so this count rarely shows saturation; "
                "the Worker saturation panel does.",
                "short",
            ),
            stacked=True,
        ),
        gf.timeseries(
            "Worker saturation",
            [Query(f"{sum_rate(names.request_duration_sum)}\n/\n{positive(slots)}",
                   "mean busy share")],
            Look(
                "Mean share of the worker slots serving requests over the interval "
                "(request seconds per second / slots, Little's law); at 100 % new requests "
                "queue. Unlike a scrape-time count it reaches 100 %: a scrape of a saturated "
                "pool waits for a free worker. The dashed line is the WorkersSaturated "
                f"ticket's {saturated_above * 100:g} % (health.workers_saturated.above). "
                "Needs the workers' slots (gunicorn, uWSGI, or set_slots): without them, "
                "No data.",
                "percentunit", gf.higher_is_worse(min(saturated_above, 1.0), 1.0), bounds=(0, 1),
            ),
            lines=True,
        ),
    ]  # fmt: skip


def _memory_panels() -> list[Any]:
    by = f"by ({c.LABEL_INSTANCE})"
    total = f"sum {by} ({c.SERIES_PROCESS_MEMORY}{matchers()})"
    workers = f"sum {by} ({c.SERIES_PROCESS_WORKERS}{matchers()})"
    # Single-process servers have no worker series: their one process is the worker. A
    # server whose every worker is being replaced reads 0 live workers for a moment: no
    # sample then (its largest worker would read 0 bytes, the mean 0 / 0), not the master.
    single = f"({total})\nunless\n({workers})"
    largest = (
        f"max {by} ({c.SERIES_PROCESS_WORKER_MAX_MEMORY}{matchers()})\n"
        f"and\n{positive(workers)}\nor\n{single}"
    )
    summed = f"sum {by} ({c.SERIES_PROCESS_WORKER_SUM_MEMORY}{matchers()})"
    mean = f"({summed})\n/\n{positive(workers)}\nor\n{single}"
    return [
        gf.timeseries(
            "Memory per worker",
            [
                Query(largest, "largest worker {{instance}}"),
                Query(mean, "mean per worker {{instance}}"),
            ],
            Look(
                "Resident memory of the largest live gunicorn worker and the mean of the "
                "live workers (the master left out), per instance; a single-process "
                "server shows its one process. The lines break while no worker is live "
                "(every one being replaced).",
                "bytes",
            ),
        ),
        gf.timeseries(
            "Resident memory, whole server",
            [Query(total, "{{instance}}")],
            Look(
                "Resident memory of the gunicorn master and every live worker, summed: "
                "the trend the memory goal is measured on.",
                "bytes",
            ),
        ),
    ]  # fmt: skip
