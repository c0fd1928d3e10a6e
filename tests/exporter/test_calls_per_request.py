"""Calls per request: how many times each dependency was called by one request, and the
seconds spent in it, flushed once when the response is closed."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from prometheus_client import CollectorRegistry

from limone_obs import Metrics, lifecycle
from limone_obs import conventions as c
from tests.exporter.helpers import samples, value
from tests.support import race

N = c.MetricNames()
RACE_THREADS = 8
RACE_CALLS = 200


def _calls(metrics: Metrics, endpoint: str, dependency: str) -> tuple[float, float] | None:
    """(requests observed, calls summed) of one endpoint and dependency, or None."""
    labels = {"endpoint": endpoint, "dependency": dependency}
    count = value(metrics, N.dependency_calls_per_request_count, labels)
    total = value(metrics, N.dependency_calls_per_request_sum, labels)
    return None if count is None or total is None else (count, total)


def _get(app: Flask, path: str) -> int:
    """GET ``path`` and close the response (the test client closes only on request)."""
    with app.test_client().get(path) as resp:
        return resp.status_code


def _bucket(metrics: Metrics, endpoint: str, dependency: str, le: str) -> float | None:
    labels = {"endpoint": endpoint, "dependency": dependency, "le": le}
    return value(metrics, N.dependency_calls_per_request_bucket, labels)


@pytest.fixture
def app_metrics() -> tuple[Flask, Metrics]:
    """An app whose views call tracked dependencies in loops, gathers and thread pools."""
    app = Flask("calls_per_request")
    metrics = Metrics(app, registry=CollectorRegistry())
    db = metrics.track(c.DEPENDENCY_DB, "select")
    ai = metrics.track(c.DEPENDENCY_AI, "complete")

    @db
    def query(i: int) -> int:
        return i

    @ai
    async def complete(i: int) -> int:
        await asyncio.sleep(0.001 * (i % 3))
        return i

    @db
    async def aquery(i: int) -> int:
        await asyncio.sleep(0)
        return i

    @app.get("/loop/<int:n>")
    def loop(n: int) -> dict[str, int]:
        return {"sum": sum(query(i) for i in range(n))}

    @app.get("/gather")
    async def gather() -> dict[str, int]:
        results = await asyncio.gather(*(complete(i) for i in range(5)), aquery(1), aquery(2))
        return {"sum": sum(results)}

    @app.get("/pool")
    def pool() -> dict[str, int]:
        with ThreadPoolExecutor(max_workers=4) as executor:
            futures = [executor.submit(contextvars.copy_context().run, query, i) for i in range(6)]
            return {"sum": sum(f.result() for f in futures)}

    @app.get("/race")
    def race_view() -> str:
        contexts = iter([contextvars.copy_context() for _ in range(RACE_THREADS)])
        lock = threading.Lock()

        def work() -> None:
            with lock:
                context = next(contexts)
            context.run(lambda: [query(i) for i in range(RACE_CALLS)])

        race(work, threads=RACE_THREADS)
        return "raced"

    @app.get("/maybe/<int:n>")
    def maybe(n: int) -> dict[str, int]:
        return {"sum": sum(query(i) for i in range(n))}

    @app.get("/none")
    def none() -> str:
        return "no dependency"

    return app, metrics


def test_loop_counts_every_call_of_one_request(app_metrics: tuple[Flask, Metrics]) -> None:
    """An N+1 loop of 7 queries is one observation of 7 db calls (bucket 10, not 5)."""
    app, metrics = app_metrics
    assert 200 == _get(app, "/loop/7")
    assert (1, 7) == _calls(metrics, "/loop/<int:n>", c.DEPENDENCY_DB)
    assert 0 == _bucket(metrics, "/loop/<int:n>", c.DEPENDENCY_DB, "5.0")
    assert 1 == _bucket(metrics, "/loop/<int:n>", c.DEPENDENCY_DB, "10.0")


def test_gather_in_async_view_is_exact(app_metrics: tuple[Flask, Metrics]) -> None:
    """asyncio.gather tasks add to their request's tally: exactly 5 AI + 2 db calls each."""
    app, metrics = app_metrics
    for _ in range(10):
        assert 200 == _get(app, "/gather")
    assert (10, 50) == _calls(metrics, "/gather", c.DEPENDENCY_AI)
    assert (10, 20) == _calls(metrics, "/gather", c.DEPENDENCY_DB)
    assert 10 == _bucket(metrics, "/gather", c.DEPENDENCY_AI, "5.0")
    assert 0 == _bucket(metrics, "/gather", c.DEPENDENCY_AI, "2.0")


