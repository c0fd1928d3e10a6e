"""The app of the worker and process tests: ``tests.exporter.ux_gunicorn_app:create_app()``."""

from __future__ import annotations

import os
import time

from flask import Flask, request

from limone_obs import Metrics


def create_app() -> Flask:
    """An instrumented app with a fast route (answers its pid) and a slow one."""
    app = Flask("ux_gunicorn_app")
    Metrics(app)

    @app.get("/pid")
    def pid() -> str:
        return str(os.getpid())

    @app.get("/slow")
    def slow() -> str:
        time.sleep(min(float(request.args.get("seconds", "1")), 10.0))
        return "slow"

    return app
