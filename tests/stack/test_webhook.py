"""The Alertmanager webhook receiver: keeps payloads, waits for alerts, prints JSON lines."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from limone_obs.errors import StackError
from limone_obs.stack.procs import PortInUseError
from limone_obs.stack.webhook import WebhookReceiver, print_alert_lines


def _payload(alertname: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    alert = {
        "status": status,
        "labels": {"alertname": alertname, **labels},
        "annotations": {"summary": f"{alertname} summary"},
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
    }
    return {"version": "4", "status": status, "receiver": "page", "alerts": [alert]}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as rec:
        yield rec


def test_url_is_loopback_on_a_free_port(receiver: WebhookReceiver) -> None:
    """Port 0 picks a free port; the URL points at 127.0.0.1 and that port."""
    assert receiver.port > 0
    assert f"http://127.0.0.1:{receiver.port}/alerts" == receiver.url


def test_posted_payload_is_kept(receiver: WebhookReceiver) -> None:
    """A valid POST is answered 200 and its payload is kept as sent."""
    sent = _payload("ErrorRateHigh", severity="page")
    resp = requests.post(receiver.url, json=sent, timeout=5)
    assert 200 == resp.status_code
    assert [sent] == receiver.payloads


def test_invalid_body_is_refused_and_not_kept(receiver: WebhookReceiver) -> None:
    """A body that is not an Alertmanager payload gets 400 with the reason; nothing is kept."""
    resp = requests.post(receiver.url, data=b"[1, 2]", timeout=5)
    assert 400 == resp.status_code
    assert "expected an object" in resp.text
    assert [] == receiver.payloads


def test_wait_for_alert_returns_an_alert_posted_later(receiver: WebhookReceiver) -> None:
    """wait_for_alert blocks until a matching alert arrives from another thread."""
    timer = threading.Timer(
        0.3, lambda: requests.post(receiver.url, json=_payload("SloBurn", slo="errors"), timeout=5)
    )
    timer.start()
    try:
        alert = receiver.wait_for_alert("SloBurn", slo="errors", timeout=10)
    finally:
        timer.join()
    assert alert is not None
    assert "errors" == alert["labels"]["slo"]


def test_wait_for_alert_times_out_with_none(receiver: WebhookReceiver) -> None:
    """An alert that never arrives (wrong status here) gives None after the timeout."""
    requests.post(receiver.url, json=_payload("SloBurn", status="firing"), timeout=5)
    assert receiver.wait_for_alert("SloBurn", status="resolved", timeout=0.3) is None


def test_callback_prints_one_json_line_per_alert() -> None:
    """print_alert_lines writes each received alert as one JSON line with its labels."""
    out = io.StringIO()
    with WebhookReceiver(on_alert=print_alert_lines(out)) as rec:
        payload = _payload("A", severity="page")
        payload["alerts"].append(_payload("B", severity="ticket")["alerts"][0])
        requests.post(rec.url, json=payload, timeout=5)
    lines = out.getvalue().splitlines()
    assert ["A", "B"] == [json.loads(line)["alertname"] for line in lines]
    assert ["page", "ticket"] == [json.loads(line)["severity"] for line in lines]


def test_stop_closes_the_port() -> None:
    """After stop() the port accepts no connection."""
    rec = WebhookReceiver()
    rec.stop()
    with pytest.raises(requests.ConnectionError):
        requests.post(rec.url, json=_payload("A"), timeout=2)


def test_taken_port_raises_port_in_use(receiver: WebhookReceiver) -> None:
    """A second receiver on a taken port raises PortInUseError (a StackError, so the CLI
    exits 2) naming the port."""
    assert issubclass(PortInUseError, StackError)
    with pytest.raises(PortInUseError, match=f":{receiver.port}: the port is taken"):
        WebhookReceiver(port=receiver.port)
