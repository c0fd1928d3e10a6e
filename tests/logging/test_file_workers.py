"""``configure_logging(file=...)`` under gunicorn with 3 workers (issue 13): no line lost,
no file past its cap (each process writes and rotates a file of its own)."""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from limone_obs.stack import procs
from tests.logging.gunicorn_file_app import FILE_MAX_BYTES
from tests.logging.helpers import start_gunicorn

pytestmark = pytest.mark.integration

REQUESTS = 300


def test_three_workers_lose_no_line_and_respect_the_cap(tmp_path: Path) -> None:
    """300 requests over 3 workers logging to one configured file: every app and access
    line is found exactly once across the files, no file is over the cap, each file has
    one writer (one pid) and the workers' files are numbered siblings of the configured one."""
    log_dir = tmp_path / "logs"
    proc, base = start_gunicorn(
        "tests.logging.gunicorn_file_app:create_app()",
        tmp_path,
        3,
        tmp_path / "gunicorn.log",
        LIMONE_TEST_LOG_FILE=str(log_dir / "app.log"),
    )
    try:
        procs.wait_http(proc, f"{base}/ready", timeout=30)
        with ThreadPoolExecutor(max_workers=6) as pool:
            codes = list(pool.map(lambda n: _get(f"{base}/work/{n}"), range(REQUESTS)))
    finally:
        proc.stop()
    assert [200] * REQUESTS == codes

    files = sorted(p for p in log_dir.iterdir() if not p.name.startswith("."))
    events = {f: [json.loads(line) for line in f.read_text().splitlines()] for f in files}
    work = sorted(e["n"] for evs in events.values() for e in evs if e["message"] == "working")
    lines = [e for evs in events.values() for e in evs]
    access = [e for e in lines if e["logger"] == "limone_obs.access" and "n" not in e]
    access = [e for e in access if e["endpoint"] == "/work/<int:n>"]
    assert list(range(REQUESTS)) == work
    assert REQUESTS == len(access)
    assert [] == [f.name for f in files if f.stat().st_size > FILE_MAX_BYTES]
    assert all(len({e["pid"] for e in evs if "pid" in e}) <= 1 for evs in events.values())
    assert {"app.log", "app-1.log", "app-2.log"} <= {f.name for f in files}


def _get(url: str) -> int:
    return requests.get(url, timeout=10).status_code


def test_forked_child_writes_a_file_of_its_own(tmp_path: Path) -> None:
    """A process that configured and wrote the file, then forked (gunicorn's preload):
    the child's lines go to ``app-1.log``, the parent's stay in ``app.log``."""
    from limone_obs.logging import configure_logging, get_logger  # noqa: PLC0415

    configure_logging(stream=io.BytesIO(), file=tmp_path / "app.log")
    log = get_logger("fork")
    log.info("parent", who="parent")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        for _ in range(5):
            log.info("child", who="child")
        os._exit(0)
    assert 0 == os.waitpid(pid, 0)[1]
    log.info("parent", who="parent")

    def who(name: str) -> set[str]:
        return {json.loads(line)["who"] for line in (tmp_path / name).read_text().splitlines()}

    assert ({"parent"}, {"child"}) == (who("app.log"), who("app-1.log"))
