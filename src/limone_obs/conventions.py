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
#: The kit's own service (alerts/slo.yaml's ``service``; log lines' default ``service``).
DEFAULT_SERVICE: Final = "limoneide"

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
#: ``dependency`` / ``operation`` value of ``track()`` calls past the exporter's limits
#: (:data:`MAX_TRACKED_DEPENDENCIES`, :data:`MAX_TRACKED_OPERATIONS`).
TRACKED_OTHER: Final = "<other>"
#: Distinct ``dependency`` values ``track()`` records, and ``operation`` values per
#: dependency; later new ones are recorded under :data:`TRACKED_OTHER`.
MAX_TRACKED_DEPENDENCIES: Final = 30
MAX_TRACKED_OPERATIONS: Final = 50
KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
OUTCOME_OK: Final = "ok"
OUTCOME_ERROR: Final = "error"
CACHE_HIT: Final = "hit"
CACHE_MISS: Final = "miss"
#: A cache lookup that got no answer (cache down, slow or returning garbage).
CACHE_ERROR: Final = "error"
CACHE_RESULTS: Final = (CACHE_HIT, CACHE_MISS, CACHE_ERROR)
#: Dependency name used by the automatic Jinja template timing.
DEPENDENCY_TEMPLATE: Final = "template"
#: Dependency names of the demo service and the examples; the dashboards draw whatever
#: names an app gives ``track()`` (``$dependency``), these included.
DEPENDENCY_AI: Final = "ai_api"
DEPENDENCY_DB: Final = "db"
DEPENDENCY_CACHE: Final = "cache"
#: Dependency name of the Redis calls made by ``limone_obs.exporter.cache``.
DEPENDENCY_REDIS: Final = "redis"
#: Operation names of those calls.
REDIS_OP_GET: Final = "get"
REDIS_OP_SET: Final = "set"

# --- histogram buckets --------------------------------------------------------------
#: Latency thresholds the SLO spec may use; every one must be a bucket boundary.
SLO_LATENCY_THRESHOLDS: Final = (0.6, 1.0)
#: Request buckets: fine around the 0.6 s and 1 s objectives, reaching 30 s AI calls.
DEFAULT_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0,
    1.5, 2.0, 2.5, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0,
)  # fmt: skip
#: Dependency buckets: the request buckets (AI calls take seconds), with finer ones below
#: 5 ms: a local database or cache answers in 0.05-2 ms, and with 5 ms as the first bound
#: its p50 and p95 read 2.5 ms and 4.75 ms whatever it takes.
DEFAULT_DEPENDENCY_BUCKETS: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, *DEFAULT_BUCKETS)

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

    @property
    def dependency_calls_per_request(self) -> str:
        return self._n(SUFFIX_DEPENDENCY_CALLS_PER_REQUEST)

    @property
    def request_dependency_seconds(self) -> str:
        return self._n(SUFFIX_REQUEST_DEPENDENCY_SECONDS_TOTAL.removesuffix("_total"))

    @property
    def dependency_calls_per_request_bucket(self) -> str:
        return self._n(SUFFIX_DEPENDENCY_CALLS_PER_REQUEST + "_bucket")

    @property
    def dependency_calls_per_request_count(self) -> str:
        return self._n(SUFFIX_DEPENDENCY_CALLS_PER_REQUEST + "_count")

    @property
    def dependency_calls_per_request_sum(self) -> str:
        return self._n(SUFFIX_DEPENDENCY_CALLS_PER_REQUEST + "_sum")

    @property
    def request_dependency_seconds_total(self) -> str:
        return self._n(SUFFIX_REQUEST_DEPENDENCY_SECONDS_TOTAL)

    @property
    def request_dependency_busy_seconds(self) -> str:
        return self._n(SUFFIX_REQUEST_DEPENDENCY_BUSY_SECONDS_TOTAL.removesuffix("_total"))

    @property
    def request_dependency_busy_seconds_total(self) -> str:
        return self._n(SUFFIX_REQUEST_DEPENDENCY_BUSY_SECONDS_TOTAL)

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

    # User experience: browser timing, queueing, workers.
    @property
    def page_load(self) -> str:
        return self._n(SUFFIX_PAGE_LOAD_SECONDS)

    @property
    def page_load_bucket(self) -> str:
        return self._n(f"{SUFFIX_PAGE_LOAD_SECONDS}_bucket")

    @property
    def page_load_count(self) -> str:
        return self._n(f"{SUFFIX_PAGE_LOAD_SECONDS}_count")

    @property
    def rum_pages(self) -> str:
        return self._n(SUFFIX_RUM_PAGES)

    @property
    def rum_pages_total(self) -> str:
        return self._n(f"{SUFFIX_RUM_PAGES}_total")

    @property
    def rum_beacons(self) -> str:
        return self._n(SUFFIX_RUM_BEACONS)

    @property
    def rum_beacons_total(self) -> str:
        return self._n(f"{SUFFIX_RUM_BEACONS}_total")

    @property
    def request_queue(self) -> str:
        return self._n(SUFFIX_REQUEST_QUEUE_SECONDS)

    @property
    def request_queue_count(self) -> str:
        return self._n(SUFFIX_REQUEST_QUEUE_SECONDS + "_count")

    @property
    def request_queue_ignored(self) -> str:
        """As passed to prometheus-client (without ``_total``)."""
        return self._n(SUFFIX_REQUEST_QUEUE_IGNORED_TOTAL.removesuffix("_total"))

    @property
    def request_queue_ignored_total(self) -> str:
        return self._n(SUFFIX_REQUEST_QUEUE_IGNORED_TOTAL)

    @property
    def request_queue_bucket(self) -> str:
        return self._n(f"{SUFFIX_REQUEST_QUEUE_SECONDS}_bucket")

    @property
    def workers(self) -> str:
        return self._n(SUFFIX_WORKERS)

    @property
    def worker_threads(self) -> str:
        return self._n(SUFFIX_WORKER_THREADS)


