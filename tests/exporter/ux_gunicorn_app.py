"""The app of the worker and process tests: ``tests.exporter.ux_gunicorn_app:create_app()``."""

from __future__ import annotations

import gc
import os
import subprocess
import time

from flask import Flask, render_template_string, request

from limone_obs import Metrics
from limone_obs.exporter import workers


def create_app() -> Flask:
    """An instrumented app with a RUM page, a fast route (answers its pid), a slow one and
    one leaving an orphaned process, one asking a forked child what it is; UX_WARM_UP=1
    serves one request at creation."""
    app = Flask("ux_gunicorn_app")
    app.config["SECRET_KEY"] = "ux-gunicorn-test"  # every worker signs and checks alike
    Metrics(app)

    @app.get("/page")
    def page() -> str:
        return render_template_string("<title>page</title>{{ limone_obs_rum() }}")

    @app.get("/pid")
    def pid() -> str:
        return str(os.getpid())

    @app.get("/gc")
    def collect() -> str:
        for _ in range(10):
            gc.collect()
        return "collected"

    @app.get("/slow")
    def slow() -> str:
        time.sleep(min(float(request.args.get("seconds", "1")), 10.0))
        return "slow"

    @app.post("/orphan")
    def orphan() -> str:
        # A background job outliving its shell: the kernel hands it to the nearest
        # subreaper or pid 1 (the master, when gunicorn is a container's first process).
        subprocess.run(["sh", "-c", "sleep 120 &"], check=True, timeout=10)
        return "started"

    @app.get("/forked-role")
    def forked_role() -> str:
        # What a process this worker forks (os.fork, multiprocessing) takes itself for.
        read, write = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                os.write(write, str(workers.server_role()).encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(child, 0)
        with os.fdopen(read, "rb") as answer:
            return answer.read().decode()

    if os.environ.get("UX_WARM_UP") == "1":
        # A warm-up request at import: with --preload it is served in the master.
        app.test_client().get("/pid").close()
    return app
