"""Every metric, label, recording-rule and alert name of limone-obs, in one place.

The exporter, the rule generator, the dashboards and the tests import these names; none
of them retypes a series name. The namespace (default ``limoneide``) is configurable, so
series names are built by :class:`MetricNames` from a namespace rather than kept as
literals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

DEFAULT_NAMESPACE: Final = "limoneide"

# --- labels -------------------------------------------------------------------------
LABEL_METHOD: Final = "method"
LABEL_ENDPOINT: Final = "endpoint"
LABEL_STATUS: Final = "status"
LABEL_EXCEPTION: Final = "exception"
LABEL_DEPENDENCY: Final = "dependency"
LABEL_OPERATION: Final = "operation"
LABEL_OUTCOME: Final = "outcome"
LABEL_CACHE: Final = "cache"
LABEL_RESULT: Final = "result"
LABEL_VERSION: Final = "version"
LABEL_REVISION: Final = "revision"
LABEL_PYTHON: Final = "python"
LABEL_LE: Final = "le"
LABEL_JOB: Final = "job"
LABEL_INSTANCE: Final = "instance"

# --- label values -------------------------------------------------------------------
#: Endpoint value shared by every request that matched no URL rule (404, 405, ...).
ENDPOINT_UNMATCHED: Final = "<unmatched>"
#: Method value for any HTTP method outside :data:`KNOWN_METHODS`.
METHOD_OTHER: Final = "OTHER"
KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
OUTCOME_OK: Final = "ok"
OUTCOME_ERROR: Final = "error"
CACHE_HIT: Final = "hit"
CACHE_MISS: Final = "miss"
#: Dependency name used by the automatic Jinja template timing.
DEPENDENCY_TEMPLATE: Final = "template"
#: Dependency names the demo service and the dashboards know about.
DEPENDENCY_AI: Final = "ai_api"
DEPENDENCY_DB: Final = "db"
DEPENDENCY_CACHE: Final = "cache"

# --- histogram buckets --------------------------------------------------------------
#: Latency thresholds the SLO spec may use; every one must be a bucket boundary.
SLO_LATENCY_THRESHOLDS: Final = (0.6, 1.0)
#: Request buckets: fine around the 0.6 s and 1 s objectives, reaching 30 s AI calls.
DEFAULT_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0,
    1.5, 2.0, 2.5, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0,
)  # fmt: skip
#: Dependency buckets: the same, since AI calls dominate and DB calls sit at the bottom.
DEFAULT_DEPENDENCY_BUCKETS: Final = DEFAULT_BUCKETS

_NAMESPACE_RE: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is a valid metric-name prefix, else raise ValueError."""
    if not _NAMESPACE_RE.match(namespace):
        raise ValueError(
            f"namespace {namespace!r} is not a valid Prometheus name prefix: use letters, "
            "digits and underscores, not starting with a digit"
        )
    return namespace


@dataclass(frozen=True)
class MetricNames:
    """The full series names for one namespace.

    ``MetricNames("limoneide").requests`` is ``"limoneide_requests"``: the name given to
    prometheus-client, which appends ``_total`` to counters. Use the ``*_total`` /
    ``*_bucket`` properties in PromQL.
    """

    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        check_namespace(self.namespace)

    def _n(self, suffix: str) -> str:
        return f"{self.namespace}_{suffix}"

    # Names as passed to prometheus-client (counters without _total).
    @property
    def requests(self) -> str:
        return self._n("requests")

    @property
    def request_duration(self) -> str:
        return self._n("request_duration_seconds")

    @property
    def requests_in_progress(self) -> str:
        return self._n("requests_in_progress")

    @property
    def request_exceptions(self) -> str:
        return self._n("request_exceptions")

    @property
    def dependency_duration(self) -> str:
        return self._n("dependency_duration_seconds")

    @property
    def cache_requests(self) -> str:
        return self._n("cache_requests")

    @property
    def build_info(self) -> str:
        return self._n("build_info")

    # Names as they appear in the exposition and in PromQL.
    @property
    def requests_total(self) -> str:
        return self._n("requests_total")

    @property
    def request_exceptions_total(self) -> str:
        return self._n("request_exceptions_total")

    @property
    def cache_requests_total(self) -> str:
        return self._n("cache_requests_total")

    @property
    def request_duration_bucket(self) -> str:
        return self._n("request_duration_seconds_bucket")

    @property
    def request_duration_count(self) -> str:
        return self._n("request_duration_seconds_count")

    @property
    def request_duration_sum(self) -> str:
        return self._n("request_duration_seconds_sum")

    @property
    def dependency_duration_bucket(self) -> str:
        return self._n("dependency_duration_seconds_bucket")

    @property
    def dependency_duration_count(self) -> str:
        return self._n("dependency_duration_seconds_count")

    @property
    def dependency_duration_sum(self) -> str:
        return self._n("dependency_duration_seconds_sum")


