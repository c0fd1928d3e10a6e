"""Queue time from X-Request-Start: the header forms proxies send, clock skew, garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from limone_obs import conventions as c
from limone_obs.exporter import _recorder, fast_path
from limone_obs.exporter.queue_time import QueueTime, parse_start
from tests.exporter.helpers import make_app, value

N = c.MetricNames()
NOW = 1700000000.0


@pytest.fixture(params=["fast", "public"])
def updaters(request: pytest.FixtureRequest) -> fast_path.Updaters:
    """The exporter's fast updaters and prometheus-client's public methods."""
    return fast_path.FAST if request.param == "fast" else fast_path.PUBLIC


def queue_seconds(header: str, now: float, updaters: fast_path.Updaters) -> float | str:
    """What ``QueueTime.observe`` makes of ``header``: the wait it observed, or the reason
    it counted; fails unless exactly one of the two happened."""
    registry = CollectorRegistry()
    QueueTime(N, registry, updaters).observe(header, now)
    count = registry.get_sample_value(N.request_queue_count)
    reasons = [
        reason
        for reason in c.QUEUE_IGNORED_REASONS
        if registry.get_sample_value(N.request_queue_ignored_total, {c.LABEL_REASON: reason})
    ]
    if count:
        assert (1.0, []) == (count, reasons)
        waited = registry.get_sample_value(N.request_queue + "_sum")
        assert waited is not None
        return waited
    assert 1 == len(reasons), reasons
    return reasons[0]


@pytest.mark.parametrize(
    ("header", "start"),
    [
        ("t=1699999999.75", 1699999999.75),  # nginx: t=${msec}, seconds with milliseconds
        ("1699999999750", 1699999999.75),  # Heroku: milliseconds, no prefix
        ("t=1699999999750", 1699999999.75),  # HAProxy %Ts%ms
        ("t=1699999999750000", 1699999999.75),  # Apache %t, HAProxy date(0,us): microseconds
        ("t=1699999999750000000", 1699999999.75),  # nanoseconds
        (" t=1699999999.75 ", 1699999999.75),
    ],
)
def test_header_forms_name_the_same_instant(header: str, start: float) -> None:
    """Seconds, milliseconds, micro- and nanoseconds, with or without ``t=``."""
    parsed = parse_start(header)
    assert parsed is not None
    assert start == pytest.approx(parsed, abs=1e-6)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "t=",
        "abc",
        "t=nan",
        "t=inf",
        "t=-5",
        "0",
        "t=1e30",
        "1" * 41,
        "t=0x10",
        "t=1_796_670_000",
    ],
)
def test_garbage_is_malformed(header: str, updaters: fast_path.Updaters) -> None:
    """Unreadable, non-finite, non-positive, absurd or overlong values are malformed (digits
    grouped with "_", which Python reads as a number and no proxy sends, too)."""
    assert c.QUEUE_IGNORED_MALFORMED == queue_seconds(header, NOW, updaters)


def test_start_after_now_is_clock_skew_and_counts_as_zero(updaters: fast_path.Updaters) -> None:
    """A proxy clock ahead of the worker's gives a negative wait: observed as 0, up to
    QUEUE_MAX_SECONDS ahead; further ahead (an hour, a stamp a year on in microseconds)
    it is counted as clock_ahead, not observed (hours of skew read as no queueing)."""
    assert 0.0 == queue_seconds(f"t={NOW + 2}", NOW, updaters)
    assert 0.0 == queue_seconds(f"t={NOW + 60}", NOW, updaters)
    assert c.QUEUE_IGNORED_AHEAD == queue_seconds(f"t={NOW + 61}", NOW, updaters)
    assert c.QUEUE_IGNORED_AHEAD == queue_seconds(f"t={NOW + 3600}", NOW, updaters)
    year_on = int((NOW + 365 * 86400) * 1e6)
    assert c.QUEUE_IGNORED_AHEAD == queue_seconds(str(year_on), NOW, updaters)


def test_wait_beyond_the_limit_is_ignored(updaters: fast_path.Updaters) -> None:
    """More than QUEUE_MAX_SECONDS is not a believable wait: too_long, not observed."""
    assert c.QUEUE_IGNORED_TOO_LONG == queue_seconds(f"t={NOW - 61}", NOW, updaters)
    assert 60.0 == queue_seconds(f"t={NOW - 60}", NOW, updaters)


@given(st.text(max_size=60))
def test_any_header_gives_a_wait_within_bounds_or_a_reason(header: str) -> None:
    """No input raises; a wait is within 0..QUEUE_MAX_SECONDS, else a known reason."""
    got = queue_seconds(header, NOW, fast_path.FAST)
    if isinstance(got, str):
        assert got in c.QUEUE_IGNORED_REASONS
    else:
        assert 0.0 <= got <= c.QUEUE_MAX_SECONDS


def test_requests_observe_their_queue_time_or_count_the_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through an app: one observation per readable header, ignored ones counted by reason."""
    monkeypatch.setattr(_recorder, "time", lambda: NOW)
    app, metrics = make_app()
    client = app.test_client()
    for header in (f"t={NOW - 0.25}", f"{int((NOW - 0.5) * 1000)}", f"t={NOW + 3}"):
        client.get("/health", headers={c.QUEUE_START_HEADER: header}, buffered=True)
    client.get("/health", headers={c.QUEUE_START_HEADER: f"t={NOW - 300}"}, buffered=True)
    client.get("/health", headers={c.QUEUE_START_HEADER: "soon"}, buffered=True)
    client.get("/health", buffered=True)  # no header: nothing at all
    assert 3 == value(metrics, N.request_queue_count, {})
    assert 0.75 == value(metrics, N.request_queue + "_sum", {})
    too_long = {c.LABEL_REASON: c.QUEUE_IGNORED_TOO_LONG}
    malformed = {c.LABEL_REASON: c.QUEUE_IGNORED_MALFORMED}
    assert 1 == value(metrics, N.request_queue_ignored_total, too_long)
    assert 1 == value(metrics, N.request_queue_ignored_total, malformed)
