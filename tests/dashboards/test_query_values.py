"""The new panels' queries give the right numbers on Prometheus' own engine (promtool).

The per-request dependency series and the workers series are written here by hand under
their names in ``conventions``, so the queries are checked on exact values; the scenario
tests (tests/dashboards/test_prometheus.py) read them from a real exporter.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from limone_obs import conventions as c
from limone_obs.dashboards import common
from limone_obs.dashboards.generate import build_from
from limone_obs.dashboards.overview import saturation
from limone_obs.dashboards.queries import Queries
from tests.dashboards.helpers import grafana_regex_value
from tests.dashboards.test_drill_down import panel
from tests.dashboards.test_zero_fallback import (
    ONE_PER_SECOND,
    THREE_PER_SECOND,
    N,
    _assert_holds,
    _call,
    _evaluate,
    _series,
)
from tests.support import ROOT

pytestmark = pytest.mark.integration

Q = Queries(N)
X = f'{c.LABEL_ENDPOINT}="/x"'


def _spent(endpoint: str, dependency: str, per_minute: float) -> dict[str, str]:
    labels = {c.LABEL_ENDPOINT: endpoint, c.LABEL_DEPENDENCY: dependency}
    return _series(N.request_dependency_seconds_total, labels, f"0+{per_minute:g}x10")


def _busy(endpoint: str, per_minute: float) -> dict[str, str]:
    """The requests' busy time: at least one tracked call working (overlaps once)."""
    labels = {c.LABEL_ENDPOINT: endpoint}
    return _series(N.request_dependency_busy_seconds_total, labels, f"0+{per_minute:g}x10")


def _requests(endpoint: str, seconds_per_minute: float) -> list[dict[str, str]]:
    """One request per second at ``endpoint``, taking ``seconds_per_minute`` / 60 s each."""
    labels = {c.LABEL_ENDPOINT: endpoint, c.LABEL_METHOD: "GET"}
    return [
        _series(N.request_duration_count, labels, ONE_PER_SECOND),
        _series(N.request_duration_sum, labels, f"0+{seconds_per_minute:g}x10"),
    ]


def _breakdown_series() -> list[dict[str, str]]:
    """/x: 0.875 s per request, 0.5 s in the AI API and 0.25 s in the DB; /y elsewhere."""
    return [
        *_requests("/x", 52.5),
        _spent("/x", c.DEPENDENCY_AI, 30),
        _spent("/x", c.DEPENDENCY_DB, 15),
        _busy("/x", 45),
        *_requests("/y", 120),
        _spent("/y", c.DEPENDENCY_AI, 90),
        _busy("/y", 90),
    ]


def test_time_per_request_in_each_dependency_of_one_endpoint(tmp_path: Path) -> None:
    """Seconds of each dependency per request of /x only (not /y's)."""
    expected = {'{dependency="ai_api"}': 0.5, '{dependency="db"}': 0.25}
    expr = Q.endpoint_dependency_seconds(X)
    _assert_holds(_evaluate(tmp_path, _breakdown_series(), expr, expected))


def test_other_is_the_request_time_outside_dependencies(tmp_path: Path) -> None:
    """ "other" = mean duration of /x minus its busy time: 0.875 - 0.75."""
    expr = Q.endpoint_other_seconds(X)
    _assert_holds(_evaluate(tmp_path, _breakdown_series(), expr, {"{}": 0.125}))


def test_other_is_the_whole_request_before_any_dependency_series(tmp_path: Path) -> None:
    """Without the per-request counter (no dependency called yet) "other" is all of it."""
    expr = Q.endpoint_other_seconds(X)
    _assert_holds(_evaluate(tmp_path, _requests("/x", 52.5), expr, {"{}": 0.875}))


def _service_series() -> list[dict[str, str]]:
    """/compare: 0.5 s per request making two overlapping AI calls of 0.375 s (0.75 s
    charged, 0.375 s busy); /slow: 1.2 s, no call; and 0.25 s per second of AI calls of
    no request (a background thread), in the dependency's own duration only."""
    call = {c.LABEL_DEPENDENCY: c.DEPENDENCY_AI, c.LABEL_OPERATION: "complete"}
    every_call = {**call, c.LABEL_OUTCOME: c.OUTCOME_OK}
    return [
        *_requests("/compare", 30),
        _spent("/compare", c.DEPENDENCY_AI, 45),
        _busy("/compare", 22.5),
        *_requests("/slow", 72),
        _series(N.dependency_duration_sum, every_call, f"0+{45 + 15}x10"),
    ]


