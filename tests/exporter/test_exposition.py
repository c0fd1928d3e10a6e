"""The /metrics endpoint: formats, compression, exemplars, token, separate port."""

from __future__ import annotations

import gzip
import re
import socket
from pathlib import Path

import pytest
import requests
from flask import Flask
from prometheus_client import CollectorRegistry

from limone_obs import ConfigError, Metrics
from limone_obs import conventions as c
from limone_obs.exporter.extension import EXTENSION_KEY
from tests.exporter.helpers import make_app

N = c.MetricNames()
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def test_text_format_by_default() -> None:
    """A plain scrape gets the Prometheus text format with our series."""
    app, _ = make_app()
    client = app.test_client()
    client.get("/projects/1", buffered=True)
    response = client.get("/metrics", buffered=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert f"{N.requests_total}{{" in response.get_data(as_text=True)


def test_gzip_when_accepted() -> None:
    """Accept-Encoding: gzip yields a gzip body that decompresses to the exposition."""
    app, _ = make_app()
    client = app.test_client()
    response = client.get("/metrics", headers={"Accept-Encoding": "gzip"}, buffered=True)
    assert response.headers["Content-Encoding"] == "gzip"
    assert N.build_info in gzip.decompress(response.data).decode()


def test_openmetrics_with_trace_id_exemplar() -> None:
    """With a traceparent header the duration observation carries the trace id."""
    app, _ = make_app()
    client = app.test_client()
    client.get("/projects/1", headers={"traceparent": TRACEPARENT}, buffered=True)
    response = client.get("/metrics", headers={"Accept": OPENMETRICS}, buffered=True)
    body = response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")
    exemplar_lines = [line for line in body.splitlines() if f'trace_id="{TRACE_ID}"' in line]
    assert len(exemplar_lines) == 1
    assert exemplar_lines[0].startswith(N.request_duration_bucket)


def test_traced_and_untraced_requests_count_alike() -> None:
    """Requests with an exemplar are counted, timed and leave the in-flight gauge as others."""
    app, metrics = make_app()
    client = app.test_client()
    for i in range(6):
        headers = {"traceparent": TRACEPARENT} if i % 2 else {}
        client.get("/projects/1", headers=headers, buffered=True)
    labels = {"method": "GET", "endpoint": "/projects/<int:project_id>"}
    registry = metrics.registry
    assert registry.get_sample_value(N.requests_total, {**labels, "status": "200"}) == 6
    assert registry.get_sample_value(N.request_duration_count, labels) == 6
    assert registry.get_sample_value(N.requests_in_progress, labels) == 0


def test_invalid_traceparent_adds_no_exemplar() -> None:
    """A malformed or all-zero trace id is ignored, not exported."""
    app, _ = make_app()
    client = app.test_client()
    for header in ("garbage", f"00-{'0' * 32}-00f067aa0ba902b7-01", "00-xyz-00-01"):
        client.get("/projects/1", headers={"traceparent": header}, buffered=True)
    body = client.get("/metrics", headers={"Accept": OPENMETRICS}, buffered=True).data
    assert b"trace_id" not in body


def test_exemplars_can_be_switched_off() -> None:
    """LIMONE_OBS_EXEMPLARS=False exports no exemplar."""
    app, _ = make_app(LIMONE_OBS_EXEMPLARS=False)
    client = app.test_client()
    client.get("/projects/1", headers={"traceparent": TRACEPARENT}, buffered=True)
    body = client.get("/metrics", headers={"Accept": OPENMETRICS}, buffered=True).data
    assert b"trace_id" not in body


def test_token_required_when_configured() -> None:
    """Without the bearer token: 401 with a challenge; with it: 200."""
    app, _ = make_app(LIMONE_OBS_METRICS_TOKEN="s3cret")
    client = app.test_client()
    missing = client.get("/metrics", buffered=True)
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"}, buffered=True)
    right = client.get("/metrics", headers={"Authorization": "Bearer s3cret"}, buffered=True)
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"s3cret" not in missing.data


def test_a_refused_head_request_gets_no_body() -> None:
    """HEAD without the token: 401 and its headers, no body (a body on HEAD made gunicorn
    log a warning per request, which any client could cause)."""
    app, _ = make_app(LIMONE_OBS_METRICS_TOKEN="s3cret")
    refused = app.test_client().head("/metrics", buffered=True)
    assert (refused.status_code, refused.data) == (401, b"")
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("token", ["s3cret\n", " s3cret ", "\ts3cret\r\n"])
def test_a_token_with_surrounding_whitespace_is_matched(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    """A token read from a secret file ends with a newline (Prometheus trims its own
    ``credentials_file``): the token without it is the one scrapes must send."""
    monkeypatch.setenv(c.ENV_METRICS_TOKEN, token)
    app, _ = make_app()
    client = app.test_client()
    right = client.get("/metrics", headers={"Authorization": "Bearer s3cret"}, buffered=True)
    missing = client.get("/metrics", buffered=True)
    assert (right.status_code, missing.status_code) == (200, 401)


def test_custom_metrics_path() -> None:
    """LIMONE_OBS_METRICS_PATH moves the endpoint."""
    app, _ = make_app(LIMONE_OBS_METRICS_PATH="/internal/metrics")
    client = app.test_client()
    assert client.get("/internal/metrics", buffered=True).status_code == 200
    assert client.get("/metrics", buffered=True).status_code == 404


def test_metrics_path_can_be_disabled() -> None:
    """LIMONE_OBS_METRICS_PATH=None serves nothing on the app."""
    app, _ = make_app(LIMONE_OBS_METRICS_PATH=None)
    assert app.test_client().get("/metrics", buffered=True).status_code == 404


def test_post_to_metrics_is_refused() -> None:
    """Only GET and HEAD are answered."""
    app, _ = make_app()
    assert app.test_client().post("/metrics", buffered=True).status_code == 405


def test_separate_port_serves_the_same_registry() -> None:
    """LIMONE_OBS_METRICS_PORT=0 starts a server on a free port with the token check."""
    app = Flask("port")
    app.config.update(LIMONE_OBS_METRICS_PORT=0, LIMONE_OBS_METRICS_TOKEN="t")
    Metrics(app, registry=CollectorRegistry())
    server = app.extensions[EXTENSION_KEY].metrics_server
    assert server is not None
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        assert requests.get(url, timeout=5).status_code == 401
        ok = requests.get(url, headers={"Authorization": "Bearer t"}, timeout=5)
        assert ok.status_code == 200
        assert N.build_info in ok.text
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("token", ["", "   "])
@pytest.mark.parametrize("where", ["environment", "config"])
def test_an_empty_token_is_an_error_not_an_open_metrics_path(
    monkeypatch: pytest.MonkeyPatch, token: str, where: str
) -> None:
    """A token set but empty (a secret that failed to mount) is a ConfigError naming the
    key and where it was set; before, it served /metrics without authentication."""
    app = Flask("empty-token")
    if where == "environment":
        monkeypatch.setenv(c.ENV_METRICS_TOKEN, token)
    else:
        app.config["LIMONE_OBS_METRICS_TOKEN"] = token
    said = "environment" if where == "environment" else "app's config"
    with pytest.raises(
        ConfigError, match=re.escape(f"LIMONE_OBS_METRICS_TOKEN={token!r} (in the {said})")
    ):
        Metrics(app, registry=CollectorRegistry())
    assert EXTENSION_KEY not in app.extensions


@pytest.mark.parametrize("token", [b"supersecretbytes", 123456789])
def test_a_token_of_another_type_is_named_by_its_type_not_its_value(token: object) -> None:
    """A trial's bytes token (read from a secret file) was refused with the token itself
    in the message, said to be empty: the message names the key and the type."""
    app = Flask("bytes-token")
    app.config["LIMONE_OBS_METRICS_TOKEN"] = token
    with pytest.raises(ConfigError) as raised:
        Metrics(app, registry=CollectorRegistry())
    said = str(raised.value)
    assert f"LIMONE_OBS_METRICS_TOKEN (in the app's config) is a {type(token).__name__}" in said
    assert ("supersecret" not in said, "123456789" not in said) == (True, True)


def test_a_taken_port_is_a_clear_error_and_changes_nothing() -> None:
    """LIMONE_OBS_METRICS_PORT on a port in use (a second gunicorn worker's case) is a
    ConfigError naming the key, the address and what to do, not a bare OSError, and the
    app is left uninstrumented."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = Flask("taken")
        app.config["LIMONE_OBS_METRICS_PORT"] = port
        with pytest.raises(
            ConfigError, match=f"LIMONE_OBS_METRICS_PORT={port}: cannot listen on 127.0.0.1:{port}"
        ):
            Metrics(app, registry=CollectorRegistry())
    assert EXTENSION_KEY not in app.extensions
    assert app.wsgi_app.__self__ is app  # type: ignore[attr-defined]  # no lifecycle installed


def test_a_metrics_port_in_multiprocess_mode_is_refused(mp_in_process: Path) -> None:
    """Every gunicorn worker would try to listen on it: refused with the way to scrape."""
    app = Flask("mp-port")
    app.config["LIMONE_OBS_METRICS_PORT"] = 0
    with pytest.raises(ConfigError, match=r"is for a single-process server.*metrics path /metrics"):
        Metrics(app)
    assert EXTENSION_KEY not in app.extensions
