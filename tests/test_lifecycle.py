"""One request lifecycle: every way a request ends gives one count, one observation, one line.

The app (``tests/lifecycle_app.py``) runs the exporter and the JSON access log together.
Each scenario is served once by each server: Werkzeug's test client, Werkzeug's threaded
server, gunicorn's sync and gthread workers (multiprocess mode). The access line's
duration and the histogram's sum are the same measurement (the access line rounds it to
the microsecond).
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import inspect
import io
import json
import sys
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, Request, Response, copy_current_request_context, request, send_file
from flask.sessions import SecureCookieSessionInterface
from prometheus_client import CollectorRegistry, generate_latest
from werkzeug.test import EnvironBuilder

from limone_obs import Metrics, lifecycle
from limone_obs import conventions as c
from limone_obs.logging import configure_logging, get_logger, init_app
from limone_obs.logging.setup import reset_for_tests
from tests.lifecycle_app import StreamBrokeError, create_app
from tests.support import (
    FailingEnd,
    gunicorn_server,
    leave_mid_body,
    per_endpoint,
    serve,
    statuses_of,
    wait_until,
)

N = c.MetricNames()
#: Scenario -> (path, status the server answered)
SCENARIOS = {
    "streamed": ("/stream", 200),
    "failed": ("/fail", 500),
    "exception-in-stream": ("/broken-stream", 200),
    # Before its first chunk no server has sent a status: it answers 500 (a trial found
    # 200 recorded, the AI API's outage missing from the error ratio).
    "exception-before-stream": ("/stream-fails-first", 500),
    "aborted-by-client": ("/long-stream", 200),
}
DEADLINE = 15.0


@dataclass
class Served:
    """What one server recorded: its scrape and its access lines."""

    metrics_text: str
    access: list[dict[str, Any]]


def _access_lines(data: str) -> list[dict[str, Any]]:
    lines = []
    for line in data.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("logger") == c.ACCESS_LOGGER:
                lines.append(event)
    return lines


def _over_http(base: str) -> None:
    for name, (path, _) in SCENARIOS.items():
        if name == "aborted-by-client":
            leave_mid_body(base, path)
            continue
        if name == "exception-before-stream":
            answer = requests.get(base + path, timeout=10)
            assert (500, path) == (answer.status_code, path)  # what the client was told
            continue
        # The broken stream: the server drops the connection mid-body.
        with contextlib.suppress(requests.RequestException):
            requests.get(base + path, timeout=10).close()


def _over_test_client(app: Flask) -> None:
    client = app.test_client()
    client.get("/stream", buffered=True)
    client.get("/fail", buffered=True)
    with pytest.raises(StreamBrokeError):
        client.get("/broken-stream", buffered=True)
    with pytest.raises(StreamBrokeError):
        client.get("/stream-fails-first", buffered=True)
    response = client.get("/long-stream")
    next(iter(response.response))  # the first chunk, then the client goes away
    response.close()


def _recorded_everything(text: Callable[[], str], lines: Callable[[], str]) -> bool:
    counts = per_endpoint(text(), N.requests_total)
    return len(_access_lines(lines())) >= len(SCENARIOS) and all(
        counts.get(path) for path, _ in SCENARIOS.values()
    )


@pytest.fixture(scope="module")
def test_client_run() -> Served:
    """The scenarios through Werkzeug's test client."""
    out = io.StringIO()
    registry = CollectorRegistry()
    _over_test_client(create_app(stream=out, registry=registry))
    reset_for_tests()
    return Served(generate_latest(registry).decode(), _access_lines(out.getvalue()))


@pytest.fixture(scope="module")
def werkzeug_run() -> Served:
    """The scenarios through Werkzeug's threaded development server."""
    out = io.StringIO()
    registry = CollectorRegistry()
    app = create_app(stream=out, registry=registry)
    with serve(app, quiet=True) as base:
        _over_http(base)

        def text() -> str:
            return generate_latest(registry).decode()

        wait_until(
            lambda: _recorded_everything(text, out.getvalue), "every request recorded", DEADLINE
        )
    reset_for_tests()
    return Served(text(), _access_lines(out.getvalue()))


