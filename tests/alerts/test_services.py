"""Two services (limoneide and billing) in one real Prometheus and one real Alertmanager.

Each service is an instrumented Flask app under its own scrape job with its own spec; both
specs' rules load into one Prometheus, one Alertmanager gets the shared configuration
(a route per service). A fault in billing pages billing only, once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from limone_obs import conventions as c
from limone_obs.alerts.alertmanager import receiver_name, render_shared_config
from limone_obs.alerts.spec import ServiceSpec, parse_spec
from limone_obs.stack import procs
from limone_obs.stack.webhook import WebhookReceiver
from tests.alerts import e2e
from tests.alerts.helpers import edited
from tests.support import need, serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ERRORS_HIGH = c.slo_alert_name("errors", c.ALERT_SUFFIX_THRESHOLD)
WAIT = 60.0
#: After the first page, how long a second notification has to show up.
QUIET = 8.0


def _spec(service: str) -> ServiceSpec:
    text = edited("service: limoneide", f"service: {service}")
    text = edited("job: limoneide", f"job: {service}", text)
    return e2e.fast_spec(parse_spec(text), for_="2s")


@dataclass
class Services:
    """The running pair: specs, fault switches, receiver, Prometheus URL."""

    specs: dict[str, ServiceSpec]
    faults: dict[str, threading.Event]
    receiver: WebhookReceiver
    prometheus: str


def _prometheus_config(
    specs: list[ServiceSpec], apps: dict[str, str], rules: list[Path], am: str
) -> str:
    strip = len("http://")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rules],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am[strip:]]}]}]},
        "scrape_configs": [
            {"job_name": s.job, "static_configs": [{"targets": [apps[s.service][strip:]]}]}
            for s in specs
        ],
    }
    return yaml.safe_dump(config, sort_keys=True)


def _alertmanager(specs: list[ServiceSpec], tmp_path: Path, hook: str) -> tuple[procs.Proc, str]:
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        render_shared_config(
            specs, webhook_url=hook, group_wait="1s", group_interval="1s", repeat_interval="1h"
        )
    )
    port = procs.free_port()
    argv = procs.alertmanager_argv(need("alertmanager"), config, tmp_path / "am-data", port)
    proc = procs.start("alertmanager", argv, tmp_path / "alertmanager.log")
    url = f"http://{procs.LOOPBACK}:{port}"
    procs.wait_http(proc, f"{url}/-/ready")
    return proc, url


def _prometheus(
    specs: list[ServiceSpec], tmp_path: Path, apps: dict[str, str], am: str
) -> tuple[procs.Proc, str]:
    rules: list[Path] = []
    for spec in specs:
        folder = tmp_path / spec.service
        folder.mkdir()
        rules += e2e.write_rules(spec, folder)
    config = tmp_path / "prometheus.yml"
    config.write_text(_prometheus_config(specs, apps, rules, am))
    port = procs.free_port()
    argv = procs.prometheus_argv(need("prometheus"), config, tmp_path / "prom-data", port)
    proc = procs.start("prometheus", argv, tmp_path / "prometheus.log")
    url = f"http://{procs.LOOPBACK}:{port}"
    procs.wait_http(proc, f"{url}/-/ready")
    return proc, url


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """Two apps with traffic, one Prometheus with both rule sets, one Alertmanager."""
    specs = [_spec("limoneide"), _spec("billing")]
    faults = {s.service: threading.Event() for s in specs}
    with (
        WebhookReceiver() as receiver,
        serve(e2e.faulty_app(faults["limoneide"]), quiet=True) as limoneide,
        serve(e2e.faulty_app(faults["billing"]), quiet=True) as billing,
        e2e.traffic(f"{limoneide}/"),
        e2e.traffic(f"{billing}/"),
    ):
        apps = {"limoneide": limoneide, "billing": billing}
        am, am_url = _alertmanager(specs, tmp_path, f"{receiver.url}/alerts")
        prometheus = None
        try:
            prometheus, prom_url = _prometheus(specs, tmp_path, apps, am_url)
            yield Services({s.service: s for s in specs}, faults, receiver, prom_url)
        finally:
            if prometheus is not None:
                prometheus.stop()
            am.stop()


def _firing(payload: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (a["labels"].get(c.LABEL_SLO_SERVICE, ""), a["labels"]["alertname"])
        for a in payload["alerts"]
        if a.get("status") == "firing"
    ]


def _objectives(prometheus: str) -> list[str]:
    """slo_service of every recorded availability objective, once the rules evaluated."""
    query = f'{c.RULE_OBJECTIVE}{{{c.LABEL_SLO}="availability"}}'
    deadline = time.monotonic() + 30
    found: list[str] = []
    while time.monotonic() < deadline and len(found) < 2:
        body = requests.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5)
        found = sorted(r["metric"][c.LABEL_SLO_SERVICE] for r in body.json()["data"]["result"])
        time.sleep(0.5)
    return found


def test_both_services_rules_load_into_one_prometheus(services: Services) -> None:
    """Each service records its own SLO series, told apart by slo_service."""
    assert ["billing", "limoneide"] == _objectives(services.prometheus)


def test_a_fault_in_billing_pages_billing_only_once(services: Services) -> None:
    """billing answers 500: one ErrorsHigh notification of billing, on billing's receiver;
    nothing of limoneide."""
    services.faults["billing"].set()
    first = services.receiver.wait_for(lambda p: ("billing", ERRORS_HIGH) in _firing(p), WAIT)
    assert first is not None, f"no billing {ERRORS_HIGH} page within {WAIT:.0f} s"
    time.sleep(QUIET)
    firing = [(p["receiver"], f) for p in services.receiver.payloads for f in _firing(p)]
    page = receiver_name(services.specs["billing"], c.SEVERITY_PAGE)
    assert [(page, ("billing", ERRORS_HIGH))] == firing
