"""Kit-health and saturation tickets, generated from the conventions' series names (pure).

Group ``kit-health`` of the alerting rules; every alert is a ticket carrying
``slo_service`` (routed with the service's SLO alerts) but no ``slo``:

- ``ExporterProblem``: ``<ns>_exporter_problems`` > 0 (the exporter knows it is
  degraded: multiprocess not configured, storage full or unwritable), per instance and
  problem;
- ``LogLinesDropped``: ``<ns>_log_lines_dropped_total`` increased over a window (the log
  sink blocked, lines were dropped rather than block requests), per instance;
- ``WorkersSaturated``: the workers' mean busy share over 5 minutes above a limit (0.9),
  per instance: request seconds per second (``<ns>_request_duration_seconds_sum``) over
  their slots (``<ns>_worker_threads``), Little's law. Not ``<ns>_workers{state="idle"}
  == 0``: a scrape is served by a worker too, so a saturated pool reads one idle slot at
  every scrape;
- ``DependencyCallsPerRequestHigh``: the p95 of ``<ns>_dependency_calls_per_request`` for
  one dependency (``db``) above a count (N+1 queries), per endpoint;
- ``TrafficStopped``: no request served over a window while Prometheus scrapes the
  service (``up``): nothing reaches the app, and every SLO of the service is blind, since
  no request means no error. Service-wide (one replica drained is not an outage); its
  severity is configurable, a ticket by default.

Thresholds come from the spec's ``health:`` block (:class:`~.model.HealthSpec`). The
series come from the exporter and logging; these rules are tested with promtool on
synthetic series (:func:`scenarios`).
"""

from __future__ import annotations

from typing import Any, Final

from limone_obs import conventions as c
from limone_obs.alerts import _durations, runbooks, unittests
from limone_obs.alerts.model import Group, Rule, ServiceSpec, dashboard_link, job_matcher
from limone_obs.alerts.rules import number
from limone_obs.alerts.selectors import Matcher, Selector

GROUP: Final = "kit-health"
#: Name of the runbook page of these alerts (``alerts/runbooks/<service>/health.md``).
RUNBOOK: Final = "health"
#: Window of the calls-per-request quantile.
CALLS_WINDOW: Final = "5m"


def _series(spec: ServiceSpec, suffix: str, *matchers: Matcher) -> str:
    name = f"{spec.namespace}_{suffix}"
    return Selector(name, (job_matcher(spec.job), *matchers)).promql()


#: The dashboard each alert links to (its series are there), unless the spec names one.
DASHBOARDS: Final = {
    c.ALERT_EXPORTER_PROBLEM: c.DASHBOARD_OVERVIEW,
    c.ALERT_LOG_LINES_DROPPED: c.DASHBOARD_OVERVIEW,
    c.ALERT_WORKERS_SATURATED: c.DASHBOARD_UX,
    c.ALERT_CALLS_PER_REQUEST_HIGH: c.DASHBOARD_DEPENDENCIES,
    c.ALERT_TRAFFIC_STOPPED: c.DASHBOARD_OVERVIEW,
}


def dashboard_url(spec: ServiceSpec, alert: str) -> str:
    """The dashboard ``alert`` links to: the one showing its series, or the spec's own
    ``dashboard_url`` when the spec sets one (every alert then links there)."""
    if spec.dashboard_url != dashboard_link(spec.grafana_url, spec.service, c.DASHBOARD_SLOS):
        return spec.dashboard_url
    return dashboard_link(spec.grafana_url, spec.service, DASHBOARDS[alert])


def _alert(
    spec: ServiceSpec,
    name: str,
    expr: str,
    for_: str,
    text: tuple[str, str],
    *,
    severity: str = c.SEVERITY_TICKET,
) -> Rule:
    summary, description = text
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {
            **spec_labels(spec),
            c.LABEL_SEVERITY: severity,
            c.LABEL_SLO_SERVICE: spec.service,
        },
        "annotations": {
            c.ANNOTATION_SUMMARY: summary,
            c.ANNOTATION_DESCRIPTION: description,
            c.ANNOTATION_RUNBOOK: f"{spec.runbook_base_url}/{spec.service}/{RUNBOOK}.md"
            f"#{name.lower()}",
            c.ANNOTATION_DASHBOARD: dashboard_url(spec, name),
        },
    }


def spec_labels(spec: ServiceSpec) -> dict[str, str]:
    """The spec's extra labels (``labels:``), on every kit-health alert too."""
    return dict(spec.labels)


