"""The demo service: routes, dependency metrics as a user would record them, fault switches."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry

from limone_obs import conventions as c
from limone_obs.demo import create_app
from limone_obs.errors import ConfigError
from limone_obs.stack import procs
from tests.redis_server import redis_server
from tests.support import ROOT

NAMES = c.MetricNames()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the demo's cache (tests fail under CI=true without one)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as (url, _proc):
        yield url


@pytest.fixture
def app(tmp_path: Path, registry: CollectorRegistry, redis_url: str) -> Flask:
    """The demo on an empty Redis."""
    redis.Redis.from_url(redis_url).flushdb()
    config = {
        "LIMONE_DEMO_DATA_DIR": str(tmp_path),
        "LIMONE_DEMO_AI_LATENCY": "0.01-0.02",
        c.DEMO_REDIS_URL_ENV: redis_url,
    }
    return create_app(config, registry=registry)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _requests(
    registry: CollectorRegistry, endpoint: str, status: str, method: str = "GET"
) -> float:
    labels = {"method": method, "endpoint": endpoint, "status": status}
    return registry.get_sample_value(NAMES.requests_total, labels) or 0.0


def _dep_calls(registry: CollectorRegistry, dep: str, op: str, outcome: str = "ok") -> float:
    labels = {"dependency": dep, "operation": op, "outcome": outcome}
    return registry.get_sample_value(NAMES.dependency_duration_count, labels) or 0.0


def test_project_route_times_the_db_query(client: FlaskClient, registry: CollectorRegistry) -> None:
    """GET /projects/3 answers the seeded project and records one db call and one request."""
    resp = client.get("/projects/3")
    assert {"id": 3, "name": "project-3", "language": "go"} == resp.json
    assert 1.0 == _dep_calls(registry, "db", "get_project")
    assert 1.0 == _requests(registry, "/projects/<int:project_id>", "200")


def test_unknown_project_is_404(client: FlaskClient) -> None:
    """A project id that does not exist answers 404 with a JSON error."""
    resp = client.get("/projects/999")
    assert (404, {"error": "not found"}) == (resp.status_code, resp.json)


def test_create_project_validates_language(client: FlaskClient) -> None:
    """POST /projects with an unknown language is 400; with a known one it is 201."""
    bad = client.post("/projects", json={"name": "x", "language": "cobol"})
    good = client.post("/projects", json={"name": "x", "language": "rust"})
    assert (400, 201) == (bad.status_code, good.status_code)
    assert "x" == client.get(f"/projects/{good.json['id']}").json["name"]  # type: ignore[index]


def test_language_lookup_counts_a_miss_then_a_hit(
    client: FlaskClient, registry: CollectorRegistry
) -> None:
    """The first lookup of a language misses the cache (one DB query), the second hits."""
    client.get("/languages/python")
    client.get("/languages/python")
    hits = registry.get_sample_value(
        NAMES.cache_requests_total, {"cache": "languages", "result": "hit"}
    )
    misses = registry.get_sample_value(
        NAMES.cache_requests_total, {"cache": "languages", "result": "miss"}
    )
    assert (1.0, 1.0) == (hits, misses)
    assert 1.0 == _dep_calls(registry, "db", "get_language")


def _cache(registry: CollectorRegistry, cache: str) -> dict[str, float]:
    return {
        result: registry.get_sample_value(
            NAMES.cache_requests_total, {"cache": cache, "result": result}
        )
        or 0.0
        for result in c.CACHE_RESULTS
    }


def test_ai_answer_is_cached_in_redis(client: FlaskClient, registry: CollectorRegistry) -> None:
    """The same prompt twice: one AI call, one miss and one hit of the ai_answers cache,
    and the Redis calls are timed as dependency redis."""
    first = client.post("/ai/complete", json={"prompt": "def fib"})
    second = client.post("/ai/complete", json={"prompt": "def fib"})
    assert first.json == second.json
    assert 1.0 == _dep_calls(registry, "ai_api", "complete")
    assert {"hit": 1, "miss": 1, "error": 0} == _cache(registry, c.DEMO_CACHE_AI)
    assert 2.0 == _dep_calls(registry, c.DEPENDENCY_REDIS, c.REDIS_OP_GET)


def test_without_redis_the_demo_says_so_and_uses_no_cache(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    """No LIMONE_DEMO_REDIS_URL: a warning line says the demo runs without a cache, and
    every lookup goes to the database (no cache series)."""
    stream = io.StringIO()
    config = {"LIMONE_DEMO_DATA_DIR": str(tmp_path), "LIMONE_DEMO_AI_LATENCY": "0.01"}
    client = create_app(config, registry=registry, log_stream=stream).test_client()
    client.get("/languages/python")
    client.get("/languages/python")
    assert "runs without a cache" in stream.getvalue()
    assert 2.0 == _dep_calls(registry, "db", "get_language")
    assert {"hit": 0, "miss": 0, "error": 0} == _cache(registry, c.DEMO_CACHE_LANGUAGES)


def test_redis_down_the_demo_answers_and_counts_errors(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    """A configured Redis that does not answer: requests succeed, lookups count as error."""
    dead = f"redis://127.0.0.1:{procs.free_port()}/0"
    config = {"LIMONE_DEMO_DATA_DIR": str(tmp_path), c.DEMO_REDIS_URL_ENV: dead}
    client = create_app(config, registry=registry).test_client()
    assert 200 == client.get("/languages/rust").status_code
    assert 200 == client.get("/languages/rust").status_code
    assert {"hit": 0, "miss": 0, "error": 2} == _cache(registry, c.DEMO_CACHE_LANGUAGES)


def test_n_plus_one_switch_turns_projects_into_a_query_per_project(
    client: FlaskClient, registry: CollectorRegistry
) -> None:
    """GET /projects makes 1 db call; with n_plus_one on, 1 + one per project (21)."""
    labels = {"endpoint": "/projects", "dependency": c.DEPENDENCY_DB}
    before = client.get("/projects", buffered=True).json
    assert 1.0 == registry.get_sample_value(NAMES.dependency_calls_per_request_sum, labels)
    client.put("/admin/faults", json={"n_plus_one": True})
    after = client.get("/projects", buffered=True).json
    assert before == after
    assert 22.0 == registry.get_sample_value(NAMES.dependency_calls_per_request_sum, labels)
    bucket = {**labels, "le": "20.0"}
    assert 1.0 == registry.get_sample_value(NAMES.dependency_calls_per_request_bucket, bucket)


def test_editor_page_is_rendered_and_timed_as_template(
    client: FlaskClient, registry: CollectorRegistry
) -> None:
    """GET /editor/1 renders the Jinja page; the exporter times the template automatically."""
    resp = client.get("/editor/1")
    assert b"<title>project-1 - LimoneIDE demo</title>" in resp.data
    assert 1.0 == _dep_calls(registry, c.DEPENDENCY_TEMPLATE, "editor.html")


def test_ai_completion_times_the_ai_call(client: FlaskClient, registry: CollectorRegistry) -> None:
    """POST /ai/complete answers a completion and records one ai_api call."""
    resp = client.post("/ai/complete", json={"prompt": "def fib"})
    assert resp.json is not None
    assert resp.json["completion"].startswith("def fibonacci")
    assert 1.0 == _dep_calls(registry, "ai_api", "complete")


def test_streamed_completion_is_timed_to_the_last_token(
    client: FlaskClient, registry: CollectorRegistry
) -> None:
    """A streamed completion sends every token; the ai_api call and request count at the end."""
    resp = client.post("/ai/complete", json={"prompt": "def fib", "stream": True}, buffered=True)
    assert resp.data.decode().startswith("def fibonacci(n: int) -> int:")
    assert 1.0 == _dep_calls(registry, "ai_api", "complete_stream")
    assert 1.0 == _requests(registry, "/ai/complete", "200", method="POST")


def test_empty_prompt_is_400(client: FlaskClient) -> None:
    """A completion request without a prompt is refused with 400 and a message."""
    resp = client.post("/ai/complete", json={})
    assert 400 == resp.status_code
    assert '"prompt"' in resp.json["error"]  # type: ignore[index]


def test_error_rate_one_answers_500_and_counts_the_exception(
    client: FlaskClient, registry: CollectorRegistry
) -> None:
    """With error_rate 1 every app route answers 500 and the exception series counts it."""
    client.put("/admin/faults", json={"error_rate": 1})
    assert 500 == client.get("/projects", buffered=True).status_code
    labels = {"method": "GET", "endpoint": "/projects", "exception": "InjectedFaultError"}
    assert 1.0 == registry.get_sample_value(NAMES.request_exceptions_total, labels)


def test_error_rate_spares_health(client: FlaskClient) -> None:
    """The error-rate switch leaves /health answering 200."""
    client.put("/admin/faults", json={"error_rate": 1})
    assert 200 == client.get("/health").status_code


def test_outage_answers_503_but_metrics_and_admin_work(client: FlaskClient) -> None:
    """In an outage every route, /health included, is 503; /metrics and the admin are not."""
    client.put("/admin/faults", json={"outage": True})
    statuses = [client.get(p).status_code for p in ("/health", "/projects", "/metrics")]
    assert [503, 503, 200] == statuses
    assert 200 == client.delete("/admin/faults").status_code
    assert 200 == client.get("/health").status_code


def test_latency_switch_slows_the_dependency(
    client: FlaskClient, registry: CollectorRegistry
) -> None:
    """Extra db latency of 0.2 s shows in the db dependency histogram's sum."""
    client.put("/admin/faults", json={"latency": {"db": 0.2}})
    client.get("/projects/1")
    labels = {"dependency": "db", "operation": "get_project", "outcome": "ok"}
    total = registry.get_sample_value(NAMES.dependency_duration_sum, labels)
    assert total is not None
    assert total >= 0.2


