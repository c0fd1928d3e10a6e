"""A webhook receiver for Alertmanager: an HTTP server on 127.0.0.1 in a background thread.

Alertmanager POSTs one JSON payload per notification (``version``, ``status``,
``receiver``, ``groupLabels``, ``commonLabels``, ``alerts`` ...). The receiver keeps every
payload (thread-safe), lets a test or ``limone-obs up`` wait for one, and can hand each
received alert to a callback, e.g. :func:`print_alert_lines` which writes one JSON line
per alert.

::

    with WebhookReceiver() as receiver:          # port 0: the OS picks a free port
        ...render the Alertmanager config with receiver.url...
        page = receiver.wait_for_alert("ErrorBudgetBurn", status="firing", timeout=60)
"""

from __future__ import annotations

import errno
import json
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TextIO

from limone_obs.errors import StackError
from limone_obs.stack.procs import LOOPBACK, PortInUseError

Payload = dict[str, Any]
Alert = dict[str, Any]
#: Called with the payload and one of its alerts, once per alert, in arrival order.
AlertCallback = Callable[[Payload, Alert], None]

#: Larger bodies are refused with 413: Alertmanager's payloads are a few KiB.
MAX_BODY_BYTES = 1 << 20


class WebhookReceiver:
    """Receives Alertmanager webhook POSTs on ``host:port`` (port 0 = a free port).

    The server starts in the constructor, so :attr:`url` is usable at once; call
    :meth:`stop` (or use ``with``) to shut it down. Any path is accepted, so the URL may
    carry a suffix such as ``/alerts``. A POST whose body is not a JSON object with an
    ``alerts`` list is answered 400 and not kept.
    """

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        on_alert: AlertCallback | None = None,
    ) -> None:
        self._payloads: list[Payload] = []
        self._changed = threading.Condition()
        self._on_alert = on_alert
        try:
            self._server = ThreadingHTTPServer((host, port), _handler_class(self))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"webhook receiver cannot listen on {host}:{port}: the port is taken by "
                    "another process; choose another port (0 picks a free one)"
                ) from None
            raise StackError(
                f"webhook receiver cannot listen on {host}:{port} ({exc.strerror}): "
                "choose another port"
            ) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The TCP port the receiver listens on."""
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        """``http://host:port/alerts``: the URL to put in the Alertmanager config."""
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}/alerts"

    @property
    def payloads(self) -> list[Payload]:
        """A copy of every payload received so far, oldest first."""
        with self._changed:
            return list(self._payloads)

    def alerts(self) -> list[Alert]:
        """Every alert of every payload received so far, in arrival order."""
        return [alert for payload in self.payloads for alert in payload.get("alerts", [])]

    def wait_for(self, predicate: Callable[[Payload], bool], timeout: float) -> Payload | None:
        """Return the first payload (old or new) for which ``predicate`` is true.

        Waits up to ``timeout`` seconds for it to arrive and returns None if it does not.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for payload in self._payloads:
                    if predicate(payload):
                        return payload
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def wait_for_alert(
        self, alertname: str, *, status: str = "firing", timeout: float, **labels: str
    ) -> Alert | None:
        """Return the first received alert named ``alertname`` in ``status`` with ``labels``.

        ``status`` is ``firing`` or ``resolved``; returns None after ``timeout`` seconds.
        """
        wanted = {"alertname": alertname, **labels}

        def matches(alert: Alert) -> bool:
            have = alert.get("labels", {})
            same = all(have.get(k) == v for k, v in wanted.items())
            return same and alert.get("status") == status

        payload = self.wait_for(lambda p: any(matches(a) for a in p["alerts"]), timeout)
        if payload is None:
            return None
        found: Alert = next(a for a in payload["alerts"] if matches(a))
        return found

    def stop(self) -> None:
        """Stop serving and join the server thread; calling it twice is harmless."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _keep(self, payload: Payload) -> None:
        with self._changed:
            self._payloads.append(payload)
            self._changed.notify_all()
        if self._on_alert is not None:
            for alert in payload["alerts"]:
                self._on_alert(payload, alert)


def parse_payload(body: bytes) -> Payload:
    """Decode an Alertmanager webhook body; raise ValueError saying what is wrong."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ValueError(f"body is a JSON {type(payload).__name__}, expected an object")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not all(isinstance(a, dict) for a in alerts):
        raise ValueError('body has no "alerts" list of objects (not an Alertmanager webhook)')
    return payload


def alert_line(payload: Payload, alert: Alert) -> str:
    """One JSON line describing ``alert`` of ``payload`` (keys sorted, no newlines)."""
    labels = alert.get("labels", {})
    record = {
        "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "receiver": payload.get("receiver"),
        "status": alert.get("status"),
        "alertname": labels.get("alertname"),
        "severity": labels.get("severity"),
        "slo": labels.get("slo"),
        "labels": labels,
        "annotations": alert.get("annotations", {}),
        "startsAt": alert.get("startsAt"),
        "endsAt": alert.get("endsAt"),
    }
    return json.dumps(record, sort_keys=True, ensure_ascii=True)


def print_alert_lines(stream: TextIO | None = None) -> AlertCallback:
    """Return an :data:`AlertCallback` that writes :func:`alert_line` to ``stream`` (stdout)."""
    lock = threading.Lock()

    def emit(payload: Payload, alert: Alert) -> None:
        out = stream if stream is not None else sys.stdout
        with lock:  # one whole line per alert, even with concurrent POSTs
            out.write(alert_line(payload, alert) + "\n")
            out.flush()

    return emit


def _handler_class(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413, f"body over {MAX_BODY_BYTES} bytes")
                return
            try:
                payload = parse_payload(self.rfile.read(length))
            except ValueError as exc:
                self._answer(400, str(exc))
                return
            receiver._keep(payload)
            self._answer(200, "ok")

        def do_GET(self) -> None:
            self._answer(200, f"{len(receiver.payloads)} payload(s) received")

        def _answer(self, status: int, text: str) -> None:
            body = (text + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the per-request stderr line; alerts are reported by the callback."""

    return Handler
