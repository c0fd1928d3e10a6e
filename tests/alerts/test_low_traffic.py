"""Low traffic: an outage below min_rate still pages (AllFailing); two instances with one
failing alert once for the service. The scenarios are generated promtool tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from limone_obs import conventions as c
from limone_obs.alerts import build
from limone_obs.alerts.spec import load_spec
from tests.alerts.helpers import SPEC_FILE, write_tree
from tests.support import ROOT, promtool_test

SPEC = load_spec(SPEC_FILE)
ALL_FAILING = c.slo_alert_name("availability", c.ALERT_SUFFIX_ALL_FAILING)


def _tests(slo: str) -> list[dict[str, Any]]:
    doc = yaml.safe_load((ROOT / build.GENERATED_TESTS_DIR / f"{slo}.yml").read_text())
    tests: list[dict[str, Any]] = doc["tests"]
    return tests


def _fired(test: dict[str, Any]) -> set[str]:
    return {check["alertname"] for check in test["alert_rule_test"] if check["exp_alerts"]}


def test_the_outage_below_min_rate_expects_all_failing_and_no_burn_page() -> None:
    """At a quarter of min_rate, every request failing: AllFailing fires, nothing else."""
    (outage,) = [t for t in _tests("availability") if "every request failing" in t["name"]]
    assert {ALL_FAILING} == _fired(outage)


@pytest.mark.parametrize("slo", ["availability", "errors"])
def test_two_instances_one_failing_fire_once_without_an_instance_label(slo: str) -> None:
    """Half the traffic failing on one of two instances: each alert expected once, with
    no instance label."""
    (test,) = [t for t in _tests(slo) if "two instances" in t["name"]]
    alerts = [a for check in test["alert_rule_test"] for a in check["exp_alerts"]]
    instances = {s["series"].split('instance="')[1].split('"')[0] for s in test["input_series"]}
    assert (True, 2, False) == (
        bool(alerts),
        len(instances),
        any(c.LABEL_INSTANCE in a["exp_labels"] for a in alerts),
    )


@pytest.mark.integration
def test_the_outage_test_fails_when_all_failing_keeps_the_min_rate_guard(tmp_path: Path) -> None:
    """The low-traffic scenario can fail: guarded by min_rate, AllFailing stays silent."""
    write_tree(tmp_path, build.generate(SPEC))
    path = tmp_path / build.ALERTING_RULES
    text = path.read_text()
    guarded = text.replace(
        "      >= 1\n    for: 5m\n",
        "      >= 1\n      and on () sum(rate(limoneide_requests_total[5m])) >= 0.05\n"
        "    for: 5m\n",
    )
    assert guarded != text
    path.write_text(guarded)
    test = tmp_path / build.GENERATED_TESTS_DIR / "availability.yml"
    doc = yaml.safe_load(test.read_text())
    doc["tests"] = [t for t in doc["tests"] if "every request failing" in t["name"]]
    test.write_text(yaml.safe_dump(doc))
    result = promtool_test(test, tmp_path)
    output = result.stdout + result.stderr
    assert (1, True) == (result.returncode, ALL_FAILING in output), output
