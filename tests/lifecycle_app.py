"""The app the lifecycle tests serve: ``tests.lifecycle_app:create_app()``.

Metrics and the JSON access log together, with one route per way a request can end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import IO, Any

from flask import Flask, Response
from prometheus_client import CollectorRegistry

from limone_obs import Metrics
from limone_obs.logging import configure_logging, init_app

#: Chunks of the long stream a client aborts: long enough never to finish first.
LONG_CHUNKS = 400
LONG_CHUNK = b"x" * 65536
LONG_PAUSE = 0.01


class StreamBrokeError(RuntimeError):
    """Raised by /broken-stream after its first chunk, by /stream-fails-first before it."""


class CloseFailedError(RuntimeError):
    """Raised by /close-fails's call_on_close callback, after its whole body."""


def stream_fails_first() -> Response:
    """A view whose streamed body fails before its first chunk (an AI call failing as the
    stream opens); also served by tests/servers' uWSGI and uvicorn apps."""

    def chunks() -> Iterator[str]:
        raise StreamBrokeError("the AI API is down")
        yield "never"  # a generator: it fails when the server asks for its first chunk

    return Response(chunks())


def stream_empty_then_fails() -> Response:
    """A view whose streamed body yields an empty chunk, then fails: gunicorn and Werkzeug
    send the headers with the empty chunk, gevent's pywsgi and waitress skip it unsent."""

    def chunks() -> Iterator[str]:
        yield ""
        raise StreamBrokeError("the AI API is down")

    return Response(chunks())


def create_app(stream: IO[Any] | None = None, registry: CollectorRegistry | None = None) -> Flask:
    """Return the app; log lines go to ``stream`` (stdout by default)."""
    configure_logging(service="lifecycle-test", env="test", stream=stream)
    app = Flask("lifecycle_app")
    Metrics(app, registry=registry)
    init_app(app)

    @app.get("/ready")
    def ready() -> str:
        return "ok"

    @app.get("/stream")
    def stream_view() -> Response:
        def chunks() -> Iterator[str]:
            for i in range(3):
                time.sleep(0.02)
                yield f"token{i} "

        return Response(chunks())

    @app.get("/fail")
    def fail() -> str:
        raise RuntimeError("view failed")

    @app.get("/broken-stream")
    def broken_stream() -> Response:
        def chunks() -> Iterator[str]:
            yield "first "
            raise StreamBrokeError("stream broke")

        return Response(chunks())

    app.add_url_rule("/stream-fails-first", view_func=stream_fails_first)

    @app.get("/close-fails")
    def close_fails() -> Response:
        def chunks() -> Iterator[str]:
            yield "whole "
            yield "answer"

        response = Response(chunks())  # chunked: its last chunk follows the body's end

        def cleanup() -> None:
            raise CloseFailedError("cleanup failed")

        response.call_on_close(cleanup)
        return response

    @app.get("/long-stream")
    def long_stream() -> Response:
        def chunks() -> Iterator[bytes]:
            for _ in range(LONG_CHUNKS):
                time.sleep(LONG_PAUSE)
                yield LONG_CHUNK

        return Response(chunks())

    return app
