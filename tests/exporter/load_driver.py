"""A bounded load from a second process: ``python load_driver.py URL N CONCURRENCY PATH...``.

Sends exactly N requests (one connection each) spread over the paths, with CONCURRENCY
threads and a 10 s timeout per request, then prints one JSON object: how many got an
HTTP answer, how many failed, and the count per status. Used by the gunicorn tests so the
load does not share the test process's GIL.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit


def _one(host: str, port: int, method: str, path: str) -> int | None:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def main(argv: list[str]) -> None:
    """Run the load described by ``argv`` and print the JSON summary."""
    url, n, concurrency, paths = argv[0], int(argv[1]), int(argv[2]), argv[3:]
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    statuses: Counter[str] = Counter()
    lock = threading.Lock()

    def work(i: int) -> None:
        method, _, path = paths[i % len(paths)].rpartition(" ")
        status = _one(host, port, method or "GET", path)
        with lock:
            statuses[str(status) if status is not None else "failed"] += 1

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(work, range(n)))
    failed = statuses.pop("failed", 0)
    print(json.dumps({"answered": sum(statuses.values()), "failed": failed, "statuses": statuses}))


if __name__ == "__main__":
    main(sys.argv[1:])
