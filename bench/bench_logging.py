"""Logging throughput: limone_obs.logging against python-json-logger's default formatter.

Every variant writes the same event (a message, 8 request-context fields and a
timestamp) to the same kind of sink (a file on disk) and is timed over one run of N
lines; each run is repeated and the median lines/s reported, with the ratio against the
baseline (python-json-logger's ``JsonFormatter(timestamp=True)`` on a ``StreamHandler``).
Targets (issue 3): app events >= 2.5x, stdlib records >= 1.4x, redaction <= 10 %.

Run: ``python bench/bench_logging.py [--quick]``.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from flask import Flask
from flask.testing import FlaskClient
from pythonjsonlogger.json import JsonFormatter as PjlJsonFormatter

from limone_obs.logging import bind, clear_context, configure_logging, get_logger, init_app
from limone_obs.logging.setup import reset_for_tests

FIELDS: dict[str, Any] = {
    "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "trace_id": "0af7651916cd43dd8448eb211c80319c",
    "span_id": "b7ad6b7169203331",
    "method": "GET",
    "endpoint": "/projects/<int:project_id>",
    "path": "/projects/42",
    "status_code": 200,
    "user_id": "user-1234",
}
MESSAGE = "request finished"

Variant = Callable[[IO[Any]], Callable[[int], None]]


def baseline(sink: IO[Any]) -> Callable[[int], None]:
    """python-json-logger's default formatter; the fields passed as ``extra=``."""
    logger = logging.getLogger("bench.baseline")
    logger.handlers.clear()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(PjlJsonFormatter(timestamp=True))
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)

    def run(n: int) -> None:
        for _ in range(n):
            logger.info(MESSAGE, extra=FIELDS)

    return run


def ours_stdlib(sink: IO[Any]) -> Callable[[int], None]:
    """A stdlib record through our formatter and handler; the fields as ``extra=``."""
    configure_logging(stream=sink, service="bench", env="bench")
    logger = logging.getLogger("bench.stdlib")

    def run(n: int) -> None:
        for _ in range(n):
            logger.info(MESSAGE, extra=FIELDS)

    return run


def _structlog_variant(redact: bool, bound: bool) -> Variant:
    def variant(sink: IO[Any]) -> Callable[[int], None]:
        configure_logging(stream=sink, service="bench", env="bench", redact=redact)
        log = get_logger("bench.app")

        def run(n: int) -> None:
            if bound:
                # How init_app delivers them: bound once per request, not per line.
                bind(**FIELDS)
                for _ in range(n):
                    log.info(MESSAGE)
                clear_context()
            else:
                for _ in range(n):
                    log.info(MESSAGE, **FIELDS)

        return run

    return variant


BASELINE = "python-json-logger JsonFormatter (baseline)"
REDACT_ON = "limone_obs app event, fields as keywords"
REDACT_OFF = "limone_obs app event, fields as keywords, redaction off"
VARIANTS: dict[str, Variant] = {
    BASELINE: baseline,
    "limone_obs stdlib record (extra=)": ours_stdlib,
    REDACT_ON: _structlog_variant(redact=True, bound=False),
    REDACT_OFF: _structlog_variant(redact=False, bound=False),
    "limone_obs app event, fields bound (request context)": _structlog_variant(
        redact=True, bound=True
    ),
}


def measure_all(lines: int, repeats: int, folder: Path) -> dict[str, list[float]]:
    """Return each variant's lines per second in each of ``repeats`` runs.

    The variants take turns within each repetition, so a burst of load from other
    processes affects all of them alike instead of one variant's whole series.
    """
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for index in range(repeats):
        for name, variant in VARIANTS.items():
            rates[name].append(_one_run(variant, lines, folder / f"{index}.log"))
    return rates


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over repetitions of numerator/denominator (pairs measured back to back)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def _one_run(variant: Variant, lines: int, path: Path) -> float:
    with path.open("w", encoding="utf-8") as sink:
        run = variant(sink)
        run(min(lines, 1000))  # warm-up: caches, first-use configuration
        start = time.perf_counter()
        run(lines)
        elapsed = time.perf_counter() - start
    reset_for_tests()
    path.unlink()
    return lines / elapsed


def request_overhead(repeats: int, requests: int) -> tuple[float, float, float]:
    """Median microseconds per test-client request without and with ``init_app``, and the
    median of the per-round differences.

    Both apps exist side by side and take turns in every round (the order alternating),
    so a burst of load from other processes hits both alike instead of one variant's
    whole series (a sequential run once showed a negative overhead).
    """
    plain, logged = Flask("bench-plain"), Flask("bench-logged")
    for app in (plain, logged):
        app.add_url_rule("/p/<int:pid>", "p", lambda pid: f"project {pid}")
    with tempfile.TemporaryFile("w") as sink:
        configure_logging(stream=sink)
        init_app(logged)  # the plain app writes no line: the sink does not affect it
        clients = {"without": plain.test_client(), "with": logged.test_client()}
        times: dict[str, list[float]] = {"without": [], "with": []}
        for index in range(repeats):
            order = ("without", "with") if index % 2 == 0 else ("with", "without")
            for name in order:
                times[name].append(_time_requests(clients[name], requests))
    reset_for_tests()
    extra = [w - wo for w, wo in zip(times["with"], times["without"], strict=True)]
    return (statistics.median(times["without"]), statistics.median(times["with"]),
            statistics.median(extra))  # fmt: skip


def _time_requests(client: FlaskClient, requests: int) -> float:
    """Microseconds per request over ``requests`` requests (warm-up included once)."""
    client.get("/p/0").close()
    start = time.perf_counter()
    for i in range(requests):
        client.get(f"/p/{i}").close()
    return (time.perf_counter() - start) / requests * 1e6


def run(quick: bool) -> str:
    """Return the markdown section with medians and ratios against the baseline."""
    lines, repeats = (5_000, 5) if quick else (30_000, 9)
    with tempfile.TemporaryDirectory() as tmp:
        runs = measure_all(lines, repeats, Path(tmp))
    base_runs = runs[BASELINE]
    out = [
        "## Logging throughput (limone_obs.logging)",
        "",
        f"{lines} lines per run, median of {repeats} runs; each line: message, 8 context",
        "fields, timestamp; written to a file. Ratio = lines/s ÷ baseline lines/s.",
        "",
        "| variant | lines/s (median) | ratio vs baseline (median of paired runs) |",
        "|---|---:|---:|",
    ]
    out += [
        f"| {name} | {statistics.median(r):,.0f} | {paired_ratio(r, base_runs):.2f}x |"
        for name, r in runs.items()
    ]
    redaction = paired_ratio(runs[REDACT_OFF], runs[REDACT_ON]) - 1
    plain, logged, extra = request_overhead(repeats, 300 if quick else 2000)
    out += [
        "",
        f"Redaction cost on app events: {redaction * 100:.1f} % more time per line "
        "(target <= 10 %).",
        "",
        f"Per-request cost of `init_app` (Flask test client, access line included; the two "
        f"apps take turns in each of {repeats} rounds, medians): {plain:.0f} us without, "
        f"{logged:.0f} us with, {extra:+.0f} us (median of the per-round differences).",
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