def test_service_breakdown_charges_requests_with_their_own_calls_only(tmp_path: Path) -> None:
    """Dependencies dashboard, Seconds per request: the AI API's share is the time the
    requests' own calls took (0.75 s per /compare request over 2 requests a second), not
    the background thread's."""
    expr = Q.dependency_seconds_per_request()
    expected = {'{dependency="ai_api"}': 0.375}
    _assert_holds(_evaluate(tmp_path, _service_series(), expr, expected))


def test_service_app_time_keeps_each_endpoints_own_time(tmp_path: Path) -> None:
    """App time while no tracked call works, endpoint by endpoint: /compare's two
    overlapping calls count once (0.5 - 0.375 s is its own), and take nothing off /slow's
    1.2 s: (0.125 + 1.2) / 2 requests a second."""
    expr = Q.app_seconds_per_request()
    _assert_holds(_evaluate(tmp_path, _service_series(), expr, {"{}": 0.6625}))


def test_dependency_time_outside_requests_is_what_no_request_was_charged(
    tmp_path: Path,
) -> None:
    """The AI API's calls of no request: 1 s per second in all, 0.75 of it charged."""
    expr = Q.dependency_seconds_outside_requests()
    _assert_holds(_evaluate(tmp_path, _service_series(), expr, {'{dependency="ai_api"}': 0.25}))


def test_dependency_time_outside_requests_is_all_before_any_request_called(
    tmp_path: Path,
) -> None:
    """Without the per-request counter, every call's time is outside requests."""
    call = {c.LABEL_DEPENDENCY: c.DEPENDENCY_DB, c.LABEL_OPERATION: "q", c.LABEL_OUTCOME: "ok"}
    series = [_series(N.dependency_duration_sum, call, "0+30x10")]
    expr = Q.dependency_seconds_outside_requests()
    _assert_holds(_evaluate(tmp_path, series, expr, {'{dependency="db"}': 0.5}))


def _calls(
    endpoint: str, dependency: str, calls: float, requests: str = ONE_PER_SECOND
) -> list[dict[str, str]]:
    """One request per second calling ``dependency`` ``calls`` times (the histogram), among
    ``requests`` of the endpoint (the request histogram's count; the others were not
    observed: 0 calls)."""
    labels = {c.LABEL_ENDPOINT: endpoint, c.LABEL_DEPENDENCY: dependency}
    bounds = [*(f"{b:g}" for b in c.CALLS_PER_REQUEST_BUCKETS), "+Inf"]
    name = N.dependency_calls_per_request_bucket
    return [
        *(
            _series(
                name,
                {**labels, c.LABEL_LE: le},
                ONE_PER_SECOND if le == "+Inf" or float(le) >= calls else "0+0x10",
            )
            for le in bounds
        ),
        _series(N.dependency_calls_per_request_count, labels, ONE_PER_SECOND),
        _series(N.dependency_calls_per_request_sum, labels, f"0+{60 * calls:g}x10"),
        _series(N.request_duration_count, {c.LABEL_ENDPOINT: endpoint}, requests),
    ]


def _calls_series() -> list[dict[str, str]]:
    """/x calls the DB once per request, /loop 5 times, /three 3 times, /seven 7 times."""
    return [
        *_calls("/x", c.DEPENDENCY_DB, 1),
        *_calls("/loop", c.DEPENDENCY_DB, 5),
        *_calls("/three", c.DEPENDENCY_DB, 3),
        *_calls("/seven", c.DEPENDENCY_DB, 7),
    ]


def _by(endpoint: str) -> str:
    return f'{{dependency="db", endpoint="{endpoint}"}}'