#: Labels of each series, in exposition order (the exporter creates them in this order).
REQUESTS_LABELS: Final = (LABEL_METHOD, LABEL_ENDPOINT, LABEL_STATUS)
DURATION_LABELS: Final = (LABEL_METHOD, LABEL_ENDPOINT)
IN_PROGRESS_LABELS: Final = (LABEL_METHOD, LABEL_ENDPOINT)
EXCEPTIONS_LABELS: Final = (LABEL_METHOD, LABEL_ENDPOINT, LABEL_EXCEPTION)
DEPENDENCY_LABELS: Final = (LABEL_DEPENDENCY, LABEL_OPERATION, LABEL_OUTCOME)
CACHE_LABELS: Final = (LABEL_CACHE, LABEL_RESULT)
BUILD_INFO_LABELS: Final = (LABEL_VERSION, LABEL_REVISION, LABEL_PYTHON)

#: PromQL matcher for the 1 s bucket in both notations: ``le="1.0"`` (prometheus-client, and
#: every client on Prometheus 3, which normalises ``"1"`` to ``"1.0"``) and ``le="1"``.
LE_ONE_SECOND_MATCHER: Final = 'le=~"1(\\\\.0)?"'

# --- SLO recording rules and alerts ------------------------------------------------
LABEL_SLO: Final = "slo"
LABEL_SLO_SERVICE: Final = "slo_service"
LABEL_SEVERITY: Final = "severity"
SEVERITY_PAGE: Final = "page"
SEVERITY_TICKET: Final = "ticket"
ANNOTATION_SUMMARY: Final = "summary"
ANNOTATION_DESCRIPTION: Final = "description"
ANNOTATION_RUNBOOK: Final = "runbook_url"
ANNOTATION_DASHBOARD: Final = "dashboard_url"

#: Windows for which an SLI error ratio is recorded (all the burn-rate windows).
SLI_WINDOWS: Final = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def sli_error_ratio_rule(window: str) -> str:
    """Recording-rule name of the SLI error ratio over ``window`` (e.g. ``5m``, ``30d``)."""
    return f"slo:sli_error:ratio_rate{window}"


RULE_OBJECTIVE: Final = "slo:objective:ratio"
RULE_ERROR_BUDGET: Final = "slo:error_budget:ratio"
RULE_PERIOD_SLI_ERROR: Final = "slo:period_sli_error:ratio"
RULE_PERIOD_BUDGET_REMAINING: Final = "slo:period_error_budget_remaining:ratio"
RULE_CURRENT_BURN_RATE: Final = "slo:current_burn_rate:ratio"
RULE_PERIOD_BURN_RATE: Final = "slo:period_burn_rate:ratio"

