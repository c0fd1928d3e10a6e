"""Dependency timing with metrics.track: context managers and decorators, sync and async,
generators and async generators (timed over their iteration)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Generator, Iterator
from typing import Any

import pytest
from flask import Flask, Response
from prometheus_client import CollectorRegistry

from limone_obs import Metrics
from limone_obs import conventions as c
from limone_obs.exporter import tracking
from tests.exporter.helpers import samples, value

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


# --- generators (timed over their iteration) -----------------------------------------

PAUSE = 0.02


def _sum(metrics: Metrics, dependency: str, operation: str, outcome: str) -> float | None:
    labels = {"dependency": dependency, "operation": operation, "outcome": outcome}
    return value(metrics, N.dependency_duration_sum, labels)


def test_generator_decorator_times_iteration_to_exhaustion(metrics: Metrics) -> None:
    """A decorated generator function is timed from its first item to exhaustion, once."""

    @metrics.track("ai_api", "stream")
    def stream(n: int) -> Iterator[int]:
        for i in range(n):
            time.sleep(PAUSE)
            yield i

    gen = stream(3)
    assert _count(metrics, "ai_api", "stream", c.OUTCOME_OK) is None  # creation is not a call
    assert [0, 1, 2] == list(gen)
    assert _count(metrics, "ai_api", "stream", c.OUTCOME_OK) == 1
    assert (_sum(metrics, "ai_api", "stream", c.OUTCOME_OK) or 0) >= 3 * PAUSE


def test_generator_error_is_an_error_observation(metrics: Metrics) -> None:
    """A generator that raises mid-stream records one error and the exception propagates."""

    @metrics.track("ai_api", "stream")
    def stream() -> Iterator[str]:
        yield "a"
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        list(stream())
    assert _count(metrics, "ai_api", "stream", c.OUTCOME_ERROR) == 1
    assert _count(metrics, "ai_api", "stream", c.OUTCOME_OK) is None


def test_generator_closed_early_is_ok_and_closes_the_source(metrics: Metrics) -> None:
    """close() before exhaustion records one ok call and closes the wrapped generator."""
    closed = []

    @metrics.track("ai_api", "stream")
    def stream() -> Generator[int, None, None]:
        try:
            yield from range(10)
        finally:
            closed.append(True)

    gen = stream()
    assert next(gen) == 0
    gen.close()
    assert [True] == closed
    assert _count(metrics, "ai_api", "stream", c.OUTCOME_OK) == 1


def test_generator_never_iterated_is_not_recorded(metrics: Metrics) -> None:
    """A generator created and dropped made no call: nothing is observed."""

    @metrics.track("ai_api", "stream")
    def stream() -> Generator[int, None, None]:
        yield 1

    stream().close()
    assert _count(metrics, "ai_api", "stream", c.OUTCOME_OK) is None


def test_generator_send_and_return_value_pass_through(metrics: Metrics) -> None:
    """send() reaches the wrapped generator and its return value is kept."""

    @metrics.track("db", "cursor")
    def echo() -> Generator[int, int, str]:
        got = yield 0
        yield got * 2
        return "done"

    gen = echo()
    assert next(gen) == 0
    assert gen.send(21) == 42
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert "done" == stop.value.value


def test_async_generator_decorator_times_iteration(metrics: Metrics) -> None:
    """An async generator function is timed over its iteration, exhaustion and error alike."""

    @metrics.track("ai_api", "astream")
    async def astream(fail: bool) -> AsyncIterator[int]:
        for i in range(3):
            await asyncio.sleep(PAUSE)
            yield i
        if fail:
            raise TimeoutError

    async def consume(fail: bool) -> list[int]:
        return [i async for i in astream(fail)]

    assert [0, 1, 2] == asyncio.run(consume(False))
    with pytest.raises(TimeoutError):
        asyncio.run(consume(True))
    assert _count(metrics, "ai_api", "astream", c.OUTCOME_OK) == 1
    assert _count(metrics, "ai_api", "astream", c.OUTCOME_ERROR) == 1
    assert (_sum(metrics, "ai_api", "astream", c.OUTCOME_OK) or 0) >= 3 * PAUSE


def test_async_generator_aclose_is_ok_and_closes_the_source(metrics: Metrics) -> None:
    """aclose() after one item records one ok call and closes the wrapped generator."""
    closed = []

    @metrics.track("ai_api", "astream")
    async def astream() -> AsyncIterator[int]:
        try:
            for i in range(10):
                yield i
        finally:
            closed.append(True)

    async def first_then_close() -> int:
        gen = astream()
        item = await anext(gen)
        await gen.aclose()  # type: ignore[attr-defined]
        return item

    assert 0 == asyncio.run(first_then_close())
    assert [True] == closed
    assert _count(metrics, "ai_api", "astream", c.OUTCOME_OK) == 1


def test_iterate_times_an_existing_iterator(metrics: Metrics) -> None:
    """track(...).iterate(it) times an iterator the caller did not write (an SDK stream)."""
    sdk_stream = iter(["a", "b"])
    assert ["a", "b"] == list(metrics.track("ai_api", "sdk").iterate(sdk_stream))
    assert _count(metrics, "ai_api", "sdk", c.OUTCOME_OK) == 1


def test_decorating_a_generator_object_is_refused(metrics: Metrics) -> None:
    """Passing a generator object (not a function) raises TypeError naming iterate()."""
    gen = (i for i in range(3))
    with pytest.raises(TypeError, match=r"iterate\(it\)"):
        metrics.track("ai_api", "stream")(gen)  # type: ignore[arg-type]


def test_context_manager_inside_a_generator_spans_the_iteration(metrics: Metrics) -> None:
    """``with track`` inside a generator body times the iteration; early close is ok."""

    def stream() -> Generator[int, None, None]:
        with metrics.track("ai_api", "with_stream"):
            for i in range(5):
                time.sleep(PAUSE)
                yield i

    assert 5 == len(list(stream()))
    gen = stream()
    next(gen)
    gen.close()
    assert _count(metrics, "ai_api", "with_stream", c.OUTCOME_OK) == 2
    assert _count(metrics, "ai_api", "with_stream", c.OUTCOME_ERROR) is None
    assert (_sum(metrics, "ai_api", "with_stream", c.OUTCOME_OK) or 0) >= 6 * PAUSE


def test_streamed_flask_response_is_timed_to_its_last_chunk() -> None:
    """A tracked generator streamed by a Flask view is timed over the whole stream."""
    app = Flask("stream_tracking")
    metrics = Metrics(app, registry=CollectorRegistry())

    @metrics.track("ai_api", "stream")
    def tokens() -> Iterator[str]:
        for i in range(4):
            time.sleep(PAUSE)
            yield f"t{i} "

    @app.get("/complete")
    def complete() -> Response:
        return Response(tokens(), mimetype="text/plain")

    # Werkzeug's test client closes an unbuffered response only on exit of this block.
    with app.test_client().get("/complete") as resp:
        assert b"t0 t1 t2 t3 " == resp.get_data()
    assert _count(metrics, "ai_api", "stream", c.OUTCOME_OK) == 1
    assert (_sum(metrics, "ai_api", "stream", c.OUTCOME_OK) or 0) >= 4 * PAUSE
    per_request = {"endpoint": "/complete", "dependency": "ai_api"}
    assert 1 == value(metrics, N.dependency_calls_per_request_count, per_request)
    assert 1 == value(metrics, N.dependency_calls_per_request_sum, per_request)


def _unserved_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "has no app yet" in r.getMessage()]


def test_calls_recorded_without_an_app_say_so_once(caplog: pytest.LogCaptureFixture) -> None:
    """Metrics() whose init_app was forgotten: the first recorded call says where the
    series went (nowhere served) and what to call; later calls say nothing more."""
    metrics = Metrics()  # its own registry, like an extensions.py module's
    with caplog.at_level("WARNING", logger="limone_obs"):
        with metrics.track("ai_api", "complete"):
            pass
        metrics.cache_hit("projects")
        with metrics.track("db", "select"):
            pass
    lines = _unserved_lines(caplog)
    assert len(lines) == 1, lines
    assert "track('ai_api', 'complete')" in lines[0]
    assert "metrics.init_app(app)" in lines[0]
    assert _count(metrics, "db", "select", c.OUTCOME_OK) == 1  # still recorded


def test_a_cache_lookup_without_an_app_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """The cache counters are recorded the same way and warn the same way."""
    metrics = Metrics()
    with caplog.at_level("WARNING", logger="limone_obs"):
        metrics.cache_miss("projects")
    assert ["cache_result('projects')" in line for line in _unserved_lines(caplog)] == [True]


def test_calls_after_init_app_or_on_a_given_registry_say_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Once an app serves the series, or when the caller owns the registry (and may serve
    it itself), no warning: a decorator applied at import, called in requests, is the
    usual case."""
    later = Metrics()
    tracked = later.track("db", "select")  # made before init_app, used after
    later.init_app(Flask("served_later"))
    given = Metrics(registry=CollectorRegistry())
    with caplog.at_level("WARNING", logger="limone_obs"):
        with tracked:
            pass
        with given.track("db", "select"):
            pass
        given.cache_error("projects")
    assert _unserved_lines(caplog) == []


