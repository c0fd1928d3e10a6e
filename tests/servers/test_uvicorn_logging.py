"""uvicorn ``--workers`` with the kit's ``logging/uvicorn-log-config.json``: JSON lines only.

uvicorn's parent process never runs the app, so the app's ``configure_logging`` cannot
format its lines ("Started parent process"); the shipped ``--log-config`` gives uvicorn's
loggers the kit's formatter in every process, and leaves uvicorn's access lines off (the
app writes its own).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from limone_obs import conventions as c
from limone_obs.stack import procs
from tests.support import ROOT, on_a_free_port, wait_until

pytestmark = pytest.mark.integration
LOG_CONFIG = ROOT / "logging" / "uvicorn-log-config.json"


def _lines(log: Path) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if line.strip()]


def _json_or_none(line: str) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def test_every_line_of_uvicorn_with_workers_is_json(tmp_path: Path) -> None:
    """Parent and workers, start to stop: every line is a JSON object in the kit's
    schema, the parent's with the service and env of LIMONE_OBS_SERVICE/ENV; one access
    line per request, the app's."""
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "mp"),
        c.ENV_SERVICE: "shop", c.ENV_ENV: "test",
    }  # fmt: skip
    (tmp_path / "mp").mkdir()
    log = tmp_path / "uvicorn.log"

    def start(port: int) -> procs.Proc:
        argv = [
            sys.executable, "-m", "uvicorn", "tests.servers.uvicorn_app:create_asgi",
            "--factory", "--workers", "2", "--host", procs.LOOPBACK, "--port", str(port),
            "--log-config", str(LOG_CONFIG),
        ]  # fmt: skip
        return procs.start("uvicorn", argv, log, env=env, cwd=ROOT)

    def ready(proc: procs.Proc, port: int) -> None:
        procs.wait_http(proc, f"http://{procs.LOOPBACK}:{port}/ready", timeout=60)

    with on_a_free_port(start, ready) as (port, _):
        for n in range(5):
            requests.get(f"http://{procs.LOOPBACK}:{port}/items/{n}", timeout=10)
        wait_until(lambda: sum('"/items/<int:item_id>"' in x for x in _lines(log)) >= 5, "5 lines")
    lines = _lines(log)
    assert [] == [line for line in lines if _json_or_none(line) is None]
    events = [e for e in map(_json_or_none, lines) if e is not None]
    parent = [e for e in events if str(e.get(c.LOG_MESSAGE, "")).startswith("Started parent")]
    assert [("shop", "test")] == [(e[c.LOG_SERVICE], e[c.LOG_ENV]) for e in parent]
    loggers = [e[c.LOG_LOGGER] for e in events]
    assert (5, 0) == (
        sum(1 for e in events if e.get(c.LOG_ENDPOINT) == "/items/<int:item_id>"
            and e[c.LOG_LOGGER] == c.ACCESS_LOGGER),
        loggers.count("uvicorn.access"),
    )  # fmt: skip