# --- dashboards ---------------------------------------------------------------------
DASHBOARD_UID_OVERVIEW: Final = "limoneide-overview"
DASHBOARD_UID_SLOS: Final = "limoneide-slos"
DASHBOARD_UID_DEPENDENCIES: Final = "limoneide-dependencies"
DASHBOARD_UID_ENDPOINT: Final = "limoneide-endpoint"
DASHBOARD_UID_LOGS: Final = "limoneide-logs"
#: Tag shared by every generated dashboard (the dashboards link to each other by it).
DASHBOARD_TAG: Final = "limoneide"
#: Grafana folder the dashboards are provisioned or pushed into.
DASHBOARD_FOLDER_UID: Final = "limoneide"
DASHBOARD_FOLDER_TITLE: Final = "LimoneIDE"
#: Provisioned datasources (compose/grafana/provisioning); dashboards pick one by variable.
DATASOURCE_TYPE_PROMETHEUS: Final = "prometheus"
DATASOURCE_TYPE_LOKI: Final = "loki"
DATASOURCE_UID_PROMETHEUS: Final = "limoneide-prometheus"
DATASOURCE_UID_LOKI: Final = "limoneide-loki"
#: Dashboard variables (``$datasource``, ``$job``, ...).
VAR_DATASOURCE: Final = "datasource"
VAR_LOKI: Final = "loki"
VAR_JOB: Final = "job"
VAR_INSTANCE: Final = "instance"
VAR_ENDPOINT: Final = "endpoint"
#: The logs dashboard uses the logging section's names directly: Loki labels
#: ``LOG_SERVICE``/``LOG_LEVEL`` (see ``LOKI_LABELS``) and the ``LOG_REQUEST_ID`` field.
#: Prometheus' synthetic series of pending and firing alerts.
SERIES_ALERTS: Final = "ALERTS"
#: prometheus-client's process and GC series (single-process mode only, see exporter).
SERIES_PROCESS_CPU: Final = "process_cpu_seconds_total"
SERIES_PROCESS_MEMORY: Final = "process_resident_memory_bytes"
SERIES_PROCESS_FDS: Final = "process_open_fds"
SERIES_GC_COLLECTIONS: Final = "python_gc_collections_total"
LABEL_GC_GENERATION: Final = "generation"

# --- alerts area (names added by limone_obs.alerts) ---------------------------------
#: Labels of a burn-rate alert naming its two windows (one alert rule per tier).
LABEL_LONG_WINDOW: Final = "long_window"
LABEL_SHORT_WINDOW: Final = "short_window"
#: Alert name suffixes: ``<Slo>ErrorBudgetBurn`` (burn tiers), ``<Slo>High`` (threshold),
#: ``<Slo>P95High`` (latency quantile); ``<Slo>`` is the SLO name in CamelCase.
ALERT_SUFFIX_BURN: Final = "ErrorBudgetBurn"
ALERT_SUFFIX_THRESHOLD: Final = "High"
#: Alerts of an ``up`` SLO: the target is down, or its ``up`` series is missing altogether.
ALERT_TARGET_DOWN: Final = "TargetDown"
ALERT_TARGET_ABSENT: Final = "TargetAbsent"
#: The target is scraped but exposes no limone-obs series (instrumentation missing).
ALERT_METRICS_ABSENT: Final = "MetricsAbsent"
#: Prometheus' scrape-health series.
SERIES_UP: Final = "up"
#: Per-SLO bad events and all events per second over 5 minutes (recorded every evaluation);
#: the long-window SLIs (1d, 3d, the period) are sums of these over time, request-weighted.
RULE_BAD_EVENTS_RATE5M: Final = "slo:sli_bad_events:rate5m"
RULE_EVENTS_RATE5M: Final = "slo:sli_events:rate5m"


def slo_alert_name(slo: str, suffix: str) -> str:
    """Alert name for SLO ``slo`` (``ai-latency``) and ``suffix``: ``AiLatencyErrorBudgetBurn``."""
    return "".join(part.capitalize() for part in slo.replace("_", "-").split("-")) + suffix


def quantile_suffix(objective: float) -> str:
    """Suffix of a latency quantile alert: objective 95 -> ``P95High``, 99.9 -> ``P999High``."""
    return f"P{objective:g}".replace(".", "") + ALERT_SUFFIX_THRESHOLD