#: Labels of each series, in exposition order (the exporter creates them in this order).
REQUESTS_LABELS: Final = (LABEL_METHOD, LABEL_ENDPOINT, LABEL_STATUS)
DURATION_LABELS: Final = (LABEL_METHOD, LABEL_ENDPOINT)
IN_PROGRESS_LABELS: Final = (LABEL_METHOD, LABEL_ENDPOINT)
EXCEPTIONS_LABELS: Final = (LABEL_METHOD, LABEL_ENDPOINT, LABEL_EXCEPTION)
DEPENDENCY_LABELS: Final = (LABEL_DEPENDENCY, LABEL_OPERATION, LABEL_OUTCOME)
CACHE_LABELS: Final = (LABEL_CACHE, LABEL_RESULT)
BUILD_INFO_LABELS: Final = (LABEL_VERSION, LABEL_REVISION, LABEL_PYTHON)


def le_match(threshold: float) -> tuple[str, str]:
    """The ``le`` matcher of bucket ``threshold`` as (operator, unescaped regex or value).

    prometheus-client writes ``le="1.0"``; other clients write ``"1"``, which Prometheus 3
    normalises to ``"1.0"`` (Prometheus 2 keeps it as written): a whole number matches both
    spellings (``=~ 1(\\.0)?``), any other bound its
    ``repr`` exactly. The one rule for the alerts and the dashboards.
    """
    if float(threshold).is_integer():
        return "=~", f"{int(threshold)}(\\.0)?"
    return "=", repr(float(threshold))


