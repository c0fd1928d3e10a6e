"""Integration: the Redis cache under gunicorn (3 workers, multiprocess mode), with a real
redis-server: exact hit/miss counts across workers and across servers, Redis killed."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from limone_obs import conventions as c
from tests.exporter.cache_app import CACHE_NAME
from tests.redis_server import redis_server
from tests.support import gunicorn_server, settled

pytestmark = pytest.mark.integration
N = c.MetricNames()
ENDPOINT = "/square/<int:n>"


@contextmanager
def cache_server(tmp_path: Path, redis_url: str, name: str) -> Iterator[str]:
    """tests.exporter.cache_app under the kit's gunicorn config, 3 workers; its base URL."""
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"mp-{name}"),
        "GUNICORN_WORKERS": "3",
        "CACHE_TEST_REDIS_URL": redis_url,
    }
    (tmp_path / f"mp-{name}").mkdir()
    with gunicorn_server("tests.exporter.cache_app:create_app()", tmp_path, env, name=name) as (
        url,
        _proc,
    ):
        yield url


def _sample(url: str, name: str, labels: dict[str, str]) -> float:
    """One sample of a scrape of ``url``/metrics (0 when absent)."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def _results(url: str) -> dict[str, float]:
    return {
        r: _sample(url, N.cache_requests_total, {"cache": CACHE_NAME, "result": r})
        for r in c.CACHE_RESULTS
    }


def _get_squares(url: str, numbers: range) -> None:
    for n in numbers:
        resp = requests.get(f"{url}/square/{n}", timeout=10)
        assert 200 == resp.status_code
        assert {"n": n, "square": n * n} == resp.json()


def test_exact_hits_and_misses_across_three_workers(tmp_path: Path) -> None:
    """10 keys asked twice through 3 workers: exactly 10 misses and 10 hits, and exactly
    1 (hit) or 2 (miss: get + set) Redis calls per request."""
    with redis_server(tmp_path) as (redis_url, _), cache_server(tmp_path, redis_url, "a") as url:
        _get_squares(url, range(10))
        _get_squares(url, range(10))
        assert {"hit": 10, "miss": 10, "error": 0} == _results(url)
        labels = {"endpoint": ENDPOINT, "dependency": c.DEPENDENCY_REDIS}
        # Lookups count in the view; a request's calls when it ends, after its last byte.
        count = settled(
            lambda: _sample(url, N.dependency_calls_per_request_count, labels), lambda n: n >= 20
        )
        assert 20 == count
        assert 30 == _sample(url, N.dependency_calls_per_request_sum, labels)
        assert 10 == _sample(url, N.dependency_calls_per_request_bucket, {**labels, "le": "1.0"})


def test_second_server_hits_what_the_first_stored(tmp_path: Path) -> None:
    """Two separately started servers (own interpreters, own hash salt) share one Redis:
    the second one hits every key the first one stored."""
    with redis_server(tmp_path) as (redis_url, _):
        with cache_server(tmp_path, redis_url, "first") as first:
            _get_squares(first, range(5))
            assert {"hit": 0, "miss": 5, "error": 0} == _results(first)
        with cache_server(tmp_path, redis_url, "second") as second:
            _get_squares(second, range(5))
            assert {"hit": 5, "miss": 0, "error": 0} == _results(second)


def test_redis_killed_mid_run_every_request_answered(tmp_path: Path) -> None:
    """redis-server SIGKILLed mid-run: every request still answers 200 with the right body,
    and every lookup after the stop counts as error."""
    with (
        redis_server(tmp_path) as (redis_url, redis_proc),
        cache_server(tmp_path, redis_url, "kill") as url,
    ):
        _get_squares(url, range(3))
        _get_squares(url, range(3))
        redis_proc.signal(signal.SIGKILL)
        redis_proc.popen.wait(timeout=10)
        _get_squares(url, range(15))
        assert {"hit": 3, "miss": 3, "error": 15} == _results(url)