# --- logging area (names added by limone_obs.logging) -------------------------------
#: Fields of every log line (``logging/log-event.schema.json``), in output order.
LOG_TIMESTAMP: Final = "timestamp"
LOG_LEVEL: Final = "level"
LOG_LOGGER: Final = "logger"
LOG_MESSAGE: Final = "message"
LOG_SERVICE: Final = "service"
LOG_ENV: Final = "env"
#: Request-context fields, present when known.
LOG_REQUEST_ID: Final = "request_id"
LOG_TRACE_ID: Final = "trace_id"
LOG_SPAN_ID: Final = "span_id"
LOG_METHOD: Final = "method"
LOG_ENDPOINT: Final = "endpoint"
LOG_PATH: Final = "path"
LOG_STATUS_CODE: Final = "status_code"
LOG_DURATION: Final = "duration"
LOG_USER_ID: Final = "user_id"
#: ``{"type", "message", "traceback"}`` of a logged exception.
LOG_EXCEPTION: Final = "exception"
#: Set to true on a line cut to the size cap; ``original_bytes`` holds its full size.
LOG_TRUNCATED: Final = "truncated"
LOG_ORIGINAL_BYTES: Final = "original_bytes"
LOG_CORE_FIELDS: Final = (LOG_TIMESTAMP, LOG_LEVEL, LOG_LOGGER, LOG_MESSAGE, LOG_SERVICE, LOG_ENV)
LOG_CONTEXT_FIELDS: Final = (
    LOG_REQUEST_ID, LOG_TRACE_ID, LOG_SPAN_ID, LOG_METHOD, LOG_ENDPOINT, LOG_PATH,
    LOG_STATUS_CODE, LOG_DURATION, LOG_USER_ID,
)  # fmt: skip
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")
#: The only Loki labels (few values each); ids stay in structured metadata / the body.
LOKI_LABELS: Final = (LOG_SERVICE, LOG_ENV, LOG_LEVEL)
#: Logger name of the per-request access line.
ACCESS_LOGGER: Final = "limone_obs.access"
REQUEST_ID_HEADER: Final = "X-Request-ID"


# --- stack area (names added by limone_obs.stack) -----------------------------------
#: Cache name of the demo service's language lookup (``cache`` label value).
DEMO_CACHE_LANGUAGES: Final = "languages"
#: Header from which the demo service takes the ``user_id`` of its log lines.
DEMO_USER_HEADER: Final = "X-User-ID"
#: Default port of the webhook receiver (the spec's default webhook URL uses it).
WEBHOOK_DEFAULT_PORT: Final = 9095
#: Environment variable / Flask config key holding the demo's admin token (fault switches).
DEMO_ADMIN_TOKEN_ENV: Final = "LIMONE_DEMO_ADMIN_TOKEN"


# --- series shared across areas (agreed names; each producer documents its own) ------
#: ``<ns>_exporter_problems{problem}``: 1 while the kit knows of a problem in itself (a
#: gauge; the alerts turn it into a ticket). ``problem`` takes only these values.
LABEL_PROBLEM: Final = "problem"
PROBLEM_MULTIPROCESS_MISSING: Final = "multiprocess_not_configured"
PROBLEM_STORAGE_FULL: Final = "storage_full"
PROBLEM_STORAGE_UNWRITABLE: Final = "storage_unwritable"
EXPORTER_PROBLEMS: Final = (
    PROBLEM_MULTIPROCESS_MISSING, PROBLEM_STORAGE_FULL, PROBLEM_STORAGE_UNWRITABLE,
)  # fmt: skip
SUFFIX_EXPORTER_PROBLEMS: Final = "exporter_problems"
#: ``<ns>_log_lines_dropped_total``: log lines dropped because the sink was blocked.
SUFFIX_LOG_LINES_DROPPED_TOTAL: Final = "log_lines_dropped_total"
#: ``<ns>_dependency_calls_per_request{endpoint,dependency}`` (histogram of calls made by
#: one request) and ``<ns>_request_dependency_seconds_total{endpoint,dependency}`` (time
#: spent in each dependency, per endpoint): both fed by ``track`` at the end of a request.
SUFFIX_DEPENDENCY_CALLS_PER_REQUEST: Final = "dependency_calls_per_request"
SUFFIX_REQUEST_DEPENDENCY_SECONDS_TOTAL: Final = "request_dependency_seconds_total"
CALLS_PER_REQUEST_BUCKETS: Final = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
REQUEST_DEPENDENCY_LABELS: Final = (LABEL_ENDPOINT, LABEL_DEPENDENCY)
#: ``<ns>_request_queue_seconds``: time between the proxy's ``X-Request-Start`` and the
#: worker starting the request.
SUFFIX_REQUEST_QUEUE_SECONDS: Final = "request_queue_seconds"
QUEUE_START_HEADER: Final = "X-Request-Start"
#: ``<ns>_page_load_seconds{page,phase}``: real-user page timing from the browser.
SUFFIX_PAGE_LOAD_SECONDS: Final = "page_load_seconds"
LABEL_PAGE: Final = "page"
LABEL_PHASE: Final = "phase"
#: ``<ns>_workers{state}``: gunicorn workers (threads for gthread) busy or idle.
SUFFIX_WORKERS: Final = "workers"
LABEL_STATE: Final = "state"
WORKER_BUSY: Final = "busy"
WORKER_IDLE: Final = "idle"
#: Alerts on the kit's own health and on saturation (generated by limone_obs.alerts).
ALERT_EXPORTER_PROBLEM: Final = "ExporterProblem"
ALERT_LOG_LINES_DROPPED: Final = "LogLinesDropped"
ALERT_WORKERS_SATURATED: Final = "WorkersSaturated"
ALERT_CALLS_PER_REQUEST_HIGH: Final = "DependencyCallsPerRequestHigh"
#: Environment variables read by the kit (documented in README "Use it in your service").
ENV_SERVICE: Final = "LIMONE_OBS_SERVICE"
ENV_ENV: Final = "LIMONE_OBS_ENV"
ENV_METRICS_TOKEN: Final = "LIMONE_OBS_METRICS_TOKEN"
ENV_FAST_PATH: Final = "LIMONE_OBS_FAST_PATH"
#: gunicorn config shipped in the package: ``gunicorn -c python:<this> 'app:create_app()'``.
GUNICORN_CONFIG_MODULE: Final = "limone_obs.gunicorn_conf"