def promql_string(value: str) -> str:
    """``value`` as a double-quoted PromQL string: backslash, quote and newline escaped
    (a job named ``billing"api`` must not end the string, nor inject a matcher)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def le_matcher(threshold: float) -> str:
    """:func:`le_match` as PromQL text: ``le=~"1(\\\\.0)?"``, ``le="0.6"``."""
    op, value = le_match(threshold)
    return f"{LABEL_LE}{op}{promql_string(value)}"


#: PromQL matcher for the 1 s bucket in both notations: ``le="1.0"`` (prometheus-client, and
#: every client on Prometheus 3, which normalises ``"1"`` to ``"1.0"``) and ``le="1"``.
LE_ONE_SECOND_MATCHER: Final = le_matcher(1.0)

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
#: ``$dependency``: the dependencies the dependencies dashboard repeats its per-dependency
#: row for (every ``dependency`` label value of the service, whatever the app names them).
VAR_DEPENDENCY: Final = "dependency"
#: ``$baseline``: seconds back at which the baseline series are drawn (0 = none).
VAR_BASELINE: Final = "baseline"
#: The dashboards of one service, as named to :func:`dashboard_uid` (``<service>-<name>``).
DASHBOARD_OVERVIEW: Final = "overview"
DASHBOARD_SLOS: Final = "slos"
DASHBOARD_DEPENDENCIES: Final = "dependencies"
DASHBOARD_ENDPOINT: Final = "endpoint"
DASHBOARD_LOGS: Final = "logs"
DASHBOARD_UX: Final = "ux"
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
    return f"P{objective:.10g}".replace(".", "") + ALERT_SUFFIX_THRESHOLD


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
#: True on the access line of a request whose body the server stopped sending before its
#: end (the client went away mid-body); absent otherwise.
LOG_CLIENT_ABORTED: Final = "client_aborted"
#: The server's own fields of gunicorn's access line (``GUNICORN_ACCESSLOG``).
LOG_REMOTE_ADDR: Final = "remote_addr"
LOG_USER_AGENT: Final = "user_agent"
LOG_RESPONSE_BYTES: Final = "response_bytes"
#: ``{"type", "message", "traceback"}`` of a logged exception.
LOG_EXCEPTION: Final = "exception"
#: Set to true on a line cut to the size cap; ``original_bytes`` holds its full size.
LOG_TRUNCATED: Final = "truncated"
LOG_ORIGINAL_BYTES: Final = "original_bytes"
LOG_CORE_FIELDS: Final = (LOG_TIMESTAMP, LOG_LEVEL, LOG_LOGGER, LOG_MESSAGE, LOG_SERVICE, LOG_ENV)
LOG_CONTEXT_FIELDS: Final = (
    LOG_REQUEST_ID, LOG_TRACE_ID, LOG_SPAN_ID, LOG_METHOD, LOG_ENDPOINT, LOG_PATH,
    LOG_STATUS_CODE, LOG_DURATION, LOG_USER_ID, LOG_CLIENT_ABORTED,
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
#: Cache name of the demo service's AI answers (``cache`` label value).
DEMO_CACHE_AI: Final = "ai_answers"
#: Environment variable / Flask config key: the demo's Redis URL (unset: no cache).
DEMO_REDIS_URL_ENV: Final = "LIMONE_DEMO_REDIS_URL"
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
PROBLEM_MULTIPROCESS_LEFTOVERS: Final = "multiprocess_leftover_files"
PROBLEM_METRIC_NAME_CLASH: Final = "metric_name_clash"
PROBLEM_MULTIPROCESS_OTHER_READER: Final = "multiprocess_other_reader"
#: The app's logging set-up ran after ``configure_logging`` and undid it: lines unmasked.
PROBLEM_LOGGING_REPLACED: Final = "logging_replaced"
#: ``init_app`` logs the requests of a process where ``configure_logging`` never ran.
PROBLEM_LOGGING_NOT_CONFIGURED: Final = "logging_not_configured"
EXPORTER_PROBLEMS: Final = (
    PROBLEM_MULTIPROCESS_MISSING, PROBLEM_STORAGE_FULL, PROBLEM_STORAGE_UNWRITABLE,
    PROBLEM_MULTIPROCESS_LEFTOVERS, PROBLEM_METRIC_NAME_CLASH,
    PROBLEM_MULTIPROCESS_OTHER_READER, PROBLEM_LOGGING_REPLACED,
    PROBLEM_LOGGING_NOT_CONFIGURED,
)  # fmt: skip
SUFFIX_EXPORTER_PROBLEMS: Final = "exporter_problems"
#: ``<ns>_log_lines_dropped_total``: log lines dropped because the sink was blocked.
SUFFIX_LOG_LINES_DROPPED_TOTAL: Final = "log_lines_dropped_total"
#: ``<ns>_dependency_calls_per_request{endpoint,dependency}`` (histogram of calls made by
#: one request) and ``<ns>_request_dependency_seconds_total{endpoint,dependency}`` (time
#: spent in each dependency, per endpoint): both fed by ``track`` at the end of a request.
SUFFIX_DEPENDENCY_CALLS_PER_REQUEST: Final = "dependency_calls_per_request"
SUFFIX_REQUEST_DEPENDENCY_SECONDS_TOTAL: Final = "request_dependency_seconds_total"
#: ``<ns>_request_dependency_busy_seconds_total{endpoint}``: the time of a request during
#: which at least one tracked call was working for it (calls that overlap, in a thread
#: pool or ``asyncio.gather``, or one inside another, count once): the request's time
#: outside it is the app's own.
SUFFIX_REQUEST_DEPENDENCY_BUSY_SECONDS_TOTAL: Final = "request_dependency_busy_seconds_total"
CALLS_PER_REQUEST_BUCKETS: Final = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 50.0, 100.0)
REQUEST_DEPENDENCY_LABELS: Final = (LABEL_ENDPOINT, LABEL_DEPENDENCY)


def calls_per_request_mean(calls: str, requests: str, observed: str) -> str:
    """PromQL: the mean calls one request makes to each dependency, per endpoint.

    ``calls`` sums the rate of ``<ns>_dependency_calls_per_request_sum`` by endpoint (and
    dependency, unless the selector picks one), ``observed`` that of its ``_count`` the
    same way, ``requests`` that of ``<ns>_request_duration_seconds_count`` by endpoint (all
    over the same window). The histogram's own count is the denominator only where the
    request histogram has no series: a worker observes a request's 0 calls of a
    dependency only once it has seen that endpoint call it, so the requests before (every
    request of a fresh or recycled worker until then) are not in that count, and an
    endpoint that calls a dependency only sometimes read too high (most on a fresh or
    recycled worker, whose first window may hold few such requests). The
    request histogram counts every request of the endpoint.
    """
    return (
        f"(\n{calls}\n/ on ({LABEL_ENDPOINT}) group_left ()\n{requests}\n)\n"
        f"or\n(\n{calls}\n/\n{observed}\n)"
    )


def calls_per_request_buckets(buckets: str, observed: str, requests: str, by: str) -> str:
    """PromQL: the calls-per-request buckets with every request of the endpoint in them.

    ``buckets`` sums the rate of ``<ns>_dependency_calls_per_request_bucket`` by ``by``
    and ``le``, ``observed`` that of its ``_count`` by ``by`` (the endpoint, and the
    dependency unless the selectors pick one), ``requests`` that of
    ``<ns>_request_duration_seconds_count`` by endpoint. The requests the histogram did not
    observe (see :func:`calls_per_request_mean`) made 0 calls of the dependency: they are
    added to every bucket, so ``histogram_quantile`` of the result is the quantile over
    all the endpoint's requests, not over those after its first call. Groups without
    a request series keep the histogram's own buckets.
    """
    unobserved = f"clamp_min(\n{requests}\n- on ({LABEL_ENDPOINT}) group_right ()\n{observed},\n0)"
    return f"(\n{buckets}\n+ on ({by}) group_left ()\n{unobserved}\n)\nor\n{buckets}"


#: ``<ns>_request_queue_seconds``: time between the proxy's ``X-Request-Start`` and the
#: worker starting the request.
SUFFIX_REQUEST_QUEUE_SECONDS: Final = "request_queue_seconds"
QUEUE_START_HEADER: Final = "X-Request-Start"
#: ``<ns>_request_queue_ignored_total{reason}``: ``X-Request-Start`` values not observed,
#: because the header was unreadable or announced a wait beyond QUEUE_MAX_SECONDS.
SUFFIX_REQUEST_QUEUE_IGNORED_TOTAL: Final = "request_queue_ignored_total"
LABEL_REASON: Final = "reason"
QUEUE_IGNORED_MALFORMED: Final = "malformed"
QUEUE_IGNORED_TOO_LONG: Final = "too_long"
#: The proxy's stamp is more than QUEUE_MAX_SECONDS after the worker's clock.
QUEUE_IGNORED_AHEAD: Final = "clock_ahead"
QUEUE_IGNORED_REASONS: Final = (
    QUEUE_IGNORED_MALFORMED, QUEUE_IGNORED_TOO_LONG, QUEUE_IGNORED_AHEAD,
)  # fmt: skip
#: A longer queue time is clock skew between proxy and app, not a wait: ignored, counted.
QUEUE_MAX_SECONDS: Final = 60.0
#: Queue-time buckets (seconds): a healthy queue is milliseconds; saturation is seconds.
QUEUE_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
#: ``<ns>_page_load_seconds{page,phase}``: real-user page timing from the browser.
SUFFIX_PAGE_LOAD_SECONDS: Final = "page_load_seconds"
LABEL_PAGE: Final = "page"
LABEL_PHASE: Final = "phase"
#: Page-load buckets: fine around the 1 s and 2 s targets (and Google's 2.5 s LCP "good"),
#: and below 0.1 s, where a fast time to first byte and a small page's paint lie.
PAGE_LOAD_BUCKETS: Final = (
    0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 20.0, 30.0,
    60.0,
)  # fmt: skip
#: Page-load thresholds of the user-experience SLOs (page load 2 s, AI answer shown 1 s).
RUM_THRESHOLDS: Final = (1.0, 2.0)
PAGE_LOAD_LABELS: Final = (LABEL_PAGE, LABEL_PHASE)
#: ``<ns>_rum_beacons_total{result}``: beacons received, by what became of them.
SUFFIX_RUM_BEACONS: Final = "rum_beacons"
RUM_ACCEPTED: Final = "accepted"
RUM_MALFORMED: Final = "malformed"
RUM_TOO_LARGE: Final = "too_large"
RUM_BAD_PAGE: Final = "bad_page"
RUM_RATE_LIMITED: Final = "rate_limited"
RUM_RESULTS: Final = (RUM_ACCEPTED, RUM_MALFORMED, RUM_TOO_LARGE, RUM_BAD_PAGE, RUM_RATE_LIMITED)
#: ``<ns>_rum_pages_total{page}``: pages rendered with the RUM script tag, by URL rule:
#: what the page-load beacons are compared with (the share of page views timed).
SUFFIX_RUM_PAGES: Final = "rum_pages"
#: ``<ns>_workers{state}``: gunicorn workers (threads for gthread) busy or idle.
SUFFIX_WORKERS: Final = "workers"
#: ``<ns>_worker_threads``: request slots of each live gunicorn worker (threads for
#: gthread, 1 for sync), summed; ``<ns>_workers{state}`` is derived from it at scrape time.
SUFFIX_WORKER_THREADS: Final = "worker_threads"
LABEL_STATE: Final = "state"
WORKER_BUSY: Final = "busy"
WORKER_IDLE: Final = "idle"
#: Alerts on the kit's own health and on saturation (generated by limone_obs.alerts).
ALERT_EXPORTER_PROBLEM: Final = "ExporterProblem"
ALERT_LOG_LINES_DROPPED: Final = "LogLinesDropped"
ALERT_WORKERS_SATURATED: Final = "WorkersSaturated"
ALERT_CALLS_PER_REQUEST_HIGH: Final = "DependencyCallsPerRequestHigh"
ALERT_TRAFFIC_STOPPED: Final = "TrafficStopped"
#: WSGI environ key of the request's path as its log lines show it, when that differs from
#: PATH_INFO (a secret URL variable masked): gunicorn's access line writes it too.
ENVIRON_LOG_PATH: Final = "limone_obs.log_path"
#: WSGI environ key set once a request's ``X-Request-Start`` was taken: an app mounted
#: inside another instrumented app's wrapper does not observe the same wait again.
ENVIRON_QUEUE_TAKEN: Final = "limone_obs.queue_taken"
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


# --- the exporter's catalogue, as data (read by `limone-obs check`) ------------------
#: Series types of :class:`SeriesInfo`.
TYPE_COUNTER: Final = "counter"
TYPE_GAUGE: Final = "gauge"
TYPE_HISTOGRAM: Final = "histogram"


@dataclass(frozen=True)
class SeriesInfo:
    """One metric family the kit exposes, as ``<namespace>_<suffix>``.

    ``suffix`` is the PromQL base name without the namespace: counters with ``_total``,
    histograms without ``_bucket``. ``buckets`` are a histogram's upper bounds (None when
    the producing area chooses them at run time).
    """

    suffix: str
    type: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] | None = None
    #: The values the exporter writes for a label of this series, where they are not
    #: those of :data:`LABEL_VALUES` (the beacons' ``result`` is not a cache result).
    label_values: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def values_of(self, label: str) -> tuple[str, ...] | None:
        """The values the exporter writes for ``label`` on this series (None: any)."""
        for name, values in self.label_values:
            if name == label:
                return values
        return LABEL_VALUES.get(label)


#: Every family of the exporter and of the shared series above. The generators read this
#: (never the exporter package); a test compares it with the exporter's instruments.
EXPORTER_SERIES: Final = (
    SeriesInfo("requests_total", TYPE_COUNTER, REQUESTS_LABELS),
    SeriesInfo("request_duration_seconds", TYPE_HISTOGRAM, DURATION_LABELS, DEFAULT_BUCKETS),
    SeriesInfo("requests_in_progress", TYPE_GAUGE, IN_PROGRESS_LABELS),
    SeriesInfo("request_exceptions_total", TYPE_COUNTER, EXCEPTIONS_LABELS),
    SeriesInfo(
        "dependency_duration_seconds",
        TYPE_HISTOGRAM,
        DEPENDENCY_LABELS,
        DEFAULT_DEPENDENCY_BUCKETS,
    ),
    SeriesInfo("cache_requests_total", TYPE_COUNTER, CACHE_LABELS),
    SeriesInfo("build_info", TYPE_GAUGE, BUILD_INFO_LABELS),
    SeriesInfo(SUFFIX_EXPORTER_PROBLEMS, TYPE_GAUGE, (LABEL_PROBLEM,)),
    SeriesInfo(SUFFIX_LOG_LINES_DROPPED_TOTAL, TYPE_COUNTER, ()),
    SeriesInfo(
        SUFFIX_DEPENDENCY_CALLS_PER_REQUEST,
        TYPE_HISTOGRAM,
        REQUEST_DEPENDENCY_LABELS,
        CALLS_PER_REQUEST_BUCKETS,
    ),
    SeriesInfo(SUFFIX_REQUEST_DEPENDENCY_SECONDS_TOTAL, TYPE_COUNTER, REQUEST_DEPENDENCY_LABELS),
    SeriesInfo(SUFFIX_REQUEST_DEPENDENCY_BUSY_SECONDS_TOTAL, TYPE_COUNTER, (LABEL_ENDPOINT,)),
    SeriesInfo(SUFFIX_REQUEST_QUEUE_SECONDS, TYPE_HISTOGRAM, (), QUEUE_BUCKETS),
    SeriesInfo(SUFFIX_REQUEST_QUEUE_IGNORED_TOTAL, TYPE_COUNTER, (LABEL_REASON,)),
    SeriesInfo(SUFFIX_PAGE_LOAD_SECONDS, TYPE_HISTOGRAM, PAGE_LOAD_LABELS, PAGE_LOAD_BUCKETS),
    SeriesInfo(
        f"{SUFFIX_RUM_BEACONS}_total",
        TYPE_COUNTER,
        (LABEL_RESULT,),
        label_values=((LABEL_RESULT, RUM_RESULTS),),
    ),
    SeriesInfo(f"{SUFFIX_RUM_PAGES}_total", TYPE_COUNTER, (LABEL_PAGE,)),
    SeriesInfo(SUFFIX_WORKERS, TYPE_GAUGE, (LABEL_STATE,)),
    SeriesInfo(SUFFIX_WORKER_THREADS, TYPE_GAUGE, ()),
)
#: Labels Prometheus adds to every scraped series.
TARGET_LABELS: Final = (LABEL_JOB, LABEL_INSTANCE)
#: HTTP status codes as the ``status`` label writes them ("200", "503").
HTTP_STATUS_CODES: Final = tuple(str(code) for code in range(100, 600))
#: Labels whose every value the exporter can write is known.
LABEL_VALUES: Final = {
    LABEL_STATUS: HTTP_STATUS_CODES,
    LABEL_METHOD: (*sorted(KNOWN_METHODS), METHOD_OTHER),
    LABEL_OUTCOME: (OUTCOME_OK, OUTCOME_ERROR),
    LABEL_RESULT: CACHE_RESULTS,
    LABEL_PROBLEM: EXPORTER_PROBLEMS,
    LABEL_REASON: QUEUE_IGNORED_REASONS,
    LABEL_STATE: (WORKER_BUSY, WORKER_IDLE),
}
# --- user experience (names added by the RUM, worker and process modules) -----------
#: Navigation phases the RUM script reports (seconds since the navigation started):
#: time to first byte, first contentful paint, DOM content loaded, the load event, and the
#: largest contentful paint (sent once, when the page is first hidden). CLS is left out: it
#: has no unit of time.
PHASE_TTFB: Final = "ttfb"
PHASE_FCP: Final = "fcp"
PHASE_DOM_CONTENT_LOADED: Final = "dom_content_loaded"
PHASE_LOAD: Final = "load"
PHASE_LCP: Final = "lcp"
RUM_PHASES: Final = (PHASE_TTFB, PHASE_FCP, PHASE_DOM_CONTENT_LOADED, PHASE_LOAD, PHASE_LCP)
#: Marks the app sets in JavaScript (``limoneObs.mark(name)``) accepted by default; an app
#: registers its own with ``LIMONE_OBS_RUM_MARKS``. Each is a ``phase`` value.
MARK_AI_ANSWER_SHOWN: Final = "ai_answer_shown"
DEFAULT_RUM_MARKS: Final = (MARK_AI_ANSWER_SHOWN,)
#: Default beacon path (``LIMONE_OBS_RUM_PATH``); the script is served at ``<path>.js``.
RUM_DEFAULT_PATH: Final = "/rum"


def rum_script_path(beacon_path: str) -> str:
    """Where the RUM script is served for the beacon path ``beacon_path``: ``<path>.js``."""
    return beacon_path + ".js"


#: Name of the Jinja global rendering the script tag.
RUM_JINJA_GLOBAL: Final = "limone_obs_rum"
#: Under gunicorn (multiprocess mode) the process series cover the master and every live
#: worker: the ``SERIES_PROCESS_*`` names hold the host's sum (CPU includes retired
#: workers, so it never goes down), these the largest single worker.
SERIES_PROCESS_WORKER_MAX_MEMORY: Final = "process_worker_max_resident_memory_bytes"
#: The live workers' resident memory summed, the master left out (a mean per worker is
#: this over SERIES_PROCESS_WORKERS).
SERIES_PROCESS_WORKER_SUM_MEMORY: Final = "process_worker_sum_resident_memory_bytes"
SERIES_PROCESS_WORKER_MAX_FDS: Final = "process_worker_max_open_fds"
#: Live gunicorn workers (master not included) seen by the process collector.
SERIES_PROCESS_WORKERS: Final = "process_workers"
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
#: Buckets of each histogram by name without the namespace; a latency SLO's thresholds
#: must be boundaries of its histogram's buckets.
HISTOGRAM_BUCKETS: Final = {
    "request_duration_seconds": DEFAULT_BUCKETS,
    "dependency_duration_seconds": DEFAULT_DEPENDENCY_BUCKETS,
    SUFFIX_PAGE_LOAD_SECONDS: PAGE_LOAD_BUCKETS,
}


#: prometheus-client's ``Histogram.DEFAULT_BUCKETS`` (without +Inf): what a histogram of
#: the app's own made without ``buckets=`` has (named in the spec's errors).
CLIENT_DEFAULT_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0
)  # fmt: skip
#: The argument of ``Metrics`` that sets each configurable histogram's buckets.
HISTOGRAM_BUCKETS_ARGUMENT: Final = {
    "request_duration_seconds": "Metrics(buckets=...)",
    "dependency_duration_seconds": "Metrics(dependency_buckets=...)",
}


def foreign_namespace_advice(metric: str, other: str, namespace: str) -> str:
    """What a spec of ``namespace`` is told of ``metric``, the exporter's series in
    namespace ``other``: the spec's namespace first (the app's ``Metrics(namespace=...)``
    is the likelier truth: a spec left on the default got told to rename its series)."""
    return (
        f"{metric} is the exporter's series in namespace {other!r}, but the spec's "
        f"namespace is {namespace!r}: set `namespace: {other}` if the app's "
        f"Metrics(namespace=...) is {other!r}, else write {namespace}{metric[len(other) :]}"
    )


def exporter_histogram(namespace: str, metric: str) -> str | None:
    """The name without the namespace of the exporter's histogram ``metric`` (base name)
    in ``namespace``; None for a histogram the exporter does not define."""
    suffix = metric.removeprefix(f"{namespace}_")
    return suffix if suffix != metric and suffix in HISTOGRAM_BUCKETS else None


def histogram_buckets(namespace: str, metric: str) -> tuple[float, ...]:
    """The bucket boundaries of the exporter's histogram ``metric`` (base name) in
    ``namespace``; :data:`DEFAULT_BUCKETS` for a histogram the exporter does not define."""
    suffix = metric.removeprefix(f"{namespace}_")
    return HISTOGRAM_BUCKETS.get(suffix, DEFAULT_BUCKETS) if suffix != metric else DEFAULT_BUCKETS