def test_multiprocess_calls_without_an_app_say_nothing(
    mp_in_process: object, caplog: pytest.LogCaptureFixture
) -> None:
    """In multiprocess mode the series go to the worker's files, which any worker's
    metrics path reads: nothing to warn about."""
    metrics = Metrics()
    with caplog.at_level("WARNING", logger="limone_obs"), metrics.track("db", "select"):
        pass
    assert _unserved_lines(caplog) == []


def _operations(metrics: Metrics, dependency: str) -> set[str]:
    return {
        dict(labels)["operation"]
        for (name, labels) in samples(metrics)
        if name == N.dependency_duration_count and dict(labels)["dependency"] == dependency
    }


def test_operations_built_from_requests_are_bounded(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    """track("api", <a URL>) per request: the query string (a token) never reaches a
    label, values are cut to 100 characters, and past MAX_TRACKED_OPERATIONS new
    operations of a dependency share ``<other>``, said once in a warning line."""
    for i in range(c.MAX_TRACKED_OPERATIONS + 20):
        with metrics.track("api", f"/items/{i}?token=secret{i}"):
            pass
    with metrics.track("api", "/items/0?token=other"):  # an admitted name, new query
        pass
    with metrics.track("long", "x" * 300):
        pass
    operations = _operations(metrics, "api")
    assert len(operations) == c.MAX_TRACKED_OPERATIONS + 1
    assert c.TRACKED_OTHER in operations
    assert not any("secret" in op or "?" in op for op in operations)
    assert _count(metrics, "api", "/items/0", c.OUTCOME_OK) == 2
    assert _count(metrics, "api", c.TRACKED_OTHER, c.OUTCOME_OK) == 20
    assert _operations(metrics, "long") == {"x" * 100}
    warnings = [r.getMessage() for r in caplog.records if "track('api'" in r.getMessage()]
    assert len(warnings) == 1
    assert "fixed set" in warnings[0]


def test_dependencies_are_bounded(metrics: Metrics, caplog: pytest.LogCaptureFixture) -> None:
    """Past MAX_TRACKED_DEPENDENCIES names, a new dependency is recorded as ``<other>``
    (operation too), said in one warning line that names none of them; the admitted ones
    keep theirs, without their query string."""
    for i in range(c.MAX_TRACKED_DEPENDENCIES + 50):
        with metrics.track(f"dep{i}?token=secret{i}", "call"):
            pass
    assert _count(metrics, "dep0", "call", c.OUTCOME_OK) == 1
    assert _count(metrics, c.TRACKED_OTHER, c.TRACKED_OTHER, c.OUTCOME_OK) == 50
    warnings = [r.getMessage() for r in caplog.records if "dependencies" in r.getMessage()]
    assert len(warnings) == 1
    assert "secret" not in caplog.text


def test_an_empty_name_is_recorded_as_other(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    """``track("")`` (or a name that is only a query string): a label of "" is no label
    in Prometheus, so such calls show as ``<other>``, said once."""
    for dependency, operation in (("", "call"), ("ai_api", "?key=secret"), ("", "call")):
        with metrics.track(dependency, operation):
            pass
    assert _count(metrics, c.TRACKED_OTHER, "call", c.OUTCOME_OK) == 2
    assert _count(metrics, "ai_api", c.TRACKED_OTHER, c.OUTCOME_OK) == 1
    warnings = [r.getMessage() for r in caplog.records if "empty name" in r.getMessage()]
    assert len(warnings) == 1
    assert "secret" not in caplog.text


def test_sub_millisecond_calls_land_in_their_own_buckets(metrics: Metrics) -> None:
    """A call of well under a millisecond (a local database, a cache) is told apart from
    one of a few milliseconds: the dependency buckets go down to 0.1 ms."""
    with metrics.track("db", "select"):
        pass  # microseconds
    with metrics.track("db", "select"):
        time.sleep(0.003)
    labels = {"dependency": "db", "operation": "select", "outcome": c.OUTCOME_OK}
    within = {
        le: value(metrics, f"{N.dependency_duration}_bucket", {**labels, "le": le})
        for le in ("0.001", "+Inf")
    }
    assert within == {"0.001": 1.0, "+Inf": 2.0}


def test_one_track_object_nested_in_its_own_block_times_each_block(metrics: Metrics) -> None:
    """A Track kept in a variable and entered inside its own block: each block is one
    call with its own start (the outer one is not shortened to the inner one's)."""
    shared = metrics.track("ai_api", "shared")
    with shared:
        time.sleep(PAUSE)
        with shared:
            time.sleep(PAUSE)
        time.sleep(PAUSE)
    assert _count(metrics, "ai_api", "shared", c.OUTCOME_OK) == 2
    # Outer 3 pauses, inner 1.
    assert (_sum(metrics, "ai_api", "shared", c.OUTCOME_OK) or 0) >= 4 * PAUSE


def test_one_track_object_entered_by_two_threads_keeps_each_outcome(metrics: Metrics) -> None:
    """Two threads in the same Track's block at once: fail() marks the block of the thread
    that called it, and each block keeps its own start."""
    shared = metrics.track("ai_api", "threads")
    a_in, b_out = threading.Event(), threading.Event()

    def a() -> None:
        with shared:
            a_in.set()
            b_out.wait(5)
            time.sleep(PAUSE)

    def b() -> None:
        a_in.wait(5)
        with shared:
            time.sleep(PAUSE)
            shared.fail()
        b_out.set()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert _count(metrics, "ai_api", "threads", c.OUTCOME_ERROR) == 1
    assert _count(metrics, "ai_api", "threads", c.OUTCOME_OK) == 1
    ok = _sum(metrics, "ai_api", "threads", c.OUTCOME_OK) or 0
    error = _sum(metrics, "ai_api", "threads", c.OUTCOME_ERROR) or 0
    assert ok >= error + PAUSE  # A's block holds B's and one pause more


def test_one_track_object_in_gathered_tasks_times_each_task(metrics: Metrics) -> None:
    """``async with`` of one Track in tasks that overlap: each task's block is its own."""
    shared = metrics.track("ai_api", "tasks")

    async def call(delay: float) -> None:
        await asyncio.sleep(delay)
        async with shared:
            await asyncio.sleep(4 * PAUSE)

    async def both() -> None:
        await asyncio.gather(call(0), call(2 * PAUSE))

    asyncio.run(both())
    assert _count(metrics, "ai_api", "tasks", c.OUTCOME_OK) == 2
    assert (_sum(metrics, "ai_api", "tasks", c.OUTCOME_OK) or 0) >= 8 * PAUSE


def test_fail_outside_a_block_marks_nothing(metrics: Metrics) -> None:
    """fail() before the block (or after it) does not carry into the next call."""
    track = metrics.track("db", "select")
    track.fail()
    with track:
        pass
    track.fail()
    assert _count(metrics, "db", "select", c.OUTCOME_OK) == 1
    assert _count(metrics, "db", "select", c.OUTCOME_ERROR) is None


def test_a_stream_is_timed_without_the_consumers_work(metrics: Metrics) -> None:
    """A decorated generator counts the time spent making its items, not the time its
    consumer spends between them (that is the app's, maybe another dependency's)."""

    @metrics.track("ai_api", "stream")
    def tokens() -> Iterator[int]:
        for i in range(3):
            time.sleep(PAUSE)
            yield i

    for _ in tokens():
        time.sleep(5 * PAUSE)  # the consumer's own work: 15 pauses in all
    spent = _sum(metrics, "ai_api", "stream", c.OUTCOME_OK) or 0
    assert 3 * PAUSE <= spent < 8 * PAUSE


def test_an_async_stream_is_timed_without_the_consumers_work(metrics: Metrics) -> None:
    """The async form likewise counts only the awaits of the items."""

    @metrics.track("ai_api", "astream")
    async def tokens() -> AsyncIterator[int]:
        for i in range(3):
            await asyncio.sleep(PAUSE)
            yield i

    async def consume() -> None:
        async for _ in tokens():
            await asyncio.sleep(5 * PAUSE)

    asyncio.run(consume())
    spent = _sum(metrics, "ai_api", "astream", c.OUTCOME_OK) or 0
    assert 3 * PAUSE <= spent < 8 * PAUSE


def test_generator_throw_reaches_the_source(metrics: Metrics) -> None:
    """An exception thrown into the wrapper reaches the wrapped generator, which may
    handle it and go on; the call is ok when it then ends normally."""

    @metrics.track("db", "cursor")
    def rows() -> Generator[str, None, None]:
        try:
            yield "a"
        except KeyError:
            yield "recovered"
        yield "b"

    gen = rows()
    assert next(gen) == "a"
    assert gen.throw(KeyError("x")) == "recovered"
    assert list(gen) == ["b"]
    assert _count(metrics, "db", "cursor", c.OUTCOME_OK) == 1
    assert _count(metrics, "db", "cursor", c.OUTCOME_ERROR) is None


def test_a_sync_function_returning_a_coroutine_is_timed_to_the_awaits_end(
    metrics: Metrics,
) -> None:
    """A thin sync wrapper of an async SDK call is timed until the await ends."""

    async def sdk_call() -> str:
        await asyncio.sleep(3 * PAUSE)
        return "answer"

    @metrics.track("ai_api", "wrapper")
    def complete() -> Coroutine[Any, Any, str]:
        return sdk_call()

    async def fails() -> str:
        raise TimeoutError

    @metrics.track("ai_api", "wrapper_fails")
    def complete_fails() -> Coroutine[Any, Any, str]:
        return fails()

    assert asyncio.run(complete()) == "answer"
    with pytest.raises(TimeoutError):
        asyncio.run(complete_fails())
    assert _count(metrics, "ai_api", "wrapper", c.OUTCOME_OK) == 1
    assert (_sum(metrics, "ai_api", "wrapper", c.OUTCOME_OK) or 0) >= 3 * PAUSE
    assert _count(metrics, "ai_api", "wrapper_fails", c.OUTCOME_ERROR) == 1


def test_a_sync_function_returning_a_task_says_so_once(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    """An awaitable that is not a coroutine (a Task) cannot be followed: one warning line
    per decorated function says what was timed and what to do."""

    @metrics.track("ai_api", "task")
    def start() -> asyncio.Task[None]:
        return asyncio.ensure_future(asyncio.sleep(PAUSE))

    async def twice() -> None:
        await start()
        await start()

    with caplog.at_level("WARNING", logger="limone_obs"):
        asyncio.run(twice())
    lines = [r.getMessage() for r in caplog.records if "awaiting it" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "track('ai_api', 'task')" in lines[0]
    assert "Task" in lines[0]
    assert _count(metrics, "ai_api", "task", c.OUTCOME_OK) == 2


def test_a_name_whose_str_fails_does_not_fail_the_call(metrics: Metrics) -> None:
    """track() with a name object whose __str__ raises records under its type's name."""

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    with metrics.track(Broken(), "x"):  # type: ignore[arg-type]
        pass
    assert _count(metrics, "<Broken>", "x", c.OUTCOME_OK) == 1


def test_a_bare_track_decorator_says_how_to_name_it(metrics: Metrics) -> None:
    """``@metrics.track`` without names raises a TypeError that shows the right form."""
    with pytest.raises(TypeError, match=r'@metrics.track\("ai_api", "complete"\), not a bare'):

        @metrics.track  # type: ignore[arg-type]
        def complete() -> None:
            pass

    with pytest.raises(TypeError, match="not only 'ai_api'"):
        metrics.track("ai_api")


def test_white_space_around_a_name_is_the_same_dependency(metrics: Metrics) -> None:
    """``"ai_api "`` (a trailing space) counts in ai_api's row, not a row of its own."""
    for name in ("ai_api", "ai_api ", "\tai_api\n"):
        with metrics.track(name, " complete"):
            pass
    assert _count(metrics, "ai_api", "complete", c.OUTCOME_OK) == 3


def test_blocks_entered_and_never_exited_do_not_pile_up(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    """A thread's context lives as long as the thread (a sync worker's): blocks entered
    and never exited (a manual __enter__ whose __exit__ never came) are forgotten past
    MAX_OPEN_BLOCKS, and a block entered after them is still timed."""
    abandoned = metrics.track("db", "select")

    def in_a_thread_context() -> int:
        for _ in range(10 * tracking.MAX_OPEN_BLOCKS):
            abandoned.__enter__()
        with metrics.track("db", "insert"):
            pass
        return len(tracking._OPEN.get())

    # A context of its own: the abandoned blocks stay out of the other tests' context.
    tracking._forgotten_said.clear()
    with caplog.at_level("WARNING", logger="limone_obs"):
        assert contextvars.copy_context().run(in_a_thread_context) <= tracking.MAX_OPEN_BLOCKS
    assert len(abandoned._blocks) <= tracking.MAX_OPEN_BLOCKS
    assert _count(metrics, "db", "insert", c.OUTCOME_OK) == 1
    said = [r.getMessage() for r in caplog.records if "are forgotten" in r.getMessage()]
    assert 1 == len(said), said


def test_fail_from_a_thread_that_entered_no_block(metrics: Metrics) -> None:
    """fail() from a thread that did not enter the object: it marks the object's one open
    block (a call handed to a worker thread), and nothing while several are open (it
    cannot tell whose)."""
    single = metrics.track("ai_api", "single")
    with single:
        worker = threading.Thread(target=single.fail)
        worker.start()
        worker.join()
    assert _count(metrics, "ai_api", "single", c.OUTCOME_ERROR) == 1
    shared = metrics.track("ai_api", "shared_fail")
    entered, done = threading.Event(), threading.Event()

    def hold() -> None:
        with shared:
            entered.set()
            done.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(5)
    with shared:
        stranger = threading.Thread(target=shared.fail)
        stranger.start()
        stranger.join()
    done.set()
    holder.join()
    assert _count(metrics, "ai_api", "shared_fail", c.OUTCOME_OK) == 2


def test_a_coroutine_made_then_awaited_later_is_timed_without_the_work_between(
    metrics: Metrics,
) -> None:
    """``c = wrapped(); <the app's work>; await c``: the call is the wrapper's own time and
    the await's, not the app's work in between (an ``async def`` is timed the same way)."""

    @metrics.track("ai_api", "made_early")
    def wrapped() -> Coroutine[Any, Any, None]:
        return asyncio.sleep(2 * PAUSE)

    async def view() -> None:
        call = wrapped()
        time.sleep(3 * PAUSE)  # the app's own work, before the await
        await call

    asyncio.run(view())
    spent = _sum(metrics, "ai_api", "made_early", c.OUTCOME_OK) or 0
    assert 2 * PAUSE <= spent < 4 * PAUSE
