"""The kit's route copied into an Alertmanager of the user's own, as alerts/README.md says.

A team's configuration groups by ``[alertname, job]`` and routes ``team="payments"`` to
its own receiver; the kit's service route goes first among its routes, with the kit's
receivers and inhibit rules added. In a real Alertmanager delivering to a webhook here:
the kit's alerts (labelled ``team="payments"`` too) reach the kit's receivers, one
notification per SLO (the SLO alerts have no ``job``: under the team's grouping two
SLOs' pages of one name would be one notification), and the team's alert still reaches
the team's receiver.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from limone_obs import conventions as c
from limone_obs.alerts.alertmanager import GROUP_BY, receiver_name, render_config
from limone_obs.stack.webhook import WebhookReceiver
from tests.alerts.test_inhibition import QUIET, SPEC, _alertmanager, _post, _slo_alert

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TEAM, TEAM_RECEIVER = "payments", "payments-team"
LATENCY_BURN = c.slo_alert_name("latency", c.ALERT_SUFFIX_BURN)


def _team_config(url: str) -> dict[str, Any]:
    """A team's own Alertmanager configuration, before the kit."""
    webhook = [{"url": f"{url}/team", "send_resolved": False}]
    return {
        "route": {
            "receiver": "team-default",
            "group_by": ["alertname", "job"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
            "routes": [{"matchers": [f'team="{TEAM}"'], "receiver": TEAM_RECEIVER}],
        },
        "receivers": [
            {"name": "team-default", "webhook_configs": webhook},
            {"name": TEAM_RECEIVER, "webhook_configs": webhook},
        ],
    }


def _merged(url: str) -> str:
    """The team's configuration with the kit's service route first, and the kit's
    receivers and inhibit rules added (alerts/README.md, "Into your own Alertmanager")."""
    team = _team_config(url)
    kit = yaml.safe_load(
        render_config(SPEC, webhook_url=f"{url}/kit", group_wait="1s", group_interval="1s")
    )
    (service_route,) = kit["route"]["routes"]
    team["route"]["routes"].insert(0, service_route)
    team["receivers"] += kit["receivers"]
    team["inhibit_rules"] = kit["inhibit_rules"]
    return yaml.safe_dump(team)


def _to(name: str) -> Callable[[dict[str, Any]], bool]:
    """A test of a webhook payload: sent to the receiver ``name``."""
    return lambda payload: bool(payload["receiver"] == name)


@pytest.fixture
def merged(tmp_path: Path) -> Iterator[tuple[str, WebhookReceiver]]:
    with WebhookReceiver() as receiver:
        for url in _alertmanager(tmp_path, _merged(receiver.url)):
            yield url, receiver


def test_kit_alerts_keep_their_route_and_grouping_in_a_teams_alertmanager(
    merged: tuple[str, WebhookReceiver],
) -> None:
    """Two SLOs' burn pages of one alert name: two notifications to the kit's page
    receiver; the team's own alert: its own receiver."""
    url, receiver = merged
    team = {"team": TEAM}
    _post(
        url,
        {**_slo_alert(LATENCY_BURN, c.SEVERITY_PAGE, "latency"), **team},
        {**_slo_alert(LATENCY_BURN, c.SEVERITY_PAGE, "ai-latency"), **team},
        {"alertname": "PaymentsSlowRequests", "severity": "critical", **team},
        control=False,
    )
    page = receiver_name(SPEC, c.SEVERITY_PAGE)
    for name in (page, TEAM_RECEIVER):
        assert receiver.wait_for(_to(name), timeout=15.0) is not None
    time.sleep(QUIET)  # an observation window: late or regrouped notifications show here
    delivered = sorted(
        (p["receiver"], tuple(sorted(a["labels"].get("slo", "-") for a in p["alerts"])))
        for p in receiver.payloads
    )
    expected = [(page, ("ai-latency",)), (page, ("latency",)), (TEAM_RECEIVER, ("-",))]
    assert expected == delivered


def test_the_service_route_carries_every_timer_of_the_spec() -> None:
    """Copied alone, the service route keeps the spec's grouping and timers, the ticket's
    repeat interval for an alert of no known severity included."""
    (route,) = yaml.safe_load(render_config(SPEC))["route"]["routes"]
    am = SPEC.alertmanager
    expected = (list(GROUP_BY), am.group_wait, am.group_interval, am.repeat_interval["ticket"])
    timers = ("group_by", "group_wait", "group_interval", "repeat_interval")
    assert expected == tuple(route[key] for key in timers)
