"""``load`` against the demo service under gunicorn: client and exporter agree."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from limone_obs import conventions as c
from limone_obs.stack.load import DEFAULT_MIX, run_load
from tests.stack.helpers import demo_under_gunicorn, metric_sum

pytestmark = pytest.mark.integration


def test_load_request_count_equals_the_exporter_count(tmp_path: Path) -> None:
    """Every request the load generator finished is counted once by the exporter (2 workers)."""
    name = c.MetricNames().requests_total
    with demo_under_gunicorn(tmp_path) as url:
        before = settled(lambda: metric_sum(url, name))  # the readiness checks on /health
        result = run_load(url, rps=60, duration=3, concurrency=6, mix=DEFAULT_MIX)
        deadline = time.monotonic() + 5
        # A worker records a request when the body's close() runs, just after the client
        # has the last byte: allow a moment for the last ones.
        while metric_sum(url, name) - before != result.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        counted = metric_sum(url, name) - before
    assert 180 == result.requests
    assert float(result.requests) == counted


def settled(read: Callable[[], float], timeout: float = 5.0) -> float:
    """``read()`` once it gave the same value twice 0.2 s apart (the last readiness
    request is counted just after its client had the answer, maybe after a first read)."""
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = read()
        if now == last:
            return now
        last = now
    return last
