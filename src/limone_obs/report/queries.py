"""PromQL of the report, built from the conventions' names (pure functions, no I/O).

Every window query is an instant query evaluated at the window's end, over a range as
long as the window: ``increase(x[3600s])`` at 10:00 covers 09:00-10:00. The baseline runs
the same text at the baseline's end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from limone_obs import conventions as c
from limone_obs.conventions import MetricNames
from limone_obs.report.window import duration_seconds


def _sel(job: str, *extra: str) -> str:
    return "{" + ",".join([f"{c.LABEL_JOB}={c.promql_string(job)}", *extra]) + "}"


def _increase(series: str, selector: str, seconds: int) -> str:
    return f"increase({series}{selector}[{seconds}s])"


def counts(names: MetricNames, job: str, by: str, seconds: int, *, dependency: bool) -> str:
    """Requests per endpoint (or calls per dependency) in the window."""
    series = names.dependency_duration_count if dependency else names.requests_total
    return f"sum by ({by}) ({_increase(series, _sel(job), seconds)})"


def failures(names: MetricNames, job: str, by: str, seconds: int, *, dependency: bool) -> str:
    """5xx answers per endpoint (or failed calls per dependency) in the window."""
    if dependency:
        selector = _sel(job, f'{c.LABEL_OUTCOME}="{c.OUTCOME_ERROR}"')
        return f"sum by ({by}) ({_increase(names.dependency_duration_count, selector, seconds)})"
    selector = _sel(job, f'{c.LABEL_STATUS}=~"5.."')
    return f"sum by ({by}) ({_increase(names.requests_total, selector, seconds)})"


def quantile(
    names: MetricNames, job: str, by: str, q: float, seconds: int, *, dependency: bool
) -> str:
    """The ``q`` quantile per endpoint (or dependency) over the window, from the histogram."""
    return f"histogram_quantile({q:g}, {buckets(names, job, by, seconds, dependency=dependency)})"


def mean(names: MetricNames, job: str, by: str, seconds: int, *, dependency: bool) -> str:
    """The exact mean duration per endpoint (or dependency): the histogram's sum over its
    count in the window."""
    total = names.dependency_duration_sum if dependency else names.request_duration_sum
    count = names.dependency_duration_count if dependency else names.request_duration_count
    spent = f"sum by ({by}) ({_increase(total, _sel(job), seconds)})"
    return f"{spent} / sum by ({by}) ({_increase(count, _sel(job), seconds)})"


def buckets(names: MetricNames, job: str, by: str, seconds: int, *, dependency: bool) -> str:
    """The histogram's cumulative bucket counts per endpoint (or dependency) and ``le``."""
    bucket = names.dependency_duration_bucket if dependency else names.request_duration_bucket
    return f"sum by ({by}, {c.LABEL_LE}) ({_increase(bucket, _sel(job), seconds)})"


def time_per_request(names: MetricNames, job: str, seconds: int) -> str:
    """Seconds spent in each dependency per request (all calls, successful or not): the
    calls each request made (the per-request counter), not calls of no request."""
    spent_in = _increase(names.request_dependency_seconds_total, _sel(job), seconds)
    spent = f"sum by ({c.LABEL_DEPENDENCY}) ({spent_in})"
    requests = f"sum({_increase(names.request_duration_count, _sel(job), seconds)})"
    return f"{spent} / scalar({requests})"


def endpoint_time_per_request(names: MetricNames, job: str, seconds: int) -> str:
    """Seconds each endpoint's requests spent in each dependency, per request of that
    endpoint (its own calls: the per-request counter), by endpoint and dependency."""
    by, sel = f"{c.LABEL_ENDPOINT}, {c.LABEL_DEPENDENCY}", _sel(job)
    spent = f"sum by ({by}) ({_increase(names.request_dependency_seconds_total, sel, seconds)})"
    requests = _endpoint_requests(names, job, seconds)
    return f"{spent}\n/ on ({c.LABEL_ENDPOINT}) group_left ()\n{requests}"


def endpoint_outside_dependencies(names: MetricNames, job: str, seconds: int) -> str:
    """Seconds per request of each endpoint outside every dependency call (``other``),
    by endpoint."""
    return f"{_outside_seconds(names, job, seconds)} / {_endpoint_requests(names, job, seconds)}"


