"""Ratio and rate queries show 0, not "No data", when their numerator has no series.

A counter series exists only once incremented: on a healthy service there is no 5xx
series, no failed dependency call, maybe no cache hit and no exception. Each query is
evaluated by ``promtool test rules`` (Prometheus' own engine) over series written in the
test, and its exact result is compared: 0 for the groups without the event, the real
ratio for the others, and no extra label-less series next to the groups.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from limone_obs import conventions as c
from limone_obs.dashboards import promql
from limone_obs.dashboards.dependencies import good_ratio
from limone_obs.dashboards.queries import Queries
from limone_obs.dashboards.slo_inputs import load_service
from limone_obs.dashboards.slos import good_bad
from tests.support import ROOT, promtool_test

pytestmark = pytest.mark.integration

Q = Queries(c.MetricNames(c.DEFAULT_NAMESPACE))
N = Q.names
#: Variables as Grafana would expand them; samples are one minute apart, so a 2m window
#: holds three of them and ``rate()`` needs no extrapolation (exact values).
VALUES = {c.VAR_JOB: "limoneide", c.VAR_INSTANCE: ".*", "__rate_interval": "2m"}
EVAL_TIME = "5m"
#: 60 per minute = 1 per second; 180 per minute = 3 per second.
ONE_PER_SECOND, THREE_PER_SECOND = "0+60x10", "0+180x10"


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    all_labels = {c.LABEL_JOB: "limoneide", c.LABEL_INSTANCE: "a:1", **labels}
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(all_labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def _request(endpoint: str, status: str, values: str = ONE_PER_SECOND) -> dict[str, str]:
    labels = {c.LABEL_ENDPOINT: endpoint, c.LABEL_METHOD: "GET", c.LABEL_STATUS: status}
    return _series(N.requests_total, labels, values)


def _call(dependency: str, operation: str, outcome: str, values: str) -> dict[str, str]:
    labels = {c.LABEL_DEPENDENCY: dependency, c.LABEL_OPERATION: operation}
    return _series(N.dependency_duration_count, {**labels, c.LABEL_OUTCOME: outcome}, values)


def _lookup(cache: str, result: str, values: str) -> dict[str, str]:
    return _series(N.cache_requests_total, {c.LABEL_CACHE: cache, c.LABEL_RESULT: result}, values)


def _evaluate(
    tmp_path: Path, series: list[dict[str, str]], expr: str, expected: dict[str, float]
) -> subprocess.CompletedProcess[str]:
    """Run ``promtool test rules`` asserting ``expr`` yields exactly ``expected``."""
    samples = [{"labels": labels, "value": value} for labels, value in expected.items()]
    test: dict[str, Any] = {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {"expr": promql.expand(expr, VALUES), "eval_time": EVAL_TIME, "exp_samples": samples}
        ],
    }
    path = tmp_path / "zero_test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [], "tests": [test]}))
    return promtool_test(path, tmp_path)


def _assert_holds(result: subprocess.CompletedProcess[str]) -> None:
    assert (0, "") == (result.returncode, result.stderr.strip()), result.stdout


def test_error_ratio_is_zero_when_every_answer_is_a_200(tmp_path: Path) -> None:
    """The overall 5xx ratio of a service answering only 200s is 0."""
    series = [_request("/x", "200")]
    _assert_holds(_evaluate(tmp_path, series, Q.error_ratio(), {"{}": 0}))


def test_error_ratio_by_endpoint_has_a_zero_row_for_a_healthy_endpoint(tmp_path: Path) -> None:
    """Grouped by endpoint: 0 for the endpoint without 5xx, the real share for the other."""
    series = [
        _request("/x", "200"),
        _request("/y", "200", THREE_PER_SECOND),
        _request("/y", "500"),
    ]
    expected = {'{endpoint="/x"}': 0, '{endpoint="/y"}': 0.25}
    _assert_holds(_evaluate(tmp_path, series, Q.error_ratio(by=c.LABEL_ENDPOINT), expected))


def test_error_ratio_of_one_endpoint_is_zero_without_5xx(tmp_path: Path) -> None:
    """The drill-down's 5xx ratio (extra endpoint matcher) is 0 for a healthy endpoint."""
    series = [_request("/x", "200"), _request("/y", "500")]
    expr = Q.error_ratio(f'{c.LABEL_ENDPOINT}="/x"')
    _assert_holds(_evaluate(tmp_path, series, expr, {"{}": 0}))