def alerts(spec: ServiceSpec) -> list[Rule]:
    """The tickets (``TrafficStopped`` last, unless switched off), or none when
    ``health: "off"``."""
    h = spec.health
    if not h.enabled:
        return []
    by = f"{c.LABEL_INSTANCE}"
    return [
        _alert(
            spec, c.ALERT_EXPORTER_PROBLEM,
            f"max by ({by}, {c.LABEL_PROBLEM}) "
            f"({_series(spec, c.SUFFIX_EXPORTER_PROBLEMS)}) > 0",
            h.exporter_problem_for,
            (f"{spec.service}: the exporter reports {{{{ $labels.problem }}}} on "
             "{{ $labels.instance }}",
             f"limone-obs' exporter on {{{{ $labels.instance }}}} has reported the problem "
             f"{{{{ $labels.problem }}}} for {h.exporter_problem_for}: its numbers may be "
             "incomplete or too high, or (logging_replaced) the service's log lines "
             "unmasked; the runbook says what each problem means and what to do."),
        ),
        _alert(
            spec, c.ALERT_LOG_LINES_DROPPED,
            f"sum by ({by}) (increase("
            f"{_series(spec, c.SUFFIX_LOG_LINES_DROPPED_TOTAL)}[{h.dropped_lines_window}])) > 0",
            h.dropped_lines_for,
            (f"{spec.service}: log lines dropped on {{{{ $labels.instance }}}}",
             f"The log sink of {{{{ $labels.instance }}}} blocked and lines were dropped in "
             f"the last {h.dropped_lines_window} (for {h.dropped_lines_for}): requests were "
             "kept fast, the logs are incomplete."),
        ),
        _alert(
            spec, c.ALERT_WORKERS_SATURATED,
            f"{busy_share(spec, by)}\n> {number(h.workers_saturated_above)}",
            h.workers_saturated_for,
            (f"{spec.service}: every worker busy on {{{{ $labels.instance }}}}",
             f"The workers of {{{{ $labels.instance }}}} have been serving requests "
             f"{h.workers_saturated_above * 100:g} % of the time or more "
             f"(over {SATURATION_WINDOW}, for {h.workers_saturated_for}): new requests wait "
             "in the queue (latency grows without the app being slower), and scrapes time "
             "out (TargetDown can fire for the same cause)."),
        ),
        _alert(
            spec, c.ALERT_CALLS_PER_REQUEST_HIGH,
            f"{calls_p95(spec)}\n> {number(h.calls_per_request)}",
            h.calls_for,
            (f"{spec.service}: {{{{ $labels.endpoint }}}} makes over "
             f"{h.calls_per_request:g} {h.calls_dependency} calls per request",
             f"The p95 of {h.calls_dependency} calls per request of {{{{ $labels.endpoint }}}} "
             f"has been above {h.calls_per_request:g} for {h.calls_for}: an N+1 query "
             "pattern or a loop calling the dependency."),
        ),
    ] + ([traffic_stopped(spec)] if h.traffic else [])  # fmt: skip


def _calls_series(spec: ServiceSpec, part: str) -> str:
    """The calls-per-request histogram's ``part`` (``_bucket``, ...) of the spec's
    dependency."""
    dep = Matcher(c.LABEL_DEPENDENCY, "=", spec.health.calls_dependency)
    return _series(spec, f"{c.SUFFIX_DEPENDENCY_CALLS_PER_REQUEST}{part}", dep)


def calls_p95(spec: ServiceSpec) -> str:
    """PromQL: the p95 of the calls one request makes to the spec's dependency, per
    endpoint, over :data:`CALLS_WINDOW`, over every request of the endpoint
    (:func:`~limone_obs.conventions.calls_per_request_buckets`): what the alert reads. An
    estimate, interpolated within the bucket it falls in
    (:data:`~limone_obs.conventions.CALLS_PER_REQUEST_BUCKETS`)."""
    by = c.LABEL_ENDPOINT
    buckets = c.calls_per_request_buckets(
        f"sum by ({c.LABEL_LE}, {by}) (rate({_calls_series(spec, '_bucket')}[{CALLS_WINDOW}]))",
        f"sum by ({by}) (rate({_calls_series(spec, '_count')}[{CALLS_WINDOW}]))",
        _requests_by_endpoint(spec),
        by,
    )
    return f"histogram_quantile(0.95,\n{buckets}\n)"