def _endpoint_requests(names: MetricNames, job: str, seconds: int) -> str:
    """Each endpoint's requests in the window, where there were any."""
    requests = _increase(names.request_duration_count, _sel(job), seconds)
    return f"(sum by ({c.LABEL_ENDPOINT}) ({requests}) > 0)"


def _outside_seconds(names: MetricNames, job: str, seconds: int) -> str:
    """Seconds of each endpoint's requests outside every dependency call, never below 0
    (one endpoint's overlapping calls take nothing off another's time), by endpoint."""
    by = c.LABEL_ENDPOINT
    total = f"sum by ({by}) ({_increase(names.request_duration_sum, _sel(job), seconds)})"
    in_deps = _increase(names.request_dependency_seconds_total, _sel(job), seconds)
    charged = f"(sum by ({by}) ({in_deps}) or {total} * 0)"
    return f"clamp_min({total} - {charged}, 0)"


def calls_per_request(names: MetricNames, job: str, seconds: int) -> str:
    """Calls each request made to each dependency in the window, by endpoint and
    dependency: the exact mean over every request of the endpoint
    (:func:`~limone_obs.conventions.calls_per_request_mean`)."""
    by, sel = f"{c.LABEL_ENDPOINT}, {c.LABEL_DEPENDENCY}", _sel(job)
    calls = _increase(names.dependency_calls_per_request_sum, sel, seconds)
    observed = _increase(names.dependency_calls_per_request_count, sel, seconds)
    return c.calls_per_request_mean(
        f"sum by ({by}) ({calls})",
        _endpoint_requests(names, job, seconds),
        f"(sum by ({by}) ({observed}) > 0)",
    )


def outside_dependencies(names: MetricNames, job: str, seconds: int) -> str:
    """Seconds per request outside every dependency call ("other"), endpoint by endpoint
    (each never below 0: one endpoint's overlapping calls take nothing off another's
    time), summed over all requests."""
    requests = f"sum({_increase(names.request_duration_count, _sel(job), seconds)})"
    return f"sum({_outside_seconds(names, job, seconds)}) / {requests}"


def dependency_seconds(names: MetricNames, job: str, seconds: int) -> str:
    """Seconds spent in each dependency's calls in the window, in requests or not."""
    spent = _increase(names.dependency_duration_sum, _sel(job), seconds)
    return f"sum by ({c.LABEL_DEPENDENCY}) ({spent})"


def outside_requests(names: MetricNames, job: str, seconds: int) -> str:
    """Seconds of each dependency's calls in the window that no request was charged with
    (never below 0): background work, thread-pool work without the request's context."""
    every = dependency_seconds(names, job, seconds)
    charged_in = _increase(names.request_dependency_seconds_total, _sel(job), seconds)
    charged = f"(sum by ({c.LABEL_DEPENDENCY}) ({charged_in}) or {every} * 0)"
    return f"clamp_min({every} - {charged}, 0)"


def within(
    names: MetricNames,
    job: str,
    threshold: float,
    seconds: int,
    *,
    good: tuple[str, ...] = (),
    scope: tuple[str, ...] = (),
) -> str:
    """Share of requests served within ``threshold`` seconds (a bucket boundary): of the
    requests ``scope`` selects (label matchers, PromQL; all of the job's when empty), those
    ``good`` selects within the threshold (an SLO's good events)."""
    le = c.LE_ONE_SECOND_MATCHER if threshold == 1.0 else f'{c.LABEL_LE}="{threshold!r}"'
    within_ = f"sum({_increase(names.request_duration_bucket, _sel(job, *good, le), seconds)})"
    if good:  # every request failed: no series of the good ones at all, 0 of them
        within_ = f"({within_} or vector(0))"
    every = _increase(names.request_duration_count, _sel(job, *scope), seconds)
    return f"{within_} / sum({every})"


def average_rate(names: MetricNames, job: str, seconds: int) -> str:
    """Requests per second, averaged over the window."""
    return f"sum({_increase(names.requests_total, _sel(job), seconds)}) / {seconds}"


