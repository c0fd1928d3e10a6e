"""gunicorn with worker recycling (``max_requests=20``): the scraped count stays exact.

Two sync workers answer a few thousand requests, so about a hundred workers live and die;
each death is compacted by the ``child_exit`` hook of ``exporter/gunicorn.conf.py``.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from limone_obs.exporter import compaction
from tests.support import gunicorn_server, settled

pytestmark = pytest.mark.integration
REQUESTS = 2000
CLIENT_THREADS = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """gunicorn on a free 127.0.0.1 port, 2 workers recycled every ~20 requests."""
    tmp_path = tmp_path_factory.mktemp("gunicorn-mp")
    mpdir = tmp_path / "mp"
    env = {
        "GUNICORN_WORKERS": "2",
        "GUNICORN_MAX_REQUESTS": "20",
        "PROMETHEUS_MULTIPROC_DIR": str(mpdir),
    }
    with gunicorn_server("tests.exporter.mp_app:create_app()", tmp_path, env) as (url, _):
        yield int(url.rsplit(":", 1)[1]), mpdir


def _get(port: int, path: str) -> tuple[int, bytes] | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def scraped_total(port: int) -> float | None:
    """Sum of ``limoneide_requests_total`` over all labels in one scrape; None if it failed."""
    answer = _get(port, "/metrics")
    if answer is None or answer[0] != 200:
        return None
    total = 0.0
    for family in text_string_to_metric_families(answer[1].decode()):
        if family.name == "limoneide_requests":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


def _load(port: int) -> int:
    paths = [f"/items/{i}" if i % 2 else "/" for i in range(REQUESTS)]
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        answers = list(pool.map(lambda p: _get(port, p), paths))
    return sum(1 for a in answers if a is not None and a[0] == 200)


def _scrape_during(port: int, stop: threading.Event, totals: list[float | None]) -> None:
    while not stop.is_set():
        totals.append(scraped_total(port))
        time.sleep(0.05)


Run = tuple[int, list[float | None], float | None, Path]


@pytest.fixture(scope="module")
def run(server: tuple[int, Path]) -> Run:
    """Drive the load while scraping; return (answered, totals seen, final total once it
    counts every answered request, dir)."""
    port, mpdir = server
    stop, totals = threading.Event(), list[float | None]()
    scraper = threading.Thread(target=_scrape_during, args=(port, stop, totals))
    scraper.start()
    try:
        answered = _load(port)
    finally:
        stop.set()
        scraper.join(30)
    final = settled(lambda: scraped_total(port), lambda total: (total or 0) >= answered)
    return answered, totals, final, mpdir


def test_scraped_total_equals_answered_requests(run: Run) -> None:
    """After ~100 worker deaths the scraped request count is exactly the answered count."""
    answered, _, final, _ = run
    assert answered > REQUESTS * 0.9
    assert answered == final


def test_total_never_decreases_between_scrapes(run: Run) -> None:
    """Scrapes taken while workers die and are compacted all answer, and never go backwards."""
    _, totals, final, _ = run
    assert len(totals) > 5
    assert None not in totals
    assert final is not None
    assert sorted(totals) == totals  # type: ignore[type-var]
    assert totals[-1] <= final  # type: ignore[operator]


def test_dead_workers_leave_no_files(run: Run) -> None:
    """Only live processes keep files; dead workers live on in the archive alone."""
    *_, mpdir = run
    pids = {n.rsplit("_", 1)[1] for n in os.listdir(mpdir) if n.endswith(".db")}
    assert len(pids) <= 3  # two workers, and the master when it wrote a sample
    assert compaction.read_archive(str(mpdir)).generation > 100
