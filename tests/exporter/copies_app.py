"""Copies of one process serving an app that says ``wsgi.multiprocess`` (as ASGI adapters do).

``python -m tests.exporter.copies_app START N``: N processes started with multiprocessing's
START method ("spawn": new interpreters whose command lines differ only in numbers, as
uvicorn's ``--workers``; "fork": copies of this process, as a server forking per
request). Once all N exist, each serves one request with ``wsgi.multiprocess`` true on
the test client, then answers a scrape, and prints one JSON line: its pid and parent's,
the ``multiprocess_not_configured`` problem value, its error lines, and the master and
workers its process series would read.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
from typing import Any

from flask import Flask
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from limone_obs import Metrics
from limone_obs import conventions as c
from limone_obs.exporter import process


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _problem(registry: CollectorRegistry) -> float:
    text = generate_latest(registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get(c.LABEL_PROBLEM) == c.PROBLEM_MULTIPROCESS_MISSING:
                return float(sample.value)
    raise AssertionError("no multiprocess_not_configured sample")


def serve_one(barrier: Any, results: Any) -> None:
    """One copy: wait for the others, serve a request, scrape, report."""
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    app = Flask("copies")
    registry = CollectorRegistry()
    Metrics(app, registry=registry)
    app.get("/x")(lambda: "x")
    barrier.wait(timeout=60)
    client = app.test_client()
    client.get("/x", environ_overrides={"wsgi.multiprocess": True}, buffered=True)
    client.get("/metrics", buffered=True)  # the scrape's check
    master, workers = process.server_pids()
    results.put(
        {
            "pid": os.getpid(), "ppid": os.getppid(), "problem": _problem(registry),
            "errors": errors.lines, "master": master, "workers": sorted(workers()),
        }
    )  # fmt: skip
    barrier.wait(timeout=60)  # every copy alive until each has looked


def main() -> None:
    start, count = sys.argv[1], int(sys.argv[2])
    context: Any = multiprocessing.get_context(start)  # typeshed: BaseContext has no Process
    barrier = context.Barrier(count)
    results = context.Queue()
    copies = [context.Process(target=serve_one, args=(barrier, results)) for _ in range(count)]
    for copy in copies:
        copy.start()
    for _ in copies:
        print(json.dumps(results.get(timeout=120)), flush=True)
    for copy in copies:
        copy.join(timeout=60)


if __name__ == "__main__":
    main()
