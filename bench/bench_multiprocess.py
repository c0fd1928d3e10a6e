"""/metrics render time: single process vs multiprocess (4 live workers) vs after churn.

The same ~300 series (request counter, duration histogram, in-flight livesum gauge, cache
counter, build info) are written by simulated workers (prometheus-client's value class
pointed at a chosen pid, as its own tests do) into a multiprocess directory, then
rendered with ``generate_latest`` by:

- plain prometheus-client: ``MultiProcessCollector`` (dead workers' live gauges removed
  with ``mark_process_dead``, as its docs say);
- limone-obs: ``exposition_registry`` (FlatCollector), with dead workers compacted by
  ``compaction.compact`` as the gunicorn ``child_exit`` hook does.

Each registry is reused across renders, as a server does. Targets (issue 7): 4 live
workers <= 1.5x single process; after 64 recycled workers <= 1.2x the 4-worker time.

Run: ``python bench/bench_multiprocess.py [--quick]``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client import multiprocess as pc_mp

from limone_obs import conventions as c
from limone_obs.exporter import compaction
from limone_obs.exporter.multiprocess import exposition_registry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import median_seconds, ms, ratio, table, verdict

ENDPOINTS = [f"/api/v1/route{i}/<int:id>" for i in range(16)]
STATUSES = ("200", "404", "500")
BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.6, 1.0, 2.5, 5.0, 10.0, 30.0)


def write_series(registry: CollectorRegistry) -> None:
    """Create the ~300 series and give each a value (as one worker would)."""
    names = c.MetricNames("bench")
    requests = Counter(names.requests, "h", c.REQUESTS_LABELS, registry=registry)
    duration = Histogram(
        names.request_duration, "h", c.DURATION_LABELS, registry=registry, buckets=BUCKETS
    )
    live = Gauge(
        names.requests_in_progress, "h", c.IN_PROGRESS_LABELS, registry=registry,
        multiprocess_mode="livesum",
    )  # fmt: skip
    cache = Counter(names.cache_requests, "h", c.CACHE_LABELS, registry=registry)
    info = Gauge(
        names.build_info, "h", c.BUILD_INFO_LABELS, registry=registry, multiprocess_mode="max"
    )
    info.labels("1", "abc", "3.11").set(1)
    for i, endpoint in enumerate(ENDPOINTS):
        for status in STATUSES:
            requests.labels("GET", endpoint, status).inc(i + 1)
        duration.labels("GET", endpoint).observe(0.01 * (i + 1))
        live.labels("GET", endpoint).set(0)
        cache.labels(f"cache{i}", "hit").inc()
        cache.labels(f"cache{i}", "miss").inc()


def write_worker(pid: int) -> None:
    """Write one simulated worker's files into ``PROMETHEUS_MULTIPROC_DIR``."""
    value_class = values.MultiProcessValue(process_identifier=lambda: pid)  # type: ignore[no-untyped-call]
    values.ValueClass = value_class
    write_series(CollectorRegistry())
    value_class.close_all_files()


def single_process_registry() -> CollectorRegistry:
    """The same series in one process's memory."""
    values.ValueClass = values.MutexValue
    registry = CollectorRegistry()
    write_series(registry)
    return registry


def plain_registry(path: Path) -> CollectorRegistry:
    """prometheus-client's multiprocess reading registry."""
    registry = CollectorRegistry()
    pc_mp.MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
    return registry


def churn(path: Path, dead: range, compact: bool) -> None:
    """Retire the workers ``dead``: compaction (ours) or mark_process_dead (plain)."""
    for pid in dead:
        if compact:
            compaction.compact(str(path), [pid])
        else:
            pc_mp.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


def series_count(registry: CollectorRegistry) -> int:
    """Number of sample lines a scrape renders."""
    return sum(1 for line in generate_latest(registry).splitlines() if not line.startswith(b"#"))


def prepare(tmp: Path, impl: str, recycled: int) -> tuple[CollectorRegistry, CollectorRegistry]:
    """Two directories for ``impl``: 4 live workers; and 4 live after ``recycled`` died."""
    regs = []
    for dead in (0, recycled):
        path = tmp / f"{impl}-{dead}"
        path.mkdir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
        for pid in range(1, 5 + dead):
            write_worker(pid)
        churn(path, range(1, 1 + dead), compact=impl == "ours")
        regs.append(plain_registry(path) if impl == "plain" else exposition_registry(str(path)))
    return regs[0], regs[1]


def _render_seconds(registry: CollectorRegistry) -> float:
    return median_seconds(lambda: generate_latest(registry), 1, warmup=1)


def measure(tmp: Path, repeats: int, recycled: int) -> tuple[dict[str, float], dict[str, int]]:
    """Median render seconds per scenario, and sample lines per scenario.

    The scenarios take turns in every round, so load from other processes on the machine
    hits them alike and the ratios stay meaningful.
    """
    saved = values.ValueClass
    try:
        regs = {"single": single_process_registry()}
        for impl in ("plain", "ours"):
            regs[f"{impl}_4"], regs[f"{impl}_churn"] = prepare(tmp, impl, recycled)
    finally:
        values.ValueClass = saved
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    times: dict[str, list[float]] = {name: [] for name in regs}
    for _ in range(repeats):
        for name, reg in regs.items():
            times[name].append(_render_seconds(reg))
    counts = {name: series_count(reg) for name, reg in regs.items()}
    return {name: statistics.median(t) for name, t in times.items()}, counts


def run(quick: bool) -> str:
    """Return the markdown section: medians and ratios from one run."""
    repeats, recycled = (5, 8) if quick else (60, 64)
    with tempfile.TemporaryDirectory() as tmp:
        m, counts = measure(Path(tmp), repeats, recycled)
    single = m["single"]
    rows = [["single process (in memory)", ms(single), "1.00x", "", ""]]
    for impl, label in (
        ("plain", "prometheus-client MultiProcessCollector"),
        ("ours", "limone-obs FlatCollector + compaction"),
    ):
        four, after = m[f"{impl}_4"], m[f"{impl}_churn"]
        rows.append(
            [
                f"{label}, 4 live workers",
                ms(four),
                ratio(four, single),
                "",
                verdict(four / single, 1.5) if impl == "ours" else "",
            ]
        )
        rows.append(
            [
                f"{label}, after {recycled} recycled workers",
                ms(after),
                ratio(after, single),
                ratio(after, four),
                verdict(after / four, 1.2) if impl == "ours" else "",
            ]
        )
    return "\n".join(
        [
            "## /metrics render time (multiprocess)",
            "",
            f"Median of {repeats} renders (`generate_latest`) of the same series: "
            f"{counts['single']} sample lines single-process (with `_created`), "
            f"{counts['ours_churn']} in multiprocess mode (prometheus-client: "
            f"{counts['plain_churn']}); the scenarios take turns in every round. "
            "Targets: 4 workers <= 1.5x single; after churn <= 1.2x the 4-worker time.",
            "",
            table(["scenario", "median", "vs single", "vs 4 workers", "target"], rows),
            "",
        ]
    )


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