def test_thread_pool_with_copied_context_counts(app_metrics: tuple[Flask, Metrics]) -> None:
    """Work submitted to a thread pool with the request's context counts for the request."""
    app, metrics = app_metrics
    for _ in range(3):
        assert 200 == _get(app, "/pool")
    assert (3, 18) == _calls(metrics, "/pool", c.DEPENDENCY_DB)


def test_threads_racing_on_one_request_lose_no_call(app_metrics: tuple[Flask, Metrics]) -> None:
    """8 threads of one request, switching as often as possible, add every call once."""
    app, metrics = app_metrics
    assert 200 == _get(app, "/race")
    assert (1, RACE_THREADS * RACE_CALLS) == _calls(metrics, "/race", c.DEPENDENCY_DB)


def test_seconds_per_request_add_up_the_calls(app_metrics: tuple[Flask, Metrics]) -> None:
    """request_dependency_seconds_total equals the dependency histogram's sum for the view."""
    app, metrics = app_metrics
    for _ in range(4):
        _get(app, "/gather")
    per_request = value(
        metrics,
        N.request_dependency_seconds_total,
        {"endpoint": "/gather", "dependency": c.DEPENDENCY_AI},
    )
    labels = {"dependency": c.DEPENDENCY_AI, "operation": "complete", "outcome": c.OUTCOME_OK}
    timed = value(metrics, N.dependency_duration_sum, labels)
    assert per_request is not None
    assert timed is not None
    assert per_request == pytest.approx(timed)


def test_a_request_skipping_a_known_dependency_observes_zero(
    app_metrics: tuple[Flask, Metrics],
) -> None:
    """Once an endpoint called db, a request of it without db calls is observed as 0."""
    app, metrics = app_metrics
    _get(app, "/maybe/3")
    _get(app, "/maybe/0")
    _get(app, "/maybe/0")
    assert (3, 3) == _calls(metrics, "/maybe/<int:n>", c.DEPENDENCY_DB)
    assert 2 == _bucket(metrics, "/maybe/<int:n>", c.DEPENDENCY_DB, "0.0")


def test_endpoint_without_dependencies_has_no_series(app_metrics: tuple[Flask, Metrics]) -> None:
    """A view that calls no tracked dependency adds no per-request series."""
    app, metrics = app_metrics
    _get(app, "/none")
    names = {name for (name, labels) in samples(metrics) if ("endpoint", "/none") in labels}
    assert not {n for n in names if n.startswith(N.dependency_calls_per_request)}


def test_calls_outside_a_request_count_in_no_request(app_metrics: tuple[Flask, Metrics]) -> None:
    """A tracked call after the request ended (same thread) changes no request's tally."""
    app, metrics = app_metrics
    _get(app, "/loop/2")
    with metrics.track(c.DEPENDENCY_DB, "select"):
        time.sleep(0)
    _get(app, "/loop/1")
    assert (2, 3) == _calls(metrics, "/loop/<int:n>", c.DEPENDENCY_DB)


# --- busy time: the request's time during which at least one tracked call worked -------

PAUSE = 0.05


def _busy(metrics: Metrics, endpoint: str) -> float:
    return value(metrics, N.request_dependency_busy_seconds_total, {"endpoint": endpoint}) or 0.0


def _charged(metrics: Metrics, endpoint: str) -> float:
    total = 0.0
    for (name, labels), number in samples(metrics).items():
        if name == N.request_dependency_seconds_total and ("endpoint", endpoint) in labels:
            total += number
    return total


def _duration(metrics: Metrics, endpoint: str) -> float:
    labels = {"endpoint": endpoint, "method": "GET"}
    return value(metrics, N.request_duration_sum, labels) or 0.0


def test_overlapping_calls_count_once_in_the_busy_time() -> None:
    """Two calls working at the same time (thread pool, copied context) are charged to
    their dependencies in full, but the request's busy time counts their overlap once:
    the app's own pause before them stays outside it."""
    app = Flask("busy_overlap")
    metrics = Metrics(app, registry=CollectorRegistry())
    both_in = threading.Barrier(2)

    @metrics.track(c.DEPENDENCY_AI, "complete")
    def complete() -> None:
        both_in.wait(5)  # both calls are working from here on
        time.sleep(2 * PAUSE)

    @app.get("/compare")
    def compare() -> str:
        time.sleep(2 * PAUSE)  # the app's own work
        with ThreadPoolExecutor(2) as pool:
            for future in [pool.submit(contextvars.copy_context().run, complete) for _ in "ab"]:
                future.result()
        return "ok"

    assert 200 == _get(app, "/compare")
    busy, charged = _busy(metrics, "/compare"), _charged(metrics, "/compare")
    assert charged >= 4 * PAUSE  # each call in full
    assert 2 * PAUSE <= busy <= charged - 1.5 * PAUSE  # their overlap (>= 2 pauses) once
    assert _duration(metrics, "/compare") - busy >= 2 * PAUSE  # the app's own time shows


def test_a_call_inside_another_adds_nothing_to_the_busy_time() -> None:
    """A tracked block inside another tracked block: the outer one's time is the busy time."""
    app = Flask("busy_nested")
    metrics = Metrics(app, registry=CollectorRegistry())

    @app.get("/nested")
    def nested() -> str:
        with metrics.track(c.DEPENDENCY_AI, "complete"):
            time.sleep(PAUSE)
            with metrics.track(c.DEPENDENCY_DB, "select"):
                time.sleep(PAUSE)
            time.sleep(PAUSE)
        return "ok"

    assert 200 == _get(app, "/nested")
    busy, charged = _busy(metrics, "/nested"), _charged(metrics, "/nested")
    assert 3 * PAUSE <= busy <= charged - 0.9 * PAUSE  # the inner call's time once


def test_a_streams_items_and_the_consumers_calls_are_each_busy_time() -> None:
    """A tracked stream whose consumer makes tracked calls between items: the stream's
    item times and the consumer's calls, disjoint, all count; the app's own work between
    them does not."""
    app = Flask("busy_stream")
    metrics = Metrics(app, registry=CollectorRegistry())

    @metrics.track(c.DEPENDENCY_AI, "stream")
    def tokens() -> Iterator[int]:
        for i in range(3):
            time.sleep(PAUSE)
            yield i

    @app.get("/answer")
    def answer() -> str:
        for _ in tokens():
            with metrics.track(c.DEPENDENCY_DB, "insert"):
                time.sleep(PAUSE)
            time.sleep(PAUSE)  # the app's own work between tokens
        return "ok"

    assert 200 == _get(app, "/answer")
    busy = _busy(metrics, "/answer")
    assert 6 * PAUSE <= busy
    assert _duration(metrics, "/answer") - busy >= 3 * PAUSE


def test_no_call_no_busy_series() -> None:
    """A request that calls nothing adds no busy time (no series for its endpoint)."""
    app = Flask("busy_none")
    metrics = Metrics(app, registry=CollectorRegistry())
    app.get("/plain")(lambda: "ok")
    assert 200 == _get(app, "/plain")
    labels = {"endpoint": "/plain"}
    assert value(metrics, N.request_dependency_busy_seconds_total, labels) is None


def test_a_call_begun_before_the_request_counts_from_its_arrival() -> None:
    """A call that began before the request (a coroutine an earlier request made, a
    stream resumed) counts only its part since the request arrived: the busy time and the
    dependency's seconds never exceed the request's duration."""
    app = Flask("busy_before")
    metrics = Metrics(app, registry=CollectorRegistry())

    @app.get("/late")
    def late() -> str:
        time.sleep(PAUSE)
        lifecycle.add_call(c.DEPENDENCY_AI, 3600.0)  # began an hour ago, ends now
        lifecycle.add_busy(time.perf_counter() - 7200.0, time.perf_counter())
        return "ok"

    assert 200 == _get(app, "/late")
    duration = _duration(metrics, "/late")
    assert PAUSE <= _busy(metrics, "/late") <= duration
    assert PAUSE <= _charged(metrics, "/late") <= duration
