"""End to end: faults in a real app page through real Prometheus and Alertmanager.

The instrumented app (threaded werkzeug server) is scraped every second by a real
Prometheus loaded with the generated rules; the generated Alertmanager config, re-pointed
at a webhook receiver in this process, delivers over HTTP. Only the threshold alert's
``for`` and Alertmanager's timers are shortened, so the test runs in well under a minute;
the production values are what the promtool tests cover.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from limone_obs import conventions as c
from limone_obs.alerts.alertmanager import render_config
from limone_obs.alerts.spec import SPEC_PATH, ServiceSpec, load_spec
from limone_obs.stack import procs
from limone_obs.stack.webhook import WebhookReceiver
from tests.alerts import e2e
from tests.support import ROOT, need, serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ALERT = c.slo_alert_name("errors", c.ALERT_SUFFIX_THRESHOLD)
WAIT = 60.0


@dataclass
class Stack:
    """The running pieces of one end-to-end test."""

    spec: ServiceSpec
    faults: threading.Event
    receiver: WebhookReceiver
    alertmanager: procs.Proc
    am_argv: list[str]
    am_url: str
    log_dir: Path

    def start_alertmanager_again(self) -> None:
        """Start the stopped Alertmanager again: same port, same data directory."""
        self.alertmanager = procs.start(
            "alertmanager", self.am_argv, self.log_dir / "alertmanager-2.log"
        )
        procs.wait_http(self.alertmanager, f"{self.am_url}/-/ready")


def _start_alertmanager(
    spec: ServiceSpec, tmp_path: Path, hook: str
) -> tuple[procs.Proc, list[str], str]:
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        render_config(
            spec, webhook_url=hook, group_wait="1s", group_interval="1s", repeat_interval="4s"
        )
    )
    port = procs.free_port()
    argv = procs.alertmanager_argv(need("alertmanager"), config, tmp_path / "am-data", port)
    proc = procs.start("alertmanager", argv, tmp_path / "alertmanager.log")
    url = f"http://{procs.LOOPBACK}:{port}"
    procs.wait_http(proc, f"{url}/-/ready")
    return proc, argv, url


def _start_prometheus(spec: ServiceSpec, tmp_path: Path, app_url: str, am_url: str) -> procs.Proc:
    rules = e2e.write_rules(spec, tmp_path)
    config = tmp_path / "prometheus.yml"
    strip = len("http://")
    config.write_text(e2e.prometheus_config(spec, rules, app_url[strip:], am_url[strip:]))
    port = procs.free_port()
    argv = procs.prometheus_argv(need("prometheus"), config, tmp_path / "prom-data", port)
    proc = procs.start("prometheus", argv, tmp_path / "prometheus.log")
    procs.wait_http(proc, f"http://{procs.LOOPBACK}:{port}/-/ready")
    return proc


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """App + traffic + receiver + Alertmanager + Prometheus, all stopped afterwards."""
    spec = e2e.fast_spec(load_spec(ROOT / SPEC_PATH), for_="2s")
    faults = threading.Event()
    with (
        WebhookReceiver() as receiver,
        serve(e2e.faulty_app(faults), quiet=True) as app_url,  # 20 requests/s: no line each
        e2e.traffic(f"{app_url}/"),
    ):
        am, am_argv, am_url = _start_alertmanager(spec, tmp_path, f"{receiver.url}/alerts")
        running = Stack(spec, faults, receiver, am, am_argv, am_url, tmp_path)
        prometheus = None
        try:
            prometheus = _start_prometheus(spec, tmp_path, app_url, am_url)
            yield running
        finally:
            if prometheus is not None:
                prometheus.stop()
            running.alertmanager.stop()


def _page(receiver: WebhookReceiver, after: set[int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first payload not in ``after`` carrying a firing ErrorsHigh page, and that alert."""

    def wanted(payload: dict[str, Any]) -> bool:
        return id(payload) not in after and any(
            a["labels"].get("alertname") == ALERT and a.get("status") == "firing"
            for a in payload["alerts"]
        )

    payload = receiver.wait_for(wanted, timeout=WAIT)
    assert payload is not None, f"no {ALERT} page within {WAIT:.0f} s"
    alert = next(a for a in payload["alerts"] if a["labels"]["alertname"] == ALERT)
    return payload, alert


def test_error_page_reaches_the_receiver_and_survives_an_alertmanager_restart(
    stack: Stack,
) -> None:
    """Faults on: ErrorsHigh pages over HTTP; after Alertmanager is down 5 s, it comes again."""
    stack.faults.set()
    payload, alert = _page(stack.receiver, after=set())
    first = (payload["receiver"], alert["labels"]["severity"], alert["labels"]["slo"])
    stack.alertmanager.stop()
    seen = {id(p) for p in stack.receiver.payloads}  # nothing can arrive after this
    time.sleep(5.0)  # Prometheus keeps evaluating and fails to send meanwhile
    stack.start_alertmanager_again()
    again, _ = _page(stack.receiver, after=seen)
    assert [("limoneide-page", "page", "errors"), "limoneide-page"] == [first, again["receiver"]]


def test_the_page_carries_runbook_and_dashboard_links(stack: Stack) -> None:
    """The delivered alert has the generated summary, runbook_url and dashboard_url."""
    stack.faults.set()
    _, alert = _page(stack.receiver, after=set())
    slo = stack.spec.slo("errors")
    expected = {
        c.ANNOTATION_RUNBOOK: f"{slo.runbook_url}#{ALERT.lower()}",
        c.ANNOTATION_DASHBOARD: slo.dashboard_url,
    }
    found = {k: alert["annotations"].get(k) for k in expected}
    assert expected == found
