"""A real Prometheus scraping the example app under load, for the dashboard query tests.

:func:`running` serves an example app on 127.0.0.1, starts Prometheus scraping it every
second as the spec's job (plus any extra targets) with the generated recording and
alerting rules loaded (``for:`` shortened to 0s so alerts fire within a test), drives a
bounded load in a thread and yields once ``ready`` says so; everything is stopped on
exit. :func:`run` runs one panel query as Grafana would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml
from flask import Flask

from limone_obs.alerts import build as alerts_build
from limone_obs.dashboards.generate import build_from
from limone_obs.dashboards.slo_inputs import load_service
from limone_obs.stack import procs
from tests.dashboards.example_app import drive
from tests.dashboards.helpers import PanelQuery, prometheus_queries, variable_values
from tests.support import ROOT, serve

#: Upper bound of the load; it stops earlier, once the queries have run.
MAX_REQUESTS = 4000
#: Range of the range queries, in seconds (Grafana's "last minute").
RANGE_SECONDS = 60


@dataclass(frozen=True)
class Scenario:
    """The running scenario: Prometheus' URL and the dashboards built from the spec."""

    url: str
    dashboards: dict[str, dict[str, Any]]
    job: str

    def queries(self) -> list[PanelQuery]:
        """Every Prometheus panel query, expanded for this scenario."""
        return list(prometheus_queries(self.dashboards, variable_values(self.job)))


def _fast_rules(folder: Path) -> list[str]:
    """Write the generated rule files with every ``for:`` set to 0s; return their paths."""
    paths = []
    for rel, content in sorted(alerts_build.artifacts(ROOT).files.items()):
        if not rel.startswith("alerts/rules/"):
            continue
        doc = yaml.safe_load(content)
        for group in doc["groups"]:
            group.pop("interval", None)  # every group at the test's 1 s evaluation
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "0s"
        path = folder / Path(rel).name
        path.write_text(yaml.safe_dump(doc))
        paths.append(str(path))
    return paths


def _config(folder: Path, job: str, targets: list[str]) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": _fast_rules(folder),
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}],
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def instant(url: str, expr: str) -> list[dict[str, Any]]:
    """The result vector of the instant query ``expr`` now."""
    resp = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5)
    result: list[dict[str, Any]] = resp.json()["data"]["result"]
    return result


@contextmanager
def running(
    app: Flask, folder: Path, binary: str, ready: Callable[[str], None], *, extra_targets: int = 0
) -> Iterator[Scenario]:
    """Serve ``app``, scrape it (and ``extra_targets`` dead ones), load it; yield once ready.

    ``ready(url)`` blocks until the scenario has what its tests need (or fails the test).
    """
    job = load_service(ROOT).job
    stop = threading.Event()
    with serve(app, quiet=True) as app_url:
        target = app_url.removeprefix("http://")  # host:port, as Prometheus wants it
        dead = [f"{procs.LOOPBACK}:{procs.free_port()}" for _ in range(extra_targets)]
        port = procs.free_port()
        argv = procs.prometheus_argv(binary, _config(folder, job, [target, *dead]), folder, port)
        proc = procs.start("prometheus", argv, folder / "prometheus.log")
        loader = threading.Thread(target=drive, args=(target, MAX_REQUESTS, stop))
        url = f"http://{procs.LOOPBACK}:{port}"
        try:
            procs.wait_http(proc, f"{url}/-/ready")
            loader.start()
            ready(url)
            yield Scenario(url=url, dashboards=build_from(ROOT), job=job)
        finally:
            stop.set()
            if loader.is_alive():
                loader.join(timeout=30)
            proc.stop()


def run(url: str, query: PanelQuery) -> dict[str, Any]:
    """Run ``query`` as Grafana would (instant or range over the last minute)."""
    now = time.time()
    if query.instant:
        params: dict[str, Any] = {"query": query.expr, "time": now}
        resp = requests.get(f"{url}/api/v1/query", params=params, timeout=30)
    else:
        params = {"query": query.expr, "start": now - RANGE_SECONDS, "end": now, "step": 2}
        resp = requests.get(f"{url}/api/v1/query_range", params=params, timeout=30)
    body: dict[str, Any] = resp.json()
    return body


def run_all(scenario: Scenario) -> list[tuple[PanelQuery, dict[str, Any]]]:
    """Every panel query of ``scenario`` with Prometheus' answer."""
    return [(query, run(scenario.url, query)) for query in scenario.queries()]
