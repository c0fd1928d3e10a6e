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
from tests.support import ROOT, need

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SPEC = load_spec(ROOT / SPEC_PATH)
PAGE, TICKET = c.SEVERITY_PAGE, c.SEVERITY_TICKET
#: How long the inhibitor may take to see a posted page (it is fed asynchronously).
SETTLE = 3.0


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1 with the generated config; yields its base URL."""
    config = tmp_path / "alertmanager.yml"
    config.write_text(render_config(SPEC, webhook_url="http://127.0.0.1:9/unused"))
    port = procs.free_port()
    argv = procs.alertmanager_argv(need("alertmanager"), config, tmp_path / "data", port)
    proc = procs.start("alertmanager", argv, tmp_path / "alertmanager.log")
    try:
        url = f"http://{procs.LOOPBACK}:{port}"
        procs.wait_http(proc, f"{url}/-/ready")
        yield url
    finally:
        proc.stop()


def _post(url: str, *alerts: dict[str, str]) -> None:
    body = [{"labels": labels} for labels in alerts]
    requests.post(f"{url}/api/v2/alerts", json=body, timeout=5).raise_for_status()


def _suppressed(url: str) -> dict[str, bool]:
    """Alert name -> whether Alertmanager marks it suppressed, after the inhibitor settled."""
    time.sleep(SETTLE)
    resp = requests.get(f"{url}/api/v2/alerts", timeout=5)
    resp.raise_for_status()
    return {a["labels"]["alertname"]: a["status"]["state"] == "suppressed" for a in resp.json()}


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