def mean_calls(spec: ServiceSpec) -> str:
    """PromQL: the mean calls one request makes to the spec's dependency, per endpoint,
    over :data:`CALLS_WINDOW`: the calls counted (``_sum``) over the endpoint's requests,
    exact, which the buckets' p95 is not
    (:func:`~limone_obs.conventions.calls_per_request_mean`)."""
    by = c.LABEL_ENDPOINT
    return c.calls_per_request_mean(
        f"sum by ({by}) (rate({_calls_series(spec, '_sum')}[{CALLS_WINDOW}]))",
        _requests_by_endpoint(spec),
        f"sum by ({by}) (rate({_calls_series(spec, '_count')}[{CALLS_WINDOW}]))",
    )


def _requests_by_endpoint(spec: ServiceSpec) -> str:
    """PromQL: the spec's requests per second over :data:`CALLS_WINDOW`, by endpoint."""
    requests = Selector(spec.names.request_duration_count, (job_matcher(spec.job),)).promql()
    return f"sum by ({c.LABEL_ENDPOINT}) (rate({requests}[{CALLS_WINDOW}]))"


#: Window of the workers' busy share.
SATURATION_WINDOW: Final = "5m"


def busy_share(spec: ServiceSpec, by: str) -> str:
    """PromQL: the workers' mean busy share per ``by`` over :data:`SATURATION_WINDOW`.

    Only where the slots sum above 0: a server whose workers publish none (a server the
    kit cannot count the slots of, before ``set_slots``) reads 0, and requests / 0 is
    +Inf, which would fire the alert on any traffic.
    """
    job = (job_matcher(spec.job),)
    seconds = Selector(spec.names.request_duration_sum, job).promql()
    slots = Selector(spec.names.worker_threads, job).promql()
    return f"sum by ({by}) (rate({seconds}[{SATURATION_WINDOW}]))\n/\n(sum by ({by}) ({slots}) > 0)"


def traffic_stopped(spec: ServiceSpec) -> Rule:
    """``TrafficStopped``: no request over the window, while some target is scraped.

    ``or on () vector(0)``: a service that never served a request since Prometheus knows
    it (a deploy the load balancer never routed to) has no request series at all, and is
    the case this alert is for. ``up`` > 0: a service Prometheus cannot scrape pages
    through the ``up`` SLO instead.
    """
    h = spec.health
    job = (job_matcher(spec.job),)
    requests = Selector(spec.names.requests_total, job).promql()
    up = Selector(c.SERIES_UP, job).promql()
    return _alert(
        spec, c.ALERT_TRAFFIC_STOPPED,
        f"(sum(rate({requests}[{h.traffic_window}])) or on () vector(0)) == 0\n"
        f"and on ()\nsum({up}) > 0",
        h.traffic_for,
        (f"{spec.service}: no request served for {h.traffic_window}",
         f"{spec.service} has served no request in {h.traffic_window} (for {h.traffic_for}) "
         "while Prometheus scrapes it: nothing reaches the app (load balancer, ingress, DNS, "
         "the proxy in front of it) or nobody uses it. Every SLO of the service is blind "
         "meanwhile: no request, no error."),
        severity=h.traffic_severity,
    )  # fmt: skip


def groups(spec: ServiceSpec) -> list[Group]:
    """The ``kit-health`` alerting group (none when switched off)."""
    found = alerts(spec)
    return [{"name": GROUP, "rules": found}] if found else []


def _expand(rule: Rule, labels: dict[str, str]) -> dict[str, Any]:
    """The exp_alerts entry of ``rule`` firing with ``labels`` (templates expanded)."""
    notes = unittests.render_labels(rule["annotations"], labels)
    return {"exp_labels": {**rule["labels"], **labels}, "exp_annotations": notes}


def _test(
    title: str, rule: Rule, series: list[dict[str, str]], at: int, labels: dict[str, str] | None
) -> dict[str, Any]:
    """A test of ``rule``: quiet one minute before ``at`` + its ``for``; one minute after,
    firing with ``labels`` (or still quiet for None)."""
    fires = at + unittests.minutes(rule["for"])
    when = [_durations.format_duration(m * 60) for m in (fires - 1, fires + 1)]
    after = [] if labels is None else [_expand(rule, labels)]
    checks = [
        {"eval_time": when[0], "alertname": rule["alert"], "exp_alerts": []},
        {"eval_time": when[1], "alertname": rule["alert"], "exp_alerts": after},
    ]
    return unittests.plain_test(f"{GROUP}: {title}", series, checks)


