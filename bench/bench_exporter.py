"""Per-request cost of the exporter: bare Flask vs limone-obs vs prometheus-flask-exporter.

Two measurements of the same app (``_apps.py``: same routes, URL-rule labels):

1. Flask test client, in process: CPU time (``process_time``) per request, median over
   rounds; the variants take turns in every round so drift hits them alike.
2. gunicorn, 2 sync workers, ``exporter/gunicorn.conf.py`` (multiprocess storage for every
   variant), bounded load from a second process (``_load.py``) on 127.0.0.1: CPU time
   (utime + stime from ``/proc/<pid>/stat``) the workers spent per request.

A fourth variant adds the JSON access log of ``limone_obs.logging`` (written to a file)
when that package is present. Target (issue 2): limone-obs <= 1.05x bare on both.

Run: ``python bench/bench_exporter.py [--quick]`` (needs ``pip install '.[bench]'``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import _apps  # noqa: E402
from _table import ratio, table, us, verdict  # noqa: E402

from limone_obs.stack import procs  # noqa: E402

TARGET = 1.05
LABELS = {
    "bare": "bare Flask",
    "limone": "limone-obs",
    "peer": "prometheus-flask-exporter",
    "logged": "limone-obs + JSON access log",
}


def variants() -> list[str]:
    """The variants this environment can run (the peer needs ``pip install '.[bench]'``)."""
    names = ["bare", "limone"]
    if importlib.util.find_spec("prometheus_flask_exporter") is not None:
        names.append("peer")
    return names + (["logged"] if _apps.logging_available() else [])


def _client_round(factory: Callable[[], object], n: int) -> Callable[[], float]:
    app = factory()
    client = app.test_client()  # type: ignore[attr-defined]
    paths = _apps.PATHS

    def once() -> float:
        # CPU time of this process: not inflated while other processes hold the CPU.
        start = time.process_time()
        for i in range(n):
            client.get(paths[i % len(paths)]).data  # noqa: B018 - reading closes the body
        return (time.process_time() - start) / n

    once()  # warm up: first-request setup, label children
    return once


def test_client_costs(names: list[str], n: int, rounds: int) -> dict[str, float]:
    """Median seconds per request on the Flask test client, per variant."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BENCH_LOG_FILE"] = os.path.join(tmp, "access.log")
        runners = {name: _client_round(getattr(_apps, name), n) for name in names}
        samples: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(rounds):
            for name, once in runners.items():
                samples[name].append(once())
    return {name: statistics.median(s) for name, s in samples.items()}


def _cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def _workers(master: int) -> list[int]:
    text = Path(f"/proc/{master}/task/{master}/children").read_text()
    return sorted(int(p) for p in text.split())


def _load(port: int, n: int) -> int:
    out = subprocess.run(
        [sys.executable, str(HERE / "_load.py"), str(port), str(n), "4"],
        capture_output=True, text=True, timeout=300, check=True, cwd=HERE,
    )  # fmt: skip
    answered, failed = map(int, out.stdout.split())
    if failed:
        raise RuntimeError(f"{failed} of {n} requests failed")
    return answered


def start_server(name: str, tmp: Path, stack: contextlib.ExitStack) -> tuple[int, list[int]]:
    """Start gunicorn serving variant ``name``; return its port and worker pids."""
    port = procs.free_port()
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"mp-{name}"),
        "BENCH_LOG_FILE": str(tmp / f"access-{name}.log"),
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src")]),
    }  # fmt: skip
    argv = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "exporter" / "gunicorn.conf.py")]
    log = tmp / f"gunicorn-{name}.log"
    proc = procs.start(name, [*argv, f"_apps:{name}()"], log, env=env, cwd=HERE)
    stack.callback(proc.stop)
    procs.wait_http(proc, f"http://127.0.0.1:{port}/health", expect=204)
    _load(port, 200)  # warm up every worker: imports, label children, first files
    return port, _workers(proc.pid)


def gunicorn_cpu(names: list[str], n: int, rounds: int, tmp: Path) -> dict[str, float]:
    """Median worker CPU seconds per request under gunicorn, per variant.

    Every variant's server runs for the whole measurement and the variants take turns in
    every round, so background load on the machine hits them alike.
    """
    with contextlib.ExitStack() as stack:
        servers = {name: start_server(name, tmp, stack) for name in names}
        samples: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(rounds):
            for name, (port, workers) in servers.items():
                before = _cpu_seconds(workers)
                answered = _load(port, n)
                samples[name].append((_cpu_seconds(workers) - before) / answered)
    return {name: statistics.median(s) for name, s in samples.items()}


def _rows(costs: dict[str, float]) -> list[list[str]]:
    base, rows = costs["bare"], []
    for name, cost in costs.items():
        target = verdict(cost / base, TARGET) if name == "limone" else ""
        rows.append([LABELS[name], us(cost), ratio(cost, base), target])
    return rows


def run(quick: bool) -> str:
    """Return the markdown section: medians and ratios from one run."""
    names = variants()
    n_client, client_rounds = (300, 3) if quick else (1500, 21)
    n_gunicorn, gunicorn_rounds = (200, 1) if quick else (2000, 5)
    client = test_client_costs(names, n_client, client_rounds)
    # The metrics directory on a tmpfs, like exporter/gunicorn.conf.py's default.
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        cpu = gunicorn_cpu(names, n_gunicorn, gunicorn_rounds, Path(tmp))
    missing = [LABELS[n] for n in LABELS if n not in names]
    note = f" (not installed, no row: {', '.join(missing)})" if missing else ""
    return "\n".join([
        "## Exporter overhead per request",
        "",
        f"Flask test client: {n_client} requests x {client_rounds} rounds, variants taking "
        f"turns; median CPU time (process_time) per request{note}.",
        "",
        table(["variant", "median per request", "vs bare", f"target <= {TARGET}x"], _rows(client)),
        "",
        f"gunicorn (2 sync workers, exporter/gunicorn.conf.py, load of {n_gunicorn} requests "
        f"x {gunicorn_rounds} rounds from a second process, 4 connections at a time, variants "
        "taking turns): worker CPU (utime+stime) per request, median over rounds; clock "
        "tick 10 ms.",
        "",
        table(["variant", "worker CPU per request", "vs bare", f"target <= {TARGET}x"], _rows(cpu)),
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
