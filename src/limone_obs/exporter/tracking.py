"""Dependency timing: ``metrics.track(dependency, operation)``, and calls per request.

One object serves as a context manager (``with`` and ``async with``) and as a decorator
for sync and async functions, generator functions and async generator functions. The
outcome label is ``ok`` or ``error``; the exception class is deliberately not a label, so
a misbehaving dependency cannot add series.

Every timed call is also added to the current request's :class:`RequestTally`, kept in a
context variable that the exporter sets when a request arrives. The tally object is
shared, not copied: ``asyncio.gather`` tasks and thread-pool work run with a copy of the
request's context (``asyncio`` copies it for each task; use :mod:`limone_obs.context` for
thread pools) and so add to the same tally. When the response is closed, the exporter
flushes it once into ``<ns>_dependency_calls_per_request{endpoint,dependency}`` and
``<ns>_request_dependency_seconds_total{endpoint,dependency}`` (:class:`PerRequestSeries`).
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Generator, Iterable
from contextvars import ContextVar
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Histogram

from limone_obs import conventions as c
from limone_obs.exporter import _failsafe

if TYPE_CHECKING:
    from limone_obs.exporter._instruments import RequestChildren

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

#: Guards every tally's dict: thread-pool work of one request may add at the same time.
_TALLY_LOCK = threading.Lock()


class RequestTally:
    """The dependency calls of one request: ``dependency -> [calls, seconds]``.

    Made by :func:`start_request` on every request, so it costs no dict until the first
    call is added. Calls added after :meth:`close` are ignored (a thread still running
    after its request ended cannot change a flushed tally).
    """

    __slots__ = ("calls", "open")

    calls: dict[str, list[float]] | None
    open: bool

    def add(self, dependency: str, elapsed: float) -> None:
        """Count one call of ``dependency`` that took ``elapsed`` seconds."""
        with _TALLY_LOCK:
            if not self.open:
                return
            calls = self.calls
            if calls is None:
                self.calls = {dependency: [1.0, elapsed]}
                return
            entry = calls.get(dependency)
            if entry is None:
                calls[dependency] = [1.0, elapsed]
            else:
                entry[0] += 1.0
                entry[1] += elapsed

    def close(self) -> dict[str, list[float]]:
        """Stop counting and return the calls (``dependency -> [calls, seconds]``)."""
        if self.calls is None:  # no call so far: no lock needed to stop counting
            self.open = False
            if self.calls is None:
                return _NO_CALLS
        with _TALLY_LOCK:
            self.open = False
            return self.calls or _NO_CALLS


_NO_CALLS: dict[str, list[float]] = {}
_new = object.__new__
_TALLY: ContextVar[RequestTally | None] = ContextVar("limone_obs_request_tally", default=None)


def start_request() -> RequestTally:
    """Begin counting dependency calls for a new request in the current context.

    Called by the exporter when a request arrives, before the app runs, so that every
    task and thread the request spawns later inherits the same tally.
    """
    # Filled here, not in an __init__: CPython 3.11 calls a Python __init__ through a
    # slow generic path, and this runs on every request.
    tally = _new(RequestTally)
    tally.calls = None
    tally.open = True
    _TALLY.set(tally)
    return tally


def _tally_call(dependency: str, elapsed: float) -> None:
    tally = _TALLY.get()
    if tally is not None:
        tally.add(dependency, elapsed)


class PerRequestSeries:
    """The two per-request dependency series, fed once per request by :meth:`flush`.

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
        self._seen: dict[str, set[str]] = {}
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

    def flush(self, tally: RequestTally | None, route: RequestChildren | None) -> None:
        """Record ``tally`` (closing it) as one request of ``route``; never raises.

        ``route`` is the exporter's series of the request's URL rule (its ``.endpoint``),
        or None for a request that matched no rule.
        """
        try:
            endpoint = route.endpoint if route is not None else c.ENDPOINT_UNMATCHED
            calls = tally.close() if tally is not None else _NO_CALLS
            seen = self._seen.get(endpoint)
            if not calls and not seen:
                return  # the common case for endpoints that call no tracked dependency
            with self._lock:
                seen = self._seen.setdefault(endpoint, set())
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


class Track:
    """Times one dependency call; see :meth:`limone_obs.Metrics.track`.

    As a context manager it times its block; :meth:`fail` marks the call as an error
    without raising (e.g. the AI API answered 503). Use one ``with`` block per object: the
    start time lives on the object. As a decorator it times every call separately and is
    safe to share between threads and tasks. A generator function (sync or async) is
    timed over its iteration: from the first item asked for until it is exhausted
    (``ok``), raises (``error``) or is closed early (``ok``: the consumer stopped, the
    dependency did not fail); a generator never iterated is not recorded. To time an
    iterator you did not write (an SDK's stream object), pass it through :meth:`iterate`
    or :meth:`aiterate`. Each call counts once in the request's calls per dependency.
    """

    __slots__ = ("_dependency", "_failed", "_histogram", "_operation", "_start")

    def __init__(self, histogram: Histogram, dependency: str, operation: str) -> None:
        self._histogram = histogram
        self._dependency = dependency
        self._operation = operation
        self._start = 0.0
        self._failed = False

    def fail(self) -> None:
        """Record this call with outcome ``error`` even though no exception was raised."""
        self._failed = True

    def _observe(self, elapsed: float, failed: bool) -> None:
        outcome = c.OUTCOME_ERROR if failed else c.OUTCOME_OK
        try:
            self._histogram.labels(self._dependency, self._operation, outcome).observe(elapsed)
            _tally_call(self._dependency, elapsed)
        except Exception as exc:  # never fail the caller's dependency call
            _failsafe.report("dependency tracking", exc)

    def __enter__(self) -> Track:
        self._failed = False
        self._start = perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        failed = exc_type is not None and exc_type is not GeneratorExit
        self._observe(perf_counter() - self._start, self._failed or failed)

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
            self._observe(perf_counter() - start, False)
            return result

        return timed

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
        return self._iterate(iterable)

    def _iterate(self, iterable: Iterable[T]) -> Generator[T, Any, Any]:
        start, failed = perf_counter(), False
        try:
            return (yield from iterable)
        except GeneratorExit:
            raise
        except BaseException:
            failed = True
            raise
        finally:
            self._observe(perf_counter() - start, failed)

    def aiterate(self, iterable: AsyncIterable[T]) -> AsyncGenerator[T, Any]:
        """Async :meth:`iterate`: time an async iterator's iteration as one call.

        Items and ``aclose()`` reach the wrapped iterator; ``asend``/``athrow`` are not
        forwarded (streams are only iterated).
        """
        if not isinstance(iterable, AsyncIterable):
            raise TypeError(f"track(...).aiterate() needs an async iterator, not {type(iterable)}")
        return self._aiterate(iterable)

    async def _aiterate(self, iterable: AsyncIterable[T]) -> AsyncGenerator[T, Any]:
        start, failed = perf_counter(), False
        source = aiter(iterable)
        try:
            async for item in source:
                yield item
        except GeneratorExit:
            raise
        except BaseException:
            failed = True
            raise
        finally:
            try:
                close = getattr(source, "aclose", None)
                if close is not None:
                    await close()
            finally:
                self._observe(perf_counter() - start, failed)