def scenarios(spec: ServiceSpec) -> list[dict[str, Any]]:
    """Each ticket fires one minute after its ``for`` on a synthetic fault (quiet a minute
    before), and stays quiet on healthy series. Gauges hold from t = 0; rates from 1m."""
    found = alerts(spec)
    if not found:
        return []
    problem, dropped, workers, calls = found[:4]
    inst = unittests.base_labels(spec)
    instance = {c.LABEL_INSTANCE: inst[c.LABEL_INSTANCE]}
    n = 4 + unittests.minutes(SATURATION_WINDOW) + max(unittests.minutes(r["for"]) for r in found)
    ns = spec.namespace

    def gauge(suffix: str, value: str, **labels: str) -> dict[str, str]:
        return unittests.constant(f"{ns}_{suffix}", {**inst, **labels}, value, n)

    def seconds(per_minute: float) -> dict[str, str]:
        """The request seconds the busy share reads, ``per_minute`` a minute."""
        return unittests.counter(inst, spec.names.request_duration_sum, per_minute, n)

    def counter(suffix: str, per_minute: float, **labels: str) -> dict[str, str]:
        return unittests.counter({**inst, **labels}, f"{ns}_{suffix}", per_minute, n)

    storage = c.PROBLEM_STORAGE_FULL
    full_window = unittests.minutes(SATURATION_WINDOW)
    return [
        _test("an exporter problem opens ExporterProblem", problem,
              [gauge(c.SUFFIX_EXPORTER_PROBLEMS, "1", problem=storage)], 0,
              {**instance, c.LABEL_PROBLEM: storage}),
        _test("no exporter problem opens nothing", problem,
              [gauge(c.SUFFIX_EXPORTER_PROBLEMS, "0", problem=storage)], 0, None),
        _test("dropped log lines open LogLinesDropped", dropped,
              [counter(c.SUFFIX_LOG_LINES_DROPPED_TOTAL, 5)], unittests.FIRST_RATE, instance),
        _test("no dropped line opens nothing", dropped,
              [counter(c.SUFFIX_LOG_LINES_DROPPED_TOTAL, 0)], unittests.FIRST_RATE, None),
        # The busy share is a rate over its window divided by a count: a counter born at
        # t = 0 reaches its full rate once the window is filled.
        _test("workers busy all the time open WorkersSaturated", workers,
              [gauge(c.SUFFIX_WORKER_THREADS, "4"),
               seconds(4 * 60)], full_window, instance),
        _test("workers busy half the time open nothing", workers,
              [gauge(c.SUFFIX_WORKER_THREADS, "4"),
               seconds(2 * 60)], full_window, None),
        _test("requests on workers that published no slots open nothing", workers,
              [gauge(c.SUFFIX_WORKER_THREADS, "0"),
               seconds(4 * 60)], full_window, None),
        _test("too many calls per request open DependencyCallsPerRequestHigh", calls,
              _calls(spec, n, 2.5), unittests.FIRST_RATE, {c.LABEL_ENDPOINT: ENDPOINT}),
        _test("few calls per request open nothing", calls,
              _calls(spec, n, 0.25), unittests.FIRST_RATE, None),
        # A worker observes 0 calls of a dependency only once it has seen the endpoint
        # call it: the requests it did not observe count as 0 calls all the same.
        _test("many calls in 1 of 40 requests open nothing", calls,
              _calls(spec, n, 2.5, requests=40 * 60), unittests.FIRST_RATE, None),
    ] + (_traffic_tests(spec, found[4], n) if spec.health.traffic else [])  # fmt: skip


def _traffic_tests(spec: ServiceSpec, rule: Rule, length: int) -> list[dict[str, Any]]:
    """TrafficStopped fires on a scraped service without requests, also one that never
    had any; it stays quiet while requests flow and while the target is down."""
    inst = unittests.base_labels(spec)
    requests = spec.names.requests_total
    labels = {**inst, c.LABEL_METHOD: "GET", c.LABEL_ENDPOINT: ENDPOINT, c.LABEL_STATUS: "200"}

    def up(value: str) -> dict[str, str]:
        return unittests.constant(c.SERIES_UP, inst, value, length)

    def served(per_minute: float) -> dict[str, str]:
        return unittests.counter(labels, requests, per_minute, length)

    # No sample of a rate at t = 0 reads as no request too (the `or on () vector(0)`).
    return [
        _test("no request served while scraped opens TrafficStopped", rule,
              [up("1"), served(0)], 0, {}),
        _test("a service that never served a request opens TrafficStopped", rule,
              [up("1")], 0, {}),
        _test("requests flowing open nothing", rule, [up("1"), served(60)], 0, None),
        _test("a target down opens nothing (the up SLO pages)", rule,
              [up("0"), served(0)], 0, None),
    ]  # fmt: skip


