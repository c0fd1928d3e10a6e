"""Exporter overhead in CPU instructions per request, counted by valgrind (callgrind).

Wall and CPU times on a shared 2-core machine move by several percent between runs;
instruction counts do not (the same binary, inputs and environment give the same total).
Each run is made twice and the lesser count kept (a rare one-off in a run only adds).

1. Flask test client, single process (the ``_apps`` variants): each variant is run with
   a small and a large number of requests, and the difference divided by the difference
   in requests gives the cost of one request without start-up.
2. One gunicorn sync worker under ``exporter/gunicorn.conf.py`` (multiprocess storage),
   sequential requests from this process on 127.0.0.1: the worker's counters are zeroed
   after a warm-up and dumped after the measured requests (``callgrind_control``).

Skipped, with a note, when valgrind is not installed (``apt-get install valgrind``).
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _apps import PATHS
from _table import ratio, table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: Runs of each size and variant; the least count is kept (see _per_request).
REPEATS = 2
#: Requests a gunicorn worker serves before its counters are zeroed.
WARM_UP = 50
_TOTAL = re.compile(rb"^(?:summary|totals): (\d+)", re.MULTILINE)
#: Warm up, then freeze the garbage collector's view of the heap: a full collection (one
#: every few thousand requests, ~6M instructions over the start-up objects) falling inside
#: one run and not the other would move a per-request figure by ~1 %.
_CLIENT = (
    "import gc, sys; sys.path.insert(0, {here!r}); import _apps; "
    "client = getattr(_apps, {variant!r})().test_client(); paths = _apps.PATHS; "
    "[client.get(paths[i % len(paths)], buffered=True) for i in range(50)]; "
    "gc.collect(); gc.freeze(); "
    "[client.get(paths[i % len(paths)], buffered=True) for i in range({n})]"
)


def _variants(quick: bool) -> list[str]:
    if quick:
        return ["bare", "limone"]
    names = ["bare", "limone", "logged"]
    try:
        import prometheus_flask_exporter  # noqa: F401, PLC0415
    except ImportError:
        return names
    return [*names, "peer"]


#: Without address-space randomisation (where ``setarch`` exists): the same layout, and so
#: the same dict probes and allocator paths, in every run.
_FIXED = ["setarch", "-R"] if shutil.which("setarch") else []


def _fixed_env() -> dict[str, str]:
    """The environment with a fixed hash seed: string hashes, and so dict and set
    layouts, are the same in every run."""
    return dict(os.environ, PYTHONHASHSEED="0")


def _callgrind_total(out_file: Path) -> int:
    match = _TOTAL.search(out_file.read_bytes())
    if match is None:
        raise RuntimeError(f"no instruction total in {out_file}")
    return int(match.group(1))


def client_instructions(variant: str, n: int, tmp: Path) -> int:
    """Instructions of a whole process that serves ``n`` test-client requests."""
    tmp.mkdir(parents=True, exist_ok=True)
    out = tmp / f"client-{variant}-{n}.cg"
    code = _CLIENT.format(here=str(HERE), variant=variant, n=n)
    subprocess.run(
        [*_FIXED, "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         sys.executable, "-c", code],
        check=True, capture_output=True, cwd=ROOT, timeout=600, env=_fixed_env(),
    )  # fmt: skip
    return _callgrind_total(out)


def _wait_port(port: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _get(port, "/health")
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"gunicorn under valgrind did not answer on port {port}")


def _get(port: int, path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        conn.getresponse().read()
    finally:
        conn.close()


def _free_port() -> int:
    import socket  # noqa: PLC0415 (only this helper needs it)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _only_child(pid: int) -> int:
    """The one child process of ``pid`` (the gunicorn worker of the master ``pid``)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker under {pid}, found {children}")
    return int(children[0])


