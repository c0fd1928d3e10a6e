"""The app gunicorn serves through uvicorn's ``UvicornWorker``: Flask behind a2wsgi.

``tests.servers.uvicorn_app:create_asgi()``. ``LIMONE_OBS_TEST_SLOTS``, when set, is
passed to ``set_slots`` at import (module level), as the README tells for uvicorn.
"""

from __future__ import annotations

import os
from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask

from limone_obs import Metrics
from limone_obs.exporter import workers
from limone_obs.logging import configure_logging, init_app
from tests.lifecycle_app import stream_fails_first

if os.environ.get("LIMONE_OBS_TEST_SLOTS"):
    workers.set_slots(int(os.environ["LIMONE_OBS_TEST_SLOTS"]))


def create_asgi() -> Any:
    """The Flask app (metrics and access log) wrapped for ASGI."""
    configure_logging(service="uvicorn-test", env="test")
    app = Flask("uvicorn_app")
    Metrics(app)
    init_app(app)

    @app.get("/ready")
    def ready() -> str:
        return "ok"

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    app.add_url_rule("/stream-fails-first", view_func=stream_fails_first)

    return WSGIMiddleware(app, workers=10)  # type: ignore[arg-type]
