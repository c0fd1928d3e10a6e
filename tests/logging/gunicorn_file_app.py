"""The app of the multi-worker file test: ``tests.logging.gunicorn_file_app:create_app()``.

Logs to ``LIMONE_TEST_LOG_FILE`` with a small cap (8000 bytes, many backups: nothing is
deleted by rotation, so every line must be found again).
"""

from __future__ import annotations

import os

from flask import Flask

from limone_obs.logging import configure_logging, get_logger, init_app

FILE_MAX_BYTES = 8000


def create_app() -> Flask:
    """A Flask app writing one app event and one access line per request to the file."""
    configure_logging(
        file=os.environ["LIMONE_TEST_LOG_FILE"], file_max_bytes=FILE_MAX_BYTES, file_backups=500
    )
    app = Flask("gunicorn_file_app")
    log = get_logger("gunicorn_file_app")

    @app.get("/work/<int:n>")
    def work(n: int) -> str:
        log.info("working", n=n, pid=os.getpid())
        return "done"

    @app.get("/ready")
    def ready() -> str:
        return "ok"

    init_app(app)
    return app