def _gunicorn_run(tmp_path: Path, worker_class: str) -> Served:
    env = {"GUNICORN_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    if worker_class == "gthread":
        env["GUNICORN_THREADS"] = "4"
    (tmp_path / "prom").mkdir()
    app = "tests.lifecycle_app:create_app()"
    with gunicorn_server(app, tmp_path, env, ready_path="/ready") as (base, _):
        _over_http(base)

        def text() -> str:
            return requests.get(base + "/metrics", timeout=10).text

        def log() -> str:
            return (tmp_path / "gunicorn.log").read_text(encoding="utf-8")

        wait_until(lambda: _recorded_everything(text, log), "every request recorded", DEADLINE)
        return Served(text(), _access_lines(log()))


@pytest.fixture(scope="module")
def gunicorn_sync_run(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The scenarios through gunicorn's sync workers."""
    return _gunicorn_run(tmp_path_factory.mktemp("sync"), "sync")


@pytest.fixture(scope="module")
def gunicorn_gthread_run(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The scenarios through gunicorn's gthread workers."""
    return _gunicorn_run(tmp_path_factory.mktemp("gthread"), "gthread")


SERVERS = [
    "test_client_run",
    "werkzeug_run",
    pytest.param("gunicorn_sync_run", marks=pytest.mark.integration),
    pytest.param("gunicorn_gthread_run", marks=pytest.mark.integration),
]


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_one_count_one_observation_one_access_line(
    server: str, scenario: str, request: pytest.FixtureRequest
) -> None:
    """However the request ends, it is counted, observed and logged exactly once."""
    served: Served = request.getfixturevalue(server)
    path, _ = SCENARIOS[scenario]
    counts = per_endpoint(served.metrics_text, N.requests_total)
    observations = per_endpoint(served.metrics_text, N.request_duration_count)
    lines = [line for line in served.access if line[c.LOG_ENDPOINT] == path]
    assert (1, 1, 1) == (counts.get(path), observations.get(path), len(lines))


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_access_line_and_histogram_share_status_and_duration(
    server: str, scenario: str, request: pytest.FixtureRequest
) -> None:
    """The access line's status and duration are the recorded ones (to the microsecond)."""
    served: Served = request.getfixturevalue(server)
    path, status = SCENARIOS[scenario]
    [line] = [line for line in served.access if line[c.LOG_ENDPOINT] == path]
    total = per_endpoint(served.metrics_text, N.request_duration_sum)[path]
    statuses = statuses_of(served.metrics_text, path)
    assert ({str(status)}, status) == (statuses, line[c.LOG_STATUS_CODE])
    assert abs(total - line[c.LOG_DURATION]) <= 1e-6


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_only_a_body_the_client_left_is_marked_aborted(
    server: str, scenario: str, request: pytest.FixtureRequest
) -> None:
    """A server that stops reading the body mid-stream (the client went away) gets
    ``client_aborted: true`` on the access line; a body sent whole, a failed view and a
    stream that broke do not. Werkzeug's test client closes the response first, without
    dropping the iteration: nothing tells a client gone from one that has read enough,
    so it is not marked."""
    served: Served = request.getfixturevalue(server)
    path, _ = SCENARIOS[scenario]
    [line] = [line for line in served.access if line[c.LOG_ENDPOINT] == path]
    left = scenario == "aborted-by-client" and server != "test_client_run"
    assert (left, left) == (c.LOG_CLIENT_ABORTED in line, line.get(c.LOG_CLIENT_ABORTED) is True)


@pytest.mark.parametrize("metrics_first", [True, False])
def test_both_extensions_install_one_lifecycle(metrics_first: bool) -> None:
    """Metrics and the access log on one app: one WSGI wrapper, one routing hook."""
    app = Flask("both")
    if metrics_first:
        Metrics(app, registry=CollectorRegistry())
    init_app(app)
    if not metrics_first:
        Metrics(app, registry=CollectorRegistry())
    life = app.extensions[lifecycle.EXTENSION_KEY]
    bases = [k for k in app.request_class.__mro__ if getattr(k, lifecycle.ROUTING_MARK, None)]
    assert (app.wsgi_app, 1, 2) == (life.__call__, len(bases), len(life.participants))
    assert not app.url_value_preprocessors  # the request class routes: no preprocessor
    reset_for_tests()


def test_each_extension_works_alone() -> None:
    """Metrics without logging counts; logging without Metrics writes its line."""
    out = io.StringIO()
    metrics_app = Flask("metrics_only")
    registry = CollectorRegistry()
    Metrics(metrics_app, registry=registry)
    metrics_app.get("/x")(lambda: "x")
    log_app = Flask("log_only")
    init_app(log_app)
    log_app.get("/y")(lambda: "y")
    configure_logging(stream=out)
    metrics_app.test_client().get("/x", buffered=True)
    log_app.test_client().get("/y", buffered=True)
    reset_for_tests()
    counts = per_endpoint(generate_latest(registry).decode(), N.requests_total)
    assert ({"/x": 1.0}, ["/y"]) == (counts, [e["endpoint"] for e in _access_lines(out.getvalue())])


def _served_and_dropped(name: str, metrics: Metrics, path: str) -> weakref.ref[Flask]:
    """An app with both extensions (``metrics`` made once, as a factory's module does)
    that served one request of ``path``: ``/boom`` fails, ``/handled`` logs a handled
    exception with its traceback; only a weak reference to the app is returned."""
    app = Flask(name)
    # Flask's "Exception on /boom" record holds the traceback, whose frames hold the
    # app: pytest's log capture would keep it alive until the test ends.
    app.logger.propagate = False
    metrics.init_app(app)
    init_app(app)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    @app.get("/handled")
    def handled() -> str:
        try:
            raise KeyError("gone")
        except KeyError:
            get_logger("handled").exception("answered from the fallback")
        return "fallback"

    app.test_client().get(path, buffered=True)
    return weakref.ref(app)


@pytest.mark.parametrize("path", ["/boom", "/handled"])
def test_a_dropped_app_is_freed_with_what_it_holds(path: str) -> None:
    """An app factory called per test (or per tenant) leaves no app behind once its app
    is dropped: nothing keeps an instrumented app alive but the last request's state,
    which its context keeps until its next request (a trial found every app, its config
    and its connections kept for good by the exception signal's receiver; a re-trial,
    every app of a row of failing requests, through the last one's traceback; so did a
    row of handled exceptions logged with theirs). The exception signal still reaches
    each app while it lives."""
    registry = CollectorRegistry()
    metrics = Metrics(registry=registry)
    configure_logging(stream=io.StringIO())  # the handled exception's line: a traceback
    # In a context of this test's own: the last state stays there (see lifecycle._CURRENT).
    context = contextvars.copy_context()
    apps = [context.run(_served_and_dropped, f"factory_{i}", metrics, path) for i in range(4)]
    gc.collect()
    reset_for_tests()
    text = generate_latest(registry).decode()
    assert ([None, None, None], {"/boom": 4.0} if path == "/boom" else {}) == (
        [ref() for ref in apps[:-1]],
        per_endpoint(text, N.request_exceptions_total),
    )


def test_server_file_wrapper_is_returned_as_is_with_both(tmp_path: Path) -> None:
    """send_file under both extensions: the server's own wrapper (sendfile) goes back."""
    from gunicorn.http.wsgi import FileWrapper  # noqa: PLC0415 (the server's own class)

    out = io.StringIO()
    registry = CollectorRegistry()
    app = create_app(stream=out, registry=registry)
    target = tmp_path / "f.txt"
    target.write_text("data")
    app.get("/file")(lambda: send_file(target))
    environ = EnvironBuilder(path="/file").get_environ()
    environ["wsgi.file_wrapper"] = FileWrapper
    body = app.wsgi_app(environ, lambda *_args: lambda _data: None)
    returned = type(body)
    body.close()  # type: ignore[attr-defined]
    reset_for_tests()
    counts = per_endpoint(generate_latest(registry).decode(), N.requests_total)
    assert (FileWrapper, {"/file": 1.0}) == (returned, counts)
    assert ["/file"] == [e["endpoint"] for e in _access_lines(out.getvalue())]


def test_a_failing_participant_does_not_cost_another_its_end() -> None:
    """A participant added first that raises at the end: the recorder still counts."""
    app = Flask("failing_end")
    lifecycle.install(app).add(FailingEnd())
    registry = CollectorRegistry()
    Metrics(app, registry=registry)
    app.get("/x")(lambda: "x")
    with pytest.raises(RuntimeError, match="end failed"):
        app.test_client().get("/x", buffered=True)
    assert {"/x": 1.0} == per_endpoint(generate_latest(registry).decode(), N.requests_total)


def test_a_stream_read_until_it_breaks_ends_without_a_close() -> None:
    """The test client's unbuffered response, read until the stream raises and never
    closed: the request still ends there (counted, out of flight, one access line)."""
    out = io.StringIO()
    registry = CollectorRegistry()
    try:
        client = create_app(stream=out, registry=registry).test_client()
        with pytest.raises(StreamBrokeError):
            client.get("/broken-stream").get_data()  # not closed
    finally:
        reset_for_tests()
    text = generate_latest(registry).decode()
    lines = [
        line for line in _access_lines(out.getvalue()) if line[c.LOG_ENDPOINT] == "/broken-stream"
    ]
    assert ({"/broken-stream": 1.0}, {"/broken-stream": 0.0}, 1) == (
        per_endpoint(text, N.requests_total),
        per_endpoint(text, N.requests_in_progress),
        len(lines),
    )
    assert {"/broken-stream": 1.0} == per_endpoint(text, N.request_exceptions_total)


def test_a_servers_module_imported_in_the_process_does_not_change_the_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uWSGI and a2wsgi keep the app's status of a stream failing before its first
    chunk; a process that imports them but serves through another server (the test
    client here) still records what that server answers, 500 (a suite that imported
    a2wsgi first read 200)."""
    import a2wsgi  # noqa: F401, PLC0415 - imported, not serving

    monkeypatch.setitem(sys.modules, "uwsgi", types.ModuleType("uwsgi"))
    out = io.StringIO()
    registry = CollectorRegistry()
    try:
        client = create_app(stream=out, registry=registry).test_client()
        with pytest.raises(StreamBrokeError):
            client.get("/stream-fails-first", buffered=True)
    finally:
        reset_for_tests()
    [line] = [x for x in _access_lines(out.getvalue()) if x[c.LOG_PATH] == "/stream-fails-first"]
    statuses = statuses_of(generate_latest(registry).decode(), "/stream-fails-first")
    assert ({"500"}, 500) == (statuses, line[c.LOG_STATUS_CODE])


def test_an_endpoint_of_two_rules_labels_each_request_with_the_rule_it_matched() -> None:
    """One view under two URL rules: each request counts under the rule it matched."""
    app = Flask("two_rules")
    registry = CollectorRegistry()
    Metrics(app, registry=registry)

    @app.get("/files/<int:file_id>")
    @app.get("/f/<int:file_id>")
    def show(file_id: int) -> str:
        return str(file_id)

    app.get("/one")(lambda: "one")
    client = app.test_client()
    for path in ("/files/1", "/f/2", "/f/3", "/one", "/one"):
        client.get(path, buffered=True)
    counts = per_endpoint(generate_latest(registry).decode(), N.requests_total)
    assert {"/files/<int:file_id>": 1.0, "/f/<int:file_id>": 2.0, "/one": 2.0} == counts


def test_an_instrumented_app_called_inside_another_keeps_both_labels() -> None:
    """App A's view serves a request of app B in process: each counts its own URL rule,
    and A's tracked calls after B's request ended still count for A's request."""
    outer, inner = Flask("outer"), Flask("inner")
    outer_registry, inner_registry = CollectorRegistry(), CollectorRegistry()
    metrics = Metrics(outer, registry=outer_registry)
    Metrics(inner, registry=inner_registry)

    @inner.get("/inner/<int:n>")
    def number(n: int) -> str:
        with metrics.track(c.DEPENDENCY_AI, "inner"):
            return str(n)

    inner_client = inner.test_client()

    @outer.get("/outer")
    def call_inner() -> str:
        with metrics.track(c.DEPENDENCY_DB, "before"):
            pass
        text = inner_client.get("/inner/7", buffered=True).get_data(as_text=True)
        with metrics.track(c.DEPENDENCY_DB, "after"):
            return text

    outer.test_client().get("/outer", buffered=True)
    outer_counts = per_endpoint(generate_latest(outer_registry).decode(), N.requests_total)
    inner_counts = per_endpoint(generate_latest(inner_registry).decode(), N.requests_total)
    assert ({"/outer": 1.0}, {"/inner/<int:n>": 1.0}) == (outer_counts, inner_counts)
    calls = {
        dependency: outer_registry.get_sample_value(
            f"{N.dependency_calls_per_request}_sum",
            {"endpoint": "/outer", "dependency": dependency},
        )
        for dependency in (c.DEPENDENCY_DB, c.DEPENDENCY_AI)
    }
    # The AI call was made in the inner app's request: its tally, not the outer's.
    assert {c.DEPENDENCY_DB: 2.0, c.DEPENDENCY_AI: None} == calls


class _FailingOnce(SecureCookieSessionInterface):
    """Flask opens the session before it routes: failing there leaves a request unrouted."""

    def __init__(self) -> None:
        self.failures = [RuntimeError("before routing")]

    def open_session(self, app: Flask, request: Request) -> Any:
        if self.failures:
            raise self.failures.pop()
        return super().open_session(app, request)


def test_a_dispatch_outside_the_lifecycle_changes_no_earlier_request() -> None:
    """A request that failed before routing, then a test request context dispatched by
    hand: the ended request is not routed afterwards (no in-flight slot taken forever)."""
    app = Flask("by_hand")
    registry = CollectorRegistry()
    Metrics(app, registry=registry)
    app.get("/x")(lambda: "x")
    app.session_interface = _FailingOnce()
    app.test_client().get("/x", buffered=True)  # fails opening the session: never routed
    with app.test_request_context("/x") as ctx:
        # Flask 3.2 passes the context explicitly; 3.0 and 3.1 take no argument.
        takes_ctx = bool(inspect.signature(app.preprocess_request).parameters)
        app.preprocess_request(*([ctx] if takes_ctx else []))
    text = generate_latest(registry).decode()
    in_progress = per_endpoint(text, N.requests_in_progress)
    assert {c.ENDPOINT_UNMATCHED: 1.0} == per_endpoint(text, N.requests_total)
    assert all(value == 0.0 for value in in_progress.values())


class _TeamRequest(Request):
    """An app's own request class, as a team's service may have."""

    team = "limoneide"


def _count_app(name: str, registry: CollectorRegistry) -> Flask:
    app = Flask(name)
    Metrics(app, registry=registry)

    @app.get("/p/<int:n>")
    def page(n: int) -> str:
        return f"{request.view_args}-{n}"

    return app


def _instrumented_with(request_class: type[Request]) -> tuple[Flask, CollectorRegistry]:
    """An app with ``request_class`` set before ``Metrics``, and the registry it counts in."""
    app = Flask(request_class.__name__)
    app.request_class = request_class
    registry = CollectorRegistry()
    Metrics(app, registry=registry)
    return app, registry


def test_an_app_request_class_set_before_install_is_kept_and_routes() -> None:
    """A team's request class set first: the lifecycle's class derives from it."""
    app, registry = _instrumented_with(_TeamRequest)

    @app.get("/p/<int:n>")
    def page(n: int) -> str:
        own = request._get_current_object()  # type: ignore[attr-defined]
        return f"{type(own).__name__} {own.team} {own.view_args}"

    body = app.test_client().get("/p/3", buffered=True).get_data(as_text=True)
    assert "_TeamRequest limoneide {'n': 3}" == body
    assert issubclass(app.request_class, _TeamRequest)
    assert {"/p/<int:n>": 1.0} == per_endpoint(generate_latest(registry).decode(), N.requests_total)


class _PropertyRequest(Request):
    """A request class with its own ``view_args`` property: it keeps what it is given in a
    list and shows the arguments with one added."""

    kept: list[dict[str, Any] | None]

    @property
    def view_args(self) -> dict[str, Any] | None:
        kept = self.__dict__.get("kept")
        return None if not kept or kept[-1] is None else {**kept[-1], "seen": True}

    @view_args.setter
    def view_args(self, value: dict[str, Any] | None) -> None:
        self.__dict__.setdefault("kept", []).append(value)


def test_an_app_request_class_with_its_own_view_args_property_keeps_it() -> None:
    """The app's own property still stores and reads the value; routing follows its setter."""
    app, registry = _instrumented_with(_PropertyRequest)

    @app.get("/p/<int:n>")
    def page(n: int, seen: bool) -> str:
        own = request._get_current_object()  # type: ignore[attr-defined]
        return f"{n} {seen} {own.kept}"

    client = app.test_client()
    body = client.get("/p/3", buffered=True).get_data(as_text=True)
    assert 404 == client.get("/nowhere", buffered=True).status_code
    assert "3 True [{'n': 3}]" == body
    assert {"/p/<int:n>": 1.0, c.ENDPOINT_UNMATCHED: 1.0} == per_endpoint(
        generate_latest(registry).decode(), N.requests_total
    )


def test_a_request_class_set_after_install_still_routes_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another request class set after Metrics(app): a URL value preprocessor takes over
    from the next request on, with one warning naming the class; counts stay right."""
    registry = CollectorRegistry()
    app = _count_app("late_request", registry)
    client = app.test_client()
    client.get("/p/1", buffered=True)
    app.request_class = _TeamRequest
    with caplog.at_level("WARNING", logger="limone_obs"):
        bodies = [client.get(path, buffered=True) for path in ("/p/2", "/p/3", "/nope")]
    warnings = [r.getMessage() for r in caplog.records if "request_class" in r.getMessage()]
    assert 1 == len(warnings), warnings
    assert "_TeamRequest" in warnings[0]
    assert [200, 200, 404] == [r.status_code for r in bodies]
    counts = per_endpoint(generate_latest(registry).decode(), N.requests_total)
    assert {"/p/<int:n>": 3.0, c.ENDPOINT_UNMATCHED: 1.0} == counts


def test_a_subclass_of_the_routing_class_set_after_install_needs_no_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A class derived from the app's (routing) request class keeps the hook: no warning."""
    registry = CollectorRegistry()
    app = _count_app("derived_request", registry)
    app.request_class = type("Derived", (app.request_class,), {})
    with caplog.at_level("WARNING", logger="limone_obs"):
        app.test_client().get("/p/4", buffered=True)
    assert not [r for r in caplog.records if "request_class" in r.getMessage()]
    assert not app.url_value_preprocessors
    counts = per_endpoint(generate_latest(registry).decode(), N.requests_total)
    assert {"/p/<int:n>": 1.0} == counts


def test_a_copied_request_context_routes_once() -> None:
    """``copy_current_request_context`` matches the URL again: the request counts once and
    its in-flight slot is freed once."""
    registry = CollectorRegistry()
    app = Flask("copied")
    Metrics(app, registry=registry)

    @app.get("/copy")
    def copy() -> str:
        @copy_current_request_context
        def again() -> str:
            return str(request.view_args)

        return again()

    assert "{}" == app.test_client().get("/copy", buffered=True).get_data(as_text=True)
    text = generate_latest(registry).decode()
    assert {"/copy": 1.0} == per_endpoint(text, N.requests_total)
    assert {"/copy": 0.0} == per_endpoint(text, N.requests_in_progress)


def _ignore_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
    """A server's ``start_response`` that sends nothing (the test reads the body)."""
    del status, headers, exc_info


def _closes_counted(app: Flask) -> list[str]:
    """Add ``/plain`` (a Content-Length body) to ``app``; each close of its response
    appends "closed" to the list returned."""
    closes: list[str] = []

    @app.get("/plain")
    def plain() -> Any:
        response = app.make_response("plain body")
        response.call_on_close(lambda: closes.append("closed"))
        return response

    return closes


@pytest.mark.parametrize("then_close", [False, True], ids=["never-closed", "closed-after"])
def test_a_server_that_drops_the_iteration_ends_the_request_and_closes_once(
    then_close: bool,
) -> None:
    """A server that stops iterating once it has the Content-Length bytes and drops the
    iterator (asgiref's WsgiToAsgi, which never calls close()): the request is counted,
    out of flight and logged when the iteration is dropped, and the response is closed
    once, also when the server does call close() afterwards."""
    out = io.StringIO()
    registry = CollectorRegistry()
    try:
        app = create_app(stream=out, registry=registry)
        closes = _closes_counted(app)
        environ = EnvironBuilder(path="/plain").get_environ()
        body = app(environ, _ignore_start_response)
        for chunk in body:  # as asgiref: stop at Content-Length, drop the iterator
            assert b"plain body" == chunk
            break
        text = generate_latest(registry).decode()
        if then_close:
            body.close()  # type: ignore[attr-defined]
    finally:
        reset_for_tests()
    lines = [line for line in _access_lines(out.getvalue()) if line[c.LOG_ENDPOINT] == "/plain"]
    assert ({"/plain": 1.0}, {"/plain": 0.0}, 1, ["closed"]) == (
        per_endpoint(text, N.requests_total),
        per_endpoint(text, N.requests_in_progress),
        len(lines),
        closes,
    )


@pytest.mark.parametrize(
    ("headers", "length"),
    [([("Content-Type", "text/plain"), ("content-length", "12")], 12),
     ([("Content-Length", "twelve")], float("inf")), ([], float("inf")),
     (None, float("inf")), ([("Content-Length",)], float("inf"))],
    ids=["set", "not-a-number", "none-set", "no-headers", "odd-shape"],
)  # fmt: skip
def test_content_length_of_odd_headers_is_none_and_never_raises(
    headers: Any, length: float
) -> None:
    """The length read when a server stops reading a body early (is it all sent?): any
    header list a middleware may have passed counts as no length rather than raising
    where the request must still end."""
    assert length == lifecycle._content_length(headers)


@pytest.mark.parametrize(
    ("status", "recorded"),
    [(99, "500"), (600, "500"), (1000, "500"), (12345, "500"), ("42 odd", "500"),
     ("2x0 odd", "500"), (599, "599"), (100, "100"), (204, "204")],
)  # fmt: skip
def test_a_status_outside_http_is_recorded_as_500_with_a_warning(
    status: int | str, recorded: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An app answering a status HTTP has no room for (Werkzeug takes any integer) is
    counted and logged as 500, the same in both, with a warning naming it; its first three
    characters (``1000`` read as ``100``, ``99 `` with its space) are never a label."""
    out = io.StringIO()
    registry = CollectorRegistry()
    app = create_app(stream=out, registry=registry)
    app.add_url_rule("/odd", "odd", lambda: Response("x", status=status))
    lifecycle._invalid_said.clear()
    try:
        with caplog.at_level("WARNING", logger="limone_obs"):
            app.test_client().get("/odd")
            app.test_client().get("/odd")
    finally:
        reset_for_tests()
    lines = [line for line in _access_lines(out.getvalue()) if line[c.LOG_ENDPOINT] == "/odd"]
    warned = [r.getMessage() for r in caplog.records if "not a code from 100" in r.getMessage()]
    assert ({recorded}, [int(recorded)] * 2) == (
        statuses_of(generate_latest(registry).decode(), "/odd"),
        [line[c.LOG_STATUS_CODE] for line in lines],
    )
    assert ([f"{Response('', status=status).status!r}"] if recorded == "500" else []) == [
        m.split("HTTP status ")[1].split(", not")[0] for m in warned
    ]


@pytest.mark.parametrize(
    ("status", "recorded"),
    [("204", "204"), ("204\tNo Content", "204"), ("404  Not Found", "404"), ("2040", "500"),
     ("204x", "500"), ("", "500"), ("20", "500")],
)  # fmt: skip
def test_a_code_without_its_reason_is_that_code(status: str, recorded: str) -> None:
    """A status written by WSGI middleware rather than Werkzeug: a code alone or before
    other white space is that code (gunicorn sends it as it is: a 204 recorded as 500
    would burn the error budget); anything else is 500."""
    assert recorded == lifecycle._odd_status(status)


def test_busy_spans_merge_what_overlaps_and_settle_past_the_cap() -> None:
    """The request's busy time counts overlapping spans once, also when a span ends
    before the last one added (threads end in any order); past MAX_BUSY_SPANS the
    oldest half is settled into one sum, and the total stays exact."""
    state = object.__new__(lifecycle.RequestState)
    for start, end in [(0.0, 1.0), (0.5, 2.0), (3.0, 4.0), (2.5, 3.5), (10.0, 11.0), (9.0, 12.0)]:
        lifecycle._add_span(state, start, end)
    # [0, 2] + [2.5, 4] + [9, 12]
    assert [0.0, 2.0, 2.5, 4.0, 9.0, 12.0] == state.busy[3:]
    assert 6.5 == lifecycle.busy_seconds(state.busy)
    many = object.__new__(lifecycle.RequestState)
    spans = 3 * lifecycle.MAX_BUSY_SPANS
    for i in range(spans):  # disjoint one-second spans, 1 s apart (a stream's items)
        lifecycle._add_span(many, 2.0 * i, 2.0 * i + 1)
    assert len(many.busy) <= 2 * lifecycle.MAX_BUSY_SPANS + 3
    assert spans == lifecycle.busy_seconds(many.busy)
    # A call around them all (the block the stream ran in), added last: it covers every
    # span, the settled ones too, once.
    lifecycle._add_span(many, -1.0, 2.0 * spans)
    assert 2.0 * spans + 1 == lifecycle.busy_seconds(many.busy)
    # One reaching back into the settled time only in part: never more than the time.
    part = object.__new__(lifecycle.RequestState)
    for i in range(spans):
        lifecycle._add_span(part, 2.0 * i, 2.0 * i + 1)
    lifecycle._add_span(part, 100.0, 2.0 * spans)
    assert spans <= lifecycle.busy_seconds(part.busy) <= 2.0 * spans


@pytest.mark.parametrize(
    "server", ["werkzeug", pytest.param("gunicorn", marks=pytest.mark.integration)]
)
def test_a_body_whose_close_fails_reaches_the_client_whole(server: str, tmp_path: Path) -> None:
    """A streamed (chunked) body whose close() raises (a call_on_close callback): the
    client gets the whole answer, as without the kit (the kit's close() inside the
    iteration raised before the server's last chunk: the client read a cut body); the
    request is counted once with its status and its exception, and its access line has
    the exception."""
    if server == "werkzeug":
        out = io.StringIO()
        registry = CollectorRegistry()
        app = create_app(stream=out, registry=registry)
        with serve(app, quiet=True) as base:
            answer = requests.get(base + "/close-fails", timeout=10)
            wait_until(lambda: '"/close-fails"' in out.getvalue(), "the access line", DEADLINE)
        reset_for_tests()
        text, log = generate_latest(registry).decode(), out.getvalue()
    else:
        env = {"GUNICORN_WORKERS": "1", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
        (tmp_path / "prom").mkdir()
        with gunicorn_server("tests.lifecycle_app:create_app()", tmp_path, env,
                             ready_path="/ready") as (base, _):  # fmt: skip
            answer = requests.get(base + "/close-fails", timeout=10)
            text = requests.get(base + "/metrics", timeout=10).text
            log = (tmp_path / "gunicorn.log").read_text(encoding="utf-8")
    assert (200, "whole answer") == (answer.status_code, answer.text)
    assert 1 == per_endpoint(text, N.requests_total).get("/close-fails")
    [line] = [e for e in _access_lines(log) if e[c.LOG_ENDPOINT] == "/close-fails"]
    assert ("error", 200) == (line["level"], line["status_code"])
    assert "CloseFailedError" == line["exception"]["type"]
