"""The same small Flask app, bare or instrumented; gunicorn imports ``_apps:<variant>()``.

Routes: ``/`` (text), ``/projects/<int:project_id>`` (JSON), ``/health``. Every variant
labels by URL rule. Instrumented variants use private registries.
"""

from __future__ import annotations

import os
from typing import IO, Any

from flask import Flask
from prometheus_client import CollectorRegistry

from limone_obs import Metrics

PATHS = ("/", "/projects/1", "/projects/22", "/health")
_LOG_SINKS: list[IO[Any]] = []


def bare() -> Flask:
    """The app without any instrumentation."""
    app = Flask("bench_app")

    @app.get("/")
    def index() -> str:
        return "ok"

    @app.get("/projects/<int:project_id>")
    def project(project_id: int) -> dict[str, int]:
        return {"id": project_id, "files": 3}

    @app.get("/health")
    def health() -> tuple[str, int]:
        return "", 204

    return app


def limone() -> Flask:
    """The app with limone-obs ``Metrics``."""
    app = bare()
    Metrics(app)
    return app


def public() -> Flask:
    """limone-obs with its fast path off (``LIMONE_OBS_FAST_PATH=0``): the public API."""
    previous = os.environ.get("LIMONE_OBS_FAST_PATH")
    os.environ["LIMONE_OBS_FAST_PATH"] = "0"
    try:
        return limone()
    finally:
        if previous is None:
            del os.environ["LIMONE_OBS_FAST_PATH"]
        else:
            os.environ["LIMONE_OBS_FAST_PATH"] = previous


def peer() -> Flask:
    """The app with prometheus-flask-exporter, grouped by URL rule like limone-obs."""
    # Imported here: the peer is optional (pip install '.[bench]').
    from prometheus_flask_exporter import PrometheusMetrics  # noqa: PLC0415

    app = bare()
    PrometheusMetrics(app, group_by="url_rule", registry=CollectorRegistry())
    return app


def logging_available() -> bool:
    """True when ``limone_obs.logging.init_app`` exists in this checkout."""
    try:
        from limone_obs.logging import configure_logging, init_app  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def logged() -> Flask:
    """limone-obs metrics plus the JSON access log (``limone_obs.logging``) to a file."""
    return _with_logging(access=True)


def logged_context() -> Flask:
    """As :func:`logged` with the access line off (``LIMONE_OBS_LOG_ACCESS=False``): the
    request context and request id alone, what the access line's cost is measured against."""
    return _with_logging(access=False)


def _with_logging(*, access: bool) -> Flask:
    # Imported here: the logging area may not have landed in every checkout.
    from limone_obs.logging import configure_logging, init_app  # noqa: PLC0415

    sink = open(os.environ.get("BENCH_LOG_FILE", os.devnull), "a")  # noqa: SIM115
    _LOG_SINKS.append(sink)  # kept open for the process's life
    configure_logging(stream=sink, service="bench", env="bench")
    app = limone()
    app.config["LIMONE_OBS_LOG_ACCESS"] = access
    init_app(app)
    return app