def _callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def worker_per_request(variant: str, n: int, tmp: Path) -> float:
    """Instructions per request of one gunicorn worker serving ``n`` sequential requests.

    Counted only while it serves them (``callgrind_control``: counters zeroed after a
    warm-up, dumped after the last request), so the worker's start-up, whose cost varies
    from run to run by tens of millions of instructions, is never in the figure.
    """
    run_dir = tmp / f"gunicorn-{variant}-{n}"
    (run_dir / "mp").mkdir(parents=True)
    port = _free_port()
    env = dict(_fixed_env(), PROMETHEUS_MULTIPROC_DIR=str(run_dir / "mp"), GUNICORN_WORKERS="1",
               GUNICORN_BIND=f"127.0.0.1:{port}")  # fmt: skip
    argv = [
        *_FIXED, "valgrind", "--tool=callgrind", "--trace-children=yes",
        f"--callgrind-out-file={run_dir}/cg.%p", sys.executable, "-m", "gunicorn",
        "-c", str(ROOT / "exporter" / "gunicorn.conf.py"),
        "--chdir", str(HERE), f"_apps:{variant}()",
    ]  # fmt: skip
    with open(run_dir / "log", "wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        _wait_port(port)
        worker = _only_child(proc.pid)
        for i in range(WARM_UP):
            _get(port, PATHS[i % len(PATHS)])
        _callgrind_control("--zero", str(worker))
        for i in range(n):
            _get(port, PATHS[i % len(PATHS)])
        _callgrind_control("--dump=measured", str(worker))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
    dumps = list(run_dir.glob(f"cg.{worker}.*"))
    if len(dumps) != 1:
        raise RuntimeError(f"expected one callgrind dump of worker {worker}, found {dumps}")
    return _callgrind_total(dumps[0]) / n


def _per_request(measure: str, variant: str, sizes: tuple[int, int], tmp: Path) -> float:
    if measure == "worker":
        return min(worker_per_request(variant, sizes[1], tmp / f"r{i}") for i in range(REPEATS))
    # A run now and then does a one-off piece of work that would add to the per-request
    # figure; it only ever adds, so the least of a few runs of each size is the clean one.
    small, large = (
        min(client_instructions(variant, n, tmp / f"r{i}") for i in range(REPEATS)) for n in sizes
    )
    return (large - small) / (sizes[1] - sizes[0])


def _rows(measure: str, sizes: tuple[int, int], tmp: Path, quick: bool) -> list[list[object]]:
    names = _variants(quick)
    with ThreadPoolExecutor(max_workers=2) as pool:
        per_request = pool.map(lambda v: _per_request(measure, v, sizes, tmp), names)
        costs = dict(zip(names, per_request, strict=True))
    base = costs["bare"]
    return [[name, f"{costs[name]:,.0f}", ratio(costs[name], base)] for name in names]


def run(quick: bool) -> str:
    """Return the markdown section (a note when valgrind is missing)."""
    head = "## Exporter overhead in instructions (callgrind)\n\n"
    if shutil.which("valgrind") is None:
        return head + "valgrind is not installed (`apt-get install valgrind`): skipped.\n"
    header = ["variant", "instructions per request", "vs bare"]
    if quick:
        # valgrind makes Python ~50x slower: the smoke run checks the client path only.
        with tempfile.TemporaryDirectory() as tmp:
            client = _rows("client", (5, 15), Path(tmp), quick)
        return head + "Quick run (test client only):\n\n" + table(header, client) + "\n"
    client_sizes, worker_requests = (200, 1000), 500
    with tempfile.TemporaryDirectory() as tmp:
        client = _rows("client", client_sizes, Path(tmp), quick)
        worker = _rows("worker", (0, worker_requests), Path(tmp), quick)
    return (
        head
        + "Deterministic counterpart of the timings above: the difference between runs of "
        + f"{client_sizes[0]} and {client_sizes[1]} requests (test client, after a warm-up "
        + f"and gc.freeze()), and {worker_requests} requests counted alone after "
        + f"{WARM_UP} of warm-up (one gunicorn worker, multiprocess storage), per request."
        + "\n\nFlask test client:\n\n"
        + table(header, client)
        + "\n\ngunicorn worker (exporter/gunicorn.conf.py):\n\n"
        + table(header, worker)
        + "\n"
    )


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
