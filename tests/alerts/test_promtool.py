"""promtool and amtool on everything generated (Debian prometheus / alertmanager)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from limone_obs import artifacts
from limone_obs.alerts import alertmanager, build
from limone_obs.alerts.spec import parse_spec
from limone_obs.cli import main
from limone_obs.dashboards.lint import lint as lint_dashboard
from tests.alerts.helpers import edited, write_tree
from tests.support import ROOT, need

pytestmark = pytest.mark.integration


def _run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules() -> None:
    """Both rule files pass `promtool check rules`."""
    result = _run(need("promtool"), "check", "rules", build.RECORDING_RULES, build.ALERTING_RULES)
    assert 0 == result.returncode, result.stdout + result.stderr


def test_promtool_checks_the_kubernetes_groups(tmp_path: Path) -> None:
    """The PrometheusRule's groups, unwrapped, are valid Prometheus rules."""
    rule = yaml.safe_load((ROOT / build.KUBERNETES_DIR / "prometheusrule.yaml").read_text())
    plain = tmp_path / "groups.yml"
    plain.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = _run(need("promtool"), "check", "rules", str(plain))
    assert 0 == result.returncode, result.stdout + result.stderr


def test_promtool_generated_unit_tests_pass() -> None:
    """`promtool test rules` passes every generated test (each alert before/after `for`)."""
    files = sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / build.GENERATED_TESTS_DIR).glob("*.yml")
    )
    result = _run(need("promtool"), "test", "rules", *files)
    slos = yaml.safe_load((ROOT / "alerts" / "slo.yaml").read_text())["slos"]
    # One file per SLO, and one for the kit's health and saturation tickets.
    expected = len(slos) + 1
    assert (0, expected) == (result.returncode, len(files)), result.stdout[-4000:] + result.stderr


def test_promtool_hand_written_unit_tests_pass() -> None:
    """`promtool test rules` passes the hand-written tests in alerts/tests/."""
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "alerts" / "tests").glob("*.yml"))
    result = _run(need("promtool"), "test", "rules", *files)
    assert (0, True) == (result.returncode, len(files) >= 2), result.stdout[-4000:] + result.stderr


def test_generated_tests_hold_for_another_spec(tmp_path: Path) -> None:
    """A 28-day spec with custom objectives, no guard and a 1 s threshold without stages
    also passes."""
    text = edited("period: 30d", "period: 28d")
    # 10 % of 28 days in 3 days would burn slower than the period (refused): 11 %.
    text = edited("budget_percent: 10, for: 3h", "budget_percent: 11, for: 3h", text)
    text = edited("min_rate: 0.05", "min_rate: 0", text)
    text = edited("objective: 99.9", "objective: 99.5", text)
    text = edited("threshold_seconds: 2.5\n    stages: [1.0, 0.6]", "threshold_seconds: 1.0", text)
    write_tree(tmp_path, build.generate(parse_spec(text)))
    tests = sorted(str(p) for p in (tmp_path / build.GENERATED_TESTS_DIR).glob("*.yml"))
    result = _run(need("promtool"), "test", "rules", *tests, cwd=tmp_path)
    assert 0 == result.returncode, result.stdout[-4000:] + result.stderr


SCOPED = """
service: billing-api
job: billing-api
namespace: limoneide
buckets:  # the app's Metrics(buckets=...): 0.3 s is a boundary
  limoneide_request_duration_seconds: [0.05, 0.1, 0.3, 0.5, 1, 2.5, 5]
slos:
  - name: availability
    kind: ratio
    objective: 99.9
    total: limoneide_requests_total{endpoint=~"/invoices.*",method=~"GET|POST"}
    errors: limoneide_requests_total{endpoint=~"/invoices.*",method=~"GET|POST",status=~"5.."}
  - name: invoices-latency
    kind: latency
    objective: 95
    histogram: limoneide_request_duration_seconds{endpoint=~"/invoices/.*"}
    threshold_seconds: 0.3
    stages: [0.1]
    quantile_alert: {for: 15m, severity: ticket}
  - name: payments-latency
    kind: latency
    objective: 99
    histogram: limoneide_dependency_duration_seconds{dependency=~"stripe|adyen"}
    good: limoneide_dependency_duration_seconds{dependency=~"stripe|adyen",outcome="ok"}
    threshold_seconds: 1.0
  - name: errors
    kind: threshold
    objective: 99
    total: limoneide_requests_total{endpoint!~"/health|/metrics"}
    errors: limoneide_requests_total{endpoint!~"/health|/metrics",status=~"5.."}
    window: 5m
    for: 5m
    severity: page
"""


