"""The instrumented Redis cache decorator, against a real redis-server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from prometheus_client import CollectorRegistry

from limone_obs import conventions as c
from limone_obs.errors import ConfigError
from limone_obs.exporter import Metrics, RedisCache
from tests.exporter.helpers import metrics_text, value
from tests.redis_server import redis_server
from tests.support import ROOT

pytestmark = pytest.mark.integration
N = c.MetricNames()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One redis-server for this module's tests (each test uses its own key prefix)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as (url, _proc):
        yield url


@pytest.fixture
def metrics() -> Metrics:
    """Metrics on a private registry."""
    return Metrics(registry=CollectorRegistry())


@pytest.fixture
def cache(redis_url: str, metrics: Metrics, request: pytest.FixtureRequest) -> RedisCache:
    """A cache whose keys start with the test's name (no test sees another's keys)."""
    return RedisCache.from_url(redis_url, metrics, prefix=f"{request.node.name}:")


def _results(metrics: Metrics, name: str) -> dict[str, float]:
    """hit/miss/error counts of cache ``name`` (0 when the series does not exist)."""
    return {
        result: value(metrics, N.cache_requests_total, {"cache": name, "result": result}) or 0.0
        for result in c.CACHE_RESULTS
    }


def _redis_calls(metrics: Metrics, operation: str, outcome: str) -> float:
    labels = {"dependency": c.DEPENDENCY_REDIS, "operation": operation, "outcome": outcome}
    return value(metrics, N.dependency_duration_count, labels) or 0.0


def test_first_call_misses_then_hits(cache: RedisCache, metrics: Metrics) -> None:
    """The first call computes and stores; the same call again is served from Redis."""
    computed: list[int] = []

    @cache.cache_result(expire_time=60, name="double")
    def double(n: int) -> int:
        computed.append(n)
        return n * 2

    assert [4, 4, 6, 4] == [double(2), double(2), double(3), double(n=2)]
    # double(n=2) is another call signature than double(2): its own key.
    assert [2, 3, 2] == computed
    assert {"hit": 1, "miss": 3, "error": 0} == _results(metrics, "double")
    assert 4 == _redis_calls(metrics, c.REDIS_OP_GET, c.OUTCOME_OK)
    assert 3 == _redis_calls(metrics, c.REDIS_OP_SET, c.OUTCOME_OK)


def test_value_is_json_with_the_ttl(cache: RedisCache, redis_url: str) -> None:
    """The stored value is JSON text, set with the decorator's time to live."""

    @cache.cache_result(expire_time=120)
    def answer(prompt: str, *, model: str) -> dict[str, str]:
        return {"prompt": prompt, "model": model}

    answer("hi", model="m1")
    key = cache.key(answer.__wrapped__, ("hi",), {"model": "m1"})  # type: ignore[attr-defined]
    client = redis.Redis.from_url(redis_url)
    assert {"prompt": "hi", "model": "m1"} == json.loads(client.get(key))  # type: ignore[arg-type]
    assert 0 < int(client.ttl(key)) <= 120


