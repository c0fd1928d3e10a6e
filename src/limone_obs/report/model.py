"""What a report says, as plain data (filled by :mod:`.collect`, drawn by :mod:`.render`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from limone_obs.report.window import Span

#: Fewer requests (or calls) than this in either window: quantiles are not compared.
MIN_COUNT: Final = 30
#: A change of the p95 or of the mean counts when it is larger than this share and this
#: many seconds.
LATENCY_RELATIVE: Final = 0.10
LATENCY_ABSOLUTE: Final = 0.005
#: An error-ratio change counts when it moves by more than this (0.5 percentage points).
ERROR_DELTA: Final = 0.005
#: The seed's throughput steps, requests per second.
THROUGHPUT_STEPS: Final = (100.0, 500.0, 1000.0)

REGRESSION: Final = "regression"
IMPROVEMENT: Final = "improvement"
UNCHANGED: Final = "unchanged"
TOO_FEW: Final = "too few to compare"
NO_BASELINE: Final = "no baseline"
#: The verdicts of two windows that were compared.
COMPARED: Final = (REGRESSION, IMPROVEMENT, UNCHANGED)


#: The mark of an alert of the SLO table already firing when the window began.
CARRIED: Final = "firing at the window's start"


@dataclass(frozen=True)
class Stats:
    """One window's numbers for one endpoint or dependency (seconds; None when unknown).

    ``mean`` is exact (the histogram's sum over its count); ``p50`` / ``p95`` / ``p99``
    are ``histogram_quantile`` estimates, interpolated inside the bucket that holds each
    (:meth:`bucket_of`). ``buckets`` are the histogram's ``(le, cumulative count)`` in
    the window, ascending, ``+Inf`` last.
    """

    count: float
    errors: float
    p50: float | None
    p95: float | None
    p99: float | None
    mean: float | None = None
    buckets: tuple[tuple[float, float], ...] = ()

    @property
    def error_ratio(self) -> float | None:
        """Share of failed requests or calls; None without any."""
        return self.errors / self.count if self.count > 0 else None

    def bucket_of(self, q: float) -> tuple[float, float] | None:
        """Bounds ``(lower, upper]`` of the bucket holding the ``q`` quantile, where both
        the true value and ``histogram_quantile``'s estimate lie; ``upper`` is ``inf``
        above the last finite bound (the estimate is that bound). None without buckets.

        The bucket is found as ``histogram_quantile`` finds it: the first whose
        cumulative count reaches ``q`` times the total (counts made monotonic first).
        """
        if len(self.buckets) < 2 or self.buckets[-1][1] <= 0:
            return None
        rank, cumulative, lower = q * self.buckets[-1][1], 0.0, 0.0
        for le, count in self.buckets[:-1]:
            cumulative = max(cumulative, count)
            if cumulative >= rank:
                return lower, le
            lower = le
        return lower, math.inf

    @classmethod
    def none(cls) -> Stats:
        """A window without a single request (or call) of this name."""
        return cls(count=0.0, errors=0.0, p50=None, p95=None, p99=None)


@dataclass(frozen=True)
class Row:
    """An endpoint or a dependency: this window, the baseline, and the verdict."""

    name: str
    now: Stats
    then: Stats | None
    #: An endpoint's share of the window's requests; a dependency's of the time spent in
    #: every dependency's calls (where the time goes, not how often each is called).
    share: float
    verdict: str


@dataclass(frozen=True)
class Component:
    """Average seconds per request spent in one part (AI API, DB, template, other), and
    why the two windows are not compared (:func:`not_compared`), None when they are."""

    name: str
    now: float | None
    then: float | None
    not_compared: str | None = None


@dataclass(frozen=True)
class SloRow:
    """One SLO over the window: objective, SLI now and then, budget left at the end.

    ``basis`` says how the SLI was read when it is not the request-weighted one
    (``lowest 5m``); ``why`` says, by field name (``objective``, ``sli_now``,
    ``sli_then``, ``budget_left``), why that number is missing; ``note`` is a sentence
    for under the table on how this row's SLI was read, or that Prometheus lacks its
    rules ("" when there is none).
    """

    name: str
    objective: float | None
    sli_now: float | None
    sli_then: float | None
    budget_left: float | None
    fired: tuple[str, ...]
    basis: str = ""
    why: Mapping[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class LatencyStep:
    """Share of requests served within ``threshold`` seconds, now and then."""

    threshold: float
    share_now: float | None
    share_then: float | None


@dataclass(frozen=True)
class Throughput:
    """Average and peak requests per second and peak requests in flight."""

    avg_now: float | None
    avg_then: float | None
    peak_now: float | None
    peak_then: float | None
    in_flight_now: float | None
    in_flight_then: float | None
    #: Seconds of the rate window the peaks are of (a minute, or less in a short window).
    peak_window: int = 60

    def steps_reached(self) -> tuple[float, ...]:
        """The seed's throughput steps the peak rate of this window reached."""
        peak = self.peak_now or 0.0
        return tuple(step for step in THROUGHPUT_STEPS if peak >= step)


@dataclass(frozen=True)
class Timeline:
    """Series over the window, time in seconds since its start (the baseline aligned)."""

    rate_now: tuple[tuple[float, float], ...]
    rate_then: tuple[tuple[float, float], ...]
    p95_now: tuple[tuple[float, float], ...]
    p95_then: tuple[tuple[float, float], ...]
    errors_now: tuple[tuple[float, float], ...]
    errors_then: tuple[tuple[float, float], ...]


#: The 5xx chart's line without an SLO on the 5xx share: the seed's goal, under 1 % errors.
DEFAULT_ERROR_LIMITS: Final = ((0.01, "1 %: default limit"),)


@dataclass(frozen=True)
class Report:
    """Everything one report shows."""

    prometheus: str
    job: str
    service: str
    window: Span
    baseline: Span | None
    generated: float
    endpoints: tuple[Row, ...]
    dependencies: tuple[Row, ...]
    breakdown: tuple[Component, ...]
    slos: tuple[SloRow, ...]
    steps: tuple[LatencyStep, ...]
    throughput: Throughput
    timeline: Timeline
    notes: tuple[str, ...] = ()
    #: Calls per request of each endpoint (``name``: ``<endpoint> <dependency>``).
    calls: tuple[Component, ...] = ()
    #: Seconds per request of each endpoint in each dependency and in none
    #: (``name``: ``<endpoint> <dependency>``, ``<endpoint> other``).
    endpoint_breakdown: tuple[Component, ...] = ()
    #: The spec's SLO the latency roadmap (``steps``) comes from; None: the seed's roadmap.
    roadmap_slo: str | None = None
    #: The label matchers of the requests that SLO counts (``endpoint=~"/invoices/.*"``),
    #: the job's left out; "": every request of the job.
    roadmap_scope: str = ""
    #: The 5xx chart's lines, ``(ratio, label)``: the error budgets of the spec's SLOs on
    #: the share of 5xx answers (report.slos.error_limits), else the seed's 1 %.
    error_limits: tuple[tuple[float, str], ...] = DEFAULT_ERROR_LIMITS

    def verdicts(self) -> Mapping[str, int]:
        """How many endpoints and dependencies got each verdict."""
        counts: dict[str, int] = {}
        for row in (*self.endpoints, *self.dependencies):
            counts[row.verdict] = counts.get(row.verdict, 0) + 1
        return counts


def not_compared(now: float, then: float | None) -> str | None:
    """Why two windows with ``now`` and ``then`` requests (or calls) are not compared:
    NO_BASELINE when there is no baseline window (``then`` None), TOO_FEW when either
    holds fewer than MIN_COUNT (none at all included); None when they are compared."""
    if then is None:
        return NO_BASELINE
    if now < MIN_COUNT or then < MIN_COUNT:
        return TOO_FEW
    return None


def judge(now: Stats, then: Stats | None) -> str:
    """Regression, improvement, unchanged, or why the two windows cannot be compared.

    ``then`` is None without a baseline window (:data:`NO_BASELINE`); a name without
    requests in the baseline window is :meth:`Stats.none` (:data:`TOO_FEW`). A regression
    is a p95 or a mean more than 10 % and 5 ms slower, or an error ratio more than 0.5
    points higher; an improvement the reverse; a regression wins over an improvement.
    The mean counts as well as the p95 because the p95 is an estimate inside a bucket:
    requests going from 1.05 s to 1.45 s all stay in the (1, 1.5] bucket, and the p95
    estimate with them.
    """
    if then is None:
        return NO_BASELINE
    reason = not_compared(now.count, then.count)
    if reason is not None:
        return reason
    moves = [_moves(now.p95, then.p95), _moves(now.mean, then.mean)]
    slower, faster = any(up for up, _ in moves), any(down for _, down in moves)
    delta = (now.error_ratio or 0.0) - (then.error_ratio or 0.0)
    if slower or delta > ERROR_DELTA:
        return REGRESSION
    if faster or delta < -ERROR_DELTA:
        return IMPROVEMENT
    return UNCHANGED


def _moves(now: float | None, then: float | None) -> tuple[bool, bool]:
    """(slower, faster): a latency moving by more than the thresholds, either way."""
    if now is None or then is None:
        return False, False
    diff = now - then
    big = abs(diff) > LATENCY_ABSOLUTE and abs(diff) > LATENCY_RELATIVE * then
    return big and diff > 0, big and diff < 0
