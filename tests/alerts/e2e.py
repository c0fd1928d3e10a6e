"""Pieces of the end-to-end alerting test: a faulty instrumented app, its traffic, configs.

Kept small and local to the alerts tests; ``limone_obs.stack`` has the shared receiver
(:class:`~limone_obs.stack.webhook.WebhookReceiver`) used here.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import requests
import yaml
from flask import Flask
from prometheus_client import CollectorRegistry

from limone_obs import Metrics
from limone_obs.alerts.build import ALERTING_RULES, RECORDING_RULES, generate
from limone_obs.alerts.kinds.threshold import ThresholdSli
from limone_obs.alerts.spec import ServiceSpec


def faulty_app(faults: threading.Event) -> Flask:
    """A Flask app with limone-obs metrics whose ``/`` answers 500 while ``faults`` is set."""
    app = Flask("limoneide-e2e")
    Metrics(app, registry=CollectorRegistry(), process_metrics=False)

    @app.get("/")
    def index() -> tuple[str, int]:
        return ("fault", 500) if faults.is_set() else ("ok", 200)

    return app


@contextmanager
def traffic(url: str, *, every: float = 0.05, limit: float = 150.0) -> Iterator[None]:
    """Request ``url`` every ``every`` s from a thread, until the block ends or ``limit`` s."""
    stop = threading.Event()
    deadline = time.monotonic() + limit

    def run() -> None:
        with requests.Session() as session:
            while not stop.is_set() and time.monotonic() < deadline:
                # The app may be shutting down; the next request retries.
                with contextlib.suppress(requests.RequestException):
                    session.get(url, timeout=2)
                stop.wait(every)

    thread = threading.Thread(target=run, name="e2e-traffic", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def fast_spec(spec: ServiceSpec, for_: str) -> ServiceSpec:
    """``spec`` with every threshold alert's ``for`` shortened to ``for_`` (e2e timing only)."""
    slos = tuple(
        replace(s, sli=replace(s.sli, for_=for_)) if isinstance(s.sli, ThresholdSli) else s
        for s in spec.slos
    )
    return replace(spec, slos=slos)


def write_rules(spec: ServiceSpec, folder: Path) -> list[Path]:
    """Write the spec's two rule files into ``folder``; return their paths."""
    files = generate(spec)
    paths = []
    for rel in (RECORDING_RULES, ALERTING_RULES):
        path = folder / Path(rel).name
        path.write_bytes(files[rel])
        paths.append(path)
    return paths


def prometheus_config(
    spec: ServiceSpec, rules: list[Path], app_address: str, am_address: str
) -> str:
    """A Prometheus config scraping the app every second and evaluating every second."""
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rules],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_address]}]}]},
        "scrape_configs": [
            {"job_name": spec.job, "static_configs": [{"targets": [app_address]}]},
        ],
    }
    return yaml.safe_dump(config, sort_keys=True)