def test_generated_tests_hold_for_slos_scoped_by_regex(tmp_path: Path) -> None:
    """SLOs narrowed with =~ and !~ matchers (an endpoint prefix, methods, dependencies),
    and a 0.3 s threshold on buckets the spec declares: `check` passes, and the generated
    tests feed the rules series those matchers select, on those buckets, and pass."""
    spec = tmp_path / "alerts" / "slo.yaml"
    spec.parent.mkdir()
    spec.write_text(SCOPED)
    checked = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    assert 0 == checked.exit_code, checked.output
    write_tree(tmp_path, build.generate(parse_spec(SCOPED)))
    tests = sorted(str(p) for p in (tmp_path / build.GENERATED_TESTS_DIR).glob("*.yml"))
    series = "".join(Path(t).read_text() for t in tests)
    result = _run(need("promtool"), "test", "rules", *tests, cwd=tmp_path)
    assert 0 == result.returncode, result.stdout[-4000:] + result.stderr
    # The threshold's next boundary is the declared 0.5, not the default buckets' next.
    fed = ['endpoint="/invoices/"', 'dependency="stripe"', 'le="0.5"']
    assert fed == [label for label in fed if label in series]


def test_generated_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    """The generated tests fail when a burn threshold in the rules is wrong (they can fail)."""
    files = build.generate(parse_spec((ROOT / "alerts" / "slo.yaml").read_text()))
    write_tree(tmp_path, files)
    rules = tmp_path / build.ALERTING_RULES
    rules.write_text(rules.read_text().replace("/ 0.001 > 14.4", "/ 0.001 > 50"))
    test = tmp_path / build.GENERATED_TESTS_DIR / "availability.yml"
    result = _run(need("promtool"), "test", "rules", str(test), cwd=tmp_path)
    assert (1, True) == (result.returncode, "FAILED" in result.stdout + result.stderr)


