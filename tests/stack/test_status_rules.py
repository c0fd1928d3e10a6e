"""Integration: ``limone-obs status``'s hints read a real Prometheus's ``/api/v1/rules``.

Prometheus loads the rule files of an older build of the spec (its SLO was called
``uptime``); the spec (``SHOP_TWO``) has since renamed it ``availability`` and gained a
threshold SLO, whose SLI the table reads from the raw series but whose rules (its alert
among them) Prometheus lacks as well.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from limone_obs.alerts.spec import parse_spec
from limone_obs.cli import main
from limone_obs.stack.status import Prometheus, SloStatus, rules_hint
from tests.stack.test_status import PARTIAL, SHOP_TWO
from tests.support import prometheus_server

pytestmark = pytest.mark.integration

OLD = """
service: shop
slos:
  - name: uptime
    kind: ratio
    objective: 99.5
"""


#: Longest wait for every group's first evaluation: Prometheus runs a group first at an
#: offset within its interval (up to 60 s for the long groups' 1m), and a loaded machine
#: adds to it (a CI run failed at 60 s).
FIRST_EVALUATION = 100


def _evaluated(prom: Prometheus) -> list[dict[str, object]]:
    """The rule groups, once every one has been evaluated (FIRST_EVALUATION s at most)."""
    deadline = time.monotonic() + FIRST_EVALUATION
    while time.monotonic() < deadline:
        groups = prom.rule_groups() or []
        if groups and all(g.get("lastEvaluation") != "0001-01-01T00:00:00Z" for g in groups):
            return groups
        time.sleep(0.5)
    raise AssertionError(
        f"Prometheus at {prom.url} evaluated not every rule group in {FIRST_EVALUATION} s"
    )


def test_the_renamed_slo_is_named_from_the_rules_prometheus_loaded(tmp_path: Path) -> None:
    old = tmp_path / "old" / "alerts" / "slo.yaml"
    old.parent.mkdir(parents=True)
    old.write_text(OLD)
    built = CliRunner().invoke(main, ["build", "--root", str(tmp_path / "old")])
    assert 0 == built.exit_code, built.output
    rules = tmp_path / "old" / "alerts" / "rules" / "slo-recording.yml"
    with prometheus_server(tmp_path, "127.0.0.1:9", job="shop", rule_files=[str(rules)]) as url:
        groups = _evaluated(Prometheus(url))
        hint = rules_hint(parse_spec(SHOP_TWO), Path("alerts/slo.yaml"), url, PARTIAL, groups)
    assert hint is not None
    assert hint.startswith(
        "SLOs 'availability', 'errors' of alerts/slo.yaml (service 'shop') have no recording "
        f"rule in Prometheus at {url}: the rule files Prometheus loaded come from an older "
        "build of this spec, or from another spec. Run `limone-obs build`, then"
    ), hint
    # The same rules seen for the old spec: every SLO of it has its rules, evaluated; the
    # scraped target is down, so they count no event: that is what is said.
    uptime = [SloStatus("uptime", "ratio", 99.5, None, None, {"5m": None})]
    hint = rules_hint(parse_spec(OLD), old, url, uptime, groups)
    assert hint is not None
    assert f"SLO 'uptime' of {old} (service 'shop'): its rules run but count no event" in hint
