"""limone_obs.report.slos: what the report reads from the SLO spec."""

from __future__ import annotations

from limone_obs.alerts.spec import load_spec
from limone_obs.report.slos import ROADMAP_THRESHOLDS, Roadmap, roadmap
from tests.support import ROOT

SPEC = load_spec(ROOT / "alerts" / "slo.yaml")


def test_roadmap_is_the_request_latency_slos() -> None:
    """The shipped spec: the latency SLO's committed 2.5 s, then its stages 1 s and 0.6 s
    (not ai-latency, whose histogram is another)."""
    assert Roadmap((2.5, 1.0, 0.6), "latency") == roadmap(SPEC, SPEC.namespace)


def test_roadmap_without_a_matching_slo_is_the_seeds() -> None:
    """No spec, or no SLO on the namespace's request histogram: the seed's roadmap."""
    assert Roadmap(ROADMAP_THRESHOLDS, None) == roadmap(None, "limoneide")
    assert Roadmap(ROADMAP_THRESHOLDS, None) == roadmap(SPEC, "shop")
