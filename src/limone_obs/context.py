"""Keep the request's context in work handed to a thread pool.

A thread pool's worker threads start with an empty :mod:`contextvars` context, so a
log line written there has no ``request_id``/``trace_id`` and the exporter's per-request
state is not found. These helpers run the work in a copy of the caller's context, taken
when the work is handed over::

    from limone_obs.context import run_in_executor, submit, wrap

    future = submit(pool, client.complete, prompt)              # ThreadPoolExecutor
    answer = await run_in_executor(None, client.complete, prompt)  # in an async view
    pool.map(wrap(summarise), documents)                       # any API taking a callable

Every context variable travels, not only the logging context. ``ContextVar.set`` in the
worker stays in the worker (the caller's context is not changed); an object held in a
context variable is shared, so state that is updated in place (e.g. a per-request tally)
sees the worker's updates. ``asyncio.to_thread`` already copies the context by itself;
``loop.run_in_executor`` and ``Executor.submit`` do not.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["run_in_executor", "submit", "wrap"]


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """Return ``fn`` bound to a copy of the current context, taken now.

    The wrapper may be called many times and from several threads at once: each call
    runs in its own copy of the captured context (one Context cannot be entered twice).
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return in_context


def submit(executor: Executor, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Future[R]:
    """``executor.submit(fn, *args, **kwargs)`` with the caller's context in the worker."""
    return executor.submit(wrap(fn), *args, **kwargs)


def run_in_executor(
    executor: Executor | None, fn: Callable[..., R], *args: object
) -> asyncio.Future[R]:
    """``loop.run_in_executor(executor, fn, *args)`` on the running loop, with the
    caller's context in the worker; ``executor=None`` is the loop's default pool.
    Await the result. Must be called from a coroutine (an async view)."""
    loop = asyncio.get_running_loop()
    return loop.run_in_executor(executor, wrap(fn), *args)
