"""Helpers of the stack tests: serve apps on 127.0.0.1, read /metrics, find processes."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from limone_obs.stack import procs
from limone_obs.stack.procs import LOOPBACK
from tests.support import ROOT, serve

__all__ = ["serve"]  # re-exported: the stack tests import it from here


#: Attempts at starting a server on a port from free_port() (another process may take it).
PORT_ATTEMPTS = 3


@contextmanager
def demo_under_gunicorn(workdir: Path, workers: int = 2) -> Iterator[str]:
    """Run the demo service under gunicorn (multiprocess mode) on a free port; yield its URL.

    gunicorn binds the port only after free_port() chose it; if another process took it
    meanwhile (PortInUseError), start again on a new port, up to PORT_ATTEMPTS times.
    """
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = procs.free_port()
        proc = _start_demo(workdir, port, workers)
        try:
            procs.wait_http(proc, f"http://{LOOPBACK}:{port}/health", timeout=60)
        except procs.PortInUseError:
            proc.stop()
            if attempt == PORT_ATTEMPTS:
                raise
            continue
        try:
            yield f"http://{LOOPBACK}:{port}"
        finally:
            proc.stop()
        return


def _start_demo(workdir: Path, port: int, workers: int) -> procs.Proc:
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "GUNICORN_BIND": f"{LOOPBACK}:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        "LIMONE_DEMO_DATA_DIR": str(workdir / "demo"),
        "LIMONE_DEMO_AI_LATENCY": "0.01-0.02",
    }
    conf = ROOT / "exporter" / "gunicorn.conf.py"
    argv = [sys.executable, "-m", "gunicorn", "-c", str(conf), "limone_obs.demo:create_app()"]
    return procs.start("demo", argv, workdir / "demo.log", env=env)


def metric_sum(url: str, name: str) -> float:
    """Sum of every sample called ``name`` in the exposition at ``url``/metrics."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def process_groups_alive(pgids: Iterable[int]) -> list[int]:
    """PIDs of live (non-zombie) processes whose process group is one of ``pgids``."""
    wanted, alive = set(pgids), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in wanted and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive
