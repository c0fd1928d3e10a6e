"""The load generator plays the proxy: every request carries ``X-Request-Start``, unless
switched off for an app without a proxy."""

from __future__ import annotations

import re
import time

from flask import Flask, request

from limone_obs import conventions as c
from limone_obs.stack.load import run_load
from tests.stack.helpers import serve


def _recording_app() -> tuple[Flask, list[str | None]]:
    """An app whose /ok keeps each request's X-Request-Start (None: absent)."""
    seen: list[str | None] = []
    app = Flask(__name__)

    @app.get("/ok")
    def ok() -> str:
        seen.append(request.headers.get(c.QUEUE_START_HEADER))
        return "ok"

    return app, seen


def test_every_request_carries_an_nginx_style_request_start() -> None:
    """Each request has ``X-Request-Start: t=<epoch seconds with ms>``, taken when it left."""
    app, seen = _recording_app()

    before = time.time()
    with serve(app) as url:
        result = run_load(url, rps=50, duration=5, concurrency=2, max_requests=6, mix="GET /ok")
    after = time.time()
    assert result.requests == len(seen) == 6
    stamps = [re.fullmatch(r"t=(\d+\.\d{3})", value or "") for value in seen]
    assert all(stamps), seen
    assert all(before - 0.001 <= float(m.group(1)) <= after for m in stamps if m)


def test_without_the_queue_header_no_request_carries_it() -> None:
    """queue_header=False: an app without a proxy gets no X-Request-Start, so its queue
    time stays empty."""
    app, seen = _recording_app()

    with serve(app) as url:
        run_load(url, rps=50, duration=5, max_requests=4, mix="GET /ok", queue_header=False)
    assert [None] * 4 == seen
