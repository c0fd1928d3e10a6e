"""The generated inhibit rule in a real Alertmanager: a page silences its own SLO's ticket only.

Alerts are posted to Alertmanager's v2 API as another team's service would in a shared
Alertmanager; the test reads back which alerts Alertmanager marks suppressed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from limone_obs import conventions as c
from limone_obs.alerts.alertmanager import render_config
from limone_obs.alerts.spec import SPEC_PATH, load_spec
from limone_obs.stack import procs
from limone_obs.stack.webhook import WebhookReceiver
from tests.support import ROOT, need, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SPEC = load_spec(ROOT / SPEC_PATH)
PAGE, TICKET = c.SEVERITY_PAGE, c.SEVERITY_TICKET
#: Longest wait for the inhibitor to see posted alerts (it is fed asynchronously).
SETTLE = 15.0
#: How long a test watches for a second notification that must not come.
QUIET = 3.0


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1 with the generated config; yields its base URL."""
    yield from _alertmanager(tmp_path, render_config(SPEC, webhook_url="http://127.0.0.1:9/unused"))


@pytest.fixture
def delivering(tmp_path: Path) -> Iterator[tuple[str, WebhookReceiver]]:
    """A real Alertmanager delivering to a webhook receiver here (1 s group wait)."""
    with WebhookReceiver() as receiver:
        text = render_config(
            SPEC,
            webhook_url=f"{receiver.url}/alerts",
            group_wait="1s",
            group_interval="1s",
            repeat_interval="1h",
        )
        for url in _alertmanager(tmp_path, text):
            yield url, receiver


def _alertmanager(tmp_path: Path, text: str) -> Iterator[str]:
    config = tmp_path / "alertmanager.yml"
    config.write_text(text)
    port = procs.free_port()
    argv = procs.alertmanager_argv(need("alertmanager"), config, tmp_path / "data", port)
    proc = procs.start("alertmanager", argv, tmp_path / "alertmanager.log")
    try:
        url = f"http://{procs.LOOPBACK}:{port}"
        procs.wait_http(proc, f"{url}/-/ready")
        yield url
    finally:
        proc.stop()


def _post(url: str, *alerts: dict[str, str], control: bool = True) -> None:
    """Post ``alerts`` and, with ``control``, then the control pair (see _suppressed)."""
    body = [{"labels": labels} for labels in (*alerts, *(CONTROL if control else ()))]
    requests.post(f"{url}/api/v2/alerts", json=body, timeout=5).raise_for_status()


def _suppressed(url: str) -> dict[str, bool]:
    """Alert name -> whether Alertmanager marks it suppressed, once the inhibitor has seen
    every alert of the last :func:`_post` (the control pair's own name left out).

    Alertmanager feeds the alerts of one post to the inhibitor in order and
    asynchronously, and computes "suppressed" when asked: once the control ticket reads
    suppressed, the inhibitor has seen the control page, posted after every test alert,
    so each answer below is final, "not suppressed" included. All these tests rely on
    the generated page -> ticket rule of one SLO: without it they fail here, on the wait.
    """
    states: dict[str, bool] = {}

    def settled() -> bool:
        resp = requests.get(f"{url}/api/v2/alerts", timeout=5)
        resp.raise_for_status()
        states.clear()
        for alert in resp.json():
            states[alert["labels"]["alertname"]] = alert["status"]["state"] == "suppressed"
        return states.get(CONTROL_TICKET, False)

    wait_until(settled, "the inhibitor to suppress the control ticket", timeout=SETTLE)
    states.pop(CONTROL_PAGE)
    states.pop(CONTROL_TICKET)
    return states


def _slo_alert(name: str, severity: str, slo: str) -> dict[str, str]:
    return {
        "alertname": name,
        c.LABEL_SEVERITY: severity,
        c.LABEL_SLO: slo,
        c.LABEL_SLO_SERVICE: SPEC.service,
    }


def test_a_page_without_slo_labels_does_not_suppress_an_unrelated_ticket(
    alertmanager: str,
) -> None:
    """Another team's page (no slo labels) leaves another team's ticket unsuppressed."""
    _post(
        alertmanager,
        {"alertname": "NodeDiskFull", c.LABEL_SEVERITY: PAGE, "team": "infra"},
        {"alertname": "CertExpiresSoon", c.LABEL_SEVERITY: TICKET, "team": "web"},
    )
    assert {"NodeDiskFull": False, "CertExpiresSoon": False} == _suppressed(alertmanager)


