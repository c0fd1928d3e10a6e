"""The report's "where the time goes" queries on Prometheus' own engine (promtool).

Written series, exact values: an endpoint whose two AI calls overlap (more call time
than request time), one without calls, and AI calls of no request (a background
thread). Each request is charged its own calls; "other" is each endpoint's time outside
them, never below 0, summed: one endpoint's overlap takes nothing off another's time.
The calls of no request are counted apart, for a note.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from limone_obs import conventions as c
from limone_obs.report import queries as q
from limone_obs.report.collect import outside_notes
from tests.dashboards.test_query_values import _service_series, _sometimes_series
from tests.dashboards.test_zero_fallback import N, _assert_holds, _evaluate, _series

pytestmark = pytest.mark.integration

#: The series' job; a 2-minute window (samples one minute apart: no extrapolation).
JOB, WINDOW = "limoneide", 120


def test_dependency_time_per_request_is_the_requests_own_calls(tmp_path: Path) -> None:
    """0.75 s of AI calls per /compare request over 2 requests a second: 0.375 s; the
    background thread's 0.25 s per second is nobody's request time."""
    expr = q.time_per_request(N, JOB, WINDOW)
    expected = {'{dependency="ai_api"}': 0.375}
    _assert_holds(_evaluate(tmp_path, _service_series(), expr, expected))


def test_other_keeps_each_endpoints_time_outside_its_own_calls(tmp_path: Path) -> None:
    """/compare: 0.5 s per request, 0.75 s of overlapping calls -> 0; /slow: 1.2 s, no
    call -> 1.2; over 2 requests a second: 0.6 s (the mean minus every call read 0.35)."""
    expr = q.outside_dependencies(N, JOB, WINDOW)
    _assert_holds(_evaluate(tmp_path, _service_series(), expr, {"{}": 0.6}))


def test_other_is_all_of_the_time_before_any_call(tmp_path: Path) -> None:
    """Without the per-request counter (no call yet), "other" is the mean duration."""
    series = [s for s in _service_series() if "/slow" in s["series"]]
    expr = q.outside_dependencies(N, JOB, WINDOW)
    _assert_holds(_evaluate(tmp_path, series, expr, {"{}": 1.2}))


def test_each_endpoints_time_per_request_is_its_own(tmp_path: Path) -> None:
    """/compare: its two overlapping AI calls, 0.75 s per request of it (not 0.375 over
    both endpoints' requests); /slow made none. The background thread's calls are
    nobody's."""
    expr = q.endpoint_time_per_request(N, JOB, WINDOW)
    expected = {'{dependency="ai_api", endpoint="/compare"}': 0.75}
    _assert_holds(_evaluate(tmp_path, _service_series(), expr, expected))


def test_each_endpoints_other_is_its_time_outside_its_calls(tmp_path: Path) -> None:
    """/compare: 0.5 s a request, 0.75 s of overlapping calls: 0 (never below); /slow:
    all of its 1.2 s; an endpoint with no request in the window: no row."""
    idle = _series(N.request_duration_count, {c.LABEL_ENDPOINT: "/idle"}, "5x10")
    expr = q.endpoint_outside_dependencies(N, JOB, WINDOW)
    expected = {'{endpoint="/compare"}': 0.0, '{endpoint="/slow"}': 1.2}
    _assert_holds(_evaluate(tmp_path, [*_service_series(), idle], expr, expected))


def test_outside_requests_is_the_time_no_request_was_charged(tmp_path: Path) -> None:
    """Of the AI API's 120 s of calls in the window, 90 s were /compare's (0.75 s per
    request, 120 requests): 30 s were of no request."""
    expr = q.outside_requests(N, JOB, WINDOW)
    expected = {'{dependency="ai_api"}': 30.0}
    _assert_holds(_evaluate(tmp_path, _service_series(), expr, expected))


def test_a_note_names_a_dependency_called_mostly_outside_requests() -> None:
    """30 s of 120 s outside any request: a note with both numbers; 3 s (within what
    requests still running at the window's end explain) or 4 % of the time: none."""
    notes = outside_notes({"ai_api": 120.0, "db": 100.0}, {"ai_api": 30.0, "db": 3.0}, "today")
    assert [
        "ai_api: 30 s of its 120 s of calls in today were made outside any request "
        "(background work, thread-pool work submitted without the request's context: "
        "limone_obs.context.submit carries it, requests to excluded paths, or long "
        "requests still running at the window's end); the time per request leaves them out."
    ] == notes
    assert [] == outside_notes({"db": 1000.0}, {"db": 40.0}, "today")


def test_calls_per_request_count_the_requests_not_observed(tmp_path: Path) -> None:
    """/maybe: 4 calls in 1 of its 3 requests a second (the other 2 not observed): 1.33."""
    expr = q.calls_per_request(N, JOB, WINDOW)
    expected = {'{dependency="db", endpoint="/maybe"}': 4 / 3}
    _assert_holds(_evaluate(tmp_path, _sometimes_series(), expr, expected))


def test_began_names_new_and_restarted_series_not_one_after_a_failed_scrape(tmp_path: Path) -> None:
    """Over the last 3 minutes: /new's series began in them; /again's process restarted
    just before their first scrape (the window holds only the new process's samples);
    /a's scrape at their start failed (Prometheus wrote stale markers) and is counted
    whole all the same, as is /inside, restarted between two scrapes of the window
    (increase() counts a reset); /b ran throughout. /new and /again are named."""
    labels = {c.LABEL_METHOD: "GET", c.LABEL_STATUS: "200"}

    def served(endpoint: str, values: str) -> dict[str, str]:
        return _series(N.requests_total, {**labels, c.LABEL_ENDPOINT: endpoint}, values)

    series = [
        served("/a", "0+60x1 stale 180+60x2"),
        served("/b", "0+60x5"),
        served("/new", "_x3 0+60x2"),
        served("/again", "0 60 _ 20 80 140"),
        served("/inside", "0 60 120 180 10 70"),
    ]
    expr = q.began(N, JOB, 3 * 60)
    expected = {'{endpoint="/new", status="200"}': 1.0, '{endpoint="/again", status="200"}': 1.0}
    _assert_holds(_evaluate(tmp_path, series, expr, expected))


def test_a_share_within_a_threshold_is_0_when_no_request_was_good(tmp_path: Path) -> None:
    """A latency SLO whose good requests are the non-5xx ones, and every request a 500:
    no series of good requests exists, and none is within the threshold (it read nothing:
    the roadmap's shares were missing in an outage)."""
    labels = {c.LABEL_ENDPOINT: "/x", c.LABEL_METHOD: "GET", c.LABEL_STATUS: "500"}
    series = [
        _series(N.request_duration_bucket, {**labels, c.LABEL_LE: le}, "0+60x10")
        for le in ("1.0", "+Inf")
    ] + [_series(N.request_duration_count, labels, "0+60x10")]
    good = (f'{c.LABEL_STATUS}!~"5.."',)
    _assert_holds(_evaluate(tmp_path, series, q.within(N, JOB, 1.0, WINDOW, good=good), {"{}": 0}))
