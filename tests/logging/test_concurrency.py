"""Threads logging at once: no context bleeds between requests, no line interleaves."""

from __future__ import annotations

import io
import logging
import threading
from collections import Counter

from limone_obs.logging import bind, clear_context, configure_logging, get_logger
from tests.logging.helpers import parse_lines

THREADS = 8
LINES = 300


def _worker(index: int, barrier: threading.Barrier) -> None:
    log = get_logger("worker")
    stdlib = logging.getLogger("worker.lib")
    barrier.wait()  # all threads start logging together
    for n in range(LINES):
        # Each "request" binds its own context and clears it afterwards.
        bind(request_id=f"req-{index}-{n}", user_id=f"user-{index}")
        log.info("step", worker=index, n=n, pad="x" * (index * 50))
        stdlib.info("lib step", extra={"worker": index, "n": n})
        clear_context()


def test_concurrent_contexts_do_not_bleed_or_interleave() -> None:
    """8 threads x 300 requests: every line parses and carries only its own context."""
    out = io.BytesIO()
    configure_logging(stream=out)
    barrier = threading.Barrier(THREADS)
    threads = [threading.Thread(target=_worker, args=(i, barrier)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    events = parse_lines(out.getvalue())
    assert THREADS * LINES * 2 == len(events)
    wrong = [
        e for e in events
        if e["request_id"] != f"req-{e['worker']}-{e['n']}" or e["user_id"] != f"user-{e['worker']}"
    ]  # fmt: skip
    assert [] == wrong
    assert dict.fromkeys(range(THREADS), LINES * 2) == dict(Counter(e["worker"] for e in events))


def test_new_thread_starts_without_context() -> None:
    """A thread started while a request context is bound does not inherit it."""
    out = io.BytesIO()
    configure_logging(stream=out)
    bind(request_id="parent-request")
    thread = threading.Thread(target=lambda: get_logger().info("in thread"))
    thread.start()
    thread.join()
    [event] = parse_lines(out.getvalue())
    assert "request_id" not in event
