"""An app whose views quote a secret URL value everywhere a careless view would:
``tests.logging.url_secrets_app:create_app()`` (served by gunicorn in the tests)."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import IO, Any

from flask import Flask, copy_current_request_context, request, url_for

from limone_obs.logging import bind, configure_logging, get_logger, init_app

#: Characters of each of the 4 fields /reset-password/<token>/big logs: together over the
#: line cap (16 KiB), each under the redactor's own cut (twice the cap).
BIG = 10_000


def create_app(stream: IO[Any] | None = None) -> Flask:
    """``/reset-password/<token>`` logs the URL in a structlog field (nested too), a stdlib
    ``extra=`` field, a keyword named like the path, a bound field (on the access line
    too), the environ's raw forms and a ``url_for`` link, and fails when asked; ``/big``
    logs a field over the line cap; ``/thread`` logs from a copied request context;
    ``/magic/<uuid:token>`` and ``/pin/<int:pin>`` have converters, ``/slash/<token>/``
    redirects a request without its slash, ``/go/<path:token>`` takes a URL; ``/ready``
    answers when the server is up."""
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
        environ = request.environ
        raw = {k: environ.get(k) for k in ("REQUEST_URI", "RAW_URI", "PATH_INFO")}
        std.info("reset asked", extra={"link": request.url, "full": request.full_path, **raw})
        log.info("link", again=url_for("reset", token=token, t=token, _external=True))
        if request.args.get("fail"):
            raise RuntimeError(f"reset failed for {request.url}")
        return "ok"

    @app.get("/reset-password/<token>/big")
    def big(token: str) -> str:
        tokens = (token * (BIG // len(token) + 1))[:BIG]
        log.info("big", **{f"tokens{i}": tokens for i in range(4)})
        return "ok"

    @app.get("/reset-password/<token>/thread")
    def in_thread(token: str) -> str:
        @copy_current_request_context
        def send_mail() -> None:
            log.info("mail sent", link=request.url)

        worker = threading.Thread(target=send_mail)
        worker.start()
        worker.join()
        return "ok"

    @app.get("/magic/<uuid:token>")
    def magic(token: uuid.UUID) -> str:
        log.info("magic", url=request.url)
        return "ok"

    @app.get("/pin/<int:pin>")
    def pin(pin: int) -> str:
        log.info("pin", url=request.url)
        return "ok"

    @app.get("/slash/<token>/")
    def slash(token: str) -> str:
        return "ok"

    @app.get("/go/<path:token>", merge_slashes=False)
    def go(token: str) -> str:
        log.info("go", url=request.url)
        return "ok"

    init_app(app)
    return app
