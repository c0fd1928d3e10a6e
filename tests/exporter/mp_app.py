"""The app of the multiprocess compaction test: ``tests.exporter.mp_app:create_app()``."""

from __future__ import annotations

from flask import Flask

from limone_obs import Metrics


def create_app() -> Flask:
    """Return an instrumented app with a plain and a parametrised route."""
    app = Flask("mp_app")
    metrics = Metrics(app)

    @app.get("/")
    def index() -> str:
        return "ok"

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> dict[str, int]:
        with metrics.track("db", "select_item"):
            return {"id": item_id}

    return app