def peak_rate(names: MetricNames, job: str, seconds: int, step: int, window: int = 60) -> str:
    """Highest request rate over ``window`` s within the window (sampled every ``step`` s),
    of the rates whose own ``window`` lies wholly in it: a rate sampled at the window's
    start covers the minute before it (an incident's window whose throughput fell read
    the healthy peak of that minute). A window no longer than ``window``: its own rate."""
    inside = seconds - window
    rate = f"sum(rate({names.requests_total}{_sel(job)}[{window if inside > 0 else seconds}s]))"
    return f"max_over_time({rate}[{inside}s:{step}s])" if inside > 0 else rate


def began(names: MetricNames, job: str, seconds: int) -> str:
    """The endpoints (and statuses) with a request series that began within the window,
    or started again at its start.

    Began: a sample at its end and none in the 5 minutes before its start. Started again:
    its lowest value in the window is below its last one before, with no reset between
    the window's own samples (its process restarted between the last scrape before the
    window and the first in it: the window holds only the new process's samples, the
    first of them taken as where it began; a reset inside the window, ``increase()``
    counts). ``increase()`` counts neither series' requests before its first scrape. Range
    selectors, as stale markers (a failed scrape writes one for every series of its
    target) are no samples there: one timed-out scrape at the window's start does not
    make every series look new.
    """
    series = f"{names.requests_total}{_sel(job)}"
    before = f"last_over_time({series}[5m] offset {seconds}s)"
    restarted = (
        f"min_over_time({series}[{seconds}s]) < {before}\nunless resets({series}[{seconds}s]) > 0"
    )
    by = f"{c.LABEL_ENDPOINT}, {c.LABEL_STATUS}"
    return f"group by ({by}) (({series} unless {before}) or ({restarted}))"


def restarts(names: MetricNames, job: str, seconds: int) -> str:
    """Per instance, how many times its request counters started again from 0 within the
    last ``seconds`` (its process restarted: a deploy, a crash; the most of any of its
    series, as a series that had counted nothing cannot fall). Both samples of a fall
    must lie in the range."""
    series = f"{names.requests_total}{_sel(job)}"
    return f"max by ({c.LABEL_INSTANCE}) (resets({series}[{seconds}s]))"


def peak_in_flight(names: MetricNames, job: str, seconds: int, step: int) -> str:
    """Most requests in flight at once within the window (sampled every ``step`` s)."""
    gauge = f"sum({names.requests_in_progress}{_sel(job)})"
    return f"max_over_time({gauge}[{seconds}s:{step}s])"


def rate_series(names: MetricNames, job: str, window: int) -> str:
    """Request rate over time (range query)."""
    return f"sum(rate({names.requests_total}{_sel(job)}[{window}s]))"


def error_series(names: MetricNames, job: str, window: int) -> str:
    """5xx ratio over time (range query)."""
    five_xx = _sel(job, f'{c.LABEL_STATUS}=~"5.."')
    bad = f"sum(rate({names.requests_total}{five_xx}[{window}s]))"
    return f"({bad} or vector(0)) / {rate_series(names, job, window)}"


def p95_series(names: MetricNames, job: str, window: int, scope: tuple[str, ...] = ()) -> str:
    """p95 over time (range query) of the requests ``scope`` selects (label matchers,
    PromQL; all of the job's when empty)."""
    bucket = f"rate({names.request_duration_bucket}{_sel(job, *scope)}[{window}s])"
    return f"histogram_quantile(0.95, sum by ({c.LABEL_LE}) ({bucket}))"


def _service(service: str) -> str:
    return f"{c.LABEL_SLO_SERVICE}={c.promql_string(service)}"


def slo_objectives(service: str) -> str:
    """Every SLO of the service with its objective (the recording rules define the list)."""
    return f"max by ({c.LABEL_SLO}) ({c.RULE_OBJECTIVE}{{{_service(service)}}})"


def slo_services() -> str:
    """The services (``slo_service`` values) Prometheus records SLO objectives of."""
    return f"count by ({c.LABEL_SLO_SERVICE}) ({c.RULE_OBJECTIVE})"


def slo_sli(service: str, seconds: int) -> str:
    """Request-weighted SLI over the window from the recorded 5-minute event rates (of an
    SLO not in the spec: they also weigh in the 5 minutes before the window)."""
    sel = "{" + _service(service) + "}"
    bad = f"sum by ({c.LABEL_SLO}) (sum_over_time({c.RULE_BAD_EVENTS_RATE5M}{sel}[{seconds}s]))"
    total = f"sum by ({c.LABEL_SLO}) (sum_over_time({c.RULE_EVENTS_RATE5M}{sel}[{seconds}s]))"
    return f"1 - {bad} / {total}"


