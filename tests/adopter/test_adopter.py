"""A service we did not write, instrumented from the README, under real gunicorn.

``tests.adopter.shop`` (app factory, blueprint, async view with ``asyncio.gather``, a
streamed tracked generator, a thread-pool call) runs with 3 workers: with the kit's
packaged config the counts are exact and the logs consistent; with plain ``gunicorn -w 3``
the missing multiprocess storage is reported loudly.
"""

from __future__ import annotations

import json
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from limone_obs import conventions as c
from limone_obs.exporter import health_series, process
from tests.adopter.shop import views
from tests.support import gunicorn_server, per_endpoint, settled

pytestmark = pytest.mark.integration
APP = "tests.adopter.shop:create_app()"
CONFIG = f"python:{c.GUNICORN_CONFIG_MODULE}"
N = c.MetricNames()
SERVICE, ENV = "shop", "production"
#: Requests sent to each path (the URL rule is the endpoint label).
PLAN = {"/items/7": 12, "/ask": 8, "/stream": 6, "/pool": 6}
ENDPOINTS = {"/items/7": "/items/<int:item_id>", "/ask": "/ask", "/stream": "/stream",
             "/pool": "/pool"}  # fmt: skip


class Run:
    """One gunicorn run of the shop: the ids sent per path, the final scrape, the log."""

    def __init__(self, sent: dict[str, str], scrape: str, log: Path) -> None:
        self.sent = sent  # request id -> path
        self.scrape = scrape
        self.log = log

    def samples(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every sample called ``name``: labels -> value."""
        return {
            frozenset(s.labels.items()): s.value
            for family in text_string_to_metric_families(self.scrape)
            for s in family.samples
            if s.name == name
        }

    def dependency(self, suffix: str, operation: str) -> float:
        """``<ns>_dependency_duration_seconds<suffix>`` of one operation, summed over labels."""
        name = N.dependency_duration_count if suffix == "_count" else N.dependency_duration_sum
        return sum(v for k, v in self.samples(name).items() if (c.LABEL_OPERATION, operation) in k)

    def request_seconds(self, endpoint: str) -> float:
        """Sum of the request durations of ``endpoint``."""
        by_labels = self.samples(N.request_duration_sum).items()
        return sum(v for k, v in by_labels if (c.LABEL_ENDPOINT, endpoint) in k)

    def lines(self) -> list[dict[str, Any]]:
        """The JSON lines of the log (plain-text lines are skipped)."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out


def _send(url: str) -> dict[str, str]:
    """Send the PLAN from 4 client threads, each with a fresh X-Request-ID; check every 200."""
    jobs = [(path, uuid.uuid4().hex) for path, n in PLAN.items() for _ in range(n)]

    def one(job: tuple[str, str]) -> int:
        path, rid = job
        return requests.get(url + path, headers={c.REQUEST_ID_HEADER: rid}, timeout=30).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(one, jobs))
    assert [200] * len(jobs) == statuses
    return {rid: path for path, rid in jobs}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The shop under ``gunicorn -c python:limone_obs.gunicorn_conf`` with 3 workers."""
    tmp = tmp_path_factory.mktemp("adopter")
    env = {"GUNICORN_WORKERS": "3", c.ENV_SERVICE: SERVICE, c.ENV_ENV: ENV,
           "PROMETHEUS_MULTIPROC_DIR": str(tmp / "mp")}  # fmt: skip
    with gunicorn_server(APP, tmp, env, config=CONFIG) as (url, proc):
        sent = _send(url)
        scrape = settled(lambda: requests.get(f"{url}/metrics", timeout=10).text, _steady(sent))
    return Run(sent, scrape, proc.log)


def _steady(sent: dict[str, str]) -> Callable[[str], bool]:
    """True for a scrape once every request is counted and the duration sums read the
    same as in the scrape before. A request is recorded after its last byte; a scrape
    reads a worker's values one after another, so the one that first counts the last
    request may have read its duration sum before it was added (the sums then came
    short of the dependency time inside them)."""
    seen: list[dict[str, float]] = []

    def steady(text: str) -> bool:
        sums = per_endpoint(text, N.request_duration_sum)
        counted = sum(per_endpoint(text, N.requests_total).values()) >= len(sent)
        done = counted and seen[-1:] == [sums]
        seen.append(sums)
        return done

    return steady


def test_request_counts_are_exact(run: Run) -> None:
    """Every endpoint's request count equals the requests sent, whichever worker answered."""
    counted = {dict(k)[c.LABEL_ENDPOINT]: v for k, v in run.samples(N.requests_total).items()}
    assert {ENDPOINTS[p]: float(n) for p, n in PLAN.items()} == counted