def dashboard_uid(service: str, dashboard: str) -> str:
    """uid of one generated dashboard (``overview``, ``slos``, ...) of ``service``.

    ``dashboard_uid("limoneide", "slos")`` is ``limoneide-slos``: the service name leads,
    so several services' dashboards share one Grafana without overwriting each other.
    """
    return f"{service}-{dashboard}"


# --- SLO stages, low traffic, absent series, kit health (names added by limone_obs.alerts)
#: Share of a staged latency SLO's events within one of its next thresholds (progress
#: toward the roadmap's next steps), labelled ``stage_seconds`` with the threshold.
LABEL_STAGE: Final = "stage_seconds"
RULE_STAGE_SLI_PREFIX: Final = "slo:stage_sli:ratio_rate"
#: Windows the stage progress is recorded over (from the raw histogram).
STAGE_WINDOWS: Final = ("5m", "1h")


def stage_sli_rule(window: str) -> str:
    """Recording-rule name of a stage's good ratio over ``window`` (``5m``, ``1h``)."""
    return f"{RULE_STAGE_SLI_PREFIX}{window}"


#: ``<Slo>AllFailing``: events arrive and none is good, whatever the traffic (the burn
#: alerts stay quiet below ``min_rate``); ``<Slo>SliAbsent``: the SLI's series are missing.
ALERT_SUFFIX_ALL_FAILING: Final = "AllFailing"
ALERT_SUFFIX_SLI_ABSENT: Final = "SliAbsent"
#: Buckets of ``<ns>_page_load_seconds`` (real-user page timing): the page-load SLO's
#: thresholds (2 s, 1 s) and its stages must be among them.
PAGE_LOAD_BUCKETS: Final = (
    0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0,
)  # fmt: skip
#: Buckets of each histogram by name without the namespace; a latency SLO's thresholds
#: must be boundaries of its histogram's buckets.
HISTOGRAM_BUCKETS: Final = {
    "request_duration_seconds": DEFAULT_BUCKETS,
    "dependency_duration_seconds": DEFAULT_DEPENDENCY_BUCKETS,
    SUFFIX_PAGE_LOAD_SECONDS: PAGE_LOAD_BUCKETS,
}


def histogram_buckets(namespace: str, metric: str) -> tuple[float, ...]:
    """The bucket boundaries of the exporter's histogram ``metric`` (base name) in
    ``namespace``; :data:`DEFAULT_BUCKETS` for a histogram the exporter does not define."""
    suffix = metric.removeprefix(f"{namespace}_")
    return HISTOGRAM_BUCKETS.get(suffix, DEFAULT_BUCKETS) if suffix != metric else DEFAULT_BUCKETS
