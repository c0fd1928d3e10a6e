"""Helpers shared by the tests of every area (import as ``tests.support``).

Integration tests ask for real binaries with :func:`need`: missing locally, the test is
skipped with the install command; missing with ``CI=true``, the test fails, so CI can
never pass by skipping what it must run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from limone_obs.stack import procs

ROOT = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where missing binaries are failures."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(service: str) -> str:
    """Return the path of ``service`` (see ``procs.BINARIES``); skip locally, fail in CI."""
    path = procs.find_binary(service)
    if path is None:
        message = f"{service} is not installed: {procs.install_hint(service)}"
        if in_ci():
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return path


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's request handler without its one log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        del code, size


@contextmanager
def serve(app: Flask, *, quiet: bool = False) -> Iterator[str]:
    """Serve ``app`` threaded on a free 127.0.0.1 port; yield its base URL; stop on exit.

    ``quiet`` drops werkzeug's line per request (tests that send many requests).
    """
    handler = _QuietHandler if quiet else None
    server = make_server(procs.LOOPBACK, 0, app, threaded=True, request_handler=handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://{procs.LOOPBACK}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