def test_dependency_error_ratio_is_zero_per_dependency_without_failures(tmp_path: Path) -> None:
    """Each dependency without a failed call shows 0; a failing one shows its share."""
    series = [
        _call(c.DEPENDENCY_DB, "select", c.OUTCOME_OK, ONE_PER_SECOND),
        _call(c.DEPENDENCY_AI, "complete", c.OUTCOME_OK, THREE_PER_SECOND),
        _call(c.DEPENDENCY_AI, "complete", c.OUTCOME_ERROR, ONE_PER_SECOND),
    ]
    expected = {
        f'{{dependency="{c.DEPENDENCY_DB}"}}': 0,
        f'{{dependency="{c.DEPENDENCY_AI}"}}': 0.25,
    }
    _assert_holds(_evaluate(tmp_path, series, Q.dependency_error_ratio(), expected))


def test_dependency_error_ratio_by_operation_is_zero_without_failures(tmp_path: Path) -> None:
    """A dependency row's error ratio by operation is 0 for an operation that never failed."""
    series = [_call(c.DEPENDENCY_DB, "select", c.OUTCOME_OK, ONE_PER_SECOND)]
    dep = f'{c.LABEL_DEPENDENCY}="{c.DEPENDENCY_DB}"'
    expr = Q.dependency_error_ratio(dep, by=c.LABEL_OPERATION)
    _assert_holds(_evaluate(tmp_path, series, expr, {'{operation="select"}': 0}))


def test_cache_hit_ratio_is_zero_for_a_cache_that_only_missed(tmp_path: Path) -> None:
    """A cold cache (misses only) shows a 0 hit ratio next to a warm one's real ratio."""
    series = [
        _lookup("cold", c.CACHE_MISS, ONE_PER_SECOND),
        _lookup("warm", c.CACHE_HIT, ONE_PER_SECOND),
        _lookup("warm", c.CACHE_MISS, THREE_PER_SECOND),
    ]
    expected = {'{cache="cold"}': 0, '{cache="warm"}': 0.25}
    _assert_holds(_evaluate(tmp_path, series, Q.cache_hit_ratio(), expected))


def test_exceptions_show_zero_as_class_none_without_any_exception(tmp_path: Path) -> None:
    """Requests answered without an exception: one 0 series of class ``none``."""
    series = [_request("/x", "200")]
    _assert_holds(_evaluate(tmp_path, series, Q.exceptions(), {'{exception="none"}': 0}))


def test_exceptions_have_no_none_series_once_one_was_raised(tmp_path: Path) -> None:
    """With a raised exception only the real classes are listed (no extra ``none``)."""
    raised = _series(N.request_exceptions_total, {c.LABEL_EXCEPTION: "KeyError"}, ONE_PER_SECOND)
    series = [_request("/x", "500"), raised]
    _assert_holds(_evaluate(tmp_path, series, Q.exceptions(), {'{exception="KeyError"}': 1}))


def test_app_time_is_the_whole_request_without_dependency_calls(tmp_path: Path) -> None:
    """Seconds per request outside dependencies = mean request time when none was called."""
    series = [
        _series(N.request_duration_sum, {}, "0+30x10"),
        _series(N.request_duration_count, {}, ONE_PER_SECOND),
    ]
    _assert_holds(_evaluate(tmp_path, series, Q.app_seconds_per_request(), {"{}": 0.5}))


def test_the_check_fails_on_a_wrong_expectation(tmp_path: Path) -> None:
    """promtool reports a mismatch (so the tests above can fail)."""
    series = [_request("/x", "200")]
    result = _evaluate(tmp_path, series, Q.error_ratio(), {"{}": 0.5})
    assert 1 == result.returncode


def _ai_calls_failing() -> list[dict[str, str]]:
    """Every AI call failed (fast): only ``outcome="error"`` series, none of ``ok``."""
    labels = {c.LABEL_DEPENDENCY: c.DEPENDENCY_AI, c.LABEL_OPERATION: "complete",
              c.LABEL_OUTCOME: c.OUTCOME_ERROR}  # fmt: skip
    return [
        _series(N.dependency_duration_bucket, {**labels, c.LABEL_LE: le}, ONE_PER_SECOND)
        for le in ("2.5", "+Inf")
    ] + [_series(N.dependency_duration_count, labels, ONE_PER_SECOND)]


def test_an_ai_slo_whose_every_call_failed_reads_0_good_not_no_data(tmp_path: Path) -> None:
    """ai-latency counts only ``outcome="ok"`` calls as good: when every call failed since
    a restart no such series exists, and its good share, good and bad events read 0, 0
    and the calls' rate (they read "No data", as the SLI rules did: nothing fired)."""
    ai = next(s for s in load_service(ROOT).slos if s.name == "ai-latency")
    good, bad = good_bad(ai)
    for expr, value in ((good_ratio(ai), 0), (good, 0), (bad, 1)):
        _assert_holds(_evaluate(tmp_path, _ai_calls_failing(), expr, {"{}": value}))
