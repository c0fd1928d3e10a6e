"""The report's "alerts fired" against a real Prometheus: an alert seen firing only while
an alert inhibiting it (the kit's Alertmanager inhibit rules, built from the spec) fired
is marked inhibited, by each kind of rule; one that fired on its own for a while, or that
began after the window's last sample, is not.

The alerts are hand-written rules whose expressions are constants, or start once
Prometheus has scraped a number of times, so what was firing when is known without a load.
"""

from __future__ import annotations

import math
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
from limone_obs.report.model import CARRIED
from limone_obs.report.prometheus import Prometheus
from limone_obs.report.window import Span
from tests.support import ROOT, prometheus_server, serve, wait_until

pytestmark = pytest.mark.integration

SPEC = load_spec(ROOT / "alerts" / "slo.yaml")
#: Scrapes (one a second) after which the ai-latency page starts firing (its ticket fires
#: alone until then), and after which the ai-answer-shown ticket starts.
PAGE_AFTER, LATE_AFTER = 8, 14


def _alert(name: str, slo: str, severity: str, expr: str = "vector(1)") -> dict[str, Any]:
    labels = {"slo": slo, "slo_service": SPEC.service, "severity": severity}
    return {"alert": name, "expr": expr, "labels": labels}


def _after(scrapes: int) -> str:
    """Firing once Prometheus has scraped the app more than ``scrapes`` times."""
    return f'vector(1) and on () count_over_time(up{{job="{SPEC.job}"}}[1m]) > {scrapes}'


def _rules(folder: Path) -> Path:
    rules = [
        # A page and the ticket of the same SLO (rule: page silences ticket).
        _alert("LatencyErrorBudgetBurn", "latency", "page"),
        _alert("LatencyErrorBudgetBurn", "latency", "ticket"),
        # The availability page silences ErrorsHigh (rule with equal: [slo_service]).
        _alert("AvailabilityErrorBudgetBurn", "availability", "page"),
        _alert("ErrorsHigh", "errors", "page"),
        # TargetDown silences every SliAbsent (a regex rule); the SLO has no page.
        _alert("TargetDown", "up", "page"),
        _alert("PageLoadSliAbsent", "page-load", "ticket"),
        _alert("PageLoadErrorBudgetBurn", "page-load", "ticket"),
        # A ticket alone for a while, then under its page.
        _alert("AiLatencyErrorBudgetBurn", "ai-latency", "ticket"),
        _alert("AiLatencyErrorBudgetBurn", "ai-latency", "page", _after(PAGE_AFTER)),
        # A ticket beginning just before the window ends (after its last sampled step).
        _alert("AiAnswerShownErrorBudgetBurn", "ai-answer-shown", "ticket", _after(LATE_AFTER)),
    ]
    path = folder / "alerts.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "hand-made", "rules": rules}]}))
    return path


Fired = tuple[dict[str, Any], list[str]]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Fired, Fired]:
    """The alerts fired and the notes of a window from before the first alert to just
    after the late ticket began, and of its part from when the constant alerts fired."""
    folder = tmp_path_factory.mktemp("inhibited")
    app = Flask("inhibited")
    Metrics(app)
    app.get("/")(lambda: "ok")
    started = time.time()
    with (
        serve(app, quiet=True) as base,
        prometheus_server(
            folder, base.removeprefix("http://"), job=SPEC.job, rule_files=[str(_rules(folder))]
        ) as url,
    ):
        prom = Prometheus(url)

        def firing(query: str) -> Callable[[], bool]:
            return lambda: bool(prom.instant(query, time.time()))

        # Requests once the counter has been scraped: the report's window needs some.
        requests.get(f"{base}/", timeout=5)
        wait_until(firing(f'{SPEC.names.requests_total}{{job="{SPEC.job}"}}'), "a scrape")
        wait_until(firing('ALERTS{alertstate="firing",slo="availability"}'), "a constant alert")
        later = time.time()  # the second window's start: the constant alerts fire already
        # A scrape inside that window before the requests: its increase() counts them.
        scraped = f'timestamp({SPEC.names.requests_total}{{job="{SPEC.job}"}}) > {later}'
        wait_until(firing(scraped), "a scrape in the second window")
        for _ in range(20):
            requests.get(f"{base}/", timeout=5)
        late = 'ALERTS{alertstate="firing",slo="ai-answer-shown"}'
        wait_until(firing(late), "the late ticket firing", timeout=60)
        # The window ends within the second its first sample came: after the last step
        # (every second, on whole seconds) of the report's subquery.
        (sample,) = prom.instant(f"timestamp({late})", time.time())
        first = sample.value
        assert not prom.instant(late, first - 0.001), "not its first sample: polled too late"
        end = math.floor(first) + 0.999
        assert first <= end
        found = [
            collect(prom, job=SPEC.job, service=SPEC.service, namespace=SPEC.namespace,
                    window=window, baseline=None, spec=SPEC)
            for window in (Span(started, end), Span(later, end))
        ]  # fmt: skip
    whole, last = ((({s.name: s.fired for s in r.slos}, list(r.notes))) for r in found)
    return whole, last


@pytest.fixture(scope="module")
def fired(reports: tuple[Fired, Fired]) -> Fired:
    return reports[0]


def test_a_ticket_firing_only_under_its_page_is_marked_inhibited(
    fired: tuple[dict[str, Any], list[str]],
) -> None:
    slos, notes = fired
    assert (
        "LatencyErrorBudgetBurn (page)", f"LatencyErrorBudgetBurn (ticket, {INHIBITED})",
    ) == slos["latency"]  # fmt: skip
    assert [n for n in notes if n.startswith(f"Alerts marked '{INHIBITED}'")]


def test_each_kind_of_inhibit_rule_marks_what_it_held_back(
    fired: tuple[dict[str, Any], list[str]],
) -> None:
    slos, _ = fired
    assert ("AvailabilityErrorBudgetBurn (page)",) == slos["availability"]
    assert (f"ErrorsHigh (page, {INHIBITED})",) == slos["errors"]
    assert ("TargetDown (page)",) == slos["up"]
    assert (
        "PageLoadErrorBudgetBurn (ticket)", f"PageLoadSliAbsent (ticket, {INHIBITED})",
    ) == slos["page-load"]  # fmt: skip


def test_a_ticket_alone_for_a_while_or_after_the_last_step_is_not_marked(
    fired: tuple[dict[str, Any], list[str]],
) -> None:
    slos, _ = fired
    assert (
        "AiLatencyErrorBudgetBurn (page)", "AiLatencyErrorBudgetBurn (ticket)",
    ) == slos["ai-latency"]  # fmt: skip
    assert ("AiAnswerShownErrorBudgetBurn (ticket)",) == slos["ai-answer-shown"]


def test_an_alert_firing_since_before_the_window_is_marked_so(
    reports: tuple[Fired, Fired],
) -> None:
    """In a window from when the constant alerts fired already, those are marked as
    firing at the window's start (not new in it: a trial's summary listed such
    pages as fired), the ticket that began inside them is not, and a note says what the
    mark means; the whole window (no alert before it) has no such mark."""
    (whole, whole_notes), (last, notes) = reports
    assert (f"AvailabilityErrorBudgetBurn (page, {CARRIED})",) == last["availability"]
    assert ("AiAnswerShownErrorBudgetBurn (ticket)",) == last["ai-answer-shown"]
    assert [n for n in notes if n.startswith(f"Alerts marked '{CARRIED}'")]
    assert not [t for texts in whole.values() for t in texts if CARRIED in t]
    assert not [n for n in whole_notes if CARRIED in n]
