"""The latency lines and the 5xx limit of the panels come from the service's own spec."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from limone_obs.alerts.spec import parse_spec
from limone_obs.dashboards.generate import build_all
from limone_obs.dashboards.slo_inputs import from_spec

#: An orders service: 95 % within 0.4 s, next 0.25 s; a 2 % error SLO on one endpoint only.
ORDERS = """
version: 1
service: orders-api
job: orders
namespace: limoneide
period: 30d
slos:
  - name: availability
    kind: ratio
    objective: 99.5
    total: limoneide_requests_total
    errors: limoneide_requests_total{status=~"5.."}
  - name: checkout-errors
    kind: threshold
    objective: 98
    total: limoneide_requests_total{endpoint="/checkout"}
    errors: limoneide_requests_total{endpoint="/checkout",status=~"5.."}
    window: 10m
  - name: pricing-latency
    kind: latency
    objective: 90
    histogram: limoneide_dependency_duration_seconds{dependency="pricing"}
    threshold_seconds: 2.0
    tiers: {page-fast: "off", page-slow: "off"}
  - name: latency
    kind: latency
    objective: 95
    histogram: limoneide_request_duration_seconds
    threshold_seconds: 0.4
    stages: [0.25]
"""
#: The same service with no latency SLO and no error SLO over all requests.
BARE = ORDERS.split("  - name: pricing-latency", maxsplit=1)[0].replace(
    """  - name: availability
    kind: ratio
    objective: 99.5
    total: limoneide_requests_total
    errors: limoneide_requests_total{status=~"5.."}
""",
    "",
)


def _boards(spec: str) -> dict[str, dict[str, Any]]:
    """``{"overview": dashboard, ...}`` of ``spec``'s service."""
    built = build_all(from_spec(parse_spec(spec)))
    return {name.removesuffix(".json"): board for name, board in built.items()}


def _panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _panel(board: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in _panels(board) if p["title"] == title)


def _steps(panel: dict[str, Any]) -> list[tuple[str, float | None]]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(step["color"], step["value"]) for step in steps]


def _les(panel: dict[str, Any]) -> list[str]:
    return [m for t in panel["targets"] for m in re.findall(r'le=~?"([^"]+)"', t["expr"])]


def test_latency_panels_draw_the_specs_threshold_and_stages() -> None:
    """A latency SLO of 0.4 s, next 0.25 s: the share panel draws both (the kit's 0.6 s
    and 1 s were drawn, reading 100 % while the objective was missed), and every latency
    panel of the service colours red from 0.4 s and orange from 0.25 s, saying why. The
    dependency SLO's 2 s is not the request's; the dependency latency panels draw it (the
    request's lines are not a dependency's), and queue time draws none."""
    boards = _boards(ORDERS)
    overview = boards["overview"]
    within = _panel(overview, "Requests within 0.4 s")
    assert ["0.4", "0.25"] == _les(within)
    assert "95 % within 0.4 s" in within["description"]
    expected = [("green", None), ("orange", 0.25), ("red", 0.4)]
    latency_panels = [
        _panel(overview, "p95 latency"),
        _panel(overview, "p99 latency"),
        _panel(overview, "Latency percentiles"),
        _panel(boards["endpoint"], "p95 latency"),
        _panel(boards["endpoint"], "Latency percentiles"),
        _panel(boards["endpoint"], "Time per request by dependency"),
        _panel(boards["dependencies"], "Seconds per request"),
    ]
    for panel in latency_panels:
        assert expected == _steps(panel), panel["title"]
        assert "SLO latency: 95 % within 0.4 s, next 0.25 s" in panel["description"]
    for title in ("p95 by dependency", "$dependency: p50 / p95"):
        panel = _panel(boards["dependencies"], title)
        assert [("green", None), ("red", 2.0)] == _steps(panel), title
        assert "2 s for pricing calls (pricing-latency)" in panel["description"]
    assert [("green", None)] == _steps(_panel(boards["ux"], "Queue time p50 / p95"))
    assert _panel(boards["dependencies"], "Calls within 2 s")
    text = str(boards)
    assert "0.6 s" not in text
    assert "1 s, then" not in text


def test_the_slow_request_filter_of_the_logs_uses_the_request_latency_slo() -> None:
    """The logs dashboard's slow requests are those over the request SLO's 0.4 s, not
    over the first latency SLO of the spec (a dependency's 2 s)."""
    logs = _boards(ORDERS)["logs"]
    assert "duration > 0.4" in str(logs)


