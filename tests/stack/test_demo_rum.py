"""The demo's editor page carries the RUM script and its beacons count."""

from __future__ import annotations

import json
import re
from pathlib import Path

from flask import Flask
from prometheus_client import CollectorRegistry

from limone_obs import conventions as c
from limone_obs.demo import create_app

NAMES = c.MetricNames()
EDITOR = "/editor/<int:project_id>"


def _app(tmp_path: Path, **config: object) -> tuple[Flask, CollectorRegistry]:
    registry = CollectorRegistry()
    base = {"LIMONE_DEMO_DATA_DIR": str(tmp_path), "LIMONE_DEMO_AI_LATENCY": "0.01-0.02"}
    return create_app({**base, **config}, registry=registry), registry


def test_editor_page_includes_the_rum_script(tmp_path: Path) -> None:
    """GET /editor/1 has the script tag naming the editor's URL rule; its beacon records."""
    app, registry = _app(tmp_path)
    client = app.test_client()
    html = client.get("/editor/1").get_data(as_text=True)
    found = re.search(r'<script src="/rum.js" data-beacon="/rum" data-page="([^"]+)"', html)
    assert found is not None, html
    assert 'limoneObs.mark("ai_answer_shown", asked)' in html
    token = found.group(1).replace("&lt;", "<").replace("&gt;", ">")
    body = json.dumps({"p": token, "v": {"load": 0.8, "ai_answer_shown": 0.4}})
    assert client.post("/rum", data=body, content_type="text/plain").status_code == 204
    labels = {c.LABEL_PAGE: EDITOR, c.LABEL_PHASE: c.PHASE_LOAD}
    assert registry.get_sample_value(f"{NAMES.page_load}_count", labels) == 1.0


def test_editor_page_renders_with_rum_off(tmp_path: Path) -> None:
    """With LIMONE_OBS_RUM=False the page renders without the tag (no undefined global)."""
    app, _ = _app(tmp_path, LIMONE_OBS_RUM=False)
    response = app.test_client().get("/editor/1")
    assert response.status_code == 200
    assert b"/rum.js" not in response.data
