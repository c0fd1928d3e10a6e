"""Helpers of the stack tests: serve apps on 127.0.0.1, read /metrics, find processes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import gunicorn_server, metric_sum, serve

# Re-exported: the stack tests import them from here.
__all__ = ["metric_sum", "serve"]


@contextmanager
def demo_under_gunicorn(workdir: Path, workers: int = 2) -> Iterator[str]:
    """Run the demo service under gunicorn (multiprocess mode) on a free port; yield its URL."""
    env = {
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        "LIMONE_DEMO_DATA_DIR": str(workdir / "demo"),
        "LIMONE_DEMO_AI_LATENCY": "0.01-0.02",
    }
    app = "limone_obs.demo:create_app()"
    with gunicorn_server(app, workdir, env, ready_path="/health", name="demo") as (url, _):
        yield url


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
