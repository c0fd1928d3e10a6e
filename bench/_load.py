"""Bounded load from a second process: ``python _load.py PORT N CONCURRENCY``.

Sends exactly N GET requests to 127.0.0.1:PORT over the bench app's paths, one connection
each (gunicorn's sync workers close after every response), with CONCURRENCY threads and a
10 s timeout per request; prints ``answered failed`` and exits.
"""

from __future__ import annotations

import http.client
import sys
from concurrent.futures import ThreadPoolExecutor

from _apps import PATHS


def one(port: int, path: str) -> bool:
    """Send one request; True if it got an HTTP answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def main(argv: list[str]) -> None:
    """Run the load described by ``argv``; print answered and failed counts."""
    port, n, concurrency = int(argv[0]), int(argv[1]), int(argv[2])
    with ThreadPoolExecutor(concurrency) as pool:
        answered = sum(pool.map(lambda i: one(port, PATHS[i % len(PATHS)]), range(n)))
    print(answered, n - answered)


if __name__ == "__main__":
    main(sys.argv[1:])
