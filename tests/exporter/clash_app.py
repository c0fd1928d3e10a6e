"""The app of the metric name clash test: ``tests.exporter.clash_app:create_app()``.

As in the trial that found the bug: the team's old request counter, made on
prometheus-client's default registry, has the name of the kit's request series for
``Metrics(app, namespace="ledger")``.
"""

from __future__ import annotations

from flask import Flask
from prometheus_client import Counter

from limone_obs import Metrics

NAMESPACE = "ledger"
OLD_HELP = "the team's old hand-made request counter"
OLD_COUNTER = Counter(f"{NAMESPACE}_requests_total", OLD_HELP, ["route"])


def create_app() -> Flask:
    """Return an app whose one route counts itself in the old counter too."""
    app = Flask("clash_app")
    Metrics(app, namespace=NAMESPACE)

    @app.get("/")
    def index() -> str:
        OLD_COUNTER.labels("index").inc()
        return "ok"

    return app
