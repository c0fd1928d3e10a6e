"""Integration: ``limone-obs status``'s hints read a real Prometheus's ``/api/v1/rules``.

Prometheus loads the rule files of an older build of the spec (its SLO was called
``uptime``); the spec has since renamed it ``availability`` and gained a threshold SLO.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from limone_obs.alerts.spec import parse_spec
from limone_obs.cli import main
from limone_obs.stack import configs, procs
from limone_obs.stack.status import Prometheus, SloStatus, missing_rules_hint
from tests.support import need

pytestmark = pytest.mark.integration

OLD = """
service: shop
slos:
  - name: uptime
    kind: ratio
    objective: 99.5
"""
NEW = """
service: shop
slos:
  - name: availability
    kind: ratio
    objective: 99.5
  - name: errors
    kind: threshold
    objective: 99
"""
#: The table of NEW: the threshold SLO read from the raw counter, the budget SLO empty.
ROWS = [
    SloStatus("availability", "ratio", 99.5, None, None, {"5m": None}),
    SloStatus("errors", "threshold", 99.0, 1.0, None),
]


def _evaluated(prom: Prometheus) -> list[dict[str, object]]:
    """The rule groups, once every one has been evaluated (60 s at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        groups = prom.rule_groups() or []
        if groups and all(g.get("lastEvaluation") != "0001-01-01T00:00:00Z" for g in groups):
            return groups
        time.sleep(0.5)
    raise AssertionError(f"Prometheus at {prom.url} evaluated no rule group in 60 s")


def test_the_renamed_slo_is_named_from_the_rules_prometheus_loaded(tmp_path: Path) -> None:
    binary = need("prometheus")
    old = tmp_path / "old" / "alerts" / "slo.yaml"
    old.parent.mkdir(parents=True)
    old.write_text(OLD)
    built = CliRunner().invoke(main, ["build", "--root", str(tmp_path / "old")])
    assert 0 == built.exit_code, built.output
    rules = tmp_path / "old" / "alerts" / "rules" / "slo-recording.yml"
    config = configs.prometheus_config(
        job="shop", app_target="127.0.0.1:9", alertmanager_target=None,
        scrape_interval="1s", rule_files=[str(rules)],
    )  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(config)
    port = procs.free_port()
    argv = procs.prometheus_argv(binary, tmp_path / "prometheus.yml", tmp_path / "data", port)
    proc = procs.start("prometheus", argv, tmp_path / "prometheus.log")
    try:
        url = f"http://{procs.LOOPBACK}:{port}"
        procs.wait_http(proc, f"{url}/-/ready", timeout=60)
        groups = _evaluated(Prometheus(url))
        hint = missing_rules_hint(parse_spec(NEW), Path("alerts/slo.yaml"), url, ROWS, groups)
    finally:
        proc.stop()
    assert hint is not None
    assert hint.startswith(
        "SLO 'availability' of alerts/slo.yaml (service 'shop') has no recording rule in "
        f"Prometheus at {url}: its rule files come from an older build of this spec"
    ), hint
    # The same rules seen for the old spec: every SLO of it has its rules, nothing to say.
    uptime = [SloStatus("uptime", "ratio", 99.5, None, None, {"5m": None})]
    assert None is missing_rules_hint(parse_spec(OLD), old, url, uptime, groups)
