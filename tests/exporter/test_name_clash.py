"""An app's own metric under one of the kit's series names: left out of the scrape, reported.

prometheus-client's multiprocess mode merges every sample stored under one family name;
without the check, the app's samples joined the kit's series and the SLO rules counted
them twice, silently. Each test runs with the fast path on and off
(``LIMONE_OBS_FAST_PATH=0``): both collectors must serve the same samples.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from limone_obs import Metrics, health
from limone_obs import conventions as c
from limone_obs.exporter import _failsafe, catalogue, health_series, name_clash
from tests.exporter.clash_app import NAMESPACE, OLD_HELP
from tests.support import gunicorn_server, wait_until

N = c.MetricNames(NAMESPACE)
PROBLEMS = health_series.problems_name(NAMESPACE)
CLASH = {c.LABEL_PROBLEM: c.PROBLEM_METRIC_NAME_CLASH}
KIT_REQUEST = {c.LABEL_METHOD: "GET", c.LABEL_ENDPOINT: "/", c.LABEL_STATUS: "200"}
REQUESTS = 3


@pytest.fixture(
    params=[pytest.param("1", id="fast-path", marks=pytest.mark.fast_path),
            pytest.param("0", id="public-api")],
)  # fmt: skip
def fast(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """The fast path on, then off (prometheus-client's public API and collector)."""
    monkeypatch.setenv(c.ENV_FAST_PATH, request.param)
    return bool(request.param == "1")


@pytest.fixture(autouse=True)
def _fresh_health() -> Iterator[None]:
    health.reset()
    yield
    health.reset()


def _serve(count: Callable[[], object], fast: bool) -> Flask:
    """An app of namespace ``ledger`` whose one route also calls ``count`` (the app's own
    metric), after ``REQUESTS`` requests."""
    app = Flask("clash")
    metrics = Metrics(app, namespace=NAMESPACE)
    assert (metrics.multiprocess, metrics.fast_path) == (True, fast)

    @app.get("/")
    def index() -> str:
        count()
        return "ok"

    client = app.test_client()
    for _ in range(REQUESTS):
        assert 200 == client.get("/", buffered=True).status_code
    return app


def _families(text: str) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _by_name(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of a scrape by sample name, whichever family holds it (two families
    of one name included)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _scrape(app: Flask) -> str:
    """One scrape of the app's metrics path."""
    return app.test_client().get("/metrics", buffered=True).get_data(as_text=True)


def _samples(family: Metric) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for s in family.samples]


def _problem(families: dict[str, Metric]) -> float:
    [value] = [s.value for s in families[PROBLEMS].samples if s.labels == CLASH]
    return value


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "limone_obs.exporter" and r.levelno >= logging.ERROR
    ]


