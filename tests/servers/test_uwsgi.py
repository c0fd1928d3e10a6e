"""uWSGI, a server the kit does not configure: exact counts and unique request ids.

uWSGI imports the app in its master and forks the workers from it; Python's fork hooks
run in the workers only with ``py-call-uwsgi-fork-hooks``. Without them the exporter and
the logging integration take their fork-safe paths and say so in one line each; with
them, no line. Either way every request is counted once and every request id is new,
also for the app that answered a request in the master before the fork.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector

from limone_obs.stack import procs
from tests.support import (
    ROOT,
    in_ci,
    leave_mid_body,
    metric_sum,
    on_a_free_port,
    per_endpoint,
    statuses_of,
    wait_until,
)

pytestmark = pytest.mark.integration
REQUESTS = 300
UNHOOKED_LINES = (
    "the exporter uses prometheus-client's public API",
    "request ids are drawn one system call per request",
)


def _uwsgi() -> str:
    """The uwsgi executable of this virtualenv (pip install uwsgi); skip locally, fail in CI."""
    path = Path(sys.executable).parent / "uwsgi"
    if not path.exists():
        message = f"uWSGI is not in this virtualenv: {sys.executable} -m pip install uwsgi"
        if in_ci():
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return str(path)


@contextmanager
def uwsgi_server(tmp_path: Path, *options: str) -> Iterator[tuple[str, procs.Proc]]:
    """uWSGI with a master, 2 processes of 2 threads and a mule serving
    tests/servers/uwsgi_app.py."""
    mpdir = tmp_path / "mp"
    mpdir.mkdir()
    binary = _uwsgi()

    def start(port: int) -> procs.Proc:
        argv = [
            binary, "--http-socket", f"{procs.LOOPBACK}:{port}", "--master", "--processes", "2",
            "--threads", "2", "--mule", "--enable-threads", "--die-on-term", "--disable-logging",
            "--need-app",
            "--virtualenv", sys.prefix, "--chdir", str(ROOT), "--pythonpath", str(ROOT),
            "--module", "tests.servers.uwsgi_app:app",
            "--env", f"PROMETHEUS_MULTIPROC_DIR={mpdir}", *options,
        ]  # fmt: skip
        return procs.start("uwsgi", argv, tmp_path / "uwsgi.log", cwd=ROOT)

    def ready(proc: procs.Proc, port: int) -> None:
        procs.wait_http(proc, f"http://{procs.LOOPBACK}:{port}/pid", timeout=60)

    with on_a_free_port(start, ready) as (port, proc):
        yield f"http://{procs.LOOPBACK}:{port}", proc


def _requests_in_files_of(pid: int, mpdir: Path, tmp_path: Path) -> float:
    """The requests counted in process ``pid``'s own multiprocess files."""
    alone = tmp_path / f"files-of-{pid}"
    alone.mkdir()
    for path in mpdir.glob(f"*_{pid}.db"):
        shutil.copy(path, alone)
    collector = MultiProcessCollector(None, path=str(alone))  # type: ignore[no-untyped-call]
    return sum(
        sample.value
        for family in collector.collect()  # type: ignore[no-untyped-call]
        for sample in family.samples
        if sample.name == "limoneide_requests_total"
    )


def _load(url: str) -> list[tuple[str, str]]:
    """(worker pid, X-Request-ID) of REQUESTS requests sent 4 at a time."""

    def get(_: int) -> tuple[str, str]:
        answer = requests.get(f"{url}/pid", timeout=10)
        answer.raise_for_status()
        return answer.text, answer.headers["X-Request-ID"]

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(get, range(REQUESTS)))


@pytest.mark.parametrize(
    "hooks",
    # Without the hooks the fast path's "fork hooks" reason line is expected, and that
    # reason is given only where the fast path could be selected.
    [pytest.param(False, id="default", marks=pytest.mark.fast_path),
     pytest.param(True, id="fork-hooks")],
)  # fmt: skip
def test_counts_and_request_ids_across_the_fork(tmp_path: Path, hooks: bool) -> None:
    """Both workers serve; each request is counted once, in its worker's own files, and
    gets an id of its own; the process series and the worker slots cover both workers."""
    options = ("--py-call-uwsgi-fork-hooks",) if hooks else ()
    with uwsgi_server(tmp_path, *options) as (url, proc):
        served = _load(url)

        def every_access_line_counted() -> bool:
            # A request is counted at its end, after its body was sent: poll for the last.
            lines = proc.log.read_text(errors="replace").count('"path":"/pid"')
            return lines == metric_sum(url, "limoneide_requests_total")

        wait_until(every_access_line_counted, "the requests counted", timeout=20)
        workers_read = metric_sum(url, "process_workers")
        slots = metric_sum(url, "limoneide_worker_threads")
        busy_and_idle = metric_sum(url, "limoneide_workers")
        log = proc.log.read_text(errors="replace")
    pids = {pid for pid, _ in served}
    ids = [request_id for _, request_id in served]
    assert 2 == len(pids), log
    assert len(ids) == len(set(ids))
    # The master's files hold its warm-up request alone: no worker wrote into them.
    assert 1 == _requests_in_files_of(proc.pid, tmp_path / "mp", tmp_path)
    # Counted: the REQUESTS, the readiness probes and the master's warm-up request.
    assert REQUESTS < log.count('"path":"/pid"') <= REQUESTS + 200
    # The process series read the master's two workers, not its mule.
    assert 2 == workers_read
    # Each worker published its 2 threads by itself (no gunicorn hook here); the master
    # and the mule none. Nothing is busy once the load is done: busy + idle = the slots.
    assert (4, 4) == (slots, busy_and_idle)
    for line in UNHOOKED_LINES:
        assert (0 if hooks else 1) == log.count(line), log


def test_a_client_gone_mid_stream_is_marked_aborted(tmp_path: Path) -> None:
    """uWSGI drops the body's iteration when the client leaves a stream: one access line,
    with ``client_aborted`` and the status it sent, counted once. A stream failing before
    its first chunk is recorded with the status uWSGI answered: 200 (it sends the
    headers before the body; gunicorn and Werkzeug answer 500, tests/test_lifecycle.py).
    Neither exception gets an ``uncaught`` line beside its access line."""
    with uwsgi_server(tmp_path) as (url, proc):
        leave_mid_body(url, "/long-stream")
        answered = requests.get(f"{url}/stream-fails-first", timeout=10).status_code

        def logged() -> bool:
            text = proc.log.read_text(errors="replace")
            return all(f'"path":"{p}"' in text for p in ("/long-stream", "/stream-fails-first"))

        wait_until(logged, "the streams' access lines", timeout=20)
        text = requests.get(f"{url}/metrics", timeout=10).text
        log = proc.log.read_text(errors="replace")
    access = [json.loads(x) for x in log.splitlines() if '"logger":"limone_obs.access"' in x]
    [line] = [x for x in access if x["path"] == "/long-stream"]
    assert (200, True) == (line["status_code"], line.get("client_aborted"))
    assert 1.0 == per_endpoint(text, "limoneide_requests_total")["/long-stream"]
    [failed] = [x for x in access if x["path"] == "/stream-fails-first"]
    counted = statuses_of(text, "/stream-fails-first")
    assert (200, 200, {"200"}) == (answered, failed["status_code"], counted)
    # uWSGI hands both exceptions (the stream's, its failed write to the client gone) to
    # sys.excepthook as well: the access lines carry them, no "uncaught" line repeats them.
    assert '"logger":"uncaught"' not in log, log
