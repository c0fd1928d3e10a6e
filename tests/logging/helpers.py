"""Helpers of the logging tests (import as ``tests.logging.helpers``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from flask import Flask
from jsonschema import Draft202012Validator

from tests.support import ROOT

SCHEMA_FILE = ROOT / "logging" / "log-event.schema.json"


def parse_lines(data: bytes | str) -> list[dict[str, Any]]:
    """Split output as ``str.splitlines`` would and parse each line as one JSON object."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    events = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(event, dict) for event in events)
    return events


def schema_errors(validator: Draft202012Validator, events: list[dict[str, Any]]) -> list[str]:
    """Return every schema violation of ``events`` as ``line N: message``."""
    return [
        f"line {n}: {error.message}"
        for n, event in enumerate(events, 1)
        for error in validator.iter_errors(event)
    ]


def stdlib_logger(name: str) -> logging.Logger:
    """A stdlib logger that propagates to the root (where configure_logging's handler is)."""
    logger = logging.getLogger(name)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
    return logger


class Sent:
    """The attributes of a gunicorn ``Response`` that ``access_fields`` reads."""

    status = "200 OK"
    sent = 2

    def __init__(self, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.headers = list(headers)


def environs_served(app: Flask) -> list[dict[str, Any]]:
    """The environs ``app`` is served from now on, as the server (gunicorn) holds them."""
    served: list[dict[str, Any]] = []
    inner = app.wsgi_app

    def outermost(environ: Any, start_response: Any) -> Any:
        served.append(environ)
        return inner(environ, start_response)

    app.wsgi_app = outermost  # type: ignore[method-assign]
    return served
