"""The app of the gevent tests: ``tests.servers.gevent_app:create_app()``.

Metrics and the JSON log, both through the stdlib handler and structlog, on every
request, with a cooperative wait (``time.sleep`` is gevent's once the worker patched it)
between binding a field and logging it: concurrent requests interleave in one thread.
"""

from __future__ import annotations

import logging
import os
import time

from flask import Flask, request

from limone_obs import Metrics
from limone_obs.logging import bind, configure_logging, get_context, get_logger, init_app


def create_app() -> Flask:
    """Routes: ``/ready`` and ``/slow?seconds=&tag=`` (answers its log context and pid)."""
    configure_logging(service="gevent-test", env="test")
    app = Flask("gevent_app")
    Metrics(app)
    init_app(app)
    log = get_logger("gevent_app")

    @app.get("/ready")
    def ready() -> str:
        return "ok"

    @app.get("/slow")
    def slow() -> dict[str, str | int]:
        tag = request.args.get("tag", "")
        bind(tag=tag)
        time.sleep(min(float(request.args.get("seconds", "0")), 5.0))
        log.info("slept", seen=tag)
        logging.getLogger("some.library").warning("library line for %s", tag)
        context = get_context()
        return {
            "tag": context.get("tag", ""),
            "request_id": context.get("request_id", ""),
            "pid": os.getpid(),
        }

    return app
