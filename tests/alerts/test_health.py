"""Kit-health and saturation tickets: names from conventions, thresholds from the spec,
promtool-tested before and after their ``for`` on synthetic series."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from limone_obs import conventions as c
from limone_obs.alerts import alerting, build, health, unittests
from limone_obs.alerts.spec import load_spec, parse_spec
from limone_obs.errors import CollectedSpecError, SpecError
from tests.alerts.helpers import (
    SPEC_FILE,
    edited,
    evaluate,
    promql_blocks,
    runbook_section,
    write_tree,
)
from tests.support import promtool_test

SPEC = load_spec(SPEC_FILE)
NAMES = [
    c.ALERT_EXPORTER_PROBLEM,
    c.ALERT_LOG_LINES_DROPPED,
    c.ALERT_WORKERS_SATURATED,
    c.ALERT_CALLS_PER_REQUEST_HIGH,
    c.ALERT_TRAFFIC_STOPPED,
]


def _rules(text: str | None = None) -> dict[str, dict[str, object]]:
    spec = SPEC if text is None else parse_spec(text)
    return {str(r["alert"]): r for r in health.alerts(spec)}


def test_five_tickets_in_their_own_group_routed_with_the_service() -> None:
    """The kit-health group holds the five tickets, each with slo_service and no slo."""
    (group,) = [g for g in alerting.alert_groups(SPEC) if g["name"] == health.GROUP]
    labels = [(r["alert"], r["labels"]) for r in group["rules"]]
    assert [(n, "ticket", "limoneide", False) for n in NAMES] == [
        (n, lab[c.LABEL_SEVERITY], lab[c.LABEL_SLO_SERVICE], c.LABEL_SLO in lab)
        for n, lab in labels
    ]


def test_the_series_names_come_from_conventions() -> None:
    """Each expression reads the agreed series in the spec's namespace."""
    exprs = [str(r["expr"]) for r in _rules().values()]
    suffixes = [
        c.SUFFIX_EXPORTER_PROBLEMS,
        c.SUFFIX_LOG_LINES_DROPPED_TOTAL,
        c.SUFFIX_WORKER_THREADS,
        c.SUFFIX_DEPENDENCY_CALLS_PER_REQUEST,
        "requests_total",
    ]
    assert [True] * 5 == [f"limoneide_{s}" in e for s, e in zip(suffixes, exprs, strict=True)]


def test_thresholds_are_configurable_in_the_spec() -> None:
    """health.calls_per_request.above and .for reach the rule."""
    text = edited(
        "calls_per_request: {dependency: db, above: 20, for: 15m}",
        "calls_per_request: {dependency: db, above: 50, for: 30m}",
    )
    rule = _rules(text)[c.ALERT_CALLS_PER_REQUEST_HIGH]
    assert (True, "30m") == (str(rule["expr"]).endswith("> 50"), rule["for"])


@pytest.mark.parametrize(("above", "near"), [("8", "5 or 10"), ("0.5", "1"), ("60", "50")])
def test_a_calls_limit_between_bucket_boundaries_is_refused(above: str, near: str) -> None:
    """Every request making 6 calls reads a p95 of 9.75 (interpolated in (5, 10]): a limit
    of 8 would fire on it (trial). Only a boundary the p95 can pass is taken: above 50,
    the nearest is 50 (100, the last, cannot be passed)."""
    text = edited("{dependency: db, above: 20,", f"{{dependency: db, above: {above},")
    with pytest.raises(CollectedSpecError) as raised:
        parse_spec(text)
    message = str(raised.value)
    assert message.startswith(
        f"alerts/slo.yaml: health.calls_per_request.above: {above} is not a bucket boundary "
        "of the calls-per-request histogram (1, 2, 3, 4, 5, 10, 20, 50)"
    ), message
    assert message.endswith(f"use {near}"), message