def test_amtool_check_config() -> None:
    """The committed alerts/alertmanager.yml passes `amtool check-config`."""
    result = _run(need("amtool"), "check-config", build.ALERTMANAGER)
    assert 0 == result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("severity", "receiver"), [("page", "limoneide-page"), ("ticket", "limoneide-ticket")]
)
def test_routes_send_each_severity_to_its_receiver(severity: str, receiver: str) -> None:
    """`amtool config routes test` routes the service's pages and tickets to its own
    receivers."""
    result = _run(
        need("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={build.ALERTMANAGER}",
        f"severity={severity}",
        "slo=availability",
        "slo_service=limoneide",
    )
    assert (0, receiver) == (result.returncode, result.stdout.strip())


def test_rendered_config_with_another_webhook_passes_amtool(tmp_path: Path) -> None:
    """render_config(webhook_url=...) with short timers is still a valid config."""
    spec = parse_spec((ROOT / "alerts" / "slo.yaml").read_text())
    text = alertmanager.render_config(
        spec, webhook_url="http://127.0.0.1:1/hook", group_wait="1s", repeat_interval="5s"
    )
    config = tmp_path / "am.yml"
    config.write_text(text)
    result = _run(need("amtool"), "check-config", str(config))
    assert (0, True) == (result.returncode, "http://127.0.0.1:1/hook" in text)


def _readme_alertmanager_block() -> str:
    """The ```yaml example of alerts/README.md that starts with ``alertmanager:``."""
    readme = (ROOT / "alerts" / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)
    found: str = next(b for b in blocks if b.startswith("alertmanager:"))
    return found


def test_readme_receiver_example_passes_amtool(tmp_path: Path) -> None:
    """The README's PagerDuty / Slack / email example, put in the spec, is a valid config."""
    text = (ROOT / "alerts" / "slo.yaml").read_text()
    start, end = text.index("alertmanager:\n"), text.index("\nslos:\n")
    spec = parse_spec(text[:start] + _readme_alertmanager_block() + text[end:])
    config = tmp_path / "am.yml"
    config.write_text(alertmanager.render_config(spec))
    result = _run(need("amtool"), "check-config", str(config))
    found = ["pagerduty_configs", "slack_configs", "email_configs", "webhook_configs"]
    assert (0, [True, True, True, False]) == (
        result.returncode,
        [key in config.read_text() for key in found],
    ), result.stdout + result.stderr


def test_a_job_with_quotes_still_gives_valid_rules(tmp_path: Path) -> None:
    """Label values are escaped: job 'web "blue"\\eu' yields rules promtool accepts."""
    text = edited("job: limoneide", "job: 'web \"blue\"\\eu'")
    files = build.generate(parse_spec(text))
    write_tree(tmp_path, files)
    result = _run(
        need("promtool"),
        "check",
        "rules",
        build.RECORDING_RULES,
        build.ALERTING_RULES,
        cwd=tmp_path,
    )
    escaped = 'up{job="web \\"blue\\"\\\\eu"}'
    assert (0, True) == (result.returncode, escaped in files[build.ALERTING_RULES].decode()), (
        result.stdout + result.stderr
    )
    # The dashboards' queries naming the spec's job escape it too (they held it raw).
    (tmp_path / "alerts" / "slo.yaml").write_text(text)
    generated = artifacts.collect(tmp_path).files
    boards = {
        rel: json.loads(data)
        for rel, data in generated.items()
        if rel.startswith("dashboards/") and rel.endswith(".json")
    }
    assert any(rel.startswith("dashboards/") for rel in boards)
    assert [] == [
        finding for rel, board in boards.items() for finding in lint_dashboard(rel, board)
    ]


def test_generated_tests_of_a_job_with_a_quote_pass(tmp_path: Path) -> None:
    """A job named ``billing"api`` (Prometheus takes any job name): the generated input
    series escape it as the rules do (the tests wrote it raw and promtool refused them)."""
    text = (
        (ROOT / "alerts" / "slo.yaml")
        .read_text()
        .replace("\njob: limoneide\n", '\njob: billing"api\n')
    )
    assert 'job: billing"api' in text
    write_tree(tmp_path, build.generate(parse_spec(text)))
    # The up SLO's tests and the errors SLO's: input series of up and of the counters.
    tests = [tmp_path / build.GENERATED_TESTS_DIR / f"{name}.yml" for name in ("up", "errors")]
    result = _run(need("promtool"), "test", "rules", *map(str, tests), cwd=tmp_path)
    assert 0 == result.returncode, result.stdout + result.stderr


def test_generated_tests_of_a_high_min_rate_pass(tmp_path: Path) -> None:
    """min_rate: 1 (any above ~0.2): the busy load passed the guard on the mean of the
    recorded 5m rate a minute or two late, and the generated checks failed."""
    text = (ROOT / "alerts" / "slo.yaml").read_text().replace("min_rate: 0.05", "min_rate: 1")
    write_tree(tmp_path, build.generate(parse_spec(text)))
    tests = [tmp_path / build.GENERATED_TESTS_DIR / f"{name}.yml" for name in ("availability",)]
    result = _run(need("promtool"), "test", "rules", *map(str, tests), cwd=tmp_path)
    assert 0 == result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("objective", ["99.999999", "99.99995", "99.9999873"])
def test_generated_tests_of_an_objective_of_many_nines_pass(tmp_path: Path, objective: str) -> None:
    """Up to eight nines, the most the spec takes (ten nines made rules dividing by a
    budget rounded to 0, and failing generated tests)."""
    text = (
        (ROOT / "alerts" / "slo.yaml")
        .read_text()
        .replace("    objective: 99.9\n", f"    objective: {objective}\n", 1)
    )
    write_tree(tmp_path, build.generate(parse_spec(text)))
    tests = [tmp_path / build.GENERATED_TESTS_DIR / f"{name}.yml" for name in ("availability",)]
    result = _run(need("promtool"), "test", "rules", *map(str, tests), cwd=tmp_path)
    assert 0 == result.returncode, result.stdout + result.stderr


def test_selectors_with_regex_flags_build_tests_that_pass(tmp_path: Path) -> None:
    """A trial's ``endpoint=~"(?i)/payments/.*"`` in ``total`` and ``errors`` was refused
    as "errors must be a subset of total": no example value was found for a regex with
    flags. It is taken, and its generated tests pass promtool."""
    flagged = 'endpoint=~"(?i)/Projects/.*"'
    text = edited(
        "    total: limoneide_requests_total\n"
        '    errors: limoneide_requests_total{status=~"5.."}\n    window: 5m',
        f"    total: limoneide_requests_total{{{flagged}}}\n"
        f'    errors: limoneide_requests_total{{{flagged},status=~"5.."}}\n    window: 5m',
    )
    write_tree(tmp_path, build.generate(parse_spec(text)))
    generated = tmp_path / build.GENERATED_TESTS_DIR / "errors.yml"
    assert (
        "(?i)/Projects/" in (tmp_path / build.RECORDING_RULES).read_text() + generated.read_text()
    )
    result = _run(need("promtool"), "test", "rules", str(generated), cwd=tmp_path)
    assert 0 == result.returncode, result.stdout + result.stderr