def test_an_app_counter_under_the_kits_name_is_left_out_and_reported(
    mp_in_process: Path, fast: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The trial: the app's own ``ledger_requests_total{route}`` (other help, other labels).
    The kit's family holds exactly the kit's samples, the app's are in no family, the
    problem is 1, and one error line (however many scrapes) names the series, the app
    metric's help text and labels, and what to do."""
    # registry=None: in multiprocess mode the samples reach the files whatever the registry
    # (tests keep off prometheus-client's global one).
    old = Counter(N.requests_total, OLD_HELP, ["route"], registry=None)
    app = _serve(lambda: old.labels("index").inc(), fast)
    scrapes = [_families(_scrape(app)) for _ in range(2)]
    for families in scrapes:
        assert [(N.requests_total, KIT_REQUEST, 3.0)] == _samples(families[N.requests])
        assert OLD_HELP != families[N.requests].documentation
        assert not any("route" in s.labels for f in families.values() for s in f.samples)
        assert 1.0 == _problem(families)
    [line] = _errors(caplog)
    assert f"{N.requests_total} (help {OLD_HELP!r}, labels route)" in line
    assert "Rename the app's own metric, or give Metrics another namespace" in line


FOREIGN: dict[str, Callable[[], Callable[[float], object]]] = {
    # Same labels (and label values) as the kit's: only the help text tells them apart.
    "same-labels-other-help": lambda: (
        Counter(N.requests, "Requests, as the team counted them.", c.REQUESTS_LABELS, registry=None)
        .labels("GET", "/", "200")
        .inc
    ),
    # A gauge exposed under the kit's counter sample name (another family name).
    "gauge-of-the-sample-name": lambda: (
        Gauge(N.requests_total, OLD_HELP, c.REQUESTS_LABELS, registry=None)
        .labels("GET", "/", "200")
        .inc
    ),
    # A histogram under the name of the kit's counter family.
    "histogram-of-the-family-name": lambda: (
        Histogram(N.requests, OLD_HELP, c.REQUESTS_LABELS, registry=None)
        .labels("GET", "/", "200")
        .observe
    ),
    # A gauge under the name of the workers series, which the kit computes at scrape time.
    "gauge-of-a-scrape-time-series": lambda: (
        Gauge(N.workers, OLD_HELP, [c.LABEL_STATE], registry=None, multiprocess_mode="livesum")
        .labels(c.WORKER_BUSY)
        .inc
    ),
}


@pytest.mark.parametrize("make", FOREIGN.values(), ids=FOREIGN.keys())
def test_other_metrics_under_the_kits_names_are_left_out(
    mp_in_process: Path, fast: bool, make: Callable[[], Callable[[float], object]]
) -> None:
    """Another help text, type or family under one of the kit's names: the kit's series
    keep exactly their own samples (one request sample counting 3, nothing busy), no
    sample of the app's metric is served, and the problem is 1."""
    count = make()
    text = _scrape(_serve(lambda: count(1.0), fast))
    samples = _by_name(text)
    busy = [v for labels, v in samples[N.workers] if labels == {c.LABEL_STATE: c.WORKER_BUSY}]
    assert [(KIT_REQUEST, 3.0)] == samples[N.requests_total]
    assert [0.0] == busy
    histogram = {f"{N.requests}{suffix}" for suffix in ("_bucket", "_sum", "_count")}
    assert set() == histogram & samples.keys()
    assert 1.0 == _problem(_families(text))


def test_an_app_metric_of_another_name_is_served_unchanged(
    mp_in_process: Path, fast: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """No false positive: the app's own counter of another name keeps its samples and help,
    the kit's series theirs (dependency calls and cache lookups too), problem 0, no line."""
    logins = Counter(f"{NAMESPACE}_logins", "Logins, by route.", ["route"], registry=None)
    app = _serve(lambda: logins.labels("index").inc(), fast)
    metrics: Metrics = app.extensions["limone_obs"].metrics
    with metrics.track("db", "select"):
        pass
    metrics.cache_hit("languages")
    app.test_client().get("/", buffered=True, headers={c.QUEUE_START_HEADER: "garbage"})
    families = _families(_scrape(app))
    own = families[f"{NAMESPACE}_logins"]
    assert [(f"{NAMESPACE}_logins_total", {"route": "index"}, 4.0)] == _samples(own)
    assert "Logins, by route." == own.documentation
    assert [(N.requests_total, KIT_REQUEST, 4.0)] == _samples(families[N.requests])
    assert {N.dependency_duration, N.cache_requests, N.request_queue_ignored} <= families.keys()
    assert (0.0, []) == (_problem(families), _errors(caplog))


def test_public_path_serves_unchecked_when_the_client_file_class_changed(
    mp_in_process: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Public path, a prometheus-client release whose file class has no reader of that
    name: the scrape is served as prometheus-client merges it, and an error line says the
    check failed (never a failed scrape)."""
    monkeypatch.setenv(c.ENV_FAST_PATH, "0")
    monkeypatch.setattr(name_clash, "MmapedDict", object)
    _failsafe._last.clear()  # the log is rate-limited per place; start from a clean slate
    old = Counter(N.requests_total, OLD_HELP, ["route"], registry=None)
    families = _families(_scrape(_serve(lambda: old.labels("index").inc(), fast=False)))
    assert 2 == len(families[N.requests].samples)
    [line] = _errors(caplog)
    assert "the check for other metrics under the kit's series names" in line


def test_every_series_of_the_catalogue_is_checked() -> None:
    """Every series of the namespace the catalogue lists is one the check knows as the
    kit's, so a series added later cannot escape it."""
    metrics = Metrics(Flask("catalogue"), namespace=NAMESPACE)
    listed = set(re.findall(rf"^\| `({NAMESPACE}_\w+)`", catalogue.render(NAMESPACE), re.M))
    own = metrics._own_series()
    assert len(listed) > 10
    assert listed <= own.families.keys() | own.sample_names


def _clash_server(tmp_path: Path, switch: str, max_requests: int) -> list[dict[str, Metric]]:
    """Serve ``clash_app`` under gunicorn with the kit's config (2 workers, fast path
    ``switch``), send 20 requests, and return 6 scrapes, taken once a scrape shows every
    request: a request is recorded after its last byte was sent, so a scrape the other
    worker answers at once may come before the last one is."""
    env = {
        "GUNICORN_WORKERS": "2",
        "GUNICORN_MAX_REQUESTS": str(max_requests),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "mp"),
        c.ENV_FAST_PATH: switch,
    }
    with gunicorn_server("tests.exporter.clash_app:create_app()", tmp_path, env) as (url, _):
        for _ in range(20):
            assert 200 == requests.get(url, timeout=30).status_code

        def scrape() -> dict[str, Metric]:
            return _families(requests.get(f"{url}/metrics", timeout=30).text)

        wait_until(lambda: _counted(scrape()) >= 20, "the 20 requests recorded", 10.0)
        return [scrape() for _ in range(6)]


def _counted(families: dict[str, Metric]) -> float:
    """Requests the kit's request series counts in one scrape."""
    return sum(
        value for name, _, value in _samples(families[N.requests]) if name == N.requests_total
    )


@pytest.mark.integration
@pytest.mark.parametrize("switch", ["1", "0"], ids=["fast-path", "public-api"])
def test_gunicorn_serves_the_kits_counts_exactly(tmp_path: Path, switch: str) -> None:
    """The trial under gunicorn: every scrape's request series counts the 20 requests
    answered, without the app's old counter, the problem is 1, and each worker that
    answered scrapes wrote the error line once."""
    for families in _clash_server(tmp_path, switch, max_requests=0):
        assert [(N.requests_total, KIT_REQUEST, 20.0)] == _samples(families[N.requests])
        assert 1.0 == _problem(families)
    log = (tmp_path / "gunicorn.log").read_text().splitlines()
    lines = [line for line in log if N.requests_total in line and OLD_HELP in line]
    assert 1 <= len(lines) <= 2


@pytest.mark.integration
@pytest.mark.parametrize("switch", ["1", "0"], ids=["fast-path", "public-api"])
def test_gunicorn_recycled_workers_keep_the_kits_counts_exact(tmp_path: Path, switch: str) -> None:
    """Workers recycled every 5 requests (on the fast path their files, the app's samples
    included, go into the compaction archive): the counts stay exact, the problem 1."""
    for families in _clash_server(tmp_path, switch, max_requests=5):
        assert [(N.requests_total, KIT_REQUEST, 20.0)] == _samples(families[N.requests])
        assert 1.0 == _problem(families)
