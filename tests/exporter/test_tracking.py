"""Dependency timing with metrics.track: context managers and decorators, sync and async."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from limone_obs import Metrics
from limone_obs import conventions as c
from tests.exporter.helpers import value

N = c.MetricNames()


def _count(metrics: Metrics, dependency: str, operation: str, outcome: str) -> float | None:
    labels = {"dependency": dependency, "operation": operation, "outcome": outcome}
    return value(metrics, N.dependency_duration_count, labels)


@pytest.fixture
def metrics() -> Metrics:
    """A Metrics object on a private registry, no app needed for tracking."""
    return Metrics(registry=CollectorRegistry())


def test_context_manager_ok(metrics: Metrics) -> None:
    """A block that returns normally is an ok observation."""
    with metrics.track("db", "select"):
        pass
    assert _count(metrics, "db", "select", c.OUTCOME_OK) == 1


def test_context_manager_error_reraises(metrics: Metrics) -> None:
    """A block that raises is an error observation and the exception propagates."""
    with pytest.raises(TimeoutError), metrics.track("ai_api", "complete"):
        raise TimeoutError
    assert _count(metrics, "ai_api", "complete", c.OUTCOME_ERROR) == 1


def test_fail_marks_an_error_without_exception(metrics: Metrics) -> None:
    """track(...).fail() records outcome error for a call that did not raise."""
    with metrics.track("ai_api", "complete") as call:
        call.fail()
    assert _count(metrics, "ai_api", "complete", c.OUTCOME_ERROR) == 1
    assert _count(metrics, "ai_api", "complete", c.OUTCOME_OK) is None


def test_sync_decorator_times_every_call(metrics: Metrics) -> None:
    """A decorated function is observed once per call, errors included."""

    @metrics.track("db", "lookup")
    def lookup(key: int) -> int:
        if key < 0:
            raise KeyError(key)
        return key * 2

    assert lookup(2) == 4
    assert lookup(3) == 6
    with pytest.raises(KeyError):
        lookup(-1)
    assert _count(metrics, "db", "lookup", c.OUTCOME_OK) == 2
    assert _count(metrics, "db", "lookup", c.OUTCOME_ERROR) == 1
    assert lookup.__name__ == "lookup"


def test_async_decorator_times_the_awaited_call(metrics: Metrics) -> None:
    """An async def stays a coroutine function and is timed until it finishes."""

    @metrics.track("ai_api", "complete")
    async def complete(prompt: str) -> str:
        await asyncio.sleep(0.02)
        return prompt.upper()

    assert asyncio.iscoroutinefunction(complete)
    assert asyncio.run(complete("hi")) == "HI"
    labels = {"dependency": "ai_api", "operation": "complete", "outcome": c.OUTCOME_OK}
    total = value(metrics, N.dependency_duration_sum, labels)
    assert total is not None
    assert total >= 0.02


def test_async_context_manager(metrics: Metrics) -> None:
    """``async with metrics.track(...)`` records like the sync form."""

    async def call() -> None:
        async with metrics.track("cache", "get"):
            await asyncio.sleep(0)

    asyncio.run(call())
    assert _count(metrics, "cache", "get", c.OUTCOME_OK) == 1


def test_async_decorator_error(metrics: Metrics) -> None:
    """An async function that raises records an error."""

    @metrics.track("ai_api", "embed")
    async def embed() -> None:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        asyncio.run(embed())
    assert _count(metrics, "ai_api", "embed", c.OUTCOME_ERROR) == 1


def test_exception_class_is_not_a_label(metrics: Metrics) -> None:
    """Different exceptions share one error series."""
    for exc in (ValueError, OSError, RuntimeError):
        with pytest.raises(exc), metrics.track("db", "write"):
            raise exc
    assert _count(metrics, "db", "write", c.OUTCOME_ERROR) == 3
