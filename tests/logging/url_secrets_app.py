"""An app whose views quote a secret URL value everywhere a careless view would:
``tests.logging.url_secrets_app:create_app()`` (served by gunicorn in the tests)."""

from __future__ import annotations

import logging
from typing import IO, Any

from flask import Flask, request

from limone_obs.logging import bind, configure_logging, get_logger, init_app


def create_app(stream: IO[Any] | None = None) -> Flask:
    """``/reset-password/<token>`` logs the URL in a structlog field (nested too), a stdlib
    ``extra=`` field, a keyword named like the path and a bound field (on the access line
    too); ``/ready`` answers when the server is up."""
    if stream is not None or not logging.getLogger().handlers:
        configure_logging(service="url-secrets", env="test", stream=stream)
    app = Flask("url_secrets")
    log = get_logger("views")
    std = logging.getLogger("views.std")

    @app.get("/ready")
    def ready() -> str:
        return "ok"

    @app.get("/reset-password/<token>")
    def reset(token: str) -> str:
        bind(referer=request.base_url)
        log.info("reset asked", url=request.url, links={"all": [request.url]}, path=request.path)
        std.info("reset asked", extra={"link": request.url, "full": request.full_path})
        return "ok"

    init_app(app)
    return app