def slo_lowest(service: str, slo: str, window: str, seconds: int) -> str:
    """The lowest good share over the report's window (``seconds`` up to the evaluation
    time) of an SLO that records only its error ratio over ``window`` (the worst value
    its plain alert compared with the objective): of the ratios whose own ``window`` lies
    inside the report's, from ``window`` into it on. A report window no longer than
    ``window`` has none such: it reads the values taken within it, each over the
    ``window`` before it, so reaching back before the report's window (the report counts
    such a window's own events instead when the spec gives its selectors)."""
    ratio = f'{c.sli_error_ratio_rule(window)}{{{_service(service)},{c.LABEL_SLO}="{slo}"}}'
    inside = seconds - int(duration_seconds(window, "ratio window"))
    return f"1 - max(max_over_time({ratio}[{inside if inside > 0 else seconds}s]))"


def mean_over_time(expr: str, seconds: int, step: int) -> str:
    """The mean of the instant expression ``expr`` over the window, sampled every ``step`` s."""
    return f"avg_over_time(({expr})[{seconds}s:{step}s])"


def slo_budget_left(service: str) -> str:
    """Share of the period's error budget left (evaluate at the window's end)."""
    return f"max by ({c.LABEL_SLO}) ({c.RULE_PERIOD_BUDGET_REMAINING}{{{_service(service)}}})"


def alerts_inhibited(
    service: str, seconds: int, step: float, rules: Sequence[Mapping[str, Any]]
) -> str:
    """Alerts of the service held back by ``rules`` (Alertmanager inhibit rules:
    ``source_matchers``, ``target_matchers``, ``equal``) whenever they fired: sampled every
    ``step`` s over the window, firing while an alert inhibiting them fired at some point
    and never without one. An alert no sample caught (one that began after the window's
    last step) is not in it: only what was seen held back is. ``rules`` is not empty."""
    firing = f'{c.SERIES_ALERTS}{{alertstate="firing",{_service(service)}}}'
    held = "\nor\n".join(
        f"({_alerts(rule['target_matchers'])} and on ({', '.join(rule.get('equal', []))}) "
        f"{_alerts(rule['source_matchers'])})"
        for rule in rules
    )
    by = f"alertname, {c.LABEL_SLO}, {c.LABEL_SEVERITY}"
    # In milliseconds: PromQL durations are whole numbers of a unit.
    over = f"[{seconds}s:{max(1, round(step * 1000))}ms]"
    ever_held = f"max by ({by}) (max_over_time(({firing} and ({held})){over}))"
    ever_free = f"max by ({by}) (max_over_time(({firing} unless ({held})){over}))"
    return f"{ever_held}\nunless on ({by})\n{ever_free}"


def _alerts(matchers: Sequence[str]) -> str:
    """Firing ``ALERTS`` series matching Alertmanager ``matchers`` (``name="value"`` and
    ``name=~"regex"``, the forms the kit writes: PromQL reads them alike)."""
    return c.SERIES_ALERTS + "{" + ",".join(['alertstate="firing"', *matchers]) + "}"


def alerts_firing_at(service: str, lookback: int) -> str:
    """Alerts of the service firing at the evaluation time (their last ``ALERTS`` sample
    within ``lookback`` seconds, a rule evaluation and a half, said firing)."""
    firing = f'{c.SERIES_ALERTS}{{alertstate="firing",{_service(service)}}}'
    by = f"alertname, {c.LABEL_SLO}, {c.LABEL_SEVERITY}"
    return f"max by ({by}) (last_over_time({firing}[{lookback}s]))"


def alerts_fired(service: str, seconds: int) -> str:
    """Alerts of the service that were firing at some point within the window."""
    firing = f'{c.SERIES_ALERTS}{{alertstate="firing",{_service(service)}}}'
    by = f"alertname, {c.LABEL_SLO}, {c.LABEL_SEVERITY}"
    return f"max by ({by}) (max_over_time({firing}[{seconds}s]))"
