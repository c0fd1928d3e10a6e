"""One service/env for every line under gunicorn (issue 13): the master's lines (also
"Worker ... was sent SIGKILL!"), the workers', gunicorn's access lines and the app's."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from limone_obs.stack import procs
from tests.support import ROOT

pytestmark = pytest.mark.integration

#: The service/env the test app passes to configure_logging.
APP_IDENTITY = ("gunicorn-test", "test")


def _run(tmp: Path, extra_env: dict[str, str]) -> list[dict[str, Any]]:
    """Run gunicorn (shipped config, 2 workers), send requests, SIGKILL one worker, stop."""
    port = procs.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIMONE_OBS_")}
    env.update(
        GUNICORN_BIND=f"{procs.LOOPBACK}:{port}",
        GUNICORN_WORKERS="2",
        GUNICORN_ACCESSLOG="-",
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "prom"),
        PYTHONPATH=str(ROOT),
        **extra_env,
    )
    argv = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "exporter" / "gunicorn.conf.py"),
            "tests.logging.gunicorn_app:create_app()"]  # fmt: skip
    log = tmp / "gunicorn.log"
    proc = procs.start("gunicorn", argv, log, env=env, cwd=ROOT)
    try:
        base = f"http://{procs.LOOPBACK}:{port}"
        procs.wait_http(proc, f"{base}/ready", timeout=30)
        for n in range(1, 5):
            requests.get(f"{base}/work/{n}", timeout=5)
        pid = int(re.findall(r"Booting worker with pid: (\d+)", log.read_text())[0])
        os.kill(pid, signal.SIGKILL)
        _wait_for(log, "was sent SIGKILL")
    finally:
        proc.stop()
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def _wait_for(log: Path, text: str) -> None:
    deadline = time.monotonic() + 20
    while text not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture(scope="module", params=["from-environment", "from-configure-logging"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """gunicorn with LIMONE_OBS_SERVICE/ENV set to other values than the app passes to
    configure_logging, and without them (the app's values are then not known to the
    master)."""
    extra = {"LIMONE_OBS_SERVICE": "limoneide", "LIMONE_OBS_ENV": "production"}
    if request.param == "from-configure-logging":
        extra = {}
    return request.param, _run(tmp_path_factory.mktemp("gunicorn-id"), extra)


def test_every_line_has_one_service_and_env(run: Any) -> None:
    """Master, worker, access and app lines all carry the same service/env: with the
    variables set, theirs; without them the defaults, also on the app's lines (the master
    exported them; the app's configure_logging values lose, as the README says)."""
    source, events = run
    identities = {(e["service"], e["env"]) for e in events}
    assert 1 == len(identities), identities
    if source == "from-environment":
        assert {("limoneide", "production")} == identities
    else:
        assert {("limoneide", "development")} == identities
    loggers = {e["logger"] for e in events}
    assert {"gunicorn.error", "gunicorn.access", "limone_obs.access", "gunicorn_app"} <= loggers


def test_sigkill_line_has_the_service_identity(run: Any) -> None:
    """The master's "Worker ... was sent SIGKILL!" line carries the same service/env as
    the app's lines (it was missing from the production query)."""
    _, events = run
    [killed] = [e for e in events if "was sent SIGKILL" in e["message"]]
    app_line = next(e for e in events if e["logger"] == "gunicorn_app")
    assert (app_line["service"], app_line["env"]) == (killed["service"], killed["env"])


def test_disagreeing_configure_logging_is_reported(run: Any) -> None:
    """When configure_logging's values differ from the ones every line uses, a warning
    line in each worker names the variable to set."""
    _, events = run
    warnings = [e for e in events if e["logger"] == "limone_obs.logging"]
    assert warnings
    assert all("LIMONE_OBS_ENV" in e["message"] or "LIMONE_OBS_SERVICE" in e["message"]
               for e in warnings)  # fmt: skip