def test_key_is_the_same_in_every_interpreter(cache: RedisCache) -> None:
    """The key does not depend on hash() salting: another interpreter computes the same."""

    def lookup(name: str, limit: int) -> None:
        del name, limit

    mine = cache.key(lookup, ("python", 3), {"z": 1, "a": [1, 2]})
    code = (
        "from limone_obs.exporter.cache import RedisCache\n"
        "def lookup(name, limit): pass\n"
        "lookup.__module__, lookup.__qualname__ = m, q\n"
        "c = RedisCache(None, None, prefix=p)\n"
        "print(c.key(lookup, ('python', 3), {'a': [1, 2], 'z': 1}))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT / "src")}
    setup = f"m, q, p = {lookup.__module__!r}, {lookup.__qualname__!r}, {cache.prefix!r}\n"
    out = subprocess.run(
        [sys.executable, "-c", setup + code], env=env, capture_output=True, text=True, check=True
    )
    assert mine == out.stdout.strip()
    assert "python" not in mine  # arguments are digested, never spelled out in the key


def test_async_function_is_cached(cache: RedisCache, metrics: Metrics) -> None:
    """An async def stays a coroutine function, misses once and then hits."""
    computed: list[str] = []

    @cache.cache_result(expire_time=60, name="acomplete")
    async def complete(prompt: str) -> str:
        computed.append(prompt)
        await asyncio.sleep(0)
        return prompt.upper()

    assert asyncio.iscoroutinefunction(complete)
    assert ["HI", "HI"] == [asyncio.run(complete("hi")), asyncio.run(complete("hi"))]
    assert ["hi"] == computed
    assert {"hit": 1, "miss": 1, "error": 0} == _results(metrics, "acomplete")


def test_non_json_value_is_a_miss_not_a_500(
    cache: RedisCache, metrics: Metrics, redis_url: str
) -> None:
    """Garbage under the key is a miss: the view answers 200 and the value is replaced."""
    app = Flask("garbage")
    Metrics(app, registry=CollectorRegistry())

    @cache.cache_result(expire_time=60, name="garbage")
    def language(name: str) -> dict[str, str]:
        return {"name": name}

    @app.get("/languages/<name>")
    def get_language(name: str) -> dict[str, str]:
        return language(name)

    key = cache.key(language.__wrapped__, ("rust",), {})  # type: ignore[attr-defined]
    client = redis.Redis.from_url(redis_url)
    client.set(key, b"\xff\xfe not json {")
    with app.test_client().get("/languages/rust") as resp:
        assert 200 == resp.status_code
        assert {"name": "rust"} == resp.get_json()
    assert {"name": "rust"} == json.loads(client.get(key))  # type: ignore[arg-type]
    assert {"hit": 0, "miss": 1, "error": 0} == _results(metrics, "garbage")


def test_redis_killed_mid_run_every_call_answered(
    tmp_path: Path, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    """After redis-server dies every call still returns, each lookup counts as error, and
    the failure is logged once, not once per call."""
    with redis_server(tmp_path, "doomed") as (url, proc):
        cache = RedisCache.from_url(url, metrics)

        @cache.cache_result(expire_time=60, name="doomed")
        def square(n: int) -> int:
            return n * n

        assert [0, 1, 4] == [square(n) for n in range(3)]
        assert [0, 1, 4] == [square(n) for n in range(3)]
        proc.stop()
        with caplog.at_level(logging.WARNING, logger="limone_obs.cache"):
            assert [n * n for n in range(20)] == [square(n) for n in range(20)]
    assert {"hit": 3, "miss": 3, "error": 20} == _results(metrics, "doomed")
    assert _redis_calls(metrics, c.REDIS_OP_GET, c.OUTCOME_ERROR) >= 1
    failures = [r for r in caplog.records if "Redis GET failed" in r.getMessage()]
    assert 1 == len(failures)


def test_slow_redis_times_out_and_the_call_goes_on(metrics: Metrics) -> None:
    """A Redis that accepts connections but never answers: the function runs, error counted."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        cache = RedisCache.from_url(f"redis://127.0.0.1:{port}/0", metrics, timeout=0.1)

        @cache.cache_result(expire_time=60, name="slow")
        def ident(n: int) -> int:
            return n

        assert [1, 2] == [ident(1), ident(2)]
    assert {"hit": 0, "miss": 0, "error": 2} == _results(metrics, "slow")


def test_arguments_that_are_not_json_are_not_cached(cache: RedisCache, metrics: Metrics) -> None:
    """A call with a non-JSON argument is made directly and counted as error."""

    @cache.cache_result(expire_time=60, name="objects")
    def describe(obj: object) -> str:
        return type(obj).__name__

    assert "lock" == describe(threading.Lock())
    assert {"hit": 0, "miss": 0, "error": 1} == _results(metrics, "objects")


def test_result_that_is_not_json_is_returned_uncached(cache: RedisCache, metrics: Metrics) -> None:
    """A result JSON cannot hold is returned each time, never stored."""

    @cache.cache_result(expire_time=60, name="sets")
    def letters(word: str) -> set[str]:
        return set(word)

    assert {"a", "b"} == letters("abba") == letters("abba")
    assert {"hit": 0, "miss": 2, "error": 0} == _results(metrics, "sets")


def test_keys_and_values_never_become_labels(cache: RedisCache, metrics: Metrics) -> None:
    """The exposition holds neither a key digest nor a cached value."""

    @cache.cache_result(expire_time=60, name="secret")
    def secret(user: str) -> str:
        return f"token-for-{user}"

    secret("alice")
    secret("alice")
    key = cache.key(secret.__wrapped__, ("alice",), {})  # type: ignore[attr-defined]
    text = metrics_text(metrics)
    assert "alice" not in text
    assert key.rsplit(":", 1)[1] not in text


@pytest.mark.parametrize("ttl", [0, -5, 1.5, True, "300"])
def test_bad_expire_time_is_refused(cache: RedisCache, ttl: object) -> None:
    """expire_time must be a whole number of seconds >= 1 (ConfigError at decoration)."""
    with pytest.raises(ConfigError, match="expire_time"):
        cache.cache_result(expire_time=ttl)  # type: ignore[arg-type]


def test_redis_client_is_the_only_optional_import() -> None:
    """Importing the exporter does not import redis (a plain install has no redis)."""
    code = "import sys, limone_obs.exporter; print('redis' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    argv = [sys.executable, "-c", code]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    assert "False" == out.stdout.strip()


def test_redis_package_is_real() -> None:
    """The tests use redis-py itself, not a stand-in."""
    assert hasattr(redis, "Redis")


def test_wrong_type_error_counts_once_and_keeps_redis_in_use(
    cache: RedisCache, metrics: Metrics, redis_url: str
) -> None:
    """A Redis error that is not a lost connection (a key holding a list) counts an error
    for that call only: the next call still reaches Redis."""

    @cache.cache_result(expire_time=60, name="wrongtype")
    def ident(n: int) -> int:
        return n

    key = cache.key(ident.__wrapped__, (1,), {})  # type: ignore[attr-defined]
    redis.Redis.from_url(redis_url).rpush(key, "x")
    assert [1, 2, 2] == [ident(1), ident(2), ident(2)]
    assert {"hit": 1, "miss": 1, "error": 1} == _results(metrics, "wrongtype")


def test_async_view_gathering_cached_calls_counts_redis_per_request(cache: RedisCache) -> None:
    """An async view gathering 3 cached calls: 3 gets + 3 sets on the first request, 3 gets
    on the second, exactly, in the per-request series."""
    app = Flask("gather_cache")
    metrics = Metrics(app, registry=CollectorRegistry())
    cache.metrics = metrics

    @cache.cache_result(expire_time=60, name="gathered")
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n

    @app.get("/gathered")
    async def gathered() -> dict[str, int]:
        return {"sum": sum(await asyncio.gather(fetch(1), fetch(2), fetch(3)))}

    for _ in range(2):
        with app.test_client().get("/gathered") as resp:
            assert {"sum": 6} == resp.get_json()
    labels = {"endpoint": "/gathered", "dependency": c.DEPENDENCY_REDIS}
    assert 2 == value(metrics, N.dependency_calls_per_request_count, labels)
    assert 9 == value(metrics, N.dependency_calls_per_request_sum, labels)
    assert {"hit": 3, "miss": 3, "error": 0} == _results(metrics, "gathered")
