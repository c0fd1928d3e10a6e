"""Same-process A/B of the exporter's one lock: ``threading.Lock`` against no lock at all.

The exporter writes its request series under one lock (``limone_obs.exporter.value_lock``).
Here the same app instances serve requests on the Flask test client while that lock is,
in turn, a ``threading.Lock`` and an object whose ``__enter__``/``__exit__`` are plain C
calls that do nothing: the cheapest anything in its place could be. The difference bounds
what any other lock could save; the rule (issue 20) keeps ``threading.Lock`` unless it
costs more than 1 % of a request.

Run: ``python bench/bench_lock.py [--quick]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _apps  # noqa: E402
from _table import table, us  # noqa: E402

from limone_obs.exporter import value_lock  # noqa: E402

CHUNK = 50
LIMIT = 1.01


class _NoLock:
    """A context manager whose enter and exit are C calls that do nothing."""

    __enter__ = staticmethod(tuple)
    __exit__ = staticmethod(slice)  # takes the three arguments of __exit__, returns a slice


LOCKS: dict[str, Callable[[], Any]] = {
    "threading.Lock": lambda: value_lock.LOCK,
    "no lock": _NoLock,
}


def _chunk(app: Any) -> Callable[[], float]:
    client = app.test_client()
    paths = _apps.PATHS

    def once() -> float:
        start = time.process_time()
        for i in range(CHUNK):
            client.get(paths[i % len(paths)]).data  # noqa: B018 - runs the body to its end
        return time.process_time() - start

    once()
    return once


def samples(
    factory: Callable[[], Any], n: int, rounds: int, instances: int
) -> dict[str, list[float]]:
    """CPU seconds per request per lock variant, one sample per round (mean over instances)."""
    chunks = [_chunk(factory()) for _ in range(instances)]
    real = value_lock.LOCK
    locks = {name: make() for name, make in LOCKS.items()}
    out: dict[str, list[float]] = {name: [] for name in LOCKS}
    try:
        for r in range(rounds):
            used = dict.fromkeys(LOCKS, 0.0)
            names = list(LOCKS)[r % 2 :] + list(LOCKS)[: r % 2]
            for _ in range(max(1, n // CHUNK)):
                for chunk in chunks:
                    for name in names:
                        value_lock.LOCK = locks[name]
                        used[name] += chunk()
            for name in LOCKS:
                out[name].append(used[name] / (instances * max(1, n // CHUNK) * CHUNK))
    finally:
        value_lock.LOCK = real
    return out


def run(quick: bool) -> str:
    """Return the markdown section: medians and the lock's share of a request."""
    n, rounds, instances = (100, 2, 1) if quick else (300, 9, 3)
    rows = []
    for label, factory in (("metrics", _apps.limone), ("metrics + access log", _apps.logged)):
        got = samples(factory, n, rounds, instances)
        lock, free = (statistics.median(got[name]) for name in LOCKS)
        ratios = [a / b for a, b in zip(got["threading.Lock"], got["no lock"], strict=True)]
        share = lock / free
        rows.append([
            label, us(lock), us(free), f"{share:.4f}x",
            f"{min(ratios):.3f}-{max(ratios):.3f}", "met" if share <= LIMIT else "MISSED",
        ])  # fmt: skip
    header = ["app", "threading.Lock", "no lock", "ratio", "per-round", f"<= {LIMIT}x"]
    return "\n".join([
        "## The exporter's lock: threading.Lock vs no lock (same process)",
        "",
        f"Flask test client, {instances} app instances, {n} requests each per round and "
        f"variant, the lock swapped every {CHUNK} requests, {rounds} rounds; CPU time per "
        "request, median over rounds. \"no lock\" is the floor any lock could reach.",
        "",
        table(header, rows),
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
