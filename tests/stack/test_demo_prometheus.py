"""Integration: the demo under gunicorn with its Redis, scraped by a real Prometheus: the N+1
switch shows in calls per request, and the stack summary reads the cache hit ratio."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from limone_obs import conventions as c
from limone_obs.stack import cache_summary
from limone_obs.stack.faultctl import switch_faults
from tests.redis_server import redis_server
from tests.support import gunicorn_server, prometheus_server

pytestmark = pytest.mark.integration
N = c.MetricNames()
#: Seeded projects: with the N+1 switch on, GET /projects makes 1 + this many db calls.
PROJECTS = 20
REQUESTS = 12
SELECTOR = f'{N.dependency_calls_per_request_bucket}{{endpoint="/projects",dependency="db"}}'


@contextmanager
def demo(tmp_path: Path, redis_url: str) -> Iterator[str]:
    """The demo under gunicorn (2 workers, multiprocess mode) with its Redis cache."""
    env = {
        "GUNICORN_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "LIMONE_DEMO_DATA_DIR": str(tmp_path / "demo"),
        "LIMONE_DEMO_AI_LATENCY": "0.01",
        c.DEMO_REDIS_URL_ENV: redis_url,
    }
    (tmp_path / "metrics").mkdir()
    app = "limone_obs.demo:create_app()"
    with gunicorn_server(app, tmp_path, env, ready_path="/health", name="demo") as (url, _):
        yield url


def _query(prom: str, expr: str, at: float | None = None) -> list[float]:
    params: dict[str, str | float] = {"query": expr}
    if at is not None:
        params["time"] = at
    resp = requests.get(f"{prom}/api/v1/query", params=params, timeout=10)
    return [float(item["value"][1]) for item in resp.json()["data"]["result"]]


def _scraped(prom: str, requests_seen: int) -> float:
    """Wait until Prometheus holds ``requests_seen`` observations; return that time."""
    expr = f'sum({N.dependency_calls_per_request_count}{{endpoint="/projects",dependency="db"}})'
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = time.time()
        if _query(prom, expr, now) == [float(requests_seen)]:
            return now
        time.sleep(0.5)
    pytest.fail(f"Prometheus did not see {requests_seen} requests of /projects within 60 s")


def _get_projects(url: str) -> None:
    for _ in range(REQUESTS):
        resp = requests.get(f"{url}/projects", timeout=10)
        assert 200 == resp.status_code
        assert PROJECTS == len(resp.json()["projects"])


def test_n_plus_one_switch_raises_calls_per_request_p95(tmp_path: Path) -> None:
    """p95 of db calls per request of GET /projects is at most 1 with the switch off and at
    least N (20 projects) while it is on, read from Prometheus."""
    with (
        redis_server(tmp_path) as (redis_url, _),
        demo(tmp_path, redis_url) as url,
        prometheus_server(tmp_path, url.removeprefix("http://"), job="demo") as prom,
    ):
        _get_projects(url)
        off_until = _scraped(prom, REQUESTS)
        switch_faults(url, {"n_plus_one": True})
        _get_projects(url)
        on_until = _scraped(prom, 2 * REQUESTS)
        p95_off = _query(prom, f"histogram_quantile(0.95, sum by (le) ({SELECTOR}))", off_until)
        window = f"{SELECTOR} @ {on_until:.3f} - {SELECTOR} @ {off_until:.3f}"
        p95_on = _query(prom, f"histogram_quantile(0.95, sum by (le) ({window}))", on_until)
    assert len(p95_off) == 1
    assert p95_off[0] <= 1.0
    assert len(p95_on) == 1
    assert p95_on[0] >= PROJECTS


def test_summary_reads_the_hit_ratio_of_each_cache(tmp_path: Path) -> None:
    """The summary line of the languages cache: 1 miss then hits, exactly as answered."""
    with redis_server(tmp_path) as (redis_url, _), demo(tmp_path, redis_url) as url:
        for _ in range(4):
            assert 200 == requests.get(f"{url}/languages/python", timeout=10).status_code
        lines = cache_summary.hit_ratio_lines(url, N)
    assert [f"cache     {c.DEMO_CACHE_LANGUAGES}: 75 % hits (3 hit, 1 miss, 0 error)"] == lines
