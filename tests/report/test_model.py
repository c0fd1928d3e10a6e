"""limone_obs.report.model.judge: when a change is a regression or an improvement."""

from __future__ import annotations

import math

import pytest

from limone_obs.report.model import (
    IMPROVEMENT,
    MIN_COUNT,
    NO_BASELINE,
    REGRESSION,
    TOO_FEW,
    UNCHANGED,
    Stats,
    judge,
)

INF = math.inf


def stats(
    p95: float | None, errors: float = 0.0, count: float = 1000.0, mean: float | None = None
) -> Stats:
    return Stats(count=count, errors=errors, p50=None, p95=p95, p99=None, mean=mean)


@pytest.mark.parametrize(
    ("now", "then", "expected"),
    [
        (stats(2.0), stats(1.0), REGRESSION),
        (stats(1.0), stats(2.0), IMPROVEMENT),
        (stats(1.05), stats(1.0), UNCHANGED),  # 5 %: within noise
        (stats(0.004), stats(0.002), UNCHANGED),  # doubled, but by 2 ms only
        (stats(1.0, errors=20), stats(1.0, errors=0), REGRESSION),  # +2 points of errors
        (stats(1.0, errors=0), stats(1.0, errors=20), IMPROVEMENT),
        (stats(0.5, errors=50), stats(1.0), REGRESSION),  # faster but failing: regression
        (stats(2.0, count=MIN_COUNT - 1), stats(1.0), TOO_FEW),
        (stats(None), stats(1.0), UNCHANGED),
        # Every request 1.05 s, then 1.45 s: all in the (1, 1.5] bucket, the same p95
        # estimate; the exact mean moves.
        (stats(1.475, mean=1.45), stats(1.475, mean=1.05), REGRESSION),
        (stats(1.475, mean=1.05), stats(1.475, mean=1.45), IMPROVEMENT),
        (stats(1.475, mean=1.10), stats(1.475, mean=1.05), UNCHANGED),  # 5 %: noise
        (stats(0.004, mean=0.004), stats(0.004, mean=0.002), UNCHANGED),  # 2 ms only
        (stats(2.0, mean=0.5), stats(1.0, mean=1.0), REGRESSION),  # p95 worse: regression wins
    ],
)
def test_verdicts(now: Stats, then: Stats, expected: str) -> None:
    """p95 or mean moves > 10 % and > 5 ms, error ratio moves > 0.5 points; regressions win."""
    assert expected == judge(now, then)


def test_without_baseline() -> None:
    """No baseline window (--baseline none): no verdict but saying so."""
    assert NO_BASELINE == judge(stats(1.0), None)


def test_none_in_the_baseline_window_is_too_few() -> None:
    """A baseline window without a request of this name is too few to compare (below
    MIN_COUNT like any sparse window), not "no baseline"."""
    assert TOO_FEW == judge(stats(1.0), Stats.none())


BUCKETS = ((0.5, 0.0), (1.0, 0.0), (1.5, 100.0), (2.0, 100.0), (INF, 100.0))


@pytest.mark.parametrize(
    ("buckets", "q", "expected"),
    [
        (BUCKETS, 0.95, (1.0, 1.5)),  # every observation in (1, 1.5]
        (BUCKETS, 0.01, (1.0, 1.5)),
        (((0.5, 50.0), (1.0, 100.0), (INF, 100.0)), 0.5, (0.0, 0.5)),  # rank on a bound
        (((0.5, 50.0), (1.0, 90.0), (INF, 100.0)), 0.95, (1.0, INF)),  # above the last bound
        (((0.5, 60.0), (1.0, 55.0), (INF, 100.0)), 0.58, (0.0, 0.5)),  # made monotonic
        (((0.5, 0.0), (INF, 0.0)), 0.95, None),  # no observation
        ((), 0.95, None),
    ],
)
def test_bucket_of_a_quantile(
    buckets: tuple[tuple[float, float], ...], q: float, expected: tuple[float, float] | None
) -> None:
    """The bucket histogram_quantile interpolates in: the first whose cumulative count
    reaches q x total; above the last finite bound when only +Inf does."""
    assert expected == Stats(100, 0, None, None, None, buckets=buckets).bucket_of(q)