#: Endpoint label of the synthetic calls-per-request histogram (any service's URL rule).
ENDPOINT: Final = "/items/<int:item_id>"


def _calls(
    spec: ServiceSpec, length: int, times_limit: float, requests: float = 60
) -> list[dict[str, str]]:
    """A calls-per-request histogram observing 60 requests a minute that each make
    ``times_limit`` x the spec's limit of calls, among ``requests`` a minute of the
    endpoint (the others were not observed: 0 calls)."""
    calls = spec.health.calls_per_request * times_limit
    labels = {
        **unittests.base_labels(spec),
        c.LABEL_ENDPOINT: ENDPOINT,
        c.LABEL_DEPENDENCY: spec.health.calls_dependency,
    }
    metric = f"{spec.namespace}_{c.SUFFIX_DEPENDENCY_CALLS_PER_REQUEST}"
    found = [
        unittests.counter(
            {**labels, c.LABEL_LE: repr(b)}, f"{metric}_bucket", 60 * (calls <= b), length
        )
        for b in c.CALLS_PER_REQUEST_BUCKETS
    ]
    found.append(unittests.counter({**labels, c.LABEL_LE: "+Inf"}, f"{metric}_bucket", 60, length))
    found.append(unittests.counter(labels, f"{metric}_count", 60, length))
    served = {**unittests.base_labels(spec), c.LABEL_METHOD: "GET", c.LABEL_ENDPOINT: ENDPOINT}
    found.append(unittests.counter(served, spec.names.request_duration_count, requests, length))
    return found


def _calls_section(spec: ServiceSpec) -> str:
    """The ``DependencyCallsPerRequestHigh`` section: the exact mean first (the typical
    request), then the p95 the alert reads, labelled as the estimate it is."""
    h = spec.health
    bounds = ", ".join(f"{b:g}" for b in c.CALLS_PER_REQUEST_BUCKETS)
    return (
        f"The p95 of the `{h.calls_dependency}` calls one request of the endpoint makes is "
        f"above {h.calls_per_request:g}: usually an N+1 query (one query per item of a "
        "list). Load the items in one query or cache them. The mean calls per request, by "
        "endpoint (exact: the calls counted over every request of the endpoint, from the "
        "request histogram, once the series are older than the window; within the first "
        "window after they appear, `rate()` extrapolates the two a little differently):\n\n"
        + runbooks.code(mean_calls(spec))
        + "\nThe p95 the alert reads, by endpoint, is an estimate from the histogram's "
        f"buckets ({bounds}): interpolated within the bucket it falls in, it may read "
        "anywhere up to that bucket's upper bound, far above the true count:\n\n"
        + runbooks.code(calls_p95(spec))
    )


