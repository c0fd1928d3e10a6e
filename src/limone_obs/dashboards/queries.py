"""PromQL of the dashboards, built from :mod:`limone_obs.conventions` (no retyped names).

Every selector of an exporter series carries the dashboard filters ``job="$job"`` and
``instance=~"$instance"``; every ``rate()``/``increase()`` uses ``$__rate_interval`` so
Grafana picks a window of at least four scrape intervals. Recording rules
(``slo:...``) are already scoped by ``slo_service`` and ``slo``, so they take those
matchers instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from limone_obs import conventions as c

RATE_INTERVAL = "$__rate_interval"
#: The whole selected time range: what a summary table of "this incident" is over.
RANGE = "$__range"


def le_matcher(threshold: float) -> str:
    """Matcher of the ``le`` bucket at ``threshold`` s, valid on Prometheus 2 and 3.

    prometheus-client writes ``le="1.0"``; Prometheus 3 may normalise it to ``"1"``, so
    whole numbers match both spellings (the rule: ``conventions.le_match``).
    """
    return c.le_matcher(threshold)


def matchers(*extra: str) -> str:
    """Return ``{job="$job", instance=~"$instance", <extra>}``."""
    base = [f'{c.LABEL_JOB}="${c.VAR_JOB}"', f'{c.LABEL_INSTANCE}=~"${c.VAR_INSTANCE}"']
    return "{" + ", ".join([*base, *extra]) + "}"


def rate(series: str, *extra: str) -> str:
    """``rate(series{filters}[$__rate_interval])``."""
    return f"rate({series}{matchers(*extra)}[{RATE_INTERVAL}])"


def sum_rate(series: str, *extra: str, by: str = "") -> str:
    """``sum [by (labels)] (rate(series{filters}[$__rate_interval]))``."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} ({rate(series, *extra)})"


def quantile(q: float, bucket: str, *extra: str, by: str = "") -> str:
    """``histogram_quantile(q, sum by (<by>, le) (rate(bucket[...]))) >= 0``: the ``q``
    quantile of each group, and no sample for a group without observations in the window.

    When every bucket's rate is 0 (nothing observed in the window: no request carried
    X-Request-Start, no call to that dependency) ``histogram_quantile`` returns NaN, which
    Grafana draws as a NaN line or stat instead of "No data". NaN compares false, so
    ``>= 0`` drops it and keeps every other value: the histograms of the dashboards count
    non-negative amounts (seconds, calls), whose quantiles are never below 0.
    """
    labels = f"{by}, {c.LABEL_LE}" if by else c.LABEL_LE
    return f"histogram_quantile({q}, {sum_rate(bucket, *extra, by=labels)}) >= 0"


def ratio(numerator: str, denominator: str) -> str:
    """``numerator / denominator`` with both sides parenthesised, for the groups whose
    denominator is above 0 (:func:`positive`)."""
    return f"({numerator})\n/\n{positive(denominator)}"


def positive(denominator: str) -> str:
    """``denominator`` without its zero samples: what a panel divides by.

    A group with series but nothing counted over the window (no request, no call, no
    lookup: an idle service, endpoint or dependency) has a rate of 0, and 0 / 0 is NaN,
    which Grafana draws as a NaN line or stat; divided by nothing, the group has no
    sample and the panel says "No data". Every other value is kept as it is.
    """
    return f"(({denominator}) > 0)"


def or_zero(part: str, whole: str, by: str = "") -> str:
    """``part``, or 0 where ``part`` has no series: the numerator of a ratio.

    A counter series appears only once it has been incremented, so on a healthy service
    ``sum(rate(errors))`` returns nothing and ``errors / total`` shows "No data" instead
    of 0. Unlabelled sums fall back to ``vector(0)``; grouped ones to ``whole * 0`` (the
    denominator, grouped the same way), so every group present in ``whole`` gets its 0
    and no stray label-less series joins the groups that do have ``part``.
    """
    if not by:
        return f"({part} or vector(0))"
    return f"({part}\nor\n{whole} * 0)"


def over_range(expr: str) -> str:
    """``expr`` with its rate windows over the selected range instead of the rate interval.

    A table summarises the range the engineer zoomed on, not the last minute of it.
    """
    return expr.replace(f"[{RATE_INTERVAL}]", f"[{RANGE}]")


def known(expr: str) -> str:
    """``expr`` without its NaN samples: what a panel reads from an SLO's recorded ratios.

    A recorded ratio (an SLI's error ratio, the budget left, a burn rate) divides by the
    events of its window, and 0 / 0 is NaN while the SLI counted none (a browser SLO
    before its first beacon, an idle endpoint's SLO): Grafana would draw NaN where "No
    data" is the truth. NaN compares false, so ``> -Inf`` drops it and keeps every other
    value, negative ones (an overspent budget) included.
    """
    return f"({expr}) > -Inf"