def test_dependency_counts_are_exact(run: Run) -> None:
    """One db call per item, two AI calls per /ask (gather), one per stream and pool call."""
    expected = {"select_item": PLAN["/items/7"], "complete": 2 * PLAN["/ask"],
                "stream": PLAN["/stream"], "summarise": PLAN["/pool"]}  # fmt: skip
    counted = {op: run.dependency("_count", op) for op in expected}
    assert {op: float(n) for op, n in expected.items()} == counted


def test_dependency_sums_match_the_sleeps(run: Run) -> None:
    """Each tracked call's time covers its sleep (sync, async under gather, thread pool),
    and no more than its share of the requests that made it (nothing counted twice)."""
    # operation -> (endpoint, calls per request, sleep per call)
    calls = {"select_item": ("/items/7", 1, views.DB_SLEEP),
             "complete": ("/ask", 2, views.AI_SLEEP),
             "summarise": ("/pool", 1, views.POOL_SLEEP)}  # fmt: skip
    wrong = {}
    for op, (path, per_request, sleep) in calls.items():
        spent = run.dependency("_sum", op)
        slept = PLAN[path] * per_request * sleep
        ceiling = per_request * run.request_seconds(ENDPOINTS[path])
        if not slept <= spent <= ceiling:
            wrong[op] = (slept, spent, ceiling)
    assert {} == wrong


def test_a_streamed_generator_is_timed_over_its_iteration(run: Run) -> None:
    """The tracked generator's time covers every chunk it produced, not its creation."""
    slept = PLAN["/stream"] * views.STREAM_CHUNKS * views.CHUNK_SLEEP
    assert slept <= run.dependency("_sum", "stream") <= run.request_seconds("/stream")


def test_every_app_line_has_the_service_env_and_its_request_id(run: Run) -> None:
    """App and access lines: service/env from the environment, the id of their own request."""
    wrong = []
    for line in run.lines():
        if line.get("logger", "").startswith("gunicorn") or "thread" in line["message"]:
            continue  # gunicorn's own lines and the thread-pool line: the tests below
        own_request = run.sent.get(line.get("request_id", "")) == line.get("path")
        if (line["service"], line["env"]) != (SERVICE, ENV) or not own_request:
            wrong.append(line)
    assert [] == wrong
    views_logged = Counter(line["message"] for line in run.lines() if line.get("request_id"))
    assert PLAN["/items/7"] == views_logged["item loaded"]
    assert len(run.sent) == views_logged["request finished"]


def test_gunicorn_lines_have_the_same_service_and_env(run: Run) -> None:
    """gunicorn's own lines (master, workers) carry the app's service and env."""
    gunicorn = [
        (line["service"], line["env"])
        for line in run.lines()
        if line.get("logger", "").startswith("gunicorn")
    ]
    assert gunicorn
    assert {(SERVICE, ENV)} == set(gunicorn)


def test_a_thread_pool_line_keeps_the_request_id(run: Run) -> None:
    """The line logged inside the thread pool carries the id of the request that submitted it."""
    pooled = [line for line in run.lines() if line["message"] == "summarised in a thread"]
    assert PLAN["/pool"] == len(pooled)
    assert all(run.sent.get(line.get("request_id", "")) == "/pool" for line in pooled)


def test_plain_gunicorn_without_the_config_is_loud(tmp_path: Path) -> None:
    """``gunicorn -w 3 module:app`` without the kit's config: every worker logs the fix
    once, and every scrape shows the multiprocess_not_configured problem."""
    name = health_series.problems_name(N.namespace)
    problem = rf'^{name}{{problem="{c.PROBLEM_MULTIPROCESS_MISSING}"}} (\S+)$'
    plain_app = "tests.adopter.shop.wsgi:app"
    server = gunicorn_server(plain_app, tmp_path, {}, config=None, args=["-w", "3"])
    with server as (url, proc):
        for path in PLAN:
            requests.get(url + path, timeout=30).raise_for_status()
        scrapes = [requests.get(f"{url}/metrics", timeout=10).text for _ in range(6)]
        pids = _reported_pids(proc.log, want=3)
    found = [re.search(problem, text, re.MULTILINE) for text in scrapes]
    assert [1.0] * 6 == [float(m.group(1)) if m else None for m in found]
    assert 3 == len(pids)
    assert len(set(pids)) == len(pids)