def test_faults_are_shared_through_the_data_dir(tmp_path: Path, client: FlaskClient) -> None:
    """A second app (another gunicorn worker) on the same data dir sees the switch."""
    client.put("/admin/faults", json={"outage": True})
    other = create_app({"LIMONE_DEMO_DATA_DIR": str(tmp_path)}, registry=CollectorRegistry())
    assert 503 == other.test_client().get("/projects").status_code


def test_admin_refuses_non_loopback_clients(client: FlaskClient) -> None:
    """The admin endpoint answers 403 to a client outside 127.0.0.0/8 and ::1."""
    resp = client.put(
        "/admin/faults", json={"outage": True}, environ_base={"REMOTE_ADDR": "10.1.2.3"}
    )
    assert 403 == resp.status_code
    assert 200 == client.get("/projects").status_code


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error_rate": 1.5}, "error_rate=1.5: use a number from 0 to 1"),
        ({"latency": {"smtp": 1}}, "unknown dependency 'smtp'"),
        ({"outage": "yes"}, "outage='yes': use true or false"),
        ({"errors": 1}, "unknown field(s) ['errors']"),
    ],
)
def test_admin_rejects_invalid_switches(client: FlaskClient, body: object, message: str) -> None:
    """An invalid switch is 400 with a message naming the field; the state is unchanged."""
    resp = client.put("/admin/faults", json=body)
    assert 400 == resp.status_code
    assert message in resp.json["error"]  # type: ignore[index]
    assert {"error_rate": 0.0, "latency": {}, "outage": False, "n_plus_one": False} == client.get(
        "/admin/faults"
    ).json


