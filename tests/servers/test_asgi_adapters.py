"""The app served through asgiref's ``WsgiToAsgi`` (an ASGI server such as uvicorn in front).

The adapter runs the WSGI app in a thread, stops iterating a response once it has sent
its Content-Length bytes and never calls the response's ``close()``: the lifecycle ends
such a request when the adapter drops the iteration. Driven here in process through the
adapter's own ASGI interface (what uvicorn calls), with the exporter and the JSON access
log together.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

from asgiref.wsgi import WsgiToAsgi
from flask import Flask
from prometheus_client import CollectorRegistry, generate_latest

from limone_obs import conventions as c
from limone_obs.logging import get_logger
from limone_obs.logging.setup import reset_for_tests
from tests.lifecycle_app import create_app
from tests.support import per_endpoint

N = c.MetricNames()
#: path -> requests sent of it (each answered as the adapter answers it).
SENT = {"/ready": 3, "/stream": 2, "/fail": 2, "/nowhere": 1}


async def _call(asgi: WsgiToAsgi, path: str) -> list[dict[str, Any]]:
    """One GET of ``path`` through the adapter; the ASGI messages it sent."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
        "query_string": b"", "headers": [(b"host", b"127.0.0.1")], "http_version": "1.1",
        "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
    }  # fmt: skip
    await asgi(scope, receive, send)
    return sent


def _serve_all(app: Flask) -> dict[str, list[int]]:
    """Send :data:`SENT` through the adapter, one request after another; statuses by path."""
    asgi = WsgiToAsgi(app)  # type: ignore[no-untyped-call]

    async def run() -> dict[str, list[int]]:
        statuses: dict[str, list[int]] = {}
        for path, count in SENT.items():
            for _ in range(count):
                messages = await _call(asgi, path)
                statuses.setdefault(path, []).append(messages[0]["status"])
        return statuses

    return asyncio.run(run())


def test_every_request_through_wsgitoasgi_is_counted_logged_and_closed_once() -> None:
    """Responses with a Content-Length (the adapter stops at it, never closing them), a
    stream, a failing view and a 404: each request is counted once with its duration,
    leaves the in-flight gauge, has one access line and is closed once; a line logged
    after the requests carries no request's fields."""
    out = io.StringIO()
    registry = CollectorRegistry()
    closes: list[str] = []
    try:
        app = create_app(stream=out, registry=registry)

        @app.after_request
        def count_closes(response: Any) -> Any:
            response.call_on_close(lambda: closes.append(response.status))
            return response

        statuses = _serve_all(app)
        get_logger("after").info("outside any request")
        text = generate_latest(registry).decode()
    finally:
        reset_for_tests()

    assert {"/ready": [200] * 3, "/stream": [200] * 2, "/fail": [500] * 2,
            "/nowhere": [404]} == statuses  # fmt: skip
    expected = {"/ready": 3.0, "/stream": 2.0, "/fail": 2.0, c.ENDPOINT_UNMATCHED: 1.0}
    assert expected == per_endpoint(text, N.requests_total)
    assert expected == per_endpoint(text, N.request_duration_count)
    assert dict.fromkeys(expected, 0.0) == per_endpoint(text, N.requests_in_progress)
    assert {"/fail": 2.0} == per_endpoint(text, N.request_exceptions_total)
    assert sum(SENT.values()) == len(closes)  # /fail's 500 is closed too, once

    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get(c.LOG_LOGGER) == c.ACCESS_LOGGER]
    logged: dict[str, int] = {}
    for line in access:
        logged[line[c.LOG_ENDPOINT]] = logged.get(line[c.LOG_ENDPOINT], 0) + 1
    assert {path: int(n) for path, n in expected.items()} == logged
    assert len({line[c.LOG_REQUEST_ID] for line in access}) == len(access)
    # The adapter stops at Content-Length: that body was sent whole, not left by a client.
    assert not [line for line in access if c.LOG_CLIENT_ABORTED in line]
    # The histogram observed the access lines' very durations (rounded to the microsecond).
    observed = sum(per_endpoint(text, N.request_duration_sum).values())
    assert abs(observed - sum(line[c.LOG_DURATION] for line in access)) < 1e-5 * len(access)
    (after,) = [line for line in lines if line.get(c.LOG_MESSAGE) == "outside any request"]
    assert c.LOG_REQUEST_ID not in after
