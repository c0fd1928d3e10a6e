"""Direct updates of prometheus-client label children, for the per-request hot path.

``Histogram.observe`` walks every bucket bound in Python and each public ``inc`` re-checks
that the metric has labels; on a ~200 us Flask request those checks are a measurable share
of the exporter's cost (bench/). These helpers bind the child's value objects once and
update them directly, with a bisection for the bucket.

They rely on prometheus-client's child layout (``_value``, ``_sum``, ``_buckets``,
``_upper_bounds``), stable since 0.4. If a release changes it, :func:`observer` and
:func:`incrementer` fall back to the public methods, and the test
``test_fast_paths_match_the_public_api`` fails, so the change cannot go unnoticed.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from typing import Any, cast

Update = Callable[[float], None]


class _Observe:
    """``observe(amount)`` of one histogram child, without exemplar support."""

    __slots__ = ("_bounds", "_buckets", "_sum")

    def __init__(self, sum_inc: Update, buckets: tuple[Update, ...], bounds: tuple[float, ...]):
        self._sum = sum_inc
        self._buckets = buckets
        self._bounds = bounds

    def __call__(self, amount: float) -> None:
        self._sum(amount)
        # bounds end with +Inf, so any non-NaN amount lands in a bucket, as in observe().
        self._buckets[bisect_left(self._bounds, amount)](1.0)


def observer(child: Any) -> Update:
    """Return a fast ``observe(amount)`` for a histogram label child (or its own method)."""
    try:
        bounds = tuple(float(b) for b in child._upper_bounds)
        buckets = tuple(bucket.inc for bucket in child._buckets)
        sum_inc = child._sum.inc
    except (AttributeError, TypeError):
        return cast("Update", child.observe)
    if len(bounds) != len(buckets) or not bounds or bounds[-1] != math.inf:
        return cast("Update", child.observe)
    return _Observe(sum_inc, buckets, bounds)


def incrementer(child: Any) -> Update:
    """Return a fast ``inc(amount)`` for a counter or gauge child (or its own method).

    Negative amounts are passed through unchecked: callers use ``-1`` only on gauges.
    """
    inc = getattr(getattr(child, "_value", None), "inc", None)
    return cast("Update", inc if callable(inc) else child.inc)