def test_a_page_of_an_slo_suppresses_that_slos_ticket_only(alertmanager: str) -> None:
    """A latency page silences the latency ticket, not the ai-latency ticket."""
    _post(
        alertmanager,
        _slo_alert("LatencyBudgetBurn", PAGE, "latency"),
        _slo_alert("LatencyP95High", TICKET, "latency"),
        _slo_alert("AiLatencyBudgetBurn", TICKET, "ai-latency"),
    )
    expected = {"LatencyBudgetBurn": False, "LatencyP95High": True, "AiLatencyBudgetBurn": False}
    assert expected == _suppressed(alertmanager)


#: A page and a ticket of an SLO of their own: the generated rule must suppress the
#: ticket. Posted after every test's alerts (see _suppressed); no other alert shares
#: their ``slo``, so they change no test's answer.
CONTROL_PAGE, CONTROL_TICKET = "InhibitionControlPage", "InhibitionControlTicket"
CONTROL = (
    _slo_alert(CONTROL_PAGE, PAGE, "inhibition-control"),
    _slo_alert(CONTROL_TICKET, TICKET, "inhibition-control"),
)

BURN = c.slo_alert_name("availability", c.ALERT_SUFFIX_BURN)
ERRORS_HIGH = c.slo_alert_name("errors", c.ALERT_SUFFIX_THRESHOLD)
ALL_FAILING = c.slo_alert_name("availability", c.ALERT_SUFFIX_ALL_FAILING)


def _burn_page() -> dict[str, str]:
    return {
        **_slo_alert(BURN, PAGE, "availability"),
        c.LABEL_LONG_WINDOW: "1h",
        c.LABEL_SHORT_WINDOW: "5m",
        "team": "limoneide",
    }


def test_the_availability_burn_page_suppresses_errors_high(alertmanager: str) -> None:
    """One burst of 5xx fires both pages; Alertmanager keeps only the burn page."""
    _post(alertmanager, _burn_page(), _slo_alert(ERRORS_HIGH, PAGE, "errors"))
    assert {BURN: False, ERRORS_HIGH: True} == _suppressed(alertmanager)


def test_errors_high_alone_still_pages(alertmanager: str) -> None:
    """Below the burn threshold (1.2 % 5xx) ErrorsHigh is the page, not suppressed."""
    _post(alertmanager, _slo_alert(ERRORS_HIGH, PAGE, "errors"))
    assert {ERRORS_HIGH: False} == _suppressed(alertmanager)


def test_the_burn_page_suppresses_all_failing_of_the_same_slo(alertmanager: str) -> None:
    """An outage at busy hours fires the burn page and AllFailing; AllFailing is silenced."""
    _post(alertmanager, _burn_page(), _slo_alert(ALL_FAILING, PAGE, "availability"))
    assert {BURN: False, ALL_FAILING: True} == _suppressed(alertmanager)


def test_one_burst_of_errors_delivers_one_page(
    delivering: tuple[str, WebhookReceiver],
) -> None:
    """The three pages one burst of 5xx fires reach the receiver as one notification."""
    url, receiver = delivering
    _post(
        url,
        _burn_page(),
        _slo_alert(ERRORS_HIGH, PAGE, "errors"),
        _slo_alert(ALL_FAILING, PAGE, "availability"),
        control=False,  # its page would be delivered too
    )
    assert receiver.wait_for(lambda p: bool(p["alerts"]), timeout=15.0) is not None
    time.sleep(QUIET)  # an observation window: no second notification may arrive in it
    delivered = [a["labels"]["alertname"] for p in receiver.payloads for a in p["alerts"]]
    assert [BURN] == delivered


def test_a_target_down_page_suppresses_the_sli_absent_tickets(alertmanager: str) -> None:
    """The target is down: its SLOs' SliAbsent tickets are the same incident, silenced."""
    absent = c.slo_alert_name("availability", c.ALERT_SUFFIX_SLI_ABSENT)
    _post(
        alertmanager,
        {**_slo_alert(c.ALERT_TARGET_DOWN, PAGE, "up"), c.LABEL_INSTANCE: "app:8000"},
        _slo_alert(absent, TICKET, "availability"),
    )
    assert {c.ALERT_TARGET_DOWN: False, absent: True} == _suppressed(alertmanager)
