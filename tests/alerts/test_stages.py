"""Staged latency objectives: only the committed threshold alerts; each next stage records
its progress; the stages are validated like thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from limone_obs import conventions as c
from limone_obs.alerts import build, rules
from limone_obs.alerts.kinds.latency import LatencySli
from limone_obs.alerts.spec import load_spec, parse_spec
from limone_obs.errors import SpecError
from tests.alerts.helpers import SPEC_FILE, edited, write_tree
from tests.support import ROOT, promtool_test

SPEC = load_spec(SPEC_FILE)
STAGED = "threshold_seconds: 2.5\n    stages: [1.0, 0.6]"


def _latency() -> LatencySli:
    sli = SPEC.slo("latency").sli
    assert isinstance(sli, LatencySli)
    return sli


def test_the_shipped_latency_slo_commits_to_2_5_s_with_1_s_and_0_6_s_next() -> None:
    """The roadmap of the seed: 2.5 s pages, 1 s and 0.6 s are the next stages."""
    sli = _latency()
    assert (2.5, (1.0, 0.6)) == (sli.threshold_seconds, sli.stages)


def test_each_stage_records_its_share_per_window() -> None:
    """One slo:stage_sli:ratio_rate<w> per stage and window, labelled stage_seconds."""
    groups = rules.slo_recording_groups(SPEC, SPEC.slo("latency"))
    found = sorted(
        (r["record"], r["labels"][c.LABEL_STAGE])
        for g in groups
        for r in g["rules"]
        if c.LABEL_STAGE in r["labels"]
    )
    expected = sorted((c.stage_sli_rule(w), s) for w in c.STAGE_WINDOWS for s in ("1", "0.6"))
    assert expected == found


def test_no_alert_uses_a_stage_threshold() -> None:
    """Only the committed threshold alerts: no rule compares with 1 s or 0.6 s buckets."""
    text = (ROOT / build.ALERTING_RULES).read_text()
    assert ('le=~"1(\\\\.0)?"' not in text, 'le="0.6"' not in text, "> 2.5" in text) == (
        True,
        True,
        True,
    )


@pytest.mark.parametrize(
    ("stages", "where", "message"),
    [
        ("[1.0, 0.8]", "stages[1]", "0.8 s is not a bucket boundary"),
        ("[2.5]", "stages[0]", "2.5 s is not below 2.5 s"),
        ("[0.6, 1.0]", "stages[1]", "1 s is not below 0.6 s"),
        ("[fast]", "stages[0]", "must be a number of seconds"),
        ("1.0", "stages", "must be a list of thresholds"),
    ],
)
def test_a_bad_stage_is_rejected_with_its_location(stages: str, where: str, message: str) -> None:
    """A stage off the buckets, not descending, or not a number names its index."""
    text = edited("stages: [1.0, 0.6]", f"stages: {stages}")
    with pytest.raises(SpecError) as caught:
        parse_spec(text)
    assert (f"slos[1] (latency).{where}" in str(caught.value), message in str(caught.value)) == (
        True,
        True,
    ), str(caught.value)


def test_a_page_load_histogram_takes_2_s_as_threshold_and_stage() -> None:
    """The page-load histogram has its own buckets (conventions), 2 s and 1 s among them."""
    histogram = f'{SPEC.namespace}_{c.SUFFIX_PAGE_LOAD_SECONDS}{{phase="load"}}'
    text = edited(
        "histogram: limoneide_request_duration_seconds\n    " + STAGED,
        f"histogram: {histogram}\n    threshold_seconds: 2.0\n    stages: [1.0]",
    )
    sli = parse_spec(text).slo("latency").sli
    assert isinstance(sli, LatencySli)
    assert (2.0, (1.0,)) == (sli.threshold_seconds, sli.stages)


def test_the_staged_scenario_checks_every_stage_and_the_average() -> None:
    """The generated latency tests feed a 2 s average and expect each stage's share."""
    doc = yaml.safe_load((ROOT / build.GENERATED_TESTS_DIR / "latency.yml").read_text())
    (staged,) = [t for t in doc["tests"] if "staged objective" in t["name"]]
    values = [s["exp_samples"][0]["value"] for s in staged["promql_expr_test"]]
    silent = {check["alertname"]: check["exp_alerts"] for check in staged["alert_rule_test"]}
    assert (
        [0.25, 0.25, 0.125, 0.125, 2000],
        {"LatencyErrorBudgetBurn": [], "LatencyP95High": [], "LatencySliAbsent": []},
    ) == (
        values,
        silent,
    )


@pytest.mark.integration
def test_the_staged_scenario_fails_when_the_committed_threshold_is_lower(tmp_path: Path) -> None:
    """The "pages nobody" check can fail: with the p95 alert at 2 s it fires on a 2 s mix."""
    write_tree(tmp_path, build.generate(SPEC))
    path = tmp_path / build.ALERTING_RULES
    path.write_text(path.read_text().replace("\n      > 2.5\n", "\n      > 2\n"))
    test = tmp_path / build.GENERATED_TESTS_DIR / "latency.yml"
    doc = yaml.safe_load(test.read_text())
    doc["tests"] = [t for t in doc["tests"] if "staged objective" in t["name"]]
    test.write_text(yaml.safe_dump(doc))
    result = promtool_test(test, tmp_path)
    output = result.stdout + result.stderr
    assert (1, True) == (result.returncode, "LatencyP95High" in output), output


PAGE_LOAD_SLO = """
  - name: page-load-staged
    kind: latency
    objective: 75
    description: Pages loaded within 2 seconds in the browser (next step 1 s).
    histogram: limoneide_page_load_seconds{phase="load"}
    threshold_seconds: 2.0
    stages: [1.0]
    tiers: {page-fast: "off", page-slow: "off"}
"""


@pytest.mark.integration
def test_a_staged_page_load_slo_passes_its_generated_promtool_tests(tmp_path: Path) -> None:
    """A page-load SLO (2 s committed, 1 s next) on its own histogram's buckets generates
    rules and tests that promtool passes, the staged scenario included."""
    spec = parse_spec(SPEC_FILE.read_text() + PAGE_LOAD_SLO)
    write_tree(tmp_path, build.generate(spec))
    test = tmp_path / build.GENERATED_TESTS_DIR / "page-load-staged.yml"
    doc = yaml.safe_load(test.read_text())
    result = promtool_test(test, tmp_path)
    staged = [t["name"] for t in doc["tests"] if "staged objective" in t["name"]]
    assert (0, 1) == (result.returncode, len(staged)), result.stdout[-3000:] + result.stderr
