"""Cost of one RUM beacon (``POST /rum``, limone_obs.exporter.rum).

1. The whole request on the Flask test client: a navigation beacon (four phases and a
   mark) to ``/rum`` against a bare ``POST`` view of the same app that reads the body
   and answers 204 (both left out of the request series), so the difference is what
   receiving a beacon adds.
2. The receiver alone (JSON parse, token check, five observations), and its two halves:
   the signed token check and the observations.
3. A refused beacon (a forged page token, 400) and an oversized one (413): the work an
   attacker can make the server do per beacon.

Only medians of wall time per beacon are printed; no target (the issue asks to report).
"""

from __future__ import annotations

import json
import sys
import time

from _table import table, us
from flask import Flask, Response, render_template_string, request
from prometheus_client import CollectorRegistry

from limone_obs import Metrics
from limone_obs.exporter import rum

VALUES = {"ttfb": 0.08, "fcp": 0.4, "dom_content_loaded": 0.6, "load": 1.3, "ai_answer_shown": 0.9}


def _app() -> tuple[Flask, str]:
    app = Flask("bench_rum")
    # /bare is left out of the request series, like the beacon path: same work around both.
    app.config.update(
        SECRET_KEY="bench", LIMONE_OBS_RUM_RATE=10**9, LIMONE_OBS_EXCLUDED_PATHS=["/bare"]
    )
    Metrics(app, registry=CollectorRegistry())

    @app.get("/editor/<int:project_id>")
    def editor(project_id: int) -> str:
        return render_template_string("{{ limone_obs_rum() }}", project_id=project_id)

    @app.post("/bare")
    def bare() -> Response:
        request.stream.read(rum.MAX_BODY_BYTES + 1)
        return Response(status=204)

    html = app.test_client().get("/editor/1").get_data(as_text=True)
    token = html.split('data-page="')[1].split('"')[0].replace("&lt;", "<").replace("&gt;", ">")
    return app, token


def _per_call(fn: object, n: int) -> float:
    assert callable(fn)
    best = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best.append((time.perf_counter() - start) / n)
    return sorted(best)[len(best) // 2]


def run(quick: bool) -> str:
    """Return the markdown section: cost per beacon, whole request and receiver parts."""
    n = 10 if quick else 3000
    app, token = _app()
    client = app.test_client()
    body = json.dumps({"p": token, "v": VALUES}).encode()
    forged = json.dumps({"p": "/editor/<int:project_id>.AAAA.BBBB", "v": VALUES}).encode()
    huge = b"x" * (rum.MAX_BODY_BYTES * 4)
    receiver = app.extensions["limone_obs_rum"]

    def post(path: str, data: bytes) -> None:
        client.post(path, data=data, content_type="text/plain")

    bare = _per_call(lambda: post("/bare", body), n)
    beacon = _per_call(lambda: post("/rum", body), n)
    receive = _per_call(lambda: receiver.receive(body), n)
    check = _per_call(lambda: receiver.page_of(token), n)
    rows = [
        ["POST /bare (same app, reads the body, 204)", us(bare), ""],
        ["POST /rum, valid beacon (5 values)", us(beacon), f"+{us(beacon - bare)}"],
        ["POST /rum, forged page token (400)", us(_per_call(lambda: post("/rum", forged), n)), ""],
        ["POST /rum, 8 KiB body (413)", us(_per_call(lambda: post("/rum", huge), n)), ""],
        ["receiver only: parse + check + 5 observations", us(receive), ""],
        ["receiver part: signed token check", us(check), ""],
    ]
    lines = [
        "## RUM beacon cost",
        "",
        f"Flask test client: wall-clock time per call, median of 5 runs of {n} calls each.",
        "",
        table(["what", "per beacon", "added by RUM"], rows),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