def test_environment_sets_the_initial_faults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LIMONE_DEMO_ERROR_RATE / _LATENCY / _OUTAGE give the state before any admin call."""
    monkeypatch.setenv("LIMONE_DEMO_ERROR_RATE", "0.25")
    monkeypatch.setenv("LIMONE_DEMO_LATENCY", "ai_api=1.5, db=0.1")
    monkeypatch.setenv("LIMONE_DEMO_OUTAGE", "0")
    app = create_app({"LIMONE_DEMO_DATA_DIR": str(tmp_path)}, registry=CollectorRegistry())
    expected = {
        "error_rate": 0.25,
        "latency": {"ai_api": 1.5, "db": 0.1},
        "outage": False,
        "n_plus_one": False,
    }
    assert expected == app.test_client().get("/admin/faults").json


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("LIMONE_DEMO_ERROR_RATE", "lots", "LIMONE_DEMO_ERROR_RATE='lots': not a number"),
        ("LIMONE_DEMO_LATENCY", "ai_api", "use dependency=seconds"),
        ("LIMONE_DEMO_OUTAGE", "maybe", "LIMONE_DEMO_OUTAGE='maybe'"),
        ("LIMONE_DEMO_AI_LATENCY", "2-1", "min is above max"),
    ],
)
def test_bad_environment_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    """A bad LIMONE_DEMO_* variable raises ConfigError naming it and its value."""
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_app({"LIMONE_DEMO_DATA_DIR": str(tmp_path)}, registry=CollectorRegistry())


def _log_lines(
    tmp_path: Path, requests: list[tuple[str, str, dict[str, Any] | None]]
) -> list[dict[str, Any]]:
    out = io.BytesIO()
    config = {"LIMONE_DEMO_DATA_DIR": str(tmp_path), "LIMONE_DEMO_AI_LATENCY": "0.01"}
    app = create_app(config, registry=CollectorRegistry(), log_stream=out)
    client = app.test_client()
    for method, path, body in requests:
        client.open(path, method=method, json=body, headers={"X-User-ID": "u1"}).close()
    return [json.loads(line) for line in out.getvalue().decode().splitlines()]


def test_every_log_line_is_json_valid_against_the_schema(tmp_path: Path) -> None:
    """The demo logs as a user of limone_obs.logging would: every line fits the schema."""
    schema = json.loads((ROOT / "logging" / "log-event.schema.json").read_text())
    lines = _log_lines(
        tmp_path, [("POST", "/ai/complete", {"prompt": "x"}), ("GET", "/projects/1", None)]
    )
    assert len(lines) >= 3
    for line in lines:
        jsonschema.validate(line, schema)


def test_access_line_carries_endpoint_status_and_user(tmp_path: Path) -> None:
    """Each request writes one access line with URL rule, status code, duration and user."""
    lines = _log_lines(tmp_path, [("GET", "/projects/2", None)])
    access = [line for line in lines if line["logger"] == "limone_obs.access"]
    assert [("/projects/<int:project_id>", 200, "u1")] == [
        (a["endpoint"], a["status_code"], a["user_id"]) for a in access
    ]


def test_injected_error_is_logged_with_its_exception(tmp_path: Path) -> None:
    """A request failed by the error-rate switch logs its exception: Flask's error line and
    the request's access line both name the type (queries on either find the failure)."""
    lines = _log_lines(
        tmp_path, [("PUT", "/admin/faults", {"error_rate": 1}), ("GET", "/projects", None)]
    )
    errors = sorted((e["logger"], e["exception"]["type"]) for e in lines if "exception" in e)
    assert [
        ("limone_obs.access", "InjectedFaultError"),
        ("limone_obs.demo.app", "InjectedFaultError"),
    ] == errors


def test_redis_password_never_reaches_the_log(tmp_path: Path, registry: CollectorRegistry) -> None:
    """The warning about a Redis that does not answer names the URL without its password."""
    stream = io.StringIO()
    dead = f"redis://user:s3cret-pass@127.0.0.1:{procs.free_port()}/0"
    config = {"LIMONE_DEMO_DATA_DIR": str(tmp_path), c.DEMO_REDIS_URL_ENV: dead}
    create_app(config, registry=registry, log_stream=stream)
    assert "Redis does not answer" in stream.getvalue()
    assert "s3cret-pass" not in stream.getvalue()
