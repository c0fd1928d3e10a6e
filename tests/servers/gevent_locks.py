"""Run by tests/servers/test_gevent.py in a fresh process: ``python -m
tests.servers.gevent_locks <case>``; exits 0 when every greenlet finished, 1 if not
(a hang is killed by the test's timeout).

Each case makes a thread lock before gevent's patching, as an app preloaded by
gunicorn's master does, and then has 20 greenlets that yield to each other often. A
greenlet that switches out while holding such a lock leaves the next one that asks for
it blocking the only thread, and with it every greenlet: the process hangs.

- ``sink``: the log sink (made before the patching, first written after it: gevent's
  poll) on a pipe nobody reads, with structlog and stdlib lines, in multiprocess mode
  (the kit's health written by a thread started on the first dropped line).
- ``health``: the kit's health told of a problem while the reporter holds its own thread
  lock (prometheus-client's value lock, when the storage is full), multiprocess mode.
- ``listener``: a health listener that switches greenlets, with lines dropped by a
  stalled sink: the sink must not hold its lock while telling health.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

GREENLETS = 20
ROUNDS = 300


def _stalled_logging() -> Callable[[int, int], None]:
    """Log to a pipe nobody reads (full after 64 KiB): one structlog and one stdlib line."""
    from limone_obs.logging import configure_logging, get_logger  # noqa: PLC0415

    _read_fd, write_fd = os.pipe()
    configure_logging(stream=os.fdopen(write_fd, "wb"), write_timeout=0.05)
    log = get_logger("greenlets")
    library = logging.getLogger("some.library")

    def step(n: int, i: int) -> None:
        log.info("structlog line", n=n, i=i)
        library.warning("stdlib line %s %s", n, i)

    return step


def _multiprocess_metrics() -> None:
    """An instrumented app in multiprocess mode: the kit's health gets its writer thread."""
    from flask import Flask  # noqa: PLC0415

    from limone_obs import Metrics  # noqa: PLC0415

    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR"), "set PROMETHEUS_MULTIPROC_DIR"
    Metrics(Flask("preloaded"))


def _health_under_a_lock() -> Callable[[int, int], None]:
    from limone_obs import conventions as c  # noqa: PLC0415
    from limone_obs import health  # noqa: PLC0415

    lock = threading.Lock()  # made before the patching: a thread lock

    def step(n: int, i: int) -> None:
        with lock:
            if n == 0 and i == ROUNDS // 2:
                health.report_problem(c.EXPORTER_PROBLEMS[0], "a problem, told under a lock")

    return step


def _switching_listener() -> None:
    from limone_obs import health  # noqa: PLC0415

    def listener() -> None:
        import gevent  # noqa: PLC0415

        gevent.sleep(0)

    health.subscribe(listener)


def main(case: str) -> int:
    """Run ``case``; 0 when every greenlet finished within 30 s."""
    if case == "sink":
        _multiprocess_metrics()
        step = _stalled_logging()
    elif case == "health":
        _multiprocess_metrics()
        step = _health_under_a_lock()
    elif case == "listener":
        step = _stalled_logging()
        _switching_listener()
    else:
        raise SystemExit(f"unknown case {case!r}: use sink, health or listener")
    import gevent.monkey  # noqa: PLC0415

    gevent.monkey.patch_all()
    import gevent  # noqa: PLC0415

    def work(n: int) -> None:
        for i in range(ROUNDS):
            step(n, i)
            gevent.sleep(0)

    done = gevent.joinall([gevent.spawn(work, n) for n in range(GREENLETS)], timeout=30)
    print(f"{len(done)} of {GREENLETS} greenlets done", flush=True)
    return 0 if len(done) == GREENLETS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
