"""gunicorn with the kit's config and uvicorn's ``UvicornWorker``, the app behind a2wsgi.

The worker class is no gunicorn class: it serves as many requests at once as the app's
adapter runs (a2wsgi's thread pool), not ``worker_connections``. The kit does not guess
its slots: the app's ``set_slots`` at import gives them (gunicorn's ``post_worker_init``
runs later and must not replace them), and without it they are left out with a warning.
uvicorn's own access lines go through gunicorn's access log, which is off by default.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from limone_obs import conventions as c
from tests.support import gunicorn_server, metric_sum, per_endpoint, statuses_of, wait_until

pytestmark = pytest.mark.integration
APP = "tests.servers.uvicorn_app:create_asgi()"
WORKERS = 2
REQUESTS = 60
N = c.MetricNames()


@pytest.fixture(params=[10, None], ids=["set_slots", "no-slots"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, Path, int | None]]:
    """(base URL, log file, slots the app told) of a running server; REQUESTS requests
    to /items/<n> were answered."""
    slots: int | None = request.param
    env = {"GUNICORN_WORKERS": str(WORKERS)}
    if slots is not None:
        env["LIMONE_OBS_TEST_SLOTS"] = str(slots)
    args = ["-k", "uvicorn_worker.UvicornWorker"]
    with gunicorn_server(
        APP, tmp_path, env, config="python:limone_obs.gunicorn_conf", args=args,
        ready_path="/ready",
    ) as (url, _):  # fmt: skip
        with ThreadPoolExecutor(max_workers=4) as pool:
            codes = list(
                pool.map(lambda n: requests.get(f"{url}/items/{n}", timeout=30).status_code,
                         range(REQUESTS))
            )  # fmt: skip
        assert [200] * REQUESTS == codes
        yield url, tmp_path / "gunicorn.log", slots


def test_counts_are_exact_and_slots_are_the_apps_or_none(
    served: tuple[str, Path, int | None],
) -> None:
    """Every request counted once; the slots are what the app told (both workers), or
    left out (no idle series, 0 slots) with a warning naming set_slots, never 1000 a
    worker (gunicorn's worker_connections, which uvicorn does not hold to)."""
    url, log, slots = served
    # + the /ready probes; each request is recorded when its response closes, after
    # the client has it: poll for the last ones (a count above still fails below).
    wait_until(
        lambda: _items_counted(url) >= REQUESTS,
        "every request counted",
    )
    assert REQUESTS == _items_counted(url)
    wait_until(
        lambda: slots is None or metric_sum(url, N.worker_threads) == WORKERS * slots,
        "both workers' slots published",
    )
    text = requests.get(f"{url}/metrics", timeout=10).text
    if slots is not None:
        assert WORKERS * slots == metric_sum(url, N.worker_threads)
        assert f'{N.workers}{{state="idle"}}' in text
    else:
        assert 0 == metric_sum(url, N.worker_threads)
        assert f'{N.workers}{{state="idle"}}' not in text
        assert "call limone_obs.exporter.workers.set_slots(n)" in log.read_text()


def _items_counted(url: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return per_endpoint(text, N.requests_total).get("/items/<int:item_id>", 0.0)


def test_one_access_line_per_request(served: tuple[str, Path, int | None]) -> None:
    """The app's access line only: none of uvicorn's (gunicorn's access log is off)."""
    _, log, _ = served

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in log.read_text().splitlines() if line[:1] == "{"]

    def items() -> int:
        return sum(
            1
            for line in lines()
            if line.get(c.LOG_LOGGER) == c.ACCESS_LOGGER
            and line[c.LOG_ENDPOINT] == "/items/<int:item_id>"
        )

    # A request's line is written when its response closes, after the client has it.
    wait_until(lambda: items() >= REQUESTS, "an access line for every request")
    assert REQUESTS == items()
    loggers = [line.get(c.LOG_LOGGER) for line in lines()]
    assert 0 == loggers.count("uvicorn.access"), log.read_text()[-2000:]


def test_a_stream_failing_first_is_recorded_as_the_client_saw_it(
    served: tuple[str, Path, int | None],
) -> None:
    """a2wsgi sends the app's status as soon as the app calls start_response: a stream
    that fails before its first chunk reaches the client as that status (200, an empty
    body), and is recorded so (gunicorn's own workers answer 500: tests/test_lifecycle.py)."""
    url, log, _ = served
    path = "/stream-fails-first"
    with requests.get(f"{url}{path}", timeout=30, stream=True) as answer:  # body cut short
        answered = answer.status_code

    def line() -> list[dict[str, Any]]:
        return [
            json.loads(x)
            for x in log.read_text().splitlines()
            if x[:1] == "{" and f'"path":"{path}"' in x and c.ACCESS_LOGGER in x
        ]

    wait_until(lambda: len(line()) == 1, "the stream's access line")
    text = requests.get(f"{url}/metrics", timeout=10).text
    counted = statuses_of(text, path)
    assert (200, 200, {"200"}) == (answered, line()[0][c.LOG_STATUS_CODE], counted)