@pytest.mark.parametrize("above", ["100", "1000"])
def test_a_calls_limit_the_p95_can_never_pass_is_refused(above: str) -> None:
    """The p95 of requests over 100 calls reads 100 (the last boundary): a limit of 100 or
    more could never fire."""
    text = edited("{dependency: db, above: 20,", f"{{dependency: db, above: {above},")
    with pytest.raises(CollectedSpecError) as raised:
        parse_spec(text)
    assert str(raised.value) == (
        f"alerts/slo.yaml: health.calls_per_request.above: {above}: the p95 of the "
        "calls-per-request histogram never reads above its last boundary, 100 (more calls "
        "fall in +Inf), so the alert could never fire; use one of 1, 2, 3, 4, 5, 10, 20, 50"
    )


def test_health_off_removes_the_tickets() -> None:
    """health: "off" generates no kit-health group and no test file."""
    text = edited("health:\n", 'health: "off"\n')
    spec = parse_spec(_without_health_block(text))
    assert ([], []) == (health.groups(spec), health.scenarios(spec))


def _without_health_block(text: str) -> str:
    start = text.index('health: "off"\n') + len('health: "off"\n')
    end = text.index("\nslos:")
    return text[:start] + text[end:]


def test_an_unknown_health_key_is_located() -> None:
    """A typo in health: names the block and the allowed keys."""
    with pytest.raises(SpecError, match="health"):
        parse_spec(
            edited("  workers_saturated: {above: 0.9, for: 5m}", "  workers_saturaded: {for: 5m}")
        )


def test_every_ticket_is_checked_before_and_after_its_for() -> None:
    """The generated kit-health tests expect each ticket firing in one scenario."""
    path = SPEC_FILE.parent / "tests" / "generated" / f"{health.GROUP}.yml"
    doc = yaml.safe_load(path.read_text())
    fired = {
        check["alertname"]
        for test in doc["tests"]
        for check in test["alert_rule_test"]
        if check["exp_alerts"]
    }
    assert set(NAMES) == fired


def test_workers_saturated_reads_the_busy_share_not_idle_slots() -> None:
    """A scrape is served by a worker too, so a saturated pool reads one idle slot at
    every scrape: the rule reads request seconds per second over the slots instead, and
    its limit is the spec's health.workers_saturated.above."""
    rule = _rules(
        edited(
            "workers_saturated: {above: 0.9, for: 5m}", "workers_saturated: {above: 0.8, for: 10m}"
        )
    )[c.ALERT_WORKERS_SATURATED]
    expr = str(rule["expr"])
    assert (
        "limoneide_request_duration_seconds_sum" in expr,
        "limoneide_worker_threads" in expr,
        'state="idle"' in expr,
        expr.endswith("> 0.8"),
        rule["for"],
    ) == (True, True, False, True, "10m")


@pytest.mark.parametrize("above", ["0", "1.5", "-0.1"])
def test_a_busy_share_outside_0_to_1_is_located(above: str) -> None:
    """health.workers_saturated.above is a share of the time: (0, 1]."""
    with pytest.raises(SpecError, match=r"workers_saturated.above"):
        parse_spec(
            edited(
                "workers_saturated: {above: 0.9, for: 5m}", f"workers_saturated: {{above: {above}}}"
            )
        )


@pytest.mark.integration
def test_the_workers_test_fails_when_the_rule_fires_on_a_half_busy_pool(tmp_path: Path) -> None:
    """The generated tests can fail: a limit far below the busy share fires on a pool
    busy half the time."""
    write_tree(tmp_path, build.generate(SPEC))
    path = tmp_path / build.ALERTING_RULES
    text = path.read_text()
    broken = text.replace(
        'limoneide_worker_threads{job="limoneide"}) > 0)\n      > 0.9',
        'limoneide_worker_threads{job="limoneide"}) > 0)\n      > 0.4',
    )
    assert broken != text
    path.write_text(broken)
    test = tmp_path / build.GENERATED_TESTS_DIR / f"{health.GROUP}.yml"
    result = promtool_test(test, tmp_path)
    output = result.stdout + result.stderr
    assert (1, True) == (result.returncode, c.ALERT_WORKERS_SATURATED in output), output


