"""Helpers of the stack tests: serve a WSGI app on 127.0.0.1 from a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import make_server

from limone_obs.stack.procs import LOOPBACK


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve ``app`` threaded on a free 127.0.0.1 port; yield its base URL; stop on exit."""
    server = make_server(LOOPBACK, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
