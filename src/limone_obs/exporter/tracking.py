"""Dependency timing: ``metrics.track(dependency, operation)``.

One object serves as a context manager (``with`` and ``async with``) and as a decorator
for sync and async functions. The outcome label is ``ok`` or ``error``; the exception
class is deliberately not a label, so a misbehaving dependency cannot add series.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from time import perf_counter
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from prometheus_client import Histogram

from limone_obs import conventions as c
from limone_obs.exporter import _failsafe

P = ParamSpec("P")
R = TypeVar("R")


class Track:
    """Times one dependency call; see :meth:`limone_obs.Metrics.track`.

    As a context manager it times its block; :meth:`fail` marks the call as an error
    without raising (e.g. the AI API answered 503). Use one ``with`` block per object: the
    start time lives on the object. As a decorator it times every call separately and is
    safe to share between threads and tasks.
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
        self._observe(perf_counter() - self._start, self._failed or exc_type is not None)

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
        """Decorate ``func`` (sync or ``async def``) so that every call is timed."""
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
