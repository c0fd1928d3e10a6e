"""The app of the worker and process tests: ``tests.exporter.ux_gunicorn_app:create_app()``."""

from __future__ import annotations

import os
import time

from flask import Flask, render_template_string, request

from limone_obs import Metrics


def create_app() -> Flask:
    """An instrumented app with a RUM page, a fast route (answers its pid) and a slow one."""
    app = Flask("ux_gunicorn_app")
    app.config["SECRET_KEY"] = "ux-gunicorn-test"  # every worker signs and checks alike
    Metrics(app)

    @app.get("/page")
    def page() -> str:
        return render_template_string("<title>page</title>{{ limone_obs_rum() }}")

    @app.get("/pid")
    def pid() -> str:
        return str(os.getpid())

    @app.get("/slow")
    def slow() -> str:
        time.sleep(min(float(request.args.get("seconds", "1")), 10.0))
        return "slow"

    return app
