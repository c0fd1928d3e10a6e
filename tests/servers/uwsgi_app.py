"""The app the uWSGI test serves: ``tests.servers.uwsgi_app:app``, imported by the master.

It answers one request while it is imported, as apps that warm up at start do: in the
master, before uWSGI forks the workers, so the exporter's and the logging integration's
per-process state is in use when the fork copies it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from flask import Flask, Response

from limone_obs import Metrics
from limone_obs.logging import configure_logging, init_app
from tests.lifecycle_app import stream_fails_first


def create_app() -> Flask:
    """Metrics and the access log; ``/pid`` names the worker that answered, ``/long-stream``
    streams for seconds (a client leaves it mid-body), ``/stream-fails-first`` fails
    before its first chunk."""
    configure_logging(service="uwsgi-test", env="test")
    app = Flask("uwsgi_app")
    Metrics(app)
    init_app(app)

    @app.get("/pid")
    def pid() -> str:
        return str(os.getpid())

    @app.get("/long-stream")
    def long_stream() -> Response:
        def chunks() -> Iterator[bytes]:
            for _ in range(400):
                time.sleep(0.01)
                yield b"x" * 65536

        return Response(chunks())

    app.add_url_rule("/stream-fails-first", view_func=stream_fails_first)

    return app


app = create_app()
app.test_client().get("/pid").close()  # the warm-up, in the master (counted when closed)