def runbook(spec: ServiceSpec) -> str:
    """The sections of the kit-health alerts (``alerts/runbooks/<service>/health.md``)."""
    job = job_matcher(spec.job).promql()
    ns, h = spec.namespace, spec.health
    sections = {
        c.ALERT_EXPORTER_PROBLEM: (
            f"`{ns}_{c.SUFFIX_EXPORTER_PROBLEMS}{{{job}}}` names the problem: "
            f"`{c.PROBLEM_MULTIPROCESS_MISSING}` (several gunicorn workers, or one recycled "
            "by `max_requests`, without `PROMETHEUS_MULTIPROC_DIR`: each scrape sees one "
            "worker's share, or a recycled worker's counts since the last scrape; use "
            f"`gunicorn -c python:{c.GUNICORN_CONFIG_MODULE}`), `{c.PROBLEM_STORAGE_FULL}` / "
            f"`{c.PROBLEM_STORAGE_UNWRITABLE}` (the multiprocess directory's disk is full or "
            "read-only: free space or fix permissions), "
            f"`{c.PROBLEM_MULTIPROCESS_LEFTOVERS}` (the directory holds an earlier server's "
            "files, added to every count: empty it before each start, or use the kit's "
            "gunicorn config; or exited workers' files nothing retired, which fill it: run "
            f"gunicorn with `-c python:{c.GUNICORN_CONFIG_MODULE}`, or a config of your own "
            f"must call `{c.GUNICORN_CONFIG_MODULE}.child_exit` from its `child_exit`), "
            f"`{c.PROBLEM_METRIC_NAME_CLASH}` (the app has a metric of its own under one of "
            "the kit's series names, left out of the scrape: rename it, or give `Metrics` "
            "another `namespace`), "
            f"`{c.PROBLEM_MULTIPROCESS_OTHER_READER}` (the gunicorn master also serves the "
            "metrics on a port of its own, such as prometheus-flask-exporter's "
            "`start_http_server_when_ready`: that port misses every exited worker's "
            "counts; scrape the app's metrics path, which serves the same series, and "
            "remove the other server: the app's own path is exact), "
            f"`{c.PROBLEM_LOGGING_REPLACED}` (the app's own logging set-up, a `dictConfig` "
            "or `structlog.configure`, ran after `configure_logging()` and added a text "
            "handler, left the root logger without the kit's, or set a structlog factory "
            "that prints: those lines are neither JSON nor masked, so passwords and tokens "
            "can reach the logs; the app's log line names the handler: call "
            "`configure_logging()` after that set-up, and look for "
            "secrets in the lines written meanwhile), "
            f"`{c.PROBLEM_LOGGING_NOT_CONFIGURED}` (`limone_obs.logging.init_app` logs the "
            "requests of a process where `configure_logging()` never ran: the app's own "
            "lines are neither JSON nor masked; call it once at start-up). The service "
            "keeps serving; its "
            "numbers are incomplete, or too high, or its logs unmasked, until then.\n"
        ),
        c.ALERT_LOG_LINES_DROPPED: (
            "The log sink (stdout pipe, file, shipper) did not accept lines fast enough and "
            "the logger dropped them rather than block requests. Check the shipper (Alloy, "
            "Vector, Fluent Bit) is running and keeping up, and the disk of the log file:\n\n"
            f"```promql\nsum by (instance) (rate({ns}_{c.SUFFIX_LOG_LINES_DROPPED_TOTAL}"
            f"{{{job}}}[5m]))\n```\n"
        ),
        c.ALERT_WORKERS_SATURATED: (
            "Every worker (thread) is busy: new requests queue in front of them and their "
            "latency grows while the app itself is not slower (queue time "
            f"`{ns}_{c.SUFFIX_REQUEST_QUEUE_SECONDS}`), and scrapes, served by the same "
            "workers, can time out (a TargetDown page with `context deadline exceeded` on "
            "Prometheus' targets page). Which dependency holds the workers, and the busy "
            "share:\n\n"
            f"```promql\nhistogram_quantile(0.95, sum by (le, dependency) (rate("
            f"{ns}_dependency_duration_seconds_bucket{{{job}}}[5m])))\n```\n\n"
            f"```promql\n{busy_share(spec, 'instance')}\n```\n\n"
            "Add workers or threads, move slow calls (an external API's) off the request, lower "
            "the slow dependency's timeout, or add replicas. Restarting only drops the "
            "queued requests.\n"
        ),
        c.ALERT_CALLS_PER_REQUEST_HIGH: _calls_section(spec),
    }
    if h.traffic:
        sections[c.ALERT_TRAFFIC_STOPPED] = (
            f"No request has reached the app for {h.traffic_window} while Prometheus "
            "scrapes it (the process runs). Users get nothing from it, and no SLO of the "
            "service can alert meanwhile: with no request there is no error. Look in front "
            "of the app: the load balancer or ingress (its targets and health checks), DNS, "
            "the proxy before gunicorn (nginx answering 502 itself never reaches the app), "
            "a deploy that left the old routes. Compare with the proxy's own request count; "
            "if nobody uses the service at this hour, lengthen "
            "`health.traffic_stopped.window`, or switch it off with "
            '`traffic_stopped: "off"`:\n\n'
            f"```promql\nsum(rate({ns}_requests_total{{{job}}}[{h.traffic_window}]))\n```\n"
        )
    body = "".join(
        f"## {name}\n\n{text}\nDashboard: {dashboard_url(spec, name)}\n\n"
        for name, text in sections.items()
    )
    return (
        f"{runbooks.HEADER}# {spec.service}: kit health and saturation (tickets)\n\n{body}"
    ).rstrip("\n") + "\n"