def slo_matchers(service: str, slo: str) -> str:
    """``{slo_service="<service>", slo="<slo>"}`` for the SLO recording rules."""
    return f'{{{c.LABEL_SLO_SERVICE}="{service}", {c.LABEL_SLO}="{slo}"}}'


@dataclass(frozen=True)
class Queries:
    """The request, dependency and cache queries for one namespace."""

    names: c.MetricNames

    def request_rate(self, *extra: str, by: str = "") -> str:
        """Requests per second answered."""
        return sum_rate(self.names.requests_total, *extra, by=by)

    def error_ratio(self, *extra: str, by: str = "") -> str:
        """Share of responses with a 5xx status."""
        errors = self.request_rate(*extra, f'{c.LABEL_STATUS}=~"5.."', by=by)
        total = self.request_rate(*extra, by=by)
        return ratio(or_zero(errors, total, by), total)

    def latency(self, q: float, *extra: str, by: str = "") -> str:
        """The ``q`` quantile of request duration, in seconds."""
        return quantile(q, self.names.request_duration_bucket, *extra, by=by)

    def share_within(self, threshold: float, *extra: str) -> str:
        """Share of requests served within ``threshold`` seconds."""
        fast = sum_rate(self.names.request_duration_bucket, *extra, le_matcher(threshold))
        return ratio(fast, sum_rate(self.names.request_duration_count, *extra))

    def status_class_rate(self, *extra: str) -> str:
        """Requests per second by status class (``2xx``, ``4xx``, ``5xx``...)."""
        inner = f"sum by ({c.LABEL_STATUS}) ({rate(self.names.requests_total, *extra)})"
        relabel = f'label_replace({inner}, "status_class", "${{1}}xx", "{c.LABEL_STATUS}", "(.).*")'
        return f"sum by (status_class) ({relabel})"

    def heatmap(self, *extra: str) -> str:
        """Requests per duration bucket, for the heatmap (``le`` as the bucket label)."""
        return sum_rate(self.names.request_duration_bucket, *extra, by=c.LABEL_LE)

    def in_progress(self, *extra: str, by: str = "") -> str:
        """Requests being served right now."""
        grouping = f" by ({by})" if by else ""
        return f"sum{grouping} ({self.names.requests_in_progress}{matchers(*extra)})"

    def exceptions(self, *extra: str) -> str:
        """Unhandled exceptions per second, by exception class.

        While requests are answered without any exception the panel shows 0 as class
        ``none`` (the exceptions counter has no series yet); without traffic, nothing.
        """
        raised = sum_rate(self.names.request_exceptions_total, *extra, by=c.LABEL_EXCEPTION)
        zero = f"{self.request_rate(*extra)} * 0"
        none = f'label_replace({zero}, "{c.LABEL_EXCEPTION}", "none", "", "")'
        return f"{raised}\nor on ()\n{none}"

    def dependency_rate(self, *extra: str, by: str = c.LABEL_DEPENDENCY) -> str:
        """Dependency calls per second."""
        return sum_rate(self.names.dependency_duration_count, *extra, by=by)

    def dependency_error_ratio(self, *extra: str, by: str = c.LABEL_DEPENDENCY) -> str:
        """Share of dependency calls with outcome ``error``."""
        failed = self.dependency_rate(*extra, f'{c.LABEL_OUTCOME}="{c.OUTCOME_ERROR}"', by=by)
        total = self.dependency_rate(*extra, by=by)
        return ratio(or_zero(failed, total, by), total)

    def dependency_latency(self, q: float, *extra: str, by: str = c.LABEL_DEPENDENCY) -> str:
        """The ``q`` quantile of dependency call duration, in seconds."""
        return quantile(q, self.names.dependency_duration_bucket, *extra, by=by)

    def dependency_seconds_per_request(self) -> str:
        """Seconds each answered request spends in each dependency (stackable).

        From the per-request counter (the calls a request made, counted when it ends), so
        calls outside every request (a background job, thread-pool work not run in the
        request's context) are not spread over the requests: see
        :meth:`dependency_seconds_outside_requests`.
        """
        spent = sum_rate(self.names.request_dependency_seconds_total, by=c.LABEL_DEPENDENCY)
        count = positive(sum_rate(self.names.request_duration_count))
        return f"{spent}\n/ on () group_left ()\n{count}"

    def app_seconds_per_request(self) -> str:
        """Seconds per request during which no tracked dependency call was working for it
        (never below 0).

        From the requests' busy time (calls that overlap, in ``asyncio.gather`` or a thread
        pool, or one inside another, count once), endpoint by endpoint, each never below
        0, then summed. With no dependency call in the window, all of the request time is
        the app's.
        """
        by = c.LABEL_ENDPOINT
        total = sum_rate(self.names.request_duration_sum, by=by)
        busy = self.names.request_dependency_busy_seconds_total
        in_deps = or_zero(sum_rate(busy, by=by), total, by)
        count = positive(sum_rate(self.names.request_duration_count))
        return f"sum(clamp_min({total}\n-\n{in_deps}, 0))\n/\n{count}"

    def dependency_seconds_outside_requests(self) -> str:
        """Seconds per second spent in each dependency by calls of no request (never below 0).

        Every tracked call counts in the dependency's duration; those made in a request's
        context also in the request's own tally. The difference is work no request is
        charged with: background jobs, thread-pool work submitted without the request's
        context (``limone_obs.context.submit`` carries it), requests to excluded paths;
        and a running request's calls until it ends.
        """
        by = c.LABEL_DEPENDENCY
        every = sum_rate(self.names.dependency_duration_sum, by=by)
        in_requests = or_zero(
            sum_rate(self.names.request_dependency_seconds_total, by=by), every, by
        )
        return f"clamp_min({every}\n-\n{in_requests}, 0)"

    def endpoint_dependency_seconds(self, *extra: str) -> str:
        """Seconds each request spends in each dependency (requests matching ``extra``).

        From the per-request counter fed by ``track`` at the end of every request, divided
        by the requests answered, so it stacks with :meth:`endpoint_other_seconds` up to
        the mean request duration.
        """
        spent = sum_rate(self.names.request_dependency_seconds_total, *extra, by=c.LABEL_DEPENDENCY)
        answered = positive(sum_rate(self.names.request_duration_count, *extra))
        return f"{spent}\n/ on () group_left ()\n{answered}"

    def endpoint_other_seconds(self, *extra: str) -> str:
        """Seconds per request during which no tracked dependency call was working for it
        (never below 0): overlapping calls count once (see :meth:`app_seconds_per_request`)."""
        total = sum_rate(self.names.request_duration_sum, *extra)
        busy = self.names.request_dependency_busy_seconds_total
        in_deps = or_zero(sum_rate(busy, *extra), "")
        count = positive(sum_rate(self.names.request_duration_count, *extra))
        return f"clamp_min(({total} - on () {in_deps}) / {count}, 0)"

    def calls_per_request(self, q: float) -> str:
        """The ``q`` quantile of calls made to each dependency by one request, per endpoint,
        as a whole number of calls, over every request of the endpoint
        (:func:`~limone_obs.conventions.calls_per_request_buckets`).

        ``histogram_quantile`` interpolates inside a bucket: requests that all make 1 call
        (bucket (0, 1]) would read 0.5 at p50. Calls are whole, so the quantile is rounded
        up: exact where the counts sit on bucket bounds (0 to 5 each, then 10, 20, ...: a
        fan-out of 3 or 4 calls reads as it is), else an upper estimate inside the bucket
        (7 calls read 10 at p95, in (5, 10]).
        """
        by = f"{c.LABEL_ENDPOINT}, {c.LABEL_DEPENDENCY}"
        buckets = c.calls_per_request_buckets(
            sum_rate(self.names.dependency_calls_per_request_bucket, by=f"{by}, {c.LABEL_LE}"),
            sum_rate(self.names.dependency_calls_per_request_count, by=by),
            sum_rate(self.names.request_duration_count, by=c.LABEL_ENDPOINT),
            by,
        )
        return f"ceil(histogram_quantile({q},\n{buckets}\n) >= 0)"

    def mean_calls_per_request(self) -> str:
        """Calls made to each dependency per request, per endpoint: the exact mean, over
        every request of the endpoint (:func:`~limone_obs.conventions.calls_per_request_mean`)."""
        by = f"{c.LABEL_ENDPOINT}, {c.LABEL_DEPENDENCY}"
        return c.calls_per_request_mean(
            sum_rate(self.names.dependency_calls_per_request_sum, by=by),
            positive(sum_rate(self.names.request_duration_count, by=c.LABEL_ENDPOINT)),
            positive(sum_rate(self.names.dependency_calls_per_request_count, by=by)),
        )

    def workers(self, *extra: str) -> str:
        """Workers (threads) able to serve a request: busy plus idle, the capacity."""
        return f"sum ({self.names.workers}{matchers(*extra)})"

    def cache_hit_ratio(self) -> str:
        """Share of cache lookups that hit, by cache (0 for a cache that only missed)."""
        series, by = self.names.cache_requests_total, c.LABEL_CACHE
        hits = sum_rate(series, f'{c.LABEL_RESULT}="{c.CACHE_HIT}"', by=by)
        lookups = sum_rate(series, by=by)
        return ratio(or_zero(hits, lookups, by), lookups)