def test_plain_gunicorn_preloading_the_app_says_the_master_reported(tmp_path: Path) -> None:
    """``gunicorn -w 2 --preload`` without the kit's config: the app is set up in the
    master, which says the problem once for all its workers; the line says it is the
    master's (a trial: "the process that answered it (this is pid <master>)", a pid that
    answers no scrape), and every scrape shows the problem."""
    plain_app = "tests.adopter.shop.wsgi:app"
    args = ["-w", "2", "--preload"]
    with gunicorn_server(plain_app, tmp_path, {}, config=None, args=args) as (url, proc):
        scraped = [_scraped_problem(url) for _ in range(4)]
        text = proc.log.read_text(errors="replace")
    said = re.findall(r"gunicorn with 2 workers serves .*?not set.*?\((said by [^)]*)\)", text)
    assert [1.0] * 4 == scraped
    assert [f"said by gunicorn's master, pid {proc.pid}, which preloaded the app: its workers "
            "answer the scrapes, and inherit this report"] == said  # fmt: skip


def test_plain_gunicorn_with_a_worker_class_of_its_own_names_each_worker(
    tmp_path: Path,
) -> None:
    """``gunicorn -w 2 -k yourapp.MyWorker`` without the kit's config (no preload): each
    worker says the problem with its own pid (a review: a worker class outside gunicorn's
    modules made every worker's line say it was the master's)."""
    plain_app = "tests.adopter.shop.wsgi:app"
    args = ["-w", "2", "-k", "tests.adopter.custom_worker.PlainWorker"]
    with gunicorn_server(plain_app, tmp_path, {}, config=None, args=args) as (_url, proc):
        deadline = time.monotonic() + 30
        found = r"gunicorn with 2 workers serves .*?not set.*?\((this is pid \d+|said by [^)]*)\)"
        said: list[str] = []
        while len(said) < 2 and time.monotonic() < deadline:
            said = re.findall(found, proc.log.read_text(errors="replace"))
            time.sleep(0.2)
    assert 2 == len(said), said
    assert all(s.startswith("this is pid ") for s in said), said
    assert len(set(said)) == 2


def _scraped_problem(url: str) -> float | None:
    name = health_series.problems_name(N.namespace)
    text = requests.get(f"{url}/metrics", timeout=10).text
    found = re.search(
        rf'^{name}{{problem="{c.PROBLEM_MULTIPROCESS_MISSING}"}} (\S+)$', text, re.MULTILINE
    )
    return float(found.group(1)) if found else None


def test_plain_gunicorn_grown_with_ttin_is_loud(tmp_path: Path) -> None:
    """``gunicorn -w 1`` without the kit's config, then two ``TTIN`` signals: three
    workers, each with counts of its own. A worker that started alone finds its siblings
    at the next scrape it answers, a new one at its start; every scrape then shows the
    problem, and the error line names the live workers."""
    plain_app = "tests.adopter.shop.wsgi:app"
    server = gunicorn_server(plain_app, tmp_path, {}, config=None, args=["-w", "1"])
    with server as (url, proc):
        assert _scraped_problem(url) == 0.0  # one worker, no recycling: nothing wrong
        for count in (2, 3):  # one at a time: two signals at once may arrive as one
            proc.signal(signal.SIGTTIN)
            deadline = time.monotonic() + 30
            while len(process.children(proc.pid)) < count and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(process.children(proc.pid)) == count
        scraped = [_scraped_problem(url) for _ in range(6)]
        text = proc.log.read_text(errors="replace")
    assert scraped == [1.0] * 6
    assert re.search(r"gunicorn with 3 (live )?workers serves .*?not set", text)


def test_plain_gunicorn_recycling_its_one_worker_is_loud(tmp_path: Path) -> None:
    """``gunicorn -w 1 --max-requests 20`` without the kit's config: each recycled worker
    starts at 0 and loses what it counted since the last scrape; said at start-up."""
    plain_app = "tests.adopter.shop.wsgi:app"
    args = ["-w", "1", "--max-requests", "20"]
    with gunicorn_server(plain_app, tmp_path, {}, config=None, args=args) as (url, proc):
        scraped = _scraped_problem(url)
        text = proc.log.read_text(errors="replace")
    assert scraped == 1.0
    assert "gunicorn recycles its worker every 20 requests (max_requests), but" in text
    assert f"gunicorn -c python:{c.GUNICORN_CONFIG_MODULE}" in text


def _reported_pids(log: Path, want: int) -> list[str]:
    """pids named by the missing-storage error lines, waiting (bounded) for ``want`` of them."""
    deadline = time.monotonic() + 30
    while True:
        text = log.read_text(errors="replace")
        # "gunicorn with 3 workers": found at start-up, before any request
        found = r"gunicorn with 3 workers serves .*?not set.*?\(this is pid (\d+)\)"
        pids = re.findall(found, text)
        if len(pids) >= want or time.monotonic() > deadline:
            assert f"gunicorn -c python:{c.GUNICORN_CONFIG_MODULE}" in text
            return pids
        time.sleep(0.2)