def test_traffic_stopped_is_configurable_and_can_be_switched_off() -> None:
    """health.traffic_stopped's window, for and severity reach the rule; "off" (quoted or
    YAML's bare off) removes it alone, its tests and its runbook section with it."""
    text = edited(
        "traffic_stopped: {window: 15m, for: 5m, severity: ticket}",
        "traffic_stopped: {window: 30m, for: 10m, severity: page}",
    )
    rule = _rules(text)[c.ALERT_TRAFFIC_STOPPED]
    labels = rule["labels"]
    assert isinstance(labels, dict)
    assert ("[30m]" in str(rule["expr"]), rule["for"], labels[c.LABEL_SEVERITY]) == (
        True, "10m", "page",
    )  # fmt: skip
    for off in ('"off"', "off"):
        spec = parse_spec(text.replace("{window: 30m, for: 10m, severity: page}", off))
        tested = {t["name"] for t in health.scenarios(spec)}
        assert (
            [r["alert"] for r in health.alerts(spec)],
            any("TrafficStopped" in name for name in tested),
            c.ALERT_TRAFFIC_STOPPED in health.runbook(spec),
        ) == (NAMES[:4], False, False)


def test_a_bad_traffic_stopped_severity_is_located() -> None:
    """A severity other than page or ticket names the block."""
    text = edited(
        "traffic_stopped: {window: 15m, for: 5m, severity: ticket}",
        "traffic_stopped: {severity: urgent}",
    )
    with pytest.raises(SpecError, match=r"traffic_stopped.*severity|severity.*urgent"):
        parse_spec(text)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("before", "after", "failing"),
    [
        # Without the fallback, a service that never served a request stays silent.
        (" or on () vector(0))", ")", "never served a request"),
        # Without the up guard, a target down also fires (the up SLO pages for it).
        ('sum(up{job="limoneide"}) > 0', 'sum(up{job="limoneide"}) >= 0', "target down"),
    ],
)
def test_the_traffic_tests_fail_on_a_broken_rule(
    tmp_path: Path, before: str, after: str, failing: str
) -> None:
    """The generated TrafficStopped tests can fail: each part of the rule is needed."""
    write_tree(tmp_path, build.generate(SPEC))
    path = tmp_path / build.ALERTING_RULES
    text = path.read_text()
    broken = text.replace(before, after)
    assert broken != text
    path.write_text(broken)
    test = tmp_path / build.GENERATED_TESTS_DIR / f"{health.GROUP}.yml"
    result = promtool_test(test, tmp_path)
    output = result.stdout + result.stderr
    assert (1, True) == (result.returncode, failing in output), output


def _calls_section() -> str:
    return runbook_section(health.runbook(SPEC), c.ALERT_CALLS_PER_REQUEST_HIGH)


def test_the_calls_runbook_gives_the_exact_mean_first(tmp_path: Path) -> None:
    """The N+1 runbook's first query is the mean calls per request by endpoint: the calls
    counted over every request of the endpoint, exact (a quantile of the buckets is
    interpolated), also where a worker did not observe the requests before its first
    call (Prometheus' engine: 12 calls a second over 3 requests, 1 of them observed)."""
    mean = promql_blocks(_calls_section())[0]
    job = {"job": "limoneide", "instance": "app:8000", "endpoint": "/items"}
    calls = {**job, "dependency": "db"}

    def series(name: str, labels: dict[str, str], per_minute: int) -> dict[str, str]:
        inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
        return {"series": f"{name}{{{inner}}}", "values": f"0+{per_minute}x10"}

    test = {
        "interval": "1m",
        "input_series": [
            series(c.MetricNames().dependency_calls_per_request_sum, calls, 12 * 60),
            series(c.MetricNames().dependency_calls_per_request_count, calls, 60),
            series(c.MetricNames().request_duration_count, {**job, "method": "GET"}, 3 * 60),
        ],
        "promql_expr_test": [
            {"expr": mean, "eval_time": "8m", "exp_samples": [
                {"labels": '{endpoint="/items"}', "value": 4}
            ]},
        ],
    }  # fmt: skip
    path = tmp_path / "mean_test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [], "tests": [test]}))
    result = promtool_test(path, tmp_path)
    assert 0 == result.returncode, result.stdout + result.stderr


