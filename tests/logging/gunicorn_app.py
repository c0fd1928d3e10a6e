"""The app the gunicorn integration test serves: ``tests.logging.gunicorn_app:create_app()``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import Flask, Response

from limone_obs.logging import configure_logging, get_logger, init_app


def create_app() -> Flask:
    """A Flask app that logs an app event and a library record per request; one view
    fails, one streamed body fails after its first chunk."""
    configure_logging(service="gunicorn-test", env="test")
    app = Flask("gunicorn_app")
    log = get_logger("gunicorn_app")

    @app.get("/work/<int:n>")
    def work(n: int) -> str:
        log.info("working", n=n, password="never-shown")
        logging.getLogger("some.library").warning("library says %s", n)
        return "done"

    @app.get("/ready")
    def ready() -> str:
        return "ok"

    @app.get("/fail")
    def fail() -> str:
        raise RuntimeError("worker view failed")

    @app.get("/broken-stream")
    def broken_stream() -> Response:
        def chunks() -> Iterator[str]:
            yield "first chunk\n"
            raise RuntimeError("stream broke after the headers")

        return Response(chunks(), mimetype="text/plain")

    @app.get("/fail-first")
    def fail_first() -> Response:
        def chunks() -> Iterator[str]:
            raise RuntimeError("stream broke before its first chunk")
            yield "never"

        return Response(chunks(), mimetype="text/plain")

    init_app(app, user_id=lambda: "gunicorn-user")
    return app


def broken_app() -> Flask:
    """An app factory that fails after configuring logging, its error naming a database
    password: the worker cannot boot (``tests/logging/test_uncaught.py``)."""
    configure_logging(service="gunicorn-test", env="test")
    raise RuntimeError("boot failed: DATABASE_URL=postgres://app:dbpass-s3cr3t@db/app")


def broken_before_logging() -> Flask:
    """An app factory that fails before it configures logging (an import-time
    ``create_engine(os.environ[...])``), its error naming a database password."""
    raise RuntimeError("early failure: postgres://app:early-pw-888@db/app")