def test_without_a_latency_slo_the_kits_targets_are_drawn_and_said() -> None:
    """No request latency SLO: 0.6 s and 1 s, and the description says they are the
    kit's defaults."""
    overview = _boards(BARE)["overview"]
    within = _panel(overview, "Requests within 1 s")
    assert ["1", "0.6"] == [le.split("(")[0] for le in _les(within)]
    p95 = _panel(overview, "p95 latency")
    assert [("green", None), ("orange", 0.6), ("red", 1.0)] == _steps(p95)
    assert "the kit's default targets" in p95["description"]


def test_a_latency_slo_of_one_endpoint_is_no_target_of_the_whole_service() -> None:
    """95 % of /quote within 0.4 s says nothing of the other endpoints: the service's
    panels draw the kit's targets and say why (they drew 0.4 s, and the share of all
    requests within it read 100 % while /quote missed its objective)."""
    scoped = ORDERS.replace(
        "    histogram: limoneide_request_duration_seconds\n",
        '    histogram: limoneide_request_duration_seconds{endpoint="/quote"}\n',
    )
    boards = _boards(scoped)
    overview = boards["overview"]
    within = _panel(overview, "Requests within 1 s")
    assert ["1", "0.6"] == [le.split("(")[0] for le in _les(within)]
    for panel in (_panel(overview, "p95 latency"), _panel(boards["endpoint"], "p95 latency")):
        assert [("green", None), ("orange", 0.6), ("red", 1.0)] == _steps(panel)
        assert 'SLO latency counts only endpoint="/quote"' in panel["description"]
    assert "within 0.4 s" not in str(overview)


def test_the_5xx_limit_is_an_slo_over_all_requests_not_one_endpoints() -> None:
    """A 2 % error SLO on /checkout only is no limit for the whole service: the 5xx
    panels use the availability SLO over all requests (0.5 %), and without one the
    default 1 %."""
    overview = _boards(ORDERS)["overview"]
    ratio = _panel(overview, "5xx ratio")
    assert "the limit is 0.5 %." in ratio["description"]  # it said "0%" (rounded)
    assert ("red", 0.005) == _steps(ratio)[-1]
    bare = _panel(_boards(BARE)["overview"], "5xx ratio")
    assert ("red", 0.01) == _steps(bare)[-1]


def test_no_panel_has_two_colour_steps_at_one_value() -> None:
    """A warn band as wide as nothing is left out, not written as a step Grafana lists
    (orange 0.005 then red 0.005 on the 5xx ratio): for the kit's spec and this one."""
    for spec in (ORDERS, BARE):
        for name, board in _boards(spec).items():
            for panel in _panels(board):
                thresholds = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds")
                values = [s["value"] for s in (thresholds or {}).get("steps", [])]
                assert len(values) == len(set(values)), (name, panel["title"], values)


#: ORDERS with a second dependency latency SLO and its own saturation ticket.
TWO_DEPENDENCIES = (
    ORDERS.replace(
        "  - name: latency\n",
        """  - name: ai-latency
    kind: latency
    objective: 95
    histogram: limoneide_dependency_duration_seconds{dependency="ai_api"}
    threshold_seconds: 1.5
    tiers: {page-fast: "off", page-slow: "off"}
  - name: latency
""",
    )
    + "health:\n  workers_saturated: {above: 0.75, for: 10m}\n"
)


def test_every_dependency_slo_draws_its_threshold_and_has_its_row() -> None:
    """Two dependency latency SLOs: the dependency latency panels draw both thresholds,
    each named, and each SLO has its row (only the first had one); the Worker saturation
    panel's line is the spec's WorkersSaturated threshold."""
    boards = _boards(TWO_DEPENDENCIES)
    dependencies = boards["dependencies"]
    panel = _panel(dependencies, "p95 by dependency")
    assert [("green", None), ("red", 1.5), ("red", 2.0)] == _steps(panel)
    assert (
        "2 s for pricing calls (pricing-latency), 1.5 s for ai_api calls (ai-latency)"
        in (panel["description"])
    )
    rows = [p["title"] for p in dependencies["panels"] if p["type"] == "row"]
    assert ["SLO pricing-latency", "SLO ai-latency"] == [r for r in rows if r.startswith("SLO")]
    saturation = _panel(boards["ux"], "Worker saturation")
    assert [("green", None), ("orange", 0.75), ("red", 1.0)] == _steps(saturation)
    assert "ticket's 75 %" in saturation["description"]
