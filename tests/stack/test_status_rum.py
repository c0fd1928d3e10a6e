"""``limone-obs status`` shows the user-experience SLOs from real RUM data."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from limone_obs import conventions as c
from limone_obs.alerts.spec import SPEC_PATH, load_spec
from limone_obs.stack.status import Prometheus, collect, render
from tests.dashboards.example_app import create_app
from tests.dashboards.scenario import instant, running
from tests.support import ROOT, need

pytestmark = pytest.mark.integration
RUM_SLOS = ("page-load", "ai-answer-shown")


def _ready(url: str, timeout: float = 60.0) -> None:
    exprs = [f'{c.RULE_PERIOD_BUDGET_REMAINING}{{slo="{slo}"}}' for slo in RUM_SLOS]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(instant(url, expr) for expr in exprs):
            return
        time.sleep(0.5)
    pytest.fail(f"no RUM budget rules after {timeout:.0f} s of load")


def test_status_has_a_row_for_each_rum_slo(tmp_path: Path) -> None:
    """With beacons flowing (healthy: every page fast), each RUM SLO row has an SLI of 1."""
    spec = load_spec(ROOT / SPEC_PATH)
    with running(create_app(faults=False), tmp_path, need("prometheus"), _ready) as live:
        rows = {row.name: row for row in collect(Prometheus(live.url), spec)}
    assert {slo: rows[slo].sli for slo in RUM_SLOS} == dict.fromkeys(RUM_SLOS, 1.0)
    table = render(list(rows.values()))
    assert all(slo in table for slo in RUM_SLOS)
