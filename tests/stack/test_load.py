"""The bounded load generator: rate, bounds, mix, loopback guard and result."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask, abort

from limone_obs.errors import ConfigError
from limone_obs.stack.load import Target, parse_mix, percentile, run_load, schedule
from tests.stack.helpers import serve


def _app() -> Flask:
    app = Flask(__name__)
    app.add_url_rule("/ok", "ok", lambda: "ok")
    app.add_url_rule("/post", "post", lambda: "posted", methods=["POST"])
    app.add_url_rule("/fail", "fail", lambda: abort(503))
    return app


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve(_app()) as url:
        yield url


def test_stops_at_max_requests(base_url: str) -> None:
    """With a count limit below rps x duration, exactly that many requests are sent."""
    result = run_load(base_url, rps=200, duration=10, concurrency=4, mix="/ok", max_requests=25)
    assert 25 == result.requests
    assert {200: 25} == result.statuses


def test_stops_at_duration(base_url: str) -> None:
    """With a time limit, the run sends rps x duration requests and ends by itself."""
    result = run_load(base_url, rps=20, duration=1.0, concurrency=2, mix="/ok")
    assert 20 == result.requests
    assert result.elapsed < 5


def test_stop_event_ends_the_run_early(base_url: str) -> None:
    """Setting the stop event ends a long run; fewer requests than planned are sent."""
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    began = time.monotonic()
    result = run_load(base_url, rps=10, duration=60, concurrency=2, mix="/ok", stop=stop)
    assert time.monotonic() - began < 10
    assert result.requests < 600


def test_mix_spreads_requests_by_weight(base_url: str) -> None:
    """Each mix entry gets its weight's share; POST entries are sent as POST."""
    result = run_load(
        base_url, rps=200, duration=5, concurrency=4, mix="GET /ok=3,POST /post=1", max_requests=40
    )
    assert {"GET /ok": 30, "POST /post": 10} == dict(result.by_target)
    assert {200: 40} == result.statuses


def test_5xx_and_transport_failures_are_errors(base_url: str) -> None:
    """5xx responses count as errors, as do connection failures (by exception class)."""
    served = run_load(base_url, rps=200, duration=5, mix="/fail", max_requests=5)
    refused = run_load("http://127.0.0.1:9", rps=200, duration=5, mix="/ok", max_requests=3)
    assert (5, {503: 5}) == (served.errors, served.statuses)
    assert (3, {"ConnectionError": 3}) == (refused.errors, refused.failures)


def test_percentiles_come_from_observed_latencies(base_url: str) -> None:
    """p50 <= p95 <= p99, all set once responses arrived."""
    result = run_load(base_url, rps=200, duration=5, mix="/ok", max_requests=20)
    assert result.p50 is not None
    assert result.p95 is not None
    assert result.p99 is not None
    assert result.p50 <= result.p95 <= result.p99


def test_remote_host_is_refused_by_default() -> None:
    """A non-loopback target raises ConfigError naming the host and --allow-remote."""
    with pytest.raises(ConfigError, match=r"'example\.com'.*--allow-remote"):
        run_load("http://example.com", rps=1, duration=1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rps": 0}, "--rps"),
        ({"duration": -1}, "--duration"),
        ({"concurrency": 0}, "--concurrency"),
    ],
)
def test_invalid_bounds_are_config_errors(kwargs: dict[str, float], field: str) -> None:
    """Non-positive rate, duration or concurrency raise ConfigError naming the option."""
    with pytest.raises(ConfigError, match=field):
        run_load("http://127.0.0.1:9", **kwargs)  # type: ignore[arg-type]


def test_parse_mix_defaults_method_and_weight() -> None:
    """'/a' is GET with weight 1; method and weight are taken when given."""
    expected = (Target("GET", "/a", 1), Target("POST", "/b?x=1", 3))
    assert expected == parse_mix("/a, post /b?x=1=3")


@pytest.mark.parametrize("text", ["", "a=1", "/a=0", "/a=x", "GET /a b=1"])
def test_parse_mix_rejects_bad_entries(text: str) -> None:
    """Entries without a leading slash, with bad weights or extra words are refused."""
    with pytest.raises(ConfigError, match="--mix"):
        parse_mix(text)


def test_schedule_interleaves_by_weight() -> None:
    """Smooth weighted round-robin: weight 2:1 gives a, b, a - not a run of a's."""
    a, b = Target("GET", "/a", 2), Target("GET", "/b", 1)
    assert (a, b, a) == schedule([a, b])


def test_percentile_nearest_rank() -> None:
    """Nearest-rank percentile: p50 of 1..10 is 5, p99 is 10; empty gives None."""
    values = [float(v) for v in range(10, 0, -1)]
    assert (5.0, 10.0, None) == (
        percentile(values, 0.5),
        percentile(values, 0.99),
        percentile([], 0.5),
    )
