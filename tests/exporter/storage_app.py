"""The app of the full-disk test: ``tests.exporter.storage_app:create_app()``.

``/grow/<n>`` times a dependency operation named after ``n``: each new ``n`` is a new
histogram series, so the worker's files grow until the filesystem is full.
"""

from __future__ import annotations

from flask import Flask

from limone_obs import Metrics


def create_app() -> Flask:
    """Return an instrumented app whose series grow with the requests it gets."""
    app = Flask("storage_app")
    metrics = Metrics(app)

    @app.get("/grow/<int:n>")
    def grow(n: int) -> dict[str, int]:
        with metrics.track("db", f"op{n}"):
            return {"n": n}

    return app
