"""An instrumented example app and a bounded load for the dashboard query tests.

The routes produce everything the dashboards draw: fast and slow (> 1 s) requests,
5xx answers and unhandled exceptions, AI calls that fail or take > 1 s, DB calls, cache
hits and misses, template rendering, calls to a dependency of the app's own naming,
RUM beacons of a page (fast and slow). With
``faults=False`` the same routes are healthy: no 5xx, no exception, no failed or slow
dependency call (4xx of unknown paths remain). The app is served from a thread by
werkzeug on 127.0.0.1 and the load stops by itself after a fixed number of requests.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests
from flask import Flask, render_template_string

from limone_obs import Metrics
from limone_obs import conventions as c

#: The endpoint the drill-down dashboard is checked with.
PROJECT_ENDPOINT = "/projects/<int:project_id>"
#: A dependency named as a team's own service might name it: nothing in the kit knows the
#: name, and its dot is a regex metacharacter in Grafana's ``$dependency``.
OWN_DEPENDENCY = "payments.v2"
#: Every dependency the app calls (template: the automatic Jinja timing).
DEPENDENCIES = (
    c.DEPENDENCY_AI, c.DEPENDENCY_CACHE, c.DEPENDENCY_DB, OWN_DEPENDENCY, c.DEPENDENCY_TEMPLATE
)  # fmt: skip
#: Share of /projects requests that fail with a 500 (an unhandled exception).
FAILURE_SHARE = 0.15
#: Time of a slow AI call: above the committed 2.5 s threshold of both latency SLOs.
SLOW_SECONDS = 2.6
#: Share of AI calls that are slow: 40 % of 40 % of requests puts p95 above 2.5 s.
SLOW_AI_SHARE = 0.4


class ProjectLoadError(RuntimeError):
    """Raised by /projects for a share of requests: a 500 and an exceptions sample."""


def _project_view(metrics: Metrics, rng: random.Random, faults: bool) -> Callable[[int], str]:
    def project(project_id: int) -> str:
        metrics.cache_result("projects", hit=project_id % 3 != 0)
        with metrics.track(c.DEPENDENCY_DB, "select_project") as query:
            time.sleep(0.002)
            if faults and project_id % 11 == 0:
                query.fail()
        with metrics.track(c.DEPENDENCY_CACHE, "get") as call:
            if faults and project_id % 7 == 0:
                call.fail()
        with metrics.track(OWN_DEPENDENCY, "charge"):
            time.sleep(0.001)
        if faults and rng.random() < FAILURE_SHARE:
            raise ProjectLoadError(f"project {project_id} failed to load")
        return render_template_string("<h1>{{ id }}</h1>", id=project_id)

    return project


def _ai_view(metrics: Metrics, rng: random.Random, faults: bool) -> Callable[[], tuple[str, int]]:
    def complete() -> tuple[str, int]:
        slow = faults and rng.random() < SLOW_AI_SHARE
        with metrics.track(c.DEPENDENCY_AI, "complete") as call:
            time.sleep(SLOW_SECONDS if slow else 0.01)
            if faults and rng.random() < 0.1:
                call.fail()
                return "AI API unavailable", 503
        return "completion", 200

    return complete


def create_app(seed: int = 7, *, faults: bool = True) -> Flask:
    """The example app (its Metrics keeps a private registry with process metrics).

    ``faults=False`` makes it healthy: no 5xx, exceptions, failed or slow dependency calls.
    """
    app = Flask("dashboards_example")
    metrics = Metrics(app)
    rng = random.Random(seed)
    app.add_url_rule(PROJECT_ENDPOINT, "project", _project_view(metrics, rng, faults))
    ai_view = _ai_view(metrics, rng, faults)
    app.add_url_rule("/ai/complete", "complete", ai_view, methods=["POST"])
    app.add_url_rule("/health", "health", lambda: "ok")
    # A page with the RUM script: the driver posts its beacons like a browser would.
    # A page with the RUM script: the driver posts its beacons like a browser would. With
    # faults, every third view tells the driver to report a slow load.
    views = iter(range(10**9))
    app.add_url_rule(
        "/editor",
        "editor",
        lambda: render_template_string(RUM_PAGE, slow=faults and next(views) % 3 == 0),
    )
    return app


RUM_PAGE = "<title>editor</title>{{ limone_obs_rum() }}{% if slow %}<i>slow</i>{% endif %}"


def _page_view(base: str) -> None:
    """One page view as a browser reports it: the page, then its RUM beacon.

    A view the page marks slow reports load 2.5 s and AI answer 1.5 s: above both targets.
    """
    html = requests.get(f"{base}/editor", timeout=10, headers=_proxy_headers()).text
    token = html.split('data-page="')[1].split('"')[0].replace("&lt;", "<").replace("&gt;", ">")
    slow = "<i>slow</i>" in html
    values = {
        c.PHASE_TTFB: 0.05, c.PHASE_FCP: 0.3, c.PHASE_DOM_CONTENT_LOADED: 0.4,
        c.PHASE_LOAD: 2.5 if slow else 0.8, c.PHASE_LCP: 0.9,
        c.MARK_AI_ANSWER_SHOWN: 1.5 if slow else 0.5,
    }  # fmt: skip
    body = json.dumps({"p": token, "v": values})
    requests.post(f"{base}/rum", data=body, headers={"Content-Type": "text/plain"}, timeout=10)


def _proxy_headers() -> dict[str, str]:
    """``X-Request-Start`` as nginx sets it, for the queue-time panel."""
    return {c.QUEUE_START_HEADER: f"t={time.time():.3f}"}


def _one(base: str, i: int, stop: threading.Event) -> None:
    if stop.is_set():
        return
    kind = i % 10
    headers = _proxy_headers()
    if kind < 4:
        requests.get(f"{base}/projects/{i}", timeout=10, headers=headers)
    elif kind < 8:
        requests.post(f"{base}/ai/complete", timeout=10, headers=headers)
    elif kind == 8:
        requests.get(f"{base}/health", timeout=10, headers=headers)
        _page_view(base)
    else:
        requests.get(f"{base}/no/such/page", timeout=10, headers=headers)


def drive(target: str, max_requests: int, stop: threading.Event, workers: int = 8) -> None:
    """Send up to ``max_requests`` requests over ``workers`` threads, fewer once ``stop`` is set."""
    base = f"http://{target}"
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda i: _one(base, i, stop), range(max_requests)))
