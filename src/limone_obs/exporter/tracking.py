"""Dependency timing: ``metrics.track(dependency, operation)``, and calls per request.

One object serves as a context manager (``with`` and ``async with``) and as a decorator
for sync and async functions, generator functions and async generator functions. The
outcome label is ``ok`` or ``error``; the exception class is deliberately not a label, so
a misbehaving dependency cannot add series.

Every timed call is also added to the current request's tally
(:func:`limone_obs.lifecycle.add_call`), found through a context variable the request
lifecycle sets when a request arrives. The request's state is shared, not copied:
``asyncio.gather`` tasks and thread-pool work run with a copy of the request's context
(``asyncio`` copies it for each task; use :mod:`limone_obs.context` for thread pools) and
so add to the same tally, and each call's span (a stream's, each item's) to the request's
busy time. When the response is closed, the exporter flushes them once into
``<ns>_dependency_calls_per_request{endpoint,dependency}``,
``<ns>_request_dependency_seconds_total{endpoint,dependency}`` and
``<ns>_request_dependency_busy_seconds_total{endpoint}`` (:class:`PerRequestSeries`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Iterator,
)
from contextvars import ContextVar
from time import perf_counter
from types import CoroutineType, TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Histogram

from limone_obs import conventions as c
from limone_obs import lifecycle
from limone_obs.exporter import _failsafe
from limone_obs.lifecycle import add_call

if TYPE_CHECKING:
    from limone_obs.exporter._instruments import RequestChildren
    from limone_obs.exporter.extension import Metrics
    from limone_obs.lifecycle import RequestState

_NO_CALLS: dict[str, list[float]] = {}

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class PerRequestSeries:
    """The per-request dependency series, fed once per request by :meth:`flush`.

    For each endpoint, a dependency seen in any earlier request of this process is
    observed with 0 calls when a request does not call it (a cache hit that spared the
    database shows as 0 ``db`` calls); the label space is bounded by URL rules times
    dependency names.
    """

    def __init__(self, names: c.MetricNames, registry: CollectorRegistry) -> None:
        self.calls = Histogram(
            names.dependency_calls_per_request,
            "Calls made to each dependency during one request, by URL rule.",
            c.REQUEST_DEPENDENCY_LABELS, registry=registry,
            buckets=c.CALLS_PER_REQUEST_BUCKETS,
        )  # fmt: skip
        self.seconds = Counter(
            names.request_dependency_seconds,
            "Seconds requests spent in each dependency, by URL rule.",
            c.REQUEST_DEPENDENCY_LABELS, registry=registry,
        )  # fmt: skip
        self.busy = Counter(
            names.request_dependency_busy_seconds,
            "Seconds of requests during which at least one tracked dependency call was "
            "working for them (overlapping calls count once), by URL rule.",
            (c.LABEL_ENDPOINT,), registry=registry,
        )  # fmt: skip
        #: Endpoint -> its child of ``busy``.
        self._busy: dict[str, Any] = {}
        #: Endpoint -> every dependency its requests called so far (empty: none ever did).
        self.seen: dict[str, set[str]] = {}
        #: (endpoint, dependency) -> the two label children (``labels()`` costs ~4 incs).
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def _pair(self, endpoint: str, dependency: str) -> tuple[Any, Any]:
        key = (endpoint, dependency)
        pair = self._children.get(key)
        if pair is None:
            labels = (endpoint, dependency)
            pair = (self.calls.labels(*labels), self.seconds.labels(*labels))
            self._children[key] = pair
        return pair

    def _busy_child(self, endpoint: str) -> Any:
        child = self._busy.get(endpoint)
        if child is None:
            child = self._busy[endpoint] = self.busy.labels(endpoint)
        return child

    def flush(self, state: RequestState, route: RequestChildren | None) -> None:
        """Record the dependency calls of ``state``, an ended request of ``route``.

        ``route`` is the exporter's series of the request's URL rule (its ``.endpoint``),
        or None for a request that matched no rule. Never raises.
        """
        try:
            endpoint = route.endpoint if route is not None else c.ENDPOINT_UNMATCHED
            calls = state.tally
            busy = 0.0
            if calls is None:
                # None before the request ended: nothing was added in time. (A call that
                # ends at the very moment the response does may be left out.)
                calls = _NO_CALLS
            else:
                # The request has ended: once an add_call in progress has let go of the
                # lock, every later one sees it ended and adds nothing.
                with lifecycle.TALLY_LOCK:
                    calls = dict(calls)
                    spans = getattr(state, "busy", None)
                    busy = lifecycle.busy_seconds(spans) if spans else 0.0
            if busy > 0:
                self._busy_child(endpoint).inc(busy)
            seen = self.seen.get(endpoint)
            if not calls and not seen:
                return  # the common case for endpoints that call no tracked dependency
            with self._lock:
                seen = self.seen.setdefault(endpoint, set())
                seen.update(calls)
                dependencies = sorted(seen)
            for dependency in dependencies:
                count, seconds = calls.get(dependency, (0.0, 0.0))
                calls_child, seconds_child = self._pair(endpoint, dependency)
                calls_child.observe(count)
                if count:
                    seconds_child.inc(seconds)
        except Exception as exc:  # metrics must never fail a response
            _failsafe.report("dependency calls per request", exc)


#: Longest ``dependency`` or ``operation`` value kept (longer ones are cut).
MAX_LABEL_CHARS = 100


class TrackLabels:
    """The ``(dependency, operation)`` label values of ``track()`` calls, bounded.

    Names are meant to be a fixed set (``track("ai_api", "complete")``); a name built from
    a request (``track("api", request.full_path)``) would add a series per URL and carry
    its query string (tokens) into Prometheus. So each value loses what follows a ``?``
    and is cut to :data:`MAX_LABEL_CHARS` characters, and past
    :data:`~limone_obs.conventions.MAX_TRACKED_DEPENDENCIES` dependencies or
    :data:`~limone_obs.conventions.MAX_TRACKED_OPERATIONS` operations of one dependency,
    new values are recorded as ``<other>``, with one warning line for the dependencies
    and one per dependency for its operations. Admitted pairs are remembered (one dict
    lookup per call); refused ones are not, so hostile input cannot grow the memory
    either. The bound is this process's: under gunicorn each worker (a recycled one
    too) admits its own.
    """

    def __init__(self, warn: Callable[[str], None]) -> None:
        self._warn = warn
        self._known: dict[tuple[str, str], tuple[str, str]] = {}
        self._operations: dict[str, set[str]] = {}
        #: Said once each: the dependencies' limit (key ``None``), each dependency's.
        self._warned: set[str | None] = set()
        self._lock = threading.Lock()

    def admit(self, dependency: str, operation: str) -> tuple[str, str]:
        """The label values to record a call of ``dependency``/``operation`` under."""
        found = self._known.get((dependency, operation))
        if found is not None:
            return found
        with self._lock:
            return self._admit(dependency, operation)

    def _admit(self, dependency: str, operation: str) -> tuple[str, str]:
        dep, op = _label_text(dependency), _label_text(operation)
        if not dep or not op:
            # An empty label value is no label at all in Prometheus: the calls would be
            # in the totals and in no dependency's (or operation's) row.
            self._over("", f"track({dep!r}, {op!r}) has an empty name", "empty names")
            dep, op = dep or c.TRACKED_OTHER, op or c.TRACKED_OTHER
        operations = self._operations.get(dep)
        if operations is None:
            if len(self._operations) >= c.MAX_TRACKED_DEPENDENCIES:
                self._over(None, f"more than {c.MAX_TRACKED_DEPENDENCIES} dependencies")
                return c.TRACKED_OTHER, c.TRACKED_OTHER
            operations = self._operations[dep] = set()
        if op not in operations:
            if len(operations) >= c.MAX_TRACKED_OPERATIONS:
                limit = c.MAX_TRACKED_OPERATIONS
                self._over(dep, f"track({dep!r}, ...) has more than {limit} operations")
                return dep, c.TRACKED_OTHER
            operations.add(op)
        labels = (dep, op)
        self._known[(dependency, operation)] = labels
        return labels

    def _over(self, key: str | None, what: str, names: str = "new names") -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        self._warn(
            f"limone-obs: {what}: {names} are recorded as {c.TRACKED_OTHER!r}. Name "
            "dependencies and operations from a fixed set (never a URL, an id or user "
            "input): every distinct value is a series."
        )


def _label_text(value: object) -> str:
    """A ``track()`` name as a label value: its text before any ``?`` (a query string's
    tokens never reach Prometheus or a warning line), without white space around it
    (``"ai_api "`` is ``ai_api``'s row, not a row of its own), cut to MAX_LABEL_CHARS."""
    try:
        text = str(value)
    except Exception:  # a name object whose __str__ fails: never the caller's failure
        text = f"<{type(value).__name__}>"
    return text.partition("?")[0].strip()[:MAX_LABEL_CHARS]


class _Block:
    """One ``with`` block of a :class:`Track`: its start, and whether ``fail()`` marked it."""

    __slots__ = ("failed", "start")

    def __init__(self) -> None:
        self.failed = False
        self.start = perf_counter()


#: Most open blocks kept per context (and per Track object): beyond, the oldest are
#: taken as abandoned (entered, never exited) and forgotten.
MAX_OPEN_BLOCKS = 64
#: The open ``with`` blocks of Track objects in this context, innermost last. A Track
#: stored and shared (``AI = metrics.track(...)`` at module level, entered by several
#: threads or tasks at once, or inside its own block) times each block on its own.
_OPEN: ContextVar[tuple[tuple[Track, _Block], ...]] = ContextVar(
    "limone_obs_open_tracks", default=()
)


#: Said once per process: open blocks were forgotten (see MAX_OPEN_BLOCKS).
_forgotten_said: list[bool] = []


def _say_forgotten(track: Track) -> None:
    """Say once that open blocks were forgotten: never exited, or nested deeper than
    MAX_OPEN_BLOCKS (a recursion: its outermost calls are then not recorded)."""
    if _forgotten_said:
        return
    _forgotten_said.append(True)
    _failsafe.logger.warning(
        "limone-obs: more than %d blocks of track(...) are open in one thread or task "
        "(the last: track(%r, %r)): the oldest are forgotten and their calls not recorded. "
        "Exit every block you enter (a with block does), and keep tracked calls from "
        "nesting deeper than that.",
        MAX_OPEN_BLOCKS,
        track._dependency,
        track._operation,
    )


class Track:
    """Times one dependency call; see :meth:`limone_obs.Metrics.track`.

    As a context manager it times its block; :meth:`fail` marks the call as an error without
    raising (e.g. the AI API answered 503). One object may be entered again, in its own
    block or by other threads and tasks at once (one kept at module level): each block is
    timed on its own, and ``fail()`` marks the innermost block this thread or task entered.
    As a decorator it times every call separately. A generator function (sync or async) is
    timed over its iteration: the time spent making its items, from the first item asked for
    until it is exhausted (``ok``), raises (``error``) or is closed early (``ok``: the
    consumer stopped, the dependency did not fail), without the consumer's work between
    items; a generator never iterated is not recorded. To time an iterator you did not write
    (an SDK's stream object), pass it through :meth:`iterate` or :meth:`aiterate`. A sync
    function that returns a coroutine (a thin wrapper of an async SDK call) is timed while
    it runs and while that coroutine is awaited, not between. Each call counts once in the
    request's calls per dependency. Blocks are matched to their exits innermost first in
    each thread or task: a block held open across a generator's ``yield`` and exited inside
    the consumer's own block of the same object, or from another task, may be matched with
    that other block (each is still recorded once).
    """

    __slots__ = ("_blocks", "_dependency", "_histogram", "_metrics", "_operation", "_warned")

    def __init__(
        self, histogram: Histogram, dependency: str, operation: str, metrics: Metrics
    ) -> None:
        self._histogram = histogram
        #: The owner, asked at each call whether anything serves its series yet.
        self._metrics = metrics
        self._dependency = dependency
        self._operation = operation
        #: This object's open blocks in every context, oldest first: a block exited in
        #: another context than it was entered in is the newest of them.
        self._blocks: list[_Block] = []
        #: Said once: a decorated function returned an awaitable that is not a coroutine.
        self._warned = False

    def _take_innermost(self) -> _Block | None:
        """This object's innermost block open in the current context, else its newest in
        any context (exited elsewhere than it was entered: a generator resumed by another
        task); None when none is open. Removed from both."""
        opened = _OPEN.get()
        block: _Block | None
        for i in range(len(opened) - 1, -1, -1):
            if opened[i][0] is self:
                block = opened[i][1]
                _OPEN.set(opened[:i] + opened[i + 1 :])
                break
        else:
            blocks = self._blocks
            block = blocks[-1] if blocks else None
        if block is not None:
            with contextlib.suppress(ValueError):  # taken by another thread meanwhile
                self._blocks.remove(block)
        return block

    def fail(self) -> None:
        """Record the current block's call with outcome ``error`` though nothing raised:
        the innermost block this thread or task entered, else the object's one open block
        (a thread that did not enter it: marked only when no other block is open)."""
        opened = _OPEN.get()
        block = next((b for track, b in reversed(opened) if track is self), None)
        if block is None and len(self._blocks) == 1:
            block = self._blocks[0]
        if block is not None:
            block.failed = True

    def _observe(self, elapsed: float, failed: bool, span: bool = True) -> None:
        """Record a call of ``elapsed`` seconds that ended now (``span``: as one span of
        the request's busy time; a stream added its items' spans itself)."""
        outcome = c.OUTCOME_ERROR if failed else c.OUTCOME_OK
        try:
            if self._metrics.unserved:
                self._metrics.recorded_unserved(f"track({self._dependency!r}, {self._operation!r})")
            self._histogram.labels(self._dependency, self._operation, outcome).observe(elapsed)
            add_call(self._dependency, elapsed, span)
        except Exception as exc:  # never fail the caller's dependency call
            _failsafe.report("dependency tracking", exc)

    def __enter__(self) -> Track:
        block = _Block()
        blocks = self._blocks
        blocks.append(block)
        opened = _OPEN.get()
        if len(opened) >= MAX_OPEN_BLOCKS or len(blocks) > MAX_OPEN_BLOCKS:
            # Blocks entered and never exited (a manual __enter__ whose __exit__ never
            # came) would otherwise pile up in a thread's context for its whole life.
            opened = opened[1 - MAX_OPEN_BLOCKS :]
            del blocks[:-MAX_OPEN_BLOCKS]
            _say_forgotten(self)
        _OPEN.set((*opened, (self, block)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        end = perf_counter()
        block = self._take_innermost()
        if block is None:  # an exit without its enter: nothing was timed
            return
        failed = exc_type is not None and exc_type is not GeneratorExit
        self._observe(end - block.start, block.failed or failed)

    async def __aenter__(self) -> Track:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``func`` (sync, ``async def``, generator or async generator function).

        Raises TypeError if ``func`` is not callable (e.g. a generator object: use
        :meth:`iterate` or :meth:`aiterate` for those).
        """
        if not callable(func):
            raise TypeError(
                f"track(...) decorates functions, not {type(func).__name__} objects; to "
                "time the iteration of an existing iterator use "
                "track(...).iterate(it) or, for an async one, track(...).aiterate(it)"
            )
        if inspect.isasyncgenfunction(func):
            return cast("Callable[P, R]", self._wrap_async_gen(func))
        if inspect.isgeneratorfunction(func):
            return cast("Callable[P, R]", self._wrap_gen(func))
        if inspect.iscoroutinefunction(func):
            return cast("Callable[P, R]", self._wrap_async(func))
        return self._wrap_sync(func)

    def _wrap_sync(self, func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            start = perf_counter()
            try:
                result = func(*args, **kwargs)
            except BaseException:
                self._observe(perf_counter() - start, True)
                raise
            if isinstance(result, CoroutineType):
                # A thin wrapper of an async call (``return client.acreate(...)``): the
                # call is this function's own time and the await's, not the app's work
                # between the two (the coroutine made, then awaited later).
                return cast("R", self._awaited(result, start, perf_counter()))
            if not self._warned and hasattr(type(result), "__await__"):
                self._say_awaitable(func, result)
            self._observe(perf_counter() - start, False)
            return result

        return timed

    async def _awaited(self, coroutine: Coroutine[Any, Any, T], start: float, made: float) -> T:
        """Await ``coroutine``, made by a decorated sync function from ``start`` to
        ``made``; record the call when it ends: the making and the await, each a span of
        the request's busy time, and not the time between them."""
        awaited, failed = perf_counter(), True
        try:
            result = await coroutine
            failed = False
        finally:
            end = perf_counter()
            lifecycle.add_busy(start, made)
            lifecycle.add_busy(awaited, end)
            self._observe(made - start + end - awaited, failed, span=False)
        return result

    def _say_awaitable(self, func: Callable[..., Any], result: object) -> None:
        """Say once that ``func`` returned an awaitable the decorator cannot follow (a
        Task, a Future): its calls are timed to their return, not to the await's end."""
        self._warned = True
        _failsafe.logger.warning(
            "limone-obs: track(%r, %r) decorates %s, which returned a %s: the time "
            "recorded is that of making it, not of awaiting it. Decorate the async "
            "function that awaits it, or time the await with 'async with "
            "metrics.track(...)'.",
            self._dependency,
            self._operation,
            getattr(func, "__qualname__", func),
            type(result).__name__,
        )

    def _wrap_async(self, func: Callable[P, Any]) -> Callable[P, Any]:
        @functools.wraps(func)
        async def timed(*args: P.args, **kwargs: P.kwargs) -> Any:
            start = perf_counter()
            try:
                result = await func(*args, **kwargs)
            except BaseException:
                self._observe(perf_counter() - start, True)
                raise
            self._observe(perf_counter() - start, False)
            return result

        return timed

    def _wrap_gen(self, func: Callable[P, Generator[Any, Any, Any]]) -> Callable[P, Any]:
        @functools.wraps(func)
        def timed(*args: P.args, **kwargs: P.kwargs) -> Generator[Any, Any, Any]:
            return self.iterate(func(*args, **kwargs))

        return timed

    def _wrap_async_gen(self, func: Callable[P, AsyncGenerator[Any, Any]]) -> Callable[P, Any]:
        @functools.wraps(func)
        def timed(*args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[Any, Any]:
            return self.aiterate(func(*args, **kwargs))

        return timed

    def iterate(self, iterable: Iterable[T]) -> Generator[T, Any, Any]:
        """Yield from ``iterable``, timing the iteration as one call (see the class doc).

        ``send``, ``throw`` and ``close`` reach a wrapped generator unchanged.
        """
        if not isinstance(iterable, Iterable):
            raise TypeError(f"track(...).iterate() needs an iterator, not {type(iterable)}")
        return timed_iteration(iterable, functools.partial(self._observe, span=False))

    def aiterate(self, iterable: AsyncIterable[T]) -> AsyncGenerator[T, Any]:
        """Async :meth:`iterate`: time an async iterator's iteration as one call.

        Items and ``aclose()`` reach the wrapped iterator; ``asend``/``athrow`` are not
        forwarded (streams are only iterated).
        """
        if not isinstance(iterable, AsyncIterable):
            raise TypeError(f"track(...).aiterate() needs an async iterator, not {type(iterable)}")
        return timed_aiteration(iterable, functools.partial(self._observe, span=False))


#: Told once, when a timed iteration ends: (seconds, failed).
Done = Callable[[float, bool], None]


def timed_iteration(iterable: Iterable[T], done: Done) -> Generator[T, Any, Any]:
    """Yield from ``iterable`` (``send``/``throw``/``close`` reach a generator unchanged,
    its return value is this generator's), then tell ``done`` the seconds spent inside
    ``iterable``: in asking it for each item (and in its close), not in the consumer's
    work between items, which is the app's time. Failed when it raised, not when it was
    exhausted or closed early (the consumer stopped)."""
    source = iter(iterable)
    spent, failed = 0.0, False
    step: Callable[[], T] = source.__next__
    try:
        while True:
            start = perf_counter()
            try:
                item = step()
            except StopIteration as stop:
                return stop.value
            finally:
                spent += _busy_since(start)
            try:
                sent = yield item
            except GeneratorExit:
                close = getattr(source, "close", None)
                if close is not None:
                    start = perf_counter()
                    try:
                        close()
                    finally:
                        spent += _busy_since(start)
                raise
            except BaseException as exc:  # thrown in by the consumer: the source's to handle
                throw = getattr(source, "throw", None)
                if throw is None:
                    raise
                step = functools.partial(throw, exc)
            else:
                # A plain iterator has no send(): sending it a value raises, as yield from does.
                step = source.__next__ if sent is None else functools.partial(_send, source, sent)
    except GeneratorExit:
        raise
    except BaseException:
        failed = True
        raise
    finally:
        done(spent, failed)


def _busy_since(start: float) -> float:
    """The seconds since ``start`` a stream spent making an item, added to its request's
    busy time as one span (the consumer's work between items is not the stream's)."""
    end = perf_counter()
    lifecycle.add_busy(start, end)
    return end - start


def _send(source: Iterator[T], value: Any) -> T:
    """``source.send(value)``: an AttributeError for a plain iterator, as ``yield from``."""
    send: Callable[[Any], T] = source.send  # type: ignore[attr-defined]
    return send(value)


async def timed_aiteration(iterable: AsyncIterable[T], done: Done) -> AsyncGenerator[T, Any]:
    """Async :func:`timed_iteration`: the seconds spent awaiting each item of ``iterable``
    and its ``aclose()`` (closed before ``done`` is told); ``asend``/``athrow`` are not
    forwarded."""
    spent, failed = 0.0, False
    source = aiter(iterable)
    try:
        while True:
            start = perf_counter()
            try:
                item = await anext(source)
            except StopAsyncIteration:
                return
            finally:
                spent += _busy_since(start)
            yield item
    except GeneratorExit:
        raise
    except BaseException:
        failed = True
        raise
    finally:
        start = perf_counter()
        try:
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()
        finally:
            done(spent + _busy_since(start), failed)