def test_calls_per_request_p95_is_whole_calls(tmp_path: Path) -> None:
    """p95 of calls, rounded up to whole calls: one call per request reads 1 (not 0.95,
    inside the (0, 1] bucket), 5 calls read 5, a fan-out of 3 reads 3 (every count up to
    5 is a bucket bound); 7 calls, off the bounds, read 10 (5 + 0.95 x 5 = 9.75, inside
    (5, 10])."""
    expected = {_by("/x"): 1.0, _by("/loop"): 5.0, _by("/three"): 3.0, _by("/seven"): 10.0}
    _assert_holds(_evaluate(tmp_path, _calls_series(), Q.calls_per_request(0.95), expected))


def test_calls_per_request_p50_of_one_call_is_one(tmp_path: Path) -> None:
    """The median of requests that each make one call is 1 (histogram_quantile: 0.5)."""
    expected = {_by("/x"): 1.0, _by("/loop"): 5.0, _by("/three"): 3.0, _by("/seven"): 8.0}
    _assert_holds(_evaluate(tmp_path, _calls_series(), Q.calls_per_request(0.5), expected))


def test_mean_calls_per_request_is_exact(tmp_path: Path) -> None:
    """The mean reads the calls each request made: 1, 5, 3 and 7."""
    expected = {_by("/x"): 1.0, _by("/loop"): 5.0, _by("/three"): 3.0, _by("/seven"): 7.0}
    _assert_holds(_evaluate(tmp_path, _calls_series(), Q.mean_calls_per_request(), expected))


def _sometimes_series() -> list[dict[str, str]]:
    """/maybe: 1 request in 3 calls the DB 4 times, observed; the other 2 of its 3
    requests a second came before the worker first saw it call (not observed)."""
    return _calls("/maybe", c.DEPENDENCY_DB, 4, requests=THREE_PER_SECOND)


def test_mean_calls_per_request_counts_the_requests_not_observed(tmp_path: Path) -> None:
    """4 calls over 3 requests: 1.33 (the histogram's own count would say 4)."""
    expected = {_by("/maybe"): 4 / 3}
    _assert_holds(_evaluate(tmp_path, _sometimes_series(), Q.mean_calls_per_request(), expected))


def test_calls_per_request_quantiles_count_the_requests_not_observed(tmp_path: Path) -> None:
    """2 of 3 requests made no call: the median is 0, the p95 4 (the histogram's own
    buckets would say 4 for both)."""
    series = _sometimes_series()
    _assert_holds(_evaluate(tmp_path, series, Q.calls_per_request(0.5), {_by("/maybe"): 0.0}))
    _assert_holds(_evaluate(tmp_path, series, Q.calls_per_request(0.95), {_by("/maybe"): 4.0}))


def _workers(busy: str, idle: str) -> list[dict[str, str]]:
    return [
        _series(N.workers, {c.LABEL_STATE: c.WORKER_BUSY}, busy),
        _series(N.workers, {c.LABEL_STATE: c.WORKER_IDLE}, idle),
    ]


def _saturation_exprs() -> tuple[str, str, str]:
    in_flight, busy, capacity = (t.expr for t in saturation(Q).targets)
    return in_flight, busy, capacity


def test_capacity_is_busy_plus_idle_workers(tmp_path: Path) -> None:
    """The dashed capacity line is every worker (3 busy + 5 idle = 8)."""
    _, _, capacity = _saturation_exprs()
    _assert_holds(_evaluate(tmp_path, _workers("3x10", "5x10"), capacity, {"{}": 8}))


def test_without_workers_series_in_flight_is_still_drawn(tmp_path: Path) -> None:
    """Without the workers series the capacity is empty, not 0; in flight is still drawn."""
    in_flight, _, capacity = _saturation_exprs()
    gauge = _series(N.requests_in_progress, {c.LABEL_ENDPOINT: "/x"}, "2x10")
    _assert_holds(_evaluate(tmp_path, [gauge], capacity, {}))
    _assert_holds(_evaluate(tmp_path, [gauge], in_flight, {"{}": 2}))


def _busy_share_expr() -> str:
    """The UX dashboard's "Worker saturation" query, as generated."""
    (target,) = panel(build_from(ROOT)["ux.json"], "Worker saturation")["targets"]
    return str(target["expr"])


