"""A real Prometheus scraping an instrumented app through a fault and a recovery.

Three phases of ``PHASE`` seconds each under a bounded load: healthy, faulty (slow and
failing /projects and slow AI calls), recovered. /new (a cache read) is requested only
from the fault on, like an endpoint the change added. /stream streams for 1.05 s, and
1.30 s under the fault: every request stays in the (1, 1.5] bucket. :func:`run` yields
the Prometheus URL and the phase start times; everything started is stopped on exit.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml
from flask import Flask, Response

from limone_obs import Metrics
from limone_obs import conventions as c
from limone_obs.alerts.spec import load_spec
from limone_obs.stack import procs
from tests.dashboards.scenario import _fast_rules
from tests.support import ROOT, serve

#: Seconds per phase (healthy, fault, recovered).
PHASE = 24.0
#: Requests per second of the load (bounded: it stops after the three phases).
RPS = 25.0
PROJECT = "/projects/<int:project_id>"
AI = "/ai/complete"
NEW = "/new"
#: Seconds between two requests to /new (from the fault on).
NEW_EVERY = 0.1
STREAM = "/stream"
#: Seconds a /stream response takes, healthy and under the fault: both in (1, 1.5].
STREAM_SECONDS = (1.05, 1.30)
#: Clients of /stream, one request at a time each: 30+ requests per phase window.
STREAM_CLIENTS = 4


@dataclass(frozen=True)
class Run:
    """Prometheus' URL and when each phase started (Unix seconds)."""

    url: str
    job: str
    healthy: float
    fault: float
    recovered: float
    end: float


def create_app(fault: threading.Event) -> Flask:
    """/projects (DB call; under the fault 300 ms and 30 % 500s; then a template of a few
    microseconds), /ai (AI call; 600 ms), /new (a 2 ms cache read)."""
    app = Flask("report_example")
    metrics = Metrics(app)
    rng = random.Random(3)

    @app.get(PROJECT)
    def project(project_id: int) -> str | tuple[str, int]:
        with metrics.track(c.DEPENDENCY_DB, "select_project"):
            time.sleep(0.3 if fault.is_set() else 0.01)
        if fault.is_set() and rng.random() < 0.3:
            return "failed", 500
        with metrics.track(c.DEPENDENCY_TEMPLATE, "project.html"):
            return f"project {project_id}"  # microseconds: prints as "< 1 ms"

    @app.post(AI)
    def complete() -> str:
        with metrics.track(c.DEPENDENCY_AI, "complete"):
            time.sleep(0.6 if fault.is_set() else 0.05)
        return "completion"

    @app.get(STREAM)
    def stream() -> Response:
        pause = STREAM_SECONDS[fault.is_set()] / 2

        def chunks() -> Iterator[str]:
            for part in ("first half\n", "second half\n"):
                time.sleep(pause)
                yield part

        return Response(chunks(), mimetype="text/plain")

    @app.get(NEW)
    def new() -> str:
        with metrics.track(c.DEPENDENCY_CACHE, "get"):
            time.sleep(0.002)
        return "new"

    return app


def _load(base: str, stop: threading.Event) -> None:
    session = requests.Session()
    deadline = time.time() + 4 * PHASE  # bounded even if nobody sets stop
    i = 0
    while not stop.is_set() and time.time() < deadline:
        i += 1
        try:
            if i % 3:
                session.get(f"{base}/projects/{i}", timeout=5)
            else:
                session.post(f"{base}/ai/complete", timeout=5)
        except requests.RequestException:
            pass
        time.sleep(1 / RPS)


def _load_stream(base: str, stop: threading.Event) -> None:
    """/stream one request after the other, read to its end."""
    session = requests.Session()
    deadline = time.time() + 4 * PHASE
    while not stop.is_set() and time.time() < deadline:
        with suppress(requests.RequestException):
            session.get(f"{base}{STREAM}", timeout=5).content  # noqa: B018 - read it all


def _load_new(base: str, start: threading.Event, stop: threading.Event) -> None:
    """/new every NEW_EVERY seconds once ``start`` is set (none before: no baseline)."""
    session = requests.Session()
    deadline = time.time() + 4 * PHASE
    while not start.is_set():
        if stop.wait(0.2) or time.time() > deadline:
            return
    while not stop.is_set() and time.time() < deadline:
        with suppress(requests.RequestException):
            session.get(f"{base}{NEW}", timeout=5)
        time.sleep(NEW_EVERY)


def _config(folder: Path, job: str, target: str) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": _fast_rules(folder),
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}],
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def run(folder: Path, binary: str) -> Iterator[Run]:
    """Run the three phases (about 75 s) and yield; Prometheus stays up until exit."""
    job = load_spec(ROOT / "alerts" / "slo.yaml").job
    fault, stop = threading.Event(), threading.Event()
    with serve(create_app(fault), quiet=True) as base:
        port = procs.free_port()
        config = _config(folder, job, base.removeprefix("http://"))
        proc = procs.start("prometheus", procs.prometheus_argv(binary, config, folder, port),
                           folder / "prometheus.log")  # fmt: skip
        url = f"http://{procs.LOOPBACK}:{port}"
        loaders = [threading.Thread(target=_load, args=(base, stop)) for _ in range(3)]
        loaders.append(threading.Thread(target=_load_new, args=(base, fault, stop)))
        loaders += [
            threading.Thread(target=_load_stream, args=(base, stop)) for _ in range(STREAM_CLIENTS)
        ]
        try:
            procs.wait_http(proc, f"{url}/-/ready")
            time.sleep(2)  # one scrape before the load: the counters start from 0
            for loader in loaders:
                loader.start()
            healthy = time.time()
            time.sleep(PHASE)
            fault.set()
            faulty = time.time()
            time.sleep(PHASE)
            fault.clear()
            recovered = time.time()
            time.sleep(PHASE)
            stop.set()
            time.sleep(2)  # the last scrape sees the last requests
            yield Run(url, job, healthy, faulty, recovered, time.time())
        finally:
            stop.set()
            for loader in loaders:
                if loader.is_alive():
                    loader.join(timeout=30)
            proc.stop()
