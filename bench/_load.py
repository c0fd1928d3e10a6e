"""Bounded load from a second process: ``python _load.py N CONCURRENCY BLOCK PORT [PORT ...]``.

Sends exactly N GET requests to each 127.0.0.1:PORT over the bench app's paths, the ports
taking turns in blocks of BLOCK requests (requests i*BLOCK .. i*BLOCK+BLOCK-1 go to port
i mod k), one connection each (gunicorn's sync workers close after every response), with
CONCURRENCY threads and a 10 s timeout per request; prints ``answered failed`` over all
ports and exits. Taking turns puts every server under the same conditions at nearly the
same moments; blocks let each worker serve a run of requests, as in production. Every
request carries ``X-Request-Start: t=<now>``, as behind nginx, so the exporter's
queue-time parse is part of what is measured.
"""

from __future__ import annotations

import http.client
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from _apps import PATHS


def one(port: int, path: str) -> bool:
    """Send one request; True if it got an HTTP answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"X-Request-Start": f"t={time.time():.3f}"})
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def main(argv: list[str]) -> None:
    """Run the load described by ``argv``; print answered and failed counts."""
    n, concurrency, block = int(argv[0]), int(argv[1]), int(argv[2])
    ports = [int(p) for p in argv[3:]]
    k = len(ports)

    def request(i: int) -> bool:
        return one(ports[(i // block) % k], PATHS[i % len(PATHS)])

    with ThreadPoolExecutor(concurrency) as pool:
        answered = sum(pool.map(request, range(n * k)))
    print(answered, n * k - answered)


if __name__ == "__main__":
    main(sys.argv[1:])