def test_the_calls_runbook_labels_its_p95_an_estimate() -> None:
    """The p95 the alert reads is kept, introduced as an estimate from the buckets."""
    section = _calls_section()
    (p95,) = [q for q in promql_blocks(section) if q.startswith("histogram_quantile(")]
    # The prose between the previous code block and this one introduces it.
    before = section[: section.index(f"```promql\n{p95}")].rsplit("```", 1)[-1]
    assert (True, True) == ("estimate" in before, "buckets" in before)


def _calls_of(per_request: int) -> list[dict[str, str]]:
    """A calls-per-request histogram, _sum included: 60 requests a minute, each making
    ``per_request`` db calls."""
    labels = {
        **unittests.base_labels(SPEC),
        c.LABEL_ENDPOINT: health.ENDPOINT,
        c.LABEL_DEPENDENCY: SPEC.health.calls_dependency,
    }
    metric = SPEC.names.dependency_calls_per_request
    les = [*(repr(b) for b in c.CALLS_PER_REQUEST_BUCKETS), "+Inf"]
    uppers = [*c.CALLS_PER_REQUEST_BUCKETS, float("inf")]
    found = [
        unittests.counter(
            {**labels, c.LABEL_LE: le}, f"{metric}_bucket", 60 * (per_request <= b), 10
        )
        for le, b in zip(les, uppers, strict=True)
    ]
    found.append(unittests.counter(labels, f"{metric}_count", 60, 10))
    found.append(unittests.counter(labels, f"{metric}_sum", 60 * per_request, 10))
    return found


@pytest.mark.integration
def test_the_calls_runbooks_mean_is_the_true_count(tmp_path: Path) -> None:
    """Evaluated by promtool (Prometheus' engine) on requests of 21 db calls each, the
    runbook's mean reads 21, where its p95 estimate reads 48.5 (interpolated within the
    20-50 bucket)."""
    mean, p95 = promql_blocks(_calls_section())
    endpoint = f'{{endpoint="{health.ENDPOINT}"}}'
    checks = [
        {"expr": q, "eval_time": "10m", "exp_samples": [{"labels": endpoint, "value": v}]}
        for q, v in ((mean, 21), (p95, 48.5))
    ]
    result = evaluate(tmp_path, _calls_of(21), checks)
    assert 0 == result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(("calls", "p95"), [(100, 97.5), (150, 100.0)])
def test_the_highest_accepted_calls_limit_can_fire(tmp_path: Path, calls: int, p95: float) -> None:
    """``above: 50``, the highest limit taken: every request making 100 calls reads a p95
    of 97.5 (in (50, 100]), 150 calls read 100 (the +Inf bucket reads its lower bound),
    both above 50 (a trial read 50 from a histogram without the 100 bucket)."""
    from tests.dashboards.test_zero_fallback import _assert_holds, _evaluate, _series  # noqa: PLC0415

    names = c.MetricNames()
    calls_of = {c.LABEL_ENDPOINT: "/items", c.LABEL_DEPENDENCY: "db"}
    series = [
        _series(names.request_duration_count, {c.LABEL_ENDPOINT: "/items"}, "0+60x10"),
        _series(names.dependency_calls_per_request_count, calls_of, "0+60x10"),
    ]
    for bound in (*c.CALLS_PER_REQUEST_BUCKETS, math.inf):
        le = "+Inf" if bound == math.inf else f"{bound:.1f}"
        per_minute = 60 if bound >= calls else 0
        labels = {**calls_of, c.LABEL_LE: le}
        series.append(
            _series(names.dependency_calls_per_request_bucket, labels, f"0+{per_minute}x10")
        )
    _assert_holds(_evaluate(tmp_path, series, health.calls_p95(SPEC), {'{endpoint="/items"}': p95}))
