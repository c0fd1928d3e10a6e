"""Malformed specs: each kind gives its located error, exit 2, and leaves files untouched.

Every case edits the committed ``alerts/slo.yaml`` in one place. The error must name the
file and the field (``alerts/slo.yaml: slos[1] (latency).threshold_seconds``) and say what
is wrong; ``limone-obs check`` and ``limone-obs build`` must exit 2 and ``build`` must not
change a single file.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from limone_obs import conventions as c
from limone_obs.alerts import _reader, alertmanager
from limone_obs.alerts._reader import MAX_MESSAGE_CHARS, MAX_SPEC_BYTES
from limone_obs.alerts.spec import parse_spec
from limone_obs.cli import main
from limone_obs.errors import CollectedSpecError, SpecError
from tests.alerts.helpers import edited, snapshot, spec_text
from tests.support import ROOT

FILE = "alerts/slo.yaml"


@dataclass(frozen=True)
class Case:
    """A broken spec: how to make it, where the error points, what it says."""

    id: str
    make: Callable[[], str]
    location: str
    says: str


def _edit(old: str, new: str) -> Callable[[], str]:
    return lambda: edited(old, new)


def _truncate_slos() -> str:
    text = spec_text()
    return text[: text.index("\nslos:\n")] + "\nslos: []\n"


def _billion_laughs() -> str:
    """About 1 KB of YAML whose aliases expand to 10^9 strings."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return edited("\nslos:\n", "\n" + "\n".join(lines) + "\nslos:\n")


def _laughs_in_label() -> str:
    """The billion laughs, then its root used as a label value (the field that repr'd it)."""
    return _billion_laughs().replace("  team: limoneide\n", "  team: *a9\n", 1)


def _aliases_in_extra() -> str:
    """An anchored webhook block repeated by aliases in a receiver's extra."""
    return edited(
        "      webhook_url: http://127.0.0.1:9095/alerts\n",
        "      webhook_url: http://127.0.0.1:9095/alerts\n"
        "      extra:\n"
        "        webhook_configs: &hooks [{url: 'http://h.example/a'}]\n"
        "        slack_configs: *hooks\n",
    )


def _deep_brackets() -> str:
    return edited("  team: limoneide\n", "  team: " + "[" * 2000 + "]" * 2000 + "\n")


def _complex_key() -> str:
    return edited("  team: limoneide\n", "  ? [a, b]\n  : limoneide\n")


def _huge_value() -> str:
    return edited("service: limoneide", "service: " + "X" * 200_000)


def _over_the_size_limit() -> str:
    """Valid YAML up to the limit, then a comment that takes it over: refused unparsed."""
    return spec_text() + "#" * (MAX_SPEC_BYTES + 1) + "\n"


