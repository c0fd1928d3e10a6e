"""The ``/metrics`` endpoint as a small WSGI app: text or OpenMetrics, gzip, bearer token.

The same app answers on the Flask app's metrics path and, optionally, on a port of its
own (:func:`serve`), so both behave identically.
"""

from __future__ import annotations

import gzip
import hmac
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_GZIP_MIN_BYTES = 1024


class MetricsApp:
    """WSGI app rendering ``registry()`` at every request.

    ``registry`` is a callable so multiprocess mode can build its reading registry lazily.
    With ``token`` set, requests need ``Authorization: Bearer <token>`` (401 otherwise).
    """

    def __init__(self, registry: Callable[[], CollectorRegistry], token: str | None = None) -> None:
        self._registry = registry
        self._token = token.encode() if token else None

    def _authorised(self, environ: WSGIEnvironment) -> bool:
        if self._token is None:
            return True
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode("utf-8", "surrogateescape"), self._token
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b"method not allowed\n"]
        if not self._authorised(environ):
            start_response(
                "401 Unauthorized",
                [("WWW-Authenticate", 'Bearer realm="metrics"'), ("Content-Type", "text/plain")],
            )
            # HEAD gets the headers alone (RFC 9110): gunicorn logs a warning per response
            # otherwise, which anyone could cause without a token.
            head = environ.get("REQUEST_METHOD") == "HEAD"
            return [b"" if head else b"unauthorized: send Authorization: Bearer <token>\n"]
        encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
        body = encoder(self._registry())
        headers = [("Content-Type", content_type), ("Cache-Control", "no-store")]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "") and len(body) >= _GZIP_MIN_BYTES:
            body = gzip.compress(body, compresslevel=5)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Stay silent: scrapes every few seconds would flood the app's log."""


def serve(app: MetricsApp, port: int, addr: str = "127.0.0.1") -> WSGIServer:
    """Serve ``app`` on ``addr:port`` from a daemon thread; return the server (``.shutdown()``).

    Port 0 picks a free port: read it from ``server.server_port``.
    """
    server = make_server(addr, port, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="limone-obs-metrics", daemon=True)
    thread.start()
    return server
