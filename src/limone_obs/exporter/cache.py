"""An instrumented Redis cache decorator: ``@cache.cache_result(expire_time=300)``.

The key of a call is a SHA-256 digest of the function's module, qualified name and its
arguments as canonical JSON, so every host, worker and restart computes the same key for
the same call (``hash()`` is salted per interpreter start and must never be used). Values
are stored as JSON with the given time to live (``SET key value EX ttl``, what ``SETEX``
does; redis-py 8 deprecates its ``setex()``).

Every lookup is counted in ``<ns>_cache_requests_total{cache,result}``: ``hit``, ``miss``
(absent, or a stored value that is not JSON) or ``error`` (Redis down, slow or failing).
Redis calls are timed with ``metrics.track("redis", "get" | "set")``, so they also count
in the request's calls per dependency. Whatever Redis does, the decorated function is
called directly and its result returned: a cache problem is counted and logged at most
once per interval, never raised into the view. Keys and values never become labels.

Needs the ``redis`` package (``pip install limone-obs[redis]``).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, cast

from limone_obs import conventions as c
from limone_obs.errors import ConfigError

if TYPE_CHECKING:
    from limone_obs.exporter.extension import Metrics

P = ParamSpec("P")
R = TypeVar("R")
logger = logging.getLogger("limone_obs.cache")
_MISSING = object()


class RedisClient(Protocol):
    """What the cache uses of a client: ``redis.Redis`` or a wrapper around one."""

    def get(self, name: Any) -> Any:
        """GET ``name``: bytes, str or None."""

    def set(self, name: Any, value: Any, ex: Any = None) -> Any:
        """SET ``name`` to ``value``, expiring after ``ex`` seconds."""


class _Throttle:
    """Lets one log line per (cache, problem) through every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def allow(self, cache: str, problem: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get((cache, problem))
            if last is not None and now - last < self._interval:
                return False
            self._last[(cache, problem)] = now
            return True


class RedisCache:
    """Caches function results in Redis, counted and timed through ``metrics``.

    ``client`` is a synchronous ``redis.Redis`` (give it short timeouts, or build it with
    :meth:`from_url`) or any object with its ``get`` and ``set`` (:class:`RedisClient`).
    Async functions use the same client: Flask runs each async view in
    an event loop of its own, and ``redis.asyncio`` connection pools are bound to one loop.
    After a connection error or timeout, Redis is left alone for ``retry_after`` seconds:
    lookups then count as ``error`` at once instead of each waiting for a timeout (other
    errors, e.g. a key holding another type, are counted for that call only).
    ``prefix`` starts every key; ``log_interval`` spaces repeated log lines of one problem.
    """

    def __init__(
        self,
        client: RedisClient,
        metrics: Metrics,
        *,
        prefix: str = "limone-obs:",
        retry_after: float = 1.0,
        log_interval: float = 60.0,
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.prefix = prefix
        self.retry_after = retry_after
        self._down_until = 0.0
        self._throttle = _Throttle(log_interval)

    @classmethod
    def from_url(
        cls, url: str, metrics: Metrics, *, timeout: float = 0.25, **options: Any
    ) -> RedisCache:
        """A cache on a new client for ``url`` (``redis://127.0.0.1:6379/0``).

        The client waits at most ``timeout`` seconds to connect and for each answer, and
        retries once (a pooled connection may predate a Redis restart); redis-py's default
        of 10 retries with backoff would hold a request for seconds while Redis is down.
        ``options`` go to :class:`RedisCache`.
        """
        import redis  # noqa: PLC0415 - an optional dependency, needed only here
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.retry import Retry  # noqa: PLC0415

        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        return cls(client, metrics, **options)

    def cache_result(
        self, expire_time: int = 300, *, name: str | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorator caching a function's JSON result for ``expire_time`` seconds.

        ``name`` is the ``cache`` label (default: the function's name); keep it to a fixed
        set. Arguments must be JSON values (a call with other arguments is not cached, and
        counted as ``error``); so must the result (else it is returned but not stored).
        A cached result comes back as JSON gives it: tuples become lists.
        Raises ConfigError for an ``expire_time`` that is not a positive whole number.
        """
        if isinstance(expire_time, bool) or not isinstance(expire_time, int) or expire_time < 1:
            raise ConfigError(
                f"cache_result(expire_time={expire_time!r}): use a whole number of seconds >= 1"
            )

        def decorate(func: Callable[P, R]) -> Callable[P, R]:
            if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
                raise TypeError(
                    f"cache_result cannot cache generator {func.__qualname__}: cache a "
                    "function returning the list of its items instead"
                )
            call = _Call(self, func, name or func.__name__, expire_time)
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def cached_async(*args: Any, **kwargs: Any) -> Any:
                    return await call.run_async(*args, **kwargs)

                return cast("Callable[P, R]", cached_async)

            @functools.wraps(func)
            def cached(*args: Any, **kwargs: Any) -> Any:
                return call.run(*args, **kwargs)

            return cast("Callable[P, R]", cached)

        return decorate

    def key(self, func: Callable[..., Any], args: Any, kwargs: Any) -> str:
        """The Redis key of ``func(*args, **kwargs)``; TypeError/ValueError if not JSON."""
        canonical = json.dumps(
            [list(args), kwargs], sort_keys=True, separators=(",", ":"), allow_nan=False
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        return f"{self.prefix}{func.__module__}.{func.__qualname__}:{digest}"

    def lookup(self, cache: str, key: str) -> tuple[str, Any]:
        """Read ``key``: ``(result, value)``, result hit/miss/error, counted; never raises."""
        if time.monotonic() < self._down_until:
            return self._count(cache, c.CACHE_ERROR), _MISSING
        try:
            with self.metrics.track(c.DEPENDENCY_REDIS, c.REDIS_OP_GET):
                raw = self.client.get(key)
        except Exception as exc:  # whatever Redis does, the view goes on
            self._failed(cache, "get", exc)
            return self._count(cache, c.CACHE_ERROR), _MISSING
        if raw is None:
            return self._count(cache, c.CACHE_MISS), _MISSING
        try:
            value = json.loads(raw)
        except ValueError:  # includes UnicodeDecodeError: overwritten after the call
            self._log(cache, "garbage", "a stored value is not JSON; recomputed and replaced")
            return self._count(cache, c.CACHE_MISS), _MISSING
        return self._count(cache, c.CACHE_HIT), value

    def store(self, cache: str, key: str, value: Any, expire_time: int) -> None:
        """Store ``value`` as JSON for ``expire_time`` s; problems are logged, never raised."""
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            self._log(cache, "unserialisable", f"the result is not JSON, so not cached: {exc}")
            return
        try:
            with self.metrics.track(c.DEPENDENCY_REDIS, c.REDIS_OP_SET):
                self.client.set(key, text, ex=expire_time)
        except Exception as exc:  # whatever Redis does, the view goes on
            self._failed(cache, "set", exc)

    def _count(self, cache: str, result: str) -> str:
        if result == c.CACHE_ERROR:
            self.metrics.cache_error(cache)
        else:
            self.metrics.cache_result(cache, result == c.CACHE_HIT)
        return result

    def _failed(self, cache: str, operation: str, exc: Exception) -> None:
        if _unreachable(exc):
            self._down_until = time.monotonic() + self.retry_after
        self._log(
            cache,
            f"redis-{operation}",
            f"Redis {operation.upper()} failed ({type(exc).__name__}: {exc}); the function "
            f"is called directly, Redis is retried after {self.retry_after:g} s",
        )

    def _log(self, cache: str, problem: str, message: str) -> None:
        if self._throttle.allow(cache, problem):
            logger.warning("cache %r: %s (repeats are not logged for a while)", cache, message)


def _unreachable(exc: Exception) -> bool:
    """True for a connection error or timeout (redis-py's, or the socket's own)."""
    if isinstance(exc, OSError):  # includes the built-in ConnectionError and TimeoutError
        return True
    return any(k.__name__ in ("ConnectionError", "TimeoutError") for k in type(exc).__mro__)


class _Call:
    """One decorated function: key, lookup, call, store."""

    def __init__(self, cache: RedisCache, func: Callable[..., Any], name: str, ttl: int) -> None:
        self.cache = cache
        self.func = func
        self.name = name
        self.ttl = ttl

    def _key(self, args: Any, kwargs: Any) -> str | None:
        try:
            return self.cache.key(self.func, args, kwargs)
        except (TypeError, ValueError) as exc:
            self.cache._log(
                self.name,
                "arguments",
                f"{self.func.__qualname__} got arguments that are not JSON, so the call is "
                f"not cached ({exc}); cache a function of JSON arguments",
            )
            self.cache._count(self.name, c.CACHE_ERROR)
            return None

    def _lookup(self, args: Any, kwargs: Any) -> tuple[str | None, Any]:
        key = self._key(args, kwargs)
        if key is None:
            return None, _MISSING
        result, value = self.cache.lookup(self.name, key)
        # After an error, storing would only meet the same trouble again.
        return (key if result == c.CACHE_MISS else None), value

    def run(self, *args: Any, **kwargs: Any) -> Any:
        key, value = self._lookup(args, kwargs)
        if value is not _MISSING:
            return value
        value = self.func(*args, **kwargs)
        if key is not None:
            self.cache.store(self.name, key, value, self.ttl)
        return value

    async def run_async(self, *args: Any, **kwargs: Any) -> Any:
        key, value = self._lookup(args, kwargs)
        if value is not _MISSING:
            return value
        value = await self.func(*args, **kwargs)
        if key is not None:
            self.cache.store(self.name, key, value, self.ttl)
        return value