CASES = [
    Case("yaml-syntax", _edit("slos:\n", "slos: [\n"), f"{FILE}: line", "invalid YAML"),
    Case(
        "duplicate-key",
        _edit("period: 30d\n", "period: 30d\nperiod: 28d\n"),
        f"{FILE}: line",
        "appears twice",
    ),
    Case(
        "unfeedable-regex",
        _edit(
            "histogram: limoneide_request_duration_seconds\n",
            'histogram: limoneide_request_duration_seconds{endpoint=~"[^\\\\w\\\\s./0-]+"}\n',
        ),
        f"{FILE}: slos[1] (latency).histogram",
        "no label value found that passes every matcher",
    ),
    Case("top-level-list", lambda: "- service: x\n", FILE, "mapping at the top level"),
    Case("empty-file", lambda: "# nothing yet\n", FILE, "is empty"),
    Case(
        "unknown-top-key",
        _edit("period: 30d\n", "period: 30d\nperiods: 28d\n"),
        f"{FILE}: periods",
        "unknown key 'periods'",
    ),
    Case(
        "missing-service",
        _edit("service: limoneide\n", ""),
        f"{FILE}: service",
        "is required",
    ),
    Case(
        "bad-service-name",
        _edit("service: limoneide", "service: Limone IDE"),
        f"{FILE}: service",
        "'Limone IDE' is not allowed",
    ),
    Case(
        "unsupported-version",
        _edit("version: 1", "version: 2"),
        f"{FILE}: version",
        "not supported",
    ),
    Case(
        "bad-namespace",
        _edit("namespace: limoneide", "namespace: 9lives"),
        f"{FILE}: namespace",
        "'9lives' is not allowed",
    ),
    Case(
        "bad-period",
        _edit("period: 30d", "period: 30 days"),
        f"{FILE}: period",
        "'30 days' is not a duration",
    ),
    Case(
        "period-too-short",
        _edit("period: 30d", "period: 12h"),
        f"{FILE}: period",
        "too short",
    ),
    Case("no-slos", _truncate_slos, f"{FILE}: slos", "non-empty list"),
    Case(
        "unknown-slo-key",
        _edit("    objective: 99.9\n", "    objective: 99.9\n    objectve: 99\n"),
        f"{FILE}: slos[0] (availability).objectve",
        "unknown key 'objectve'",
    ),
    Case(
        "key-not-for-kind",
        _edit("    kind: up\n", "    kind: up\n    objective: 99\n"),
        f"{FILE}: slos[4] (up).objective",
        "for an SLO of kind 'up'",
    ),
    Case(
        "unknown-kind",
        _edit("kind: ratio", "kind: ratios"),
        f"{FILE}: slos[0] (availability).kind",
        "'ratios' is not allowed",
    ),
    Case(
        "objective-100",
        _edit("objective: 99.9", "objective: 100"),
        f"{FILE}: slos[0] (availability).objective",
        "outside (0, 100)",
    ),
    # Text the rules carry, which Prometheus expands as templates (a trial's artifacts
    # that promtool refused, or whose alerts varied per evaluation).
    Case(
        "period-of-ten-years",
        _edit("period: 30d", "period: 3650d"),
        f"{FILE}: slos[0] (availability).tiers.page-fast",
        "the factor grows with the period, 3650d here (28d or 30d is usual)",
    ),
    Case(
        "total-a-gauge",
        _edit(
            "    total: limoneide_requests_total\n    errors:",
            "    total: limoneide_workers\n    errors:",
        ),
        f"{FILE}: slos[0] (availability).total",
        "limoneide_workers is a gauge: an SLO counts events as rates of counters",
    ),
    Case(
        "window-beyond-prometheus",
        _edit("    window: 5m\n", "    window: 99999w\n"),
        f"{FILE}: slos[2] (errors).window",
        "'99999w' is beyond what Prometheus' durations reach",
    ),
    Case(
        "description-template",
        _edit(
            "description: Requests answered without a server error (5xx).",
            "description: 'Checkout {{ $value }} within 0.8 s'",
        ),
        f"{FILE}: slos[0] (availability).description",
        "holds {{: the SLO's description and annotations are plain text",
    ),
    Case(
        "objective-infinite",
        _edit("objective: 99.9", "objective: 1e999"),
        f"{FILE}: slos[0] (availability).objective",
        "1e999 is beyond any finite number (YAML reads it as text); write a finite one",
    ),
    Case(
        "description-grafana-old-variable",
        _edit(
            "description: Requests answered without a server error (5xx).",
            "description: 'Requests of [[job]] answered'",
        ),
        f"{FILE}: slos[0] (availability).description",
        "Grafana reads $name (and [[name]]) as a dashboard variable",
    ),
    Case(
        "description-grafana-variable",
        _edit(
            "description: Requests answered without a server error (5xx).",
            "description: 'Costs $value per call'",
        ),
        f"{FILE}: slos[0] (availability).description",
        "Grafana reads $name (and [[name]]) as a dashboard variable",
    ),
    Case(
        "annotation-template",
        _edit(
            "    objective: 99.9\n",
            "    objective: 99.9\n    annotations: {note: 'on {{ $labels.slo }}'}\n",
        ),
        f"{FILE}: slos[0] (availability).annotations.note",
        "holds {{: the SLO's description and annotations are plain text",
    ),
    Case(
        "label-template",
        _edit("  team: limoneide\n", "  team: 'pan{{ $value }}'\n"),
        f"{FILE}: labels.team",
        "Prometheus would expand it as a template",
    ),
    Case(
        "label-name-of-prometheus",
        _edit("  team: limoneide\n", "  team: limoneide\n  __name__: x\n"),
        f"{FILE}: labels.__name__",
        "names starting with __ are Prometheus' own",
    ),
    Case(
        "job-with-a-newline",
        _edit("job: limoneide\n", 'job: "pantry\\nweb"\n'),
        f"{FILE}: job",
        "holds a control character",
    ),
    # Windows no 1m scrape fills, and waits beyond use (a trial's 10s windows made alerts
    # that never fire; a 400d for made promtool run its tests for over 10 minutes).
    Case(
        "tier-window-too-short",
        _edit("long_window: 1h, short_window: 5m,", "long_window: 1h, short_window: 30s,"),
        f"{FILE}: tiers.page-fast.short_window",
        "'30s' is shorter than 1m",
    ),
    Case(
        "all-failing-window-too-short",
        _edit("    objective: 99.9\n", "    objective: 99.9\n    all_failing: {window: 10s}\n"),
        f"{FILE}: slos[0] (availability).all_failing.window",
        "'10s' is shorter than 1m",
    ),
    Case(
        "tier-for-beyond-its-window",
        _edit("budget_percent: 2,  for: 2m}", "budget_percent: 2,  for: 10m}"),
        f"{FILE}: tiers.page-fast.for",
        "'10m' is longer than 5m",
    ),
    Case(
        "health-for-too-long",
        _edit(
            "traffic_stopped: {window: 15m, for: 5m,", "traffic_stopped: {window: 15m, for: 400d,"
        ),
        f"{FILE}: health.traffic_stopped.for",
        "'400d' is longer than 6h",
    ),
    Case(
        # A trial's spec: TargetDown and TargetAbsent paged twice, its generated tests failed.
        "second-up-slo",
        _edit(
            "  - name: up\n    kind: up\n",
            "  - name: up\n    kind: up\n  - name: up-again\n    kind: up\n",
        ),
        f"{FILE}: slos[5].kind",
        "a second SLO of kind 'up' (the first is slos[4])",
    ),
    Case(
        # A trial's inverted matcher: the SLO burnt on every healthy request.
        "errors-of-successes",
        _edit(
            'errors: limoneide_requests_total{status=~"5.."}',
            'errors: limoneide_requests_total{status=~"2.."}',
        ),
        f"{FILE}: slos[0] (availability).errors",
        "counts successful answers (status 200 passes it)",
    ),
    Case(
        # Written to 6 digits, the message read "0.8 s is not a bucket boundary ... 0.8".
        "threshold-near-a-bucket",
        _edit("threshold_seconds: 2.5", "threshold_seconds: 2.50000000001"),
        f"{FILE}: slos[1] (latency).threshold_seconds",
        "2.50000000001 s is not a bucket boundary",
    ),
    Case(
        # "must be a mapping" gave no hint at the "off" meant.
        "health-switch-misspelt",
        lambda: re.sub(r"\nhealth:\n.*?\n\n", "\nhealth: of\n\n", spec_text(), flags=re.S),
        f"{FILE}: health",
        '\'of\' is not allowed; did you mean "off"? give a mapping of settings or "off"',
    ),
    Case(
        # "'1' is not supported; this limone-obs reads version 1" read as a contradiction.
        "version-quoted",
        _edit("version: 1\n", "version: '1'\n"),
        f"{FILE}: version",
        "'1' is text: write version: 1, unquoted",
    ),
    Case(
        # Ten nines: its budget (1e-10) was rounded to 0 in the rules (a ratio over 0), and
        # the generated tests lost precision.
        "objective-too-many-nines",
        _edit("objective: 99.9", "objective: 99.99999999"),
        f"{FILE}: slos[0] (availability).objective",
        "99.99999999 allows fewer than 1 bad event in 100 million",
    ),
    Case(
        "objective-0",
        _edit("objective: 95", "objective: 0"),
        f"{FILE}: slos[1] (latency).objective",
        "outside (0, 100)",
    ),
    Case(
        "objective-text",
        _edit("objective: 99.9", 'objective: "three nines"'),
        f"{FILE}: slos[0] (availability).objective",
        "must be a number",
    ),
    Case(
        "objective-boolean",
        _edit("objective: 99.9", "objective: yes"),
        f"{FILE}: slos[0] (availability).objective",
        "must be a number",
    ),
    Case(
        "threshold-not-a-bucket",
        _edit("threshold_seconds: 2.5", "threshold_seconds: 0.8"),
        f"{FILE}: slos[1] (latency).threshold_seconds",
        "0.8 s is not a bucket boundary",
    ),
    Case(
        "threshold-off-the-declared-buckets",
        _edit(
            "min_rate: 0.05\n",
            "min_rate: 0.05\nbuckets:\n  limoneide_request_duration_seconds: [0.3, 1, 2.5]\n",
        ),
        f"{FILE}: slos[1] (latency).stages[1]",
        "0.6 s is not a bucket boundary of limoneide_request_duration_seconds (the buckets: "
        "of the spec)",
    ),
    Case(
        # A misspelt key was ignored: the thresholds were then judged by the defaults.
        "buckets-misspelt",
        _edit(
            "min_rate: 0.05\n",
            "min_rate: 0.05\nbuckets:\n  limoneide_request_duration_secs: [0.3, 0.6, 1, 2.5]\n",
        ),
        f"{FILE}: buckets.limoneide_request_duration_secs",
        "did you mean limoneide_request_duration_seconds? no SLO reads this histogram",
    ),
    Case(
        "buckets-descending",
        _edit("min_rate: 0.05\n", "min_rate: 0.05\nbuckets:\n  my_seconds: [1, 0.5]\n"),
        f"{FILE}: buckets.my_seconds[1]",
        "0.5 is not above the boundary before it (1): list the boundaries in ascending order",
    ),
    Case(
        "buckets-not-finite",
        _edit("min_rate: 0.05\n", "min_rate: 0.05\nbuckets:\n  my_seconds: [1, .inf]\n"),
        f"{FILE}: buckets.my_seconds[1]",
        "must be a positive, finite number of seconds",
    ),
    Case(
        "buckets-not-a-list",
        _edit("min_rate: 0.05\n", "min_rate: 0.05\nbuckets:\n  my_seconds: 0.5\n"),
        f"{FILE}: buckets.my_seconds",
        "must be a list of 1 to 64 bucket boundaries",
    ),
    Case(
        "buckets-of-the-bucket-series",
        _edit("min_rate: 0.05\n", "min_rate: 0.05\nbuckets:\n  my_seconds_bucket: [1]\n"),
        f"{FILE}: buckets.my_seconds_bucket",
        "is not a histogram's base name",
    ),
    Case(
        "tier-never-fires",
        _edit("objective: 95", "objective: 90"),
        f"{FILE}: slos[1] (latency).tiers.page-fast",
        "could never fire",
    ),
    Case(
        "duplicate-slo-name",
        _edit("- name: errors", "- name: availability"),
        f"{FILE}: slos[2].name",
        "used by an earlier SLO, slos[0]: give each SLO a name of its own",
    ),
    Case(
        "bad-slo-name",
        _edit("- name: ai-latency", "- name: AI latency"),
        f"{FILE}: slos[3].name",
        "'AI latency' is not allowed",
    ),
    Case(
        "unknown-tier-override",
        _edit('page-fast: "off", page-slow: "off"', 'page-fastest: "off"'),
        f"{FILE}: slos[3] (ai-latency).tiers.page-fastest",
        "unknown tier",
    ),
    Case(
        "bad-tier-severity",
        _edit('page-fast: "off"', "page-fast: never"),
        f"{FILE}: slos[3] (ai-latency).tiers.page-fast",
        "'never' is not allowed",
    ),
    Case(
        "short-window-not-shorter",
        _edit("long_window: 1h, short_window: 5m", "long_window: 1h, short_window: 2h"),
        f"{FILE}: tiers.page-fast.short_window",
        "must be shorter than long_window",
    ),
    Case(
        "window-longer-than-period",
        _edit("long_window: 3d", "long_window: 40d"),
        f"{FILE}: tiers.ticket-slow.long_window",
        "longer than the period",
    ),
    Case(
        "budget-share-zero",
        _edit("budget_percent: 2,", "budget_percent: 0,"),
        f"{FILE}: tiers.page-fast.budget_percent",
        "outside (0, 100]",
    ),
    Case(
        "selector-syntax",
        _edit('errors: limoneide_requests_total{status=~"5.."}', "errors: requests{status=~5..}"),
        f"{FILE}: slos[0] (availability).errors",
        "not a PromQL series selector",
    ),
    Case(
        "selector-bad-regex",
        _edit('{status=~"5.."}', '{status=~"5(.."}'),
        f"{FILE}: slos[0] (availability).errors",
        "is invalid",
    ),
    Case(
        "errors-equal-total",
        _edit(
            'errors: limoneide_requests_total{status=~"5.."}', "errors: limoneide_requests_total"
        ),
        f"{FILE}: slos[0] (availability).errors",
        "selects every series of total",
    ),
    Case(
        "errors-outside-total",
        _edit(
            "total: limoneide_requests_total\n", 'total: limoneide_requests_total{status="200"}\n'
        ),
        f"{FILE}: slos[0] (availability).errors",
        "must be a subset of total",
    ),
    Case(
        # A total of one's own with the default errors (the exporter's 5xx answers) would
        # count HTTP 5xx over payment attempts: a trial's spec built and checked clean.
        "total-without-errors",
        _edit(
            "    total: limoneide_requests_total\n"
            '    errors: limoneide_requests_total{status=~"5.."}\n',
            '    total: limoneide_requests_total{endpoint=~"/api/.*"}\n',
        ),
        f"{FILE}: slos[0] (availability).errors",
        "missing: total is",
    ),
    Case(
        "histogram-bucket-name",
        _edit(
            "histogram: limoneide_request_duration_seconds\n",
            "histogram: limoneide_request_duration_seconds_bucket\n",
        ),
        f"{FILE}: slos[1] (latency).histogram",
        "base name",
    ),
    Case(
        "good-other-histogram",
        _edit(
            'good: limoneide_dependency_duration_seconds{dependency="ai_api",outcome="ok"}',
            'good: limoneide_request_duration_seconds{outcome="ok"}',
        ),
        f"{FILE}: slos[3] (ai-latency).good",
        "must be the histogram",
    ),
    Case(
        "good-drops-a-histogram-matcher",
        _edit(
            'good: limoneide_dependency_duration_seconds{dependency="ai_api",outcome="ok"}',
            'good: limoneide_dependency_duration_seconds{outcome="ok"}',
        ),
        f"{FILE}: slos[3] (ai-latency).good",
        "with matchers added",
    ),
    Case(
        "reserved-label",
        _edit("  team: limoneide", "  severity: low"),
        f"{FILE}: labels.severity",
        "reserved",
    ),
    Case(
        "label-value-not-text",
        _edit("  team: limoneide", "  team: 42"),
        f"{FILE}: labels.team",
        "must be a string",
    ),
    Case(
        "webhook-not-a-url",
        _edit("webhook_url: http://127.0.0.1:9095/alerts", "webhook_url: 127.0.0.1:9095"),
        f"{FILE}: alertmanager.receivers.page.webhook_url",
        "not an http:// or https:// URL",
    ),
    Case(
        "receiver-goes-nowhere",
        _edit("webhook_url: http://127.0.0.1:9095/alerts", "webhook_url: null"),
        f"{FILE}: alertmanager.receivers.page",
        "alerts would go nowhere",
    ),
    Case(
        "negative-min-rate",
        _edit("min_rate: 0.05", "min_rate: -1"),
        f"{FILE}: min_rate",
        "negative",
    ),
    Case(
        "min-rate-not-finite",
        _edit("min_rate: 0.05", "min_rate: .nan"),
        f"{FILE}: min_rate",
        "must be a finite number",
    ),
    Case(
        "bad-for",
        _edit("    for: 5m\n", "    for: soon\n"),
        f"{FILE}: slos[2] (errors).for",
        "'soon' is not a duration",
    ),
    Case("billion-laughs", _billion_laughs, f"{FILE}: line", "an anchor (&name) is not allowed"),
    Case("laughs-in-a-label", _laughs_in_label, f"{FILE}: line", "is not allowed"),
    Case("aliases-in-extra", _aliases_in_extra, f"{FILE}: line", "anchor (&name) is not allowed"),
    Case("2000-nested-brackets", _deep_brackets, f"{FILE}: line", "nesting deeper than"),
    Case("complex-key", _complex_key, f"{FILE}: line", "a key must be a plain word"),
    Case("huge-value", _huge_value, f"{FILE}: service", "is not allowed"),
    Case("over-the-size-limit", _over_the_size_limit, FILE, "byte limit of a spec: not parsed"),
    Case(
        "extra-not-a-configs-list",
        _edit(
            "      webhook_url: http://127.0.0.1:9095/alerts\n",
            "      webhook_url: http://127.0.0.1:9095/alerts\n      extra: {slack: {}}\n",
        ),
        f"{FILE}: alertmanager.receivers.page.extra.slack",
        "*_configs list",
    ),
    Case(
        "bad-severity",
        _edit("    severity: page\n\n", "    severity: critical\n\n"),
        f"{FILE}: slos[2] (errors).severity",
        "'critical' is not allowed",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_parse_reports_the_located_error(case: Case) -> None:
    """parse_spec raises SpecError at the expected file/field, with the expected message."""
    with pytest.raises(SpecError) as info:
        parse_spec(case.make(), source=FILE)
    assert (True, True) == (
        info.value.location.startswith(case.location),
        case.says in info.value.detail,
    ), str(info.value)


def test_a_misspelt_buckets_key_is_told_beside_the_threshold_it_breaks() -> None:
    """A latency SLO on a histogram of the app's own, its ``buckets:`` key misspelt: the
    threshold failed (its buckets unknown), and the key was then not checked, so the
    error blamed threshold_seconds alone. Both are told."""
    text = edited(
        "histogram: limoneide_request_duration_seconds\n    threshold_seconds: 2.5\n"
        "    stages: [1.0, 0.6]",
        "histogram: team_call_seconds\n    threshold_seconds: 0.8\n    stages: [0.4]",
        edited("min_rate: 0.05\n", "min_rate: 0.05\nbuckets:\n  team_call_secs: [0.4, 0.8]\n"),
    )
    with pytest.raises(CollectedSpecError) as info:
        parse_spec(text, source=FILE)
    said = {error.location: error.detail for error in info.value.errors}
    threshold = said[f"{FILE}: slos[1] (latency).threshold_seconds"]
    assert "team_call_seconds is not one of the exporter's histograms" in threshold
    assert said[f"{FILE}: buckets.team_call_secs"].startswith(
        "did you mean team_call_seconds? no SLO reads this histogram"
    )
    assert "(SLOs read: limoneide_dependency_duration_seconds, " in str(info.value)


def test_there_are_at_least_twenty_kinds() -> None:
    """The issue asks for at least 20 kinds of malformed spec, each different."""
    assert (True, len(CASES)) == (len(CASES) >= 20, len({c.id for c in CASES}))


def _tree(tmp_path: Path, text: str) -> Path:
    shutil.copytree(ROOT / "alerts", tmp_path / "alerts")
    (tmp_path / "alerts" / "slo.yaml").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_check_exits_2_with_the_location(case: Case, tmp_path: Path) -> None:
    """``limone-obs check --spec`` prints ``error: <file>: <field>: ...`` and exits 2."""
    spec = tmp_path / "slo.yaml"
    spec.write_text(case.make(), encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    where = case.location.replace(FILE, str(spec), 1)
    assert (2, True) == (result.exit_code, f"error: {where}" in result.output), result.output


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_build_exits_2_and_writes_nothing(case: Case, tmp_path: Path) -> None:
    """``limone-obs build`` on an invalid spec exits 2 and leaves every file as it was."""
    root = _tree(tmp_path, case.make())
    before = snapshot(root)
    result = CliRunner().invoke(main, ["build", "--root", str(root)])
    assert (2, before) == (result.exit_code, snapshot(root)), result.output


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_message_is_bounded(case: Case) -> None:
    """Whatever the value, the message stays short: values are cut, never printed whole."""
    with pytest.raises(SpecError) as info:
        parse_spec(case.make(), source=FILE)
    assert len(info.value.detail) <= MAX_MESSAGE_CHARS + 40, info.value.detail[:200]


def test_an_alias_is_refused_where_it_is_written() -> None:
    """An alias is reported at its own line, before pyyaml looks up what it names."""
    text = edited("  team: limoneide\n", "  team: *laughs\n")
    line = text.split("\n").index("  team: *laughs") + 1
    with pytest.raises(SpecError) as info:
        parse_spec(text, source=FILE)
    assert (f"{FILE}: line {line}", True) == (
        info.value.location,
        info.value.detail.startswith("invalid YAML: an alias (*name) is not allowed"),
    )


def test_a_50_mb_spec_is_refused_before_parsing(tmp_path: Path) -> None:
    """50 MB of spec: build exits 2 with the size error, before any YAML is read.

    The text starts with invalid YAML: a parse would report that instead of the size.
    """
    root = _tree(tmp_path, "slos: [\n" + "# padding\n" * 5_000_000)
    before = snapshot(root)
    result = CliRunner().invoke(main, ["build", "--root", str(root)])
    assert (2, True, before) == (
        result.exit_code,
        "byte limit of a spec: not parsed" in result.output,
        snapshot(root),
    ), result.output[:300]


def test_build_parses_the_spec_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The areas of ``build`` (alerts, dashboards, compose) share one parse of the text."""
    root = _tree(tmp_path, spec_text() + f"# {tmp_path.name}\n")  # a text no test parsed yet
    calls = []
    real_load = yaml.load

    def counting_load(text: str, Loader: Any) -> Any:  # noqa: N803 - pyyaml's keyword
        calls.append(len(text))
        return real_load(text, Loader=Loader)

    monkeypatch.setattr(yaml, "load", counting_load)
    result = CliRunner().invoke(main, ["build", "--root", str(root)])
    assert (0, 1) == (result.exit_code, len(calls)), result.output


def test_each_load_gets_its_own_copy() -> None:
    """The cached parse is never shared: changing one result leaves the next one intact."""
    text = spec_text()
    first = _reader.load_yaml(text, FILE)
    count = len(first["slos"])
    first["slos"].clear()
    assert count == len(_reader.load_yaml(text, FILE)["slos"])


def _with_extra_webhook() -> str:
    return edited(
        "      webhook_url: http://127.0.0.1:9095/alerts\n",
        "      webhook_url: http://127.0.0.1:9095/alerts\n"
        "      extra:\n"
        "        webhook_configs: [{url: 'http://oncall.example/hook'}]\n",
    )


def test_extra_webhooks_are_kept_next_to_webhook_url() -> None:
    """``webhook_url`` and ``extra.webhook_configs`` both set: the page receiver gets both."""
    config = alertmanager.config(parse_spec(_with_extra_webhook()))
    [page] = [r for r in config["receivers"] if r["name"] == "limoneide-page"]
    assert ["http://127.0.0.1:9095/alerts", "http://oncall.example/hook"] == [
        hook["url"] for hook in page["webhook_configs"]
    ]


def test_an_overriding_webhook_keeps_the_extra_webhooks() -> None:
    """The local stack's override replaces the spec's webhook_url, not the extra's."""
    config = alertmanager.config(parse_spec(_with_extra_webhook()), webhook_url="http://x:1/a")
    [page] = [r for r in config["receivers"] if r["name"] == "limoneide-page"]
    assert ["http://x:1/a", "http://oncall.example/hook"] == [
        hook["url"] for hook in page["webhook_configs"]
    ]


#: Specs the model accepts but whose selectors can never match the exporter's series, in
#: SLOs of each kind with selectors (ratio, latency, threshold; ``up`` has none):
#: ``limone-obs check`` rejects them (the catalogue of the exporter), located at the field.
CHECK_CASES = [
    Case(
        "typo-in-histogram-name",
        _edit(
            "histogram: limoneide_request_duration_seconds\n",
            "histogram: limoneide_request_duration\n",
        ),
        f"{FILE}: slos[1] (latency).histogram",
        "did you mean limoneide_request_duration_seconds?",
    ),
    Case(
        "status-on-the-duration-histogram",
        _edit(
            "histogram: limoneide_request_duration_seconds\n",
            'histogram: limoneide_request_duration_seconds{status="200"}\n',
        ),
        f"{FILE}: slos[1] (latency).histogram",
        "has no label 'status'",
    ),
    Case(
        "namespace-differs-from-the-selectors",
        _edit("namespace: limoneide", "namespace: billing"),
        f"{FILE}: slos[1] (latency).histogram",
        "the spec's namespace is 'billing'",
    ),
    Case(
        "objective-as-a-ratio",
        _edit("objective: 99.9", "objective: 0.999"),
        f"{FILE}: slos[0] (availability).objective",
        "give a percentage, e.g. 99.9",
    ),
    Case(
        "status-regex-with-equals",
        _edit(
            'errors: limoneide_requests_total{status=~"5.."}',
            'errors: limoneide_requests_total{status="5.."}',
        ),
        f"{FILE}: slos[0] (availability).errors",
        "a regex needs =~",
    ),
    Case(
        "unknown-outcome-value",
        _edit('dependency="ai_api",outcome="ok"', 'dependency="ai_api",outcome="success"'),
        f"{FILE}: slos[3] (ai-latency).good",
        "matches no value the exporter writes for 'outcome' (ok, error)",
    ),
    Case(
        "counter-as-histogram",
        _edit(
            "histogram: limoneide_request_duration_seconds\n",
            "histogram: limoneide_requests_total\n",
        ),
        f"{FILE}: slos[1] (latency).histogram",
        "is a counter, not a histogram",
    ),
    Case(
        "threshold-off-the-histogram-buckets",
        _edit(
            'histogram: limoneide_dependency_duration_seconds{dependency="ai_api"}\n'
            '    good: limoneide_dependency_duration_seconds{dependency="ai_api",outcome="ok"}\n'
            "    threshold_seconds: 2.5\n",
            "histogram: limoneide_dependency_calls_per_request\n    threshold_seconds: 0.6\n",
        ),
        f"{FILE}: slos[3] (ai-latency).threshold_seconds",
        "not a bucket boundary of limoneide_dependency_calls_per_request",
    ),
    Case(
        "threshold-slo-typo-in-total",
        _edit(
            "5xx over 5 minutes.\n    total: limoneide_requests_total\n",
            "5xx over 5 minutes.\n    total: limoneide_request_total\n",
        ),
        f"{FILE}: slos[2] (errors).total",
        "did you mean limoneide_requests_total?",
    ),
    Case(
        "latency-slo-label-of-another-series",
        _edit(
            'histogram: limoneide_dependency_duration_seconds{dependency="ai_api"}',
            'histogram: limoneide_dependency_duration_seconds{dependency="ai_api",endpoint="/ai"}',
        ),
        f"{FILE}: slos[3] (ai-latency).histogram",
        "has no label 'endpoint'",
    ),
    Case(
        "bucket-series-label-on-count",
        _edit(
            "total: limoneide_requests_total\n",
            'total: limoneide_request_duration_seconds_count{le="1.0"}\n',
        ),
        f"{FILE}: slos[0] (availability).total",
        "has no label 'le'",
    ),
]


@pytest.mark.parametrize("case", CHECK_CASES, ids=[c.id for c in CHECK_CASES])
def test_check_knows_the_exporter(case: Case, tmp_path: Path) -> None:
    """A selector that can never match the exporter: ``check`` names file, SLO, field; exit 2."""
    spec = tmp_path / "slo.yaml"
    spec.write_text(case.make(), encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    where = case.location.replace(FILE, str(spec), 1)
    line = f"error: {where}: "
    found = [row for row in result.output.splitlines() if row.startswith(line)]
    assert (2, True) == (result.exit_code, any(case.says in row for row in found)), result.output


def test_build_prints_every_error_on_its_own_line(tmp_path: Path) -> None:
    """build on a spec with errors in two places: one ``error:`` line each, nothing written."""
    text = edited("service: limoneide\n", "service: ''\n")
    text = edited("period: 30d\n", "period: 1h\n", text)
    root = _tree(tmp_path, text)
    before = snapshot(root)
    result = CliRunner().invoke(main, ["build", "--root", str(root)])
    starts = [line.split(": ", 3)[2] for line in result.output.splitlines()]
    assert (2, ["service", "period"], before) == (result.exit_code, starts, snapshot(root))


def test_a_malformed_bucket_list_leaves_the_others_declared() -> None:
    """One broken list is one error: the valid list of another histogram still holds (a
    0.3 s threshold on it passes), and the SLOs on the broken one wait for it."""
    text = edited(
        "min_rate: 0.05\n",
        "min_rate: 0.05\nbuckets:\n"
        "  limoneide_request_duration_seconds: [0.1, 0.3, 0.6, 1, 2.5]\n"
        "  limoneide_dependency_duration_seconds: [0.3, 0.1]\n",
    )
    text = edited("threshold_seconds: 2.5\n    stages: [1.0, 0.6]", "threshold_seconds: 0.3", text)
    with pytest.raises(SpecError) as caught:
        parse_spec(text)
    lines = str(caught.value).splitlines()
    assert 1 == len(lines), lines
    assert lines[0].startswith(f"{FILE}: buckets.limoneide_dependency_duration_seconds[1]: 0.1")


def test_a_histogram_of_the_apps_own_needs_its_buckets_declared() -> None:
    """A latency SLO on a histogram of the app's own, no ``buckets:`` for it: its bucket
    boundaries are unknown (prometheus-client's defaults are not the kit's), so a
    threshold is refused until they are listed; with them, it is checked against them."""
    own = (
        "histogram: limoneide_request_duration_seconds\n    threshold_seconds: 2.5\n"
        "    stages: [1.0, 0.6]",
        "histogram: psp_client_seconds\n    threshold_seconds: 0.4\n    stages: []",
    )
    with pytest.raises(SpecError) as info:
        parse_spec(edited(*own), source=FILE)
    assert info.value.location == f"{FILE}: slos[1] (latency).threshold_seconds"
    assert "psp_client_seconds is not one of the exporter's histograms" in info.value.detail
    assert "buckets: {psp_client_seconds: [...]}" in info.value.detail
    assert "0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25" in info.value.detail
    buckets = "min_rate: 0.05\nbuckets:\n  psp_client_seconds: [0.1, 0.4]\n"
    declared = edited("min_rate: 0.05\n", buckets)
    assert parse_spec(edited(*own, declared), source=FILE) is not None


def test_a_stage_not_below_the_threshold_gets_an_example_from_its_own_buckets() -> None:
    """The example of next thresholds is made for this SLO: bucket boundaries of its
    histogram below its threshold (a trial with a 1 s threshold was shown the kit's
    example for 2.5 s, [1.0, 0.6], whose 1.0 is not below it); the example is accepted."""
    kits = "threshold_seconds: 2.5\n    stages: [1.0, 0.6]"
    committed = "threshold_seconds: 1.0\n    stages: [{}]"
    with pytest.raises(SpecError) as info:
        parse_spec(edited(kits, committed.format("1.0")))
    found = re.search(r"e\.g\. \[([0-9., ]+)\]$", info.value.detail)
    assert found is not None, info.value.detail
    example = found.group(1)
    assert all(float(stage) < 1.0 for stage in example.split(", ")), example
    text = edited(kits, committed.format(example))
    assert parse_spec(text, source=FILE) is not None


def test_the_exporters_histogram_of_another_namespace_is_told_the_namespace() -> None:
    """A spec left on the kit's namespace for an app with ``Metrics(namespace="shop")``:
    its latency threshold on ``shop_request_duration_seconds`` got the advice to list that
    histogram's buckets (a trial followed it: a build whose rules selected nothing); it is
    told the namespace, first."""
    text = edited(
        "histogram: limoneide_request_duration_seconds\n",
        "histogram: shop_request_duration_seconds\n",
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text, source=FILE)
    assert info.value.location == f"{FILE}: slos[1] (latency).threshold_seconds"
    assert info.value.detail.startswith(
        "shop_request_duration_seconds is the exporter's series in namespace 'shop', but the "
        "spec's namespace is 'limoneide': set `namespace: shop` if the app's "
        "Metrics(namespace=...) is 'shop'"
    ), info.value.detail
    assert "buckets:" not in info.value.detail


def test_a_dependency_threshold_off_its_buckets_names_the_right_argument() -> None:
    """The dependency histogram's buckets are set with Metrics(dependency_buckets=...)."""
    text = edited("    threshold_seconds: 2.5\n    stages: [1.0]\n", "    threshold_seconds: 0.3\n")
    with pytest.raises(SpecError) as info:
        parse_spec(text, source=FILE)
    assert "(Metrics(dependency_buckets=...))" in info.value.detail


def test_prometheus_clients_default_buckets_are_the_ones_named() -> None:
    """The list the errors name is prometheus-client's own."""
    from prometheus_client import Histogram  # noqa: PLC0415 - the exporter's dependency

    assert (*c.CLIENT_DEFAULT_BUCKETS, float("inf")) == Histogram.DEFAULT_BUCKETS
