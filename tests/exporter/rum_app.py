"""A small app with RUM pages for the RUM tests (test client, real server, browser)."""

from __future__ import annotations

import secrets

from flask import Flask, Response, g, make_response, render_template_string
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from limone_obs import Metrics
from limone_obs import conventions as c

N = c.MetricNames()
#: The app's page rules (the RUM routes and /static excluded): every allowed ``page`` value.
PAGES = ("/editor/<int:project_id>", "/about", "/strict/<int:project_id>")
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>editor</title>{{ limone_obs_rum() }}</head>
<body><h1>Editor {{ project_id }}</h1><pre>print("hello")</pre>
<script>
  window.addEventListener("load", function () {
    var asked = performance.now();
    setTimeout(function () { limoneObs.mark("ai_answer_shown", asked); }, 120);
  });
</script>
</body></html>
"""


#: A page under a strict Content-Security-Policy (scripts by nonce only): the kit's tag
#: gets the nonce from limone_obs_rum(nonce=...), the page's own script carries it too.
CSP_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>strict</title>{{ limone_obs_rum(nonce=g.nonce) }}</head>
<body><h1>Strict {{ project_id }}</h1>
<script nonce="{{ g.nonce }}">
  window.addEventListener("load", function () {
    var asked = performance.now();
    setTimeout(function () { limoneObs.mark("ai_answer_shown", asked); }, 120);
  });
</script>
</body></html>
"""
#: The policy of CSP_PAGE, as Flask-Talisman and hand-made after_request hooks set it.
STRICT_CSP = "default-src 'none'; script-src 'nonce-{nonce}' 'strict-dynamic'; connect-src 'self'"


def make_rum_app(**config: object) -> tuple[Flask, Metrics]:
    """Return an instrumented app with two RUM pages and a JSON route."""
    app = Flask("rum_tests")
    app.config.update({"SECRET_KEY": "rum-test-key", **config})
    metrics = Metrics(app, registry=CollectorRegistry())

    @app.get("/editor/<int:project_id>")
    def editor(project_id: int) -> str:
        return render_template_string(PAGE, project_id=project_id)

    @app.get("/about")
    def about() -> str:
        return render_template_string("<p>about</p>{{ limone_obs_rum() }}")

    @app.get("/api")
    def api() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/strict/<int:project_id>")
    def strict(project_id: int) -> Response:
        g.nonce = secrets.token_urlsafe(16)
        response = make_response(render_template_string(CSP_PAGE, project_id=project_id))
        response.headers["Content-Security-Policy"] = STRICT_CSP.format(nonce=g.nonce)
        return response

    return app, metrics


def samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name`` in ``metrics``' registry, by sorted labels."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == name
    }


def counts(metrics: Metrics) -> dict[tuple[str, str], float]:
    """Observations of the page-load histogram by (page, phase), the series with some
    (a rendered page's series are there from its first render, at 0)."""
    found = samples(metrics, f"{N.page_load}_count")
    return {(dict(k)[c.LABEL_PAGE], dict(k)[c.LABEL_PHASE]): v for k, v in found.items() if v}


def parse(text: str, name: str) -> dict[tuple[str, str], float]:
    """Samples ``name`` of an exposition text by (page, phase)."""
    return {
        (s.labels[c.LABEL_PAGE], s.labels[c.LABEL_PHASE]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }
