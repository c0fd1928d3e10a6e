"""Helpers shared by the bench modules: timing medians and markdown tables."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Return the median wall time of ``repeats`` calls of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Return a markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(seconds: float) -> str:
    """Format seconds as milliseconds with 3 significant decimals."""
    return f"{seconds * 1000:.3f} ms"


def us(seconds: float) -> str:
    """Format seconds as microseconds."""
    return f"{seconds * 1e6:.1f} µs"


def ratio(value: float, base: float, digits: int = 2) -> str:
    """Format ``value / base`` as ``1.23x`` (``digits`` decimals)."""
    return f"{value / base:.{digits}f}x"


def verdict(value: float, target: float) -> str:
    """``met`` when ``value <= target`` else ``MISSED``."""
    return "met" if value <= target else "MISSED"
