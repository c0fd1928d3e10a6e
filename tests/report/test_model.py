"""limone_obs.report.model.judge: when a change is a regression or an improvement."""

from __future__ import annotations

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


def stats(p95: float | None, errors: float = 0.0, count: float = 1000.0) -> Stats:
    return Stats(count=count, errors=errors, p50=None, p95=p95, p99=None)


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
    ],
)
def test_verdicts(now: Stats, then: Stats, expected: str) -> None:
    """p95 moves > 10 % and > 5 ms, error ratio moves > 0.5 points; regressions win."""
    assert expected == judge(now, then)


def test_without_baseline() -> None:
    """No baseline window (--baseline none): no verdict but saying so."""
    assert NO_BASELINE == judge(stats(1.0), None)


def test_none_in_the_baseline_window_is_too_few() -> None:
    """A baseline window without a request of this name is too few to compare (below
    MIN_COUNT like any sparse window), not "no baseline"."""
    assert TOO_FEW == judge(stats(1.0), Stats.none())