@pytest.mark.parametrize(("slots", "expected"), [("4", {"{}": 0.5}), ("0", {})])
def test_worker_saturation_reads_only_published_slots(
    tmp_path: Path, slots: str, expected: dict[str, float]
) -> None:
    """2 request seconds per second on 4 slots: half busy. On workers that published no
    slots (0): no sample, not +Inf (requests / 0)."""
    series = [
        _series(N.request_duration_sum, {c.LABEL_ENDPOINT: "/x"}, "0+120x10"),
        _series(N.worker_threads, {}, f"{slots}x10"),
    ]
    _assert_holds(_evaluate(tmp_path, series, _busy_share_expr(), expected))


def test_baseline_is_the_series_that_long_ago(tmp_path: Path) -> None:
    """With $baseline 120 s the request rate drawn is the one of 2 minutes ago (1/s), not
    the current one (2/s)."""
    series = [_series(N.requests_total, {c.LABEL_STATUS: "200"}, "0+60x4 420+180x6")]
    expr = common.baseline(Q.request_rate()).replace("${baseline}", "120")
    _assert_holds(_evaluate(tmp_path, series, expr, {"{}": 1}))


def _repeated_expr(title: str, dependency: str) -> str:
    """The query of the dependencies dashboard's repeated panel ``title`` in the copy Grafana
    draws for ``dependency`` (its value escaped as Grafana escapes it)."""
    (target,) = panel(build_from(ROOT)["dependencies.json"], title)["targets"]
    expr: str = target["expr"]
    return expr.replace(f"${c.VAR_DEPENDENCY}", grafana_regex_value(dependency))


#: payments.v2's calls a second: 1 charge (ok), 2 refunds (1 ok, 1 failed); and those of
#: paymentsXv2, which the dot would match unescaped: 3 failed charges.
PAYMENTS = [
    _call("payments.v2", "charge", c.OUTCOME_OK, ONE_PER_SECOND),
    _call("payments.v2", "refund", c.OUTCOME_OK, ONE_PER_SECOND),
    _call("payments.v2", "refund", c.OUTCOME_ERROR, ONE_PER_SECOND),
    _call("paymentsXv2", "charge", c.OUTCOME_ERROR, THREE_PER_SECOND),
]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("$dependency: calls", {'{operation="charge"}': 1.0, '{operation="refund"}': 2.0}),
        ("$dependency: error ratio", {'{operation="charge"}': 0.0, '{operation="refund"}': 0.5}),
    ],
)
def test_a_repeated_dependency_row_reads_its_own_dependency_only(
    tmp_path: Path, title: str, expected: dict[str, float]
) -> None:
    """The copy of a repeated panel for a name no one told the kit about (payments.v2, a
    dot in it) reads that dependency's calls by operation, not paymentsXv2's; a failure-
    free operation has an error ratio of 0, not "No data"."""
    expr = _repeated_expr(title, "payments.v2")
    _assert_holds(_evaluate(tmp_path, PAYMENTS, expr, expected))


def _timed_share_expr() -> str:
    """The UX dashboard's "Page views timed" query, as generated."""
    (target,) = panel(build_from(ROOT)["ux.json"], "Page views timed")["targets"]
    return str(target["expr"])


def test_page_views_timed_is_load_beacons_per_page_rendered(tmp_path: Path) -> None:
    """/editor renders 3 pages a second and gets 1 load beacon (its other phases do not
    count): a third timed. /blocked renders 1 a second and no beacon ever came (a content
    blocker): 0 %, not No data. /idle rendered nothing in the window: no sample."""
    load = {c.LABEL_PAGE: "/editor", c.LABEL_PHASE: c.PHASE_LOAD}
    series = [
        _series(N.rum_pages_total, {c.LABEL_PAGE: "/editor"}, THREE_PER_SECOND),
        _series(N.page_load_count, load, ONE_PER_SECOND),
        _series(N.page_load_count, {**load, c.LABEL_PHASE: c.PHASE_TTFB}, THREE_PER_SECOND),
        _series(N.rum_pages_total, {c.LABEL_PAGE: "/blocked"}, ONE_PER_SECOND),
        _series(N.rum_pages_total, {c.LABEL_PAGE: "/idle"}, "5x10"),
    ]
    expected = {'{page="/editor"}': 1 / 3, '{page="/blocked"}': 0.0}
    _assert_holds(_evaluate(tmp_path, series, _timed_share_expr(), expected))
