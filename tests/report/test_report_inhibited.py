"""The report's "alerts fired" against a real Prometheus: an alert that fired only while
an alert inhibiting it (the kit's Alertmanager inhibit rules, built from the spec) fired
is marked inhibited; one that fired on its own for a while is not.

The alerts are hand-written rules whose expressions are constants (and one that starts
firing seconds later), so what was firing when is known without a load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flask import Flask

from limone_obs import Metrics
from limone_obs.alerts.spec import load_spec
from limone_obs.report import collect
from limone_obs.report.collect import INHIBITED
from limone_obs.report.prometheus import Prometheus
from limone_obs.report.window import Span
from tests.support import ROOT, prometheus_server, serve, wait_until

pytestmark = pytest.mark.integration

SPEC = load_spec(ROOT / "alerts" / "slo.yaml")
#: Seconds after Prometheus' start at which the ai-latency page starts firing: its
#: ticket fires alone until then.
PAGE_LATER = 8.0


def _alert(name: str, slo: str, severity: str, expr: str = "vector(1)") -> dict[str, Any]:
    labels = {"slo": slo, "slo_service": SPEC.service, "severity": severity}
    return {"alert": name, "expr": expr, "labels": labels}


def _rules(folder: Path, later: float) -> Path:
    rules = [
        _alert("LatencyErrorBudgetBurn", "latency", "page"),
        _alert("LatencyErrorBudgetBurn", "latency", "ticket"),
        _alert("AvailabilityErrorBudgetBurn", "availability", "ticket"),
        _alert("AiLatencyErrorBudgetBurn", "ai-latency", "ticket"),
        _alert("AiLatencyErrorBudgetBurn", "ai-latency", "page",
               f"vector(1) and on () vector(time()) > {later}"),
    ]  # fmt: skip
    path = folder / "alerts.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "hand-made", "rules": rules}]}))
    return path


@pytest.fixture(scope="module")
def fired(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[str]]:
    folder = tmp_path_factory.mktemp("inhibited")
    app = Flask("inhibited")
    Metrics(app)
    app.get("/")(lambda: "ok")
    started = time.time()
    rules = _rules(folder, started + PAGE_LATER)
    with (
        serve(app, quiet=True) as base,
        prometheus_server(
            folder, base.removeprefix("http://"), job=SPEC.job, rule_files=[str(rules)]
        ) as url,
    ):
        prom = Prometheus(url)

        def firing(query: str) -> Callable[[], bool]:
            return lambda: bool(prom.instant(query, time.time()))

        # Requests once the counter has been scraped: the report's window needs some.
        requests.get(f"{base}/", timeout=5)
        wait_until(firing(f'{SPEC.names.requests_total}{{job="{SPEC.job}"}}'), "a scrape")
        for _ in range(20):
            requests.get(f"{base}/", timeout=5)
        page = 'ALERTS{alertstate="firing",slo="ai-latency",severity="page"}'
        wait_until(firing(page), "the ai-latency page firing", timeout=60)
        time.sleep(3)  # a few evaluations with both ai-latency alerts firing
        window = Span(started, time.time())
        report = collect(prom, job=SPEC.job, service=SPEC.service, namespace=SPEC.namespace,
                         window=window, baseline=None, spec=SPEC)  # fmt: skip
    return {s.name: s.fired for s in report.slos}, list(report.notes)


def test_a_ticket_firing_only_under_its_page_is_marked_inhibited(
    fired: tuple[dict[str, Any], list[str]],
) -> None:
    slos, notes = fired
    assert (
        "LatencyErrorBudgetBurn (page)", f"LatencyErrorBudgetBurn (ticket, {INHIBITED})",
    ) == slos["latency"]  # fmt: skip
    assert [n for n in notes if n.startswith(f"Alerts marked '{INHIBITED}'")]


def test_a_ticket_without_a_page_or_before_it_is_not_marked(
    fired: tuple[dict[str, Any], list[str]],
) -> None:
    slos, _ = fired
    assert ("AvailabilityErrorBudgetBurn (ticket)",) == slos["availability"]
    assert (
        "AiLatencyErrorBudgetBurn (page)", "AiLatencyErrorBudgetBurn (ticket)",
    ) == slos["ai-latency"]  # fmt: skip
