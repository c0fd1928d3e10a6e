"""The app the gunicorn integration tests serve: ``tests.exporter.gunicorn_app:create_app()``."""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask, request

from limone_obs import Metrics


def create_app() -> Flask:
    """Return an instrumented app with fast, parametrised and slow routes."""
    app = Flask("gunicorn_app")
    metrics = Metrics(app)

    @app.get("/projects/<int:project_id>")
    def project(project_id: int) -> dict[str, int]:
        with metrics.track("db", "select_project"):
            return {"id": project_id, "pid": os.getpid()}

    @app.post("/projects")
    def create() -> tuple[str, int]:
        return "created", 201

    @app.get("/slow")
    def slow() -> str:
        # The test reads the pid file to SIGKILL exactly the worker serving this request.
        Path(request.args["pidfile"]).write_text(str(os.getpid()))
        time.sleep(float(request.args.get("seconds", "5")))
        return "slow"

    return app
