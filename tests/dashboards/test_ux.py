"""The user-experience dashboard draws its targets from the spec's RUM SLOs."""

from __future__ import annotations

import re
from typing import Any

from limone_obs.alerts.spec import parse_spec
from limone_obs.dashboards.generate import build_all
from limone_obs.dashboards.lint import panels
from limone_obs.dashboards.slo_inputs import from_spec
from tests.support import ROOT

SPEC = (ROOT / "alerts" / "slo.yaml").read_text()
PAGE_LOAD = "Page load p75 / p95 by page"
AI_ANSWER = "AI answer shown p75 / p95"


def _steps(spec: str, title: str) -> tuple[list[tuple[str, float | None]], str]:
    """The threshold steps and description of the panel ``title`` of ux.json."""
    board: dict[str, Any] = build_all(from_spec(parse_spec(spec)))["ux.json"]
    (panel,) = [p for p in panels(board) if p.get("title") == title]
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(s["color"], s["value"]) for s in steps], panel["description"]


def _with_rum(spec: str, slo: str, threshold: str, stages: str) -> str:
    """``spec`` with the RUM SLO ``slo`` given another threshold and stages."""
    pattern = rf"(- name: {slo}\n(?:    .*\n)*?    threshold_seconds: )\S+\n    stages: \[[^\]]*\]"
    changed, count = re.subn(pattern, rf"\g<1>{threshold}\n    stages: [{stages}]", spec)
    assert count == 1
    return changed


def test_the_shipped_spec_draws_its_thresholds_and_next_stages() -> None:
    """Page load: red at 2 s, orange at the 1 s stage; AI answer: 2.5 s and 1 s."""
    assert _steps(SPEC, PAGE_LOAD)[0] == [("green", None), ("orange", 1.0), ("red", 2.0)]
    steps, description = _steps(SPEC, AI_ANSWER)
    assert steps == [("green", None), ("orange", 1.0), ("red", 2.5)]
    assert "2.5 s target and the 1 s next stage (SLO ai-answer-shown)" in description


def test_a_spec_with_other_thresholds_moves_the_lines() -> None:
    """page-load at 3 s with a 1.5 s stage is drawn there, not at the kit's 2 s."""
    spec = _with_rum(SPEC, "page-load", "3.0", "1.5")
    steps, description = _steps(spec, PAGE_LOAD)
    assert steps == [("green", None), ("orange", 1.5), ("red", 3.0)]
    assert "3 s target and the 1.5 s next stage (SLO page-load)" in description


def test_without_rum_slos_the_default_targets_say_so() -> None:
    """A spec without the RUM SLOs: the seed's 2 s and 1 s, named as defaults."""
    spec = re.sub(r"  - name: (page-load|ai-answer-shown)\n(?:    .*\n)+", "", SPEC)
    assert ("page-load" in spec, "ai-answer-shown" in spec) == (False, False)
    steps, description = _steps(spec, AI_ANSWER)
    assert steps == [("green", None), ("red", 1.0)]
    assert "no SLO of limoneide times it: the default" in description
