"""Helpers of the logging tests (import as ``tests.logging.helpers``)."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Flask
from jsonschema import Draft202012Validator

from limone_obs.stack import procs
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


def start_gunicorn(
    app: str, tmp: Path, workers: int, log: Path, **env: str
) -> tuple[procs.Proc, str]:
    """Start gunicorn with exporter/gunicorn.conf.py serving ``app`` (a module:factory()
    spec under tests/) on a free port, output to ``log``; return it and its base URL."""
    port = procs.free_port()
    environ = {
        **os.environ,
        "GUNICORN_BIND": f"{procs.LOOPBACK}:{port}",
        "GUNICORN_WORKERS": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom"),
        "PYTHONPATH": str(ROOT),
        **env,
    }
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(ROOT / "exporter" / "gunicorn.conf.py"),
        app,
    ]
    proc = procs.start("gunicorn", argv, log, env=environ, cwd=ROOT)
    return proc, f"http://{procs.LOOPBACK}:{port}"
