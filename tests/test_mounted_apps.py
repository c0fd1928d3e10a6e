"""Apps mounted in one another (``DispatcherMiddleware``) and apps behind a path prefix.

A request the outer app's WSGI stack hands to a mounted, instrumented app is recorded
once, by the app that routed it: one count under its URL rule, one access line, one
queue time. A mount without the kit inside the outer app's wrapper is recorded as
unmatched, with a warning once. The access lines' ``path`` carries the app's mount point
(``SCRIPT_NAME``). Under gunicorn (``tests/mounted_app.py``) and on a threaded
single-process server the workers serve both apps: each namespace's busy workers count
both apps' requests.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, request, stream_with_context
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from limone_obs import Metrics, lifecycle
from limone_obs import conventions as c
from limone_obs.context import submit
from limone_obs.exporter import workers
from limone_obs.logging import bind, configure_logging, get_context, init_app
from limone_obs.logging.gunicorn import access_fields
from limone_obs.logging.setup import reset_for_tests
from tests.support import FailingEnd, gunicorn_server, per_endpoint, serve, wait_until

N = c.MetricNames()


@pytest.fixture
def out() -> Iterator[io.BytesIO]:
    """The JSON lines of the test, then the logging setup as it was."""
    stream = io.BytesIO()
    configure_logging(stream=stream)
    yield stream
    reset_for_tests()


def _app(name: str, rule: str) -> Flask:
    app = Flask(name)

    @app.get(rule)
    def view(**_args: Any) -> str:
        return name

    return app


def _access(out: io.BytesIO) -> list[tuple[str, str, int]]:
    """(path, endpoint, status) of every access line written so far."""
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith(b"{")]
    return [
        (e["path"], e["endpoint"], e["status_code"])
        for e in lines
        if e.get("logger") == c.ACCESS_LOGGER
    ]


def _in_flight(registry: CollectorRegistry, names: c.MetricNames) -> float:
    text = generate_latest(registry).decode()
    return sum(per_endpoint(text, names.requests_in_progress).values())


def _mounted_inside(shared: bool) -> tuple[Flask, CollectorRegistry, CollectorRegistry]:
    """notes (outer) with admin mounted at /admin inside notes' kit wrapper (the
    dispatcher applied before the kit), both instrumented; one Metrics or one each."""
    notes, admin = _app("notes", "/search"), _app("admin", "/users/<int:n>")
    notes.wsgi_app = DispatcherMiddleware(notes.wsgi_app, {"/admin": admin})  # type: ignore[method-assign]
    outer, inner = CollectorRegistry(), CollectorRegistry()
    if shared:
        metrics = Metrics(registry=outer)
        metrics.init_app(notes)
        metrics.init_app(admin)
        inner = outer
    else:
        Metrics(notes, registry=outer)
        Metrics(admin, registry=inner, namespace="admin")
    init_app(notes)
    init_app(admin)
    return notes, outer, inner


def test_the_readmes_mount_records_each_apps_requests_in_its_namespace(out: io.BytesIO) -> None:
    """The README's shape: one Metrics and init_app per app, the dispatcher applied after
    the kit. Each app counts its own requests in its namespace, serves them on its own
    metrics path (single process) and writes their access lines with the mount's path."""
    notes, admin = _app("notes", "/search"), _app("admin", "/users/<int:n>")
    Metrics(notes, registry=CollectorRegistry())
    Metrics(admin, registry=CollectorRegistry(), namespace="admin")
    init_app(notes)
    init_app(admin)
    notes.wsgi_app = DispatcherMiddleware(notes.wsgi_app, {"/admin": admin})  # type: ignore[method-assign]
    client = notes.test_client()
    for path in ("/search", "/admin/users/1", "/admin/users/2", "/admin/nowhere"):
        client.get(path, buffered=True)
    admin_names = c.MetricNames("admin")
    notes_text = client.get("/metrics").text
    admin_text = client.get("/admin/metrics").text
    assert {"/search": 1.0} == per_endpoint(notes_text, N.requests_total)
    assert "admin_" not in notes_text
    admin_counts = per_endpoint(admin_text, admin_names.requests_total)
    assert {"/users/<int:n>": 2.0, c.ENDPOINT_UNMATCHED: 1.0} == admin_counts
    assert [
        ("/search", "/search", 200),
        ("/admin/users/1", "/users/<int:n>", 200),
        ("/admin/users/2", "/users/<int:n>", 200),
        ("/admin/nowhere", c.ENDPOINT_UNMATCHED, 404),
    ] == _access(out)


@pytest.mark.parametrize("shared", [True, False], ids=["one-metrics", "metrics-each"])
def test_a_mounted_instrumented_app_records_its_requests_once(
    out: io.BytesIO, shared: bool
) -> None:
    """Each request is counted once, by the app that routed it, under its URL rule, and
    has one access line with the full path; nothing stays in flight."""
    notes, outer, inner = _mounted_inside(shared)
    client = notes.test_client()
    statuses = [
        client.get(path, buffered=True).status_code
        for path in ("/admin/users/1", "/admin/users/2", "/search", "/admin/nope")
    ]
    assert [200, 200, 200, 404] == statuses
    names = N if shared else c.MetricNames("admin")
    admin_counts = per_endpoint(generate_latest(inner).decode(), names.requests_total)
    notes_counts = per_endpoint(generate_latest(outer).decode(), N.requests_total)
    if shared:
        expected = {"/users/<int:n>": 2.0, "/search": 1.0, c.ENDPOINT_UNMATCHED: 1.0}
        assert expected == admin_counts
    else:
        assert {"/users/<int:n>": 2.0, c.ENDPOINT_UNMATCHED: 1.0} == admin_counts
        assert {"/search": 1.0} == notes_counts
    assert (0.0, 0.0) == (_in_flight(outer, N), _in_flight(inner, names))
    assert [
        ("/admin/users/1", "/users/<int:n>", 200),
        ("/admin/users/2", "/users/<int:n>", 200),
        ("/search", "/search", 200),
        ("/admin/nope", c.ENDPOINT_UNMATCHED, 404),
    ] == _access(out)


@pytest.mark.parametrize("shared", [True, False], ids=["one-metrics", "metrics-each"])
def test_the_queue_time_of_a_mounted_apps_request_is_observed_once(shared: bool) -> None:
    """The server's wait (X-Request-Start) is one per request, by the outermost app."""
    notes, outer, inner = _mounted_inside(shared)
    client = notes.test_client()
    for path in ("/admin/users/1", "/admin/users/2", "/search"):
        headers = {c.QUEUE_START_HEADER: f"t={time.time() - 0.004:.3f}"}
        assert 200 == client.get(path, headers=headers, buffered=True).status_code
    registries = [outer] if shared else [outer, inner]
    names = [N] if shared else [N, c.MetricNames("admin")]
    observed = sum(
        sample.value
        for registry, name in zip(registries, names, strict=True)
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
        if sample.name == name.request_queue_count
    )
    assert 3.0 == observed


def test_the_mounted_apps_request_id_is_the_one_echoed_and_logged(out: io.BytesIO) -> None:
    """One request, one id: the response header and the access line agree."""
    notes, _, _ = _mounted_inside(shared=True)
    response = notes.test_client().get("/admin/users/7", buffered=True)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    (line,) = [e for e in lines if e.get("logger") == c.ACCESS_LOGGER]
    assert response.headers[c.REQUEST_ID_HEADER] == line["request_id"]


def test_a_mounted_apps_metrics_path_is_recorded_by_neither_app(
    out: io.BytesIO, caplog: pytest.LogCaptureFixture
) -> None:
    """A scrape of the mounted app's metrics path through the outer app's wrapper: the
    mounted app serves its series and records nothing (as for its own metrics path), and
    the outer app neither counts it as unmatched (nor as a request of its calls-per-
    request series) nor warns that it did not route it."""
    notes, admin = _app("notes", "/search"), _app("admin", "/users/<int:n>")
    notes.wsgi_app = DispatcherMiddleware(notes.wsgi_app, {"/admin": admin})  # type: ignore[method-assign]
    outer, inner = CollectorRegistry(), CollectorRegistry()
    metrics = Metrics(notes, registry=outer)
    Metrics(admin, registry=inner, namespace="admin")
    init_app(notes)
    init_app(admin)

    @notes.before_request
    def load_session() -> None:  # a dependency call on every request, 404s included
        with metrics.track(c.DEPENDENCY_DB, "session"):
            pass

    client = notes.test_client()
    with caplog.at_level(logging.WARNING, logger="limone_obs"):
        client.get("/nowhere", buffered=True)
        scraped = [client.get("/admin/metrics", buffered=True).text for _ in range(2)]
    assert all(c.MetricNames("admin").requests_total in text for text in scraped)
    notes_text = generate_latest(outer).decode()
    assert {c.ENDPOINT_UNMATCHED: 1.0} == per_endpoint(notes_text, N.requests_total)
    per_request = per_endpoint(notes_text, N.dependency_calls_per_request_count)
    assert {c.ENDPOINT_UNMATCHED: 1.0} == per_request
    admin_text = generate_latest(inner).decode()
    assert {} == per_endpoint(admin_text, c.MetricNames("admin").requests_total)
    assert [] == [r.getMessage() for r in caplog.records if "did not route" in r.getMessage()]
    assert [("/nowhere", c.ENDPOINT_UNMATCHED, 404)] == _access(out)
    assert 0.0 == _in_flight(outer, N)


def test_a_mount_without_the_kit_is_unmatched_and_said_once(
    out: io.BytesIO, caplog: pytest.LogCaptureFixture
) -> None:
    """The outer app records what a bare mounted app answered as unmatched with the real
    status, and says once which app, request and what to do."""
    notes, bare = _app("notes", "/search"), _app("bare_admin", "/users/<int:n>")
    notes.wsgi_app = DispatcherMiddleware(notes.wsgi_app, {"/admin": bare})  # type: ignore[method-assign]
    registry = CollectorRegistry()
    Metrics(notes, registry=registry)
    init_app(notes)
    client = notes.test_client()
    with caplog.at_level("WARNING", logger="limone_obs"):
        for path in ("/admin/users/1", "/admin/users/2", "/search"):
            assert 200 == client.get(path, buffered=True).status_code
    said = [r.getMessage() for r in caplog.records if "did not route" in r.getMessage()]
    assert 1 == len(said), said
    assert all(part in said[0] for part in ("'notes'", "'/admin/users/1'", "DispatcherMiddleware"))
    counts = per_endpoint(generate_latest(registry).decode(), N.requests_total)
    assert {c.ENDPOINT_UNMATCHED: 2.0, "/search": 1.0} == counts
    assert ("/admin/users/1", c.ENDPOINT_UNMATCHED, 200) == _access(out)[0]


def test_a_view_serving_its_environ_to_another_app_is_recorded_too(out: io.BytesIO) -> None:
    """A routed request whose view hands its own environ to another instrumented app
    (an internal proxy) is the view's request: both apps record theirs."""
    registry = CollectorRegistry()
    metrics = Metrics(registry=registry)
    inner = _app("inner", "/data")
    outer = Flask("outer")

    @outer.get("/proxy")
    def proxy() -> bytes:
        environ = dict(request.environ, PATH_INFO="/data")
        environ[lifecycle.STATE_KEY] = request.environ[lifecycle.STATE_KEY]
        body = inner.wsgi_app(environ, lambda *_args: lambda _data: None)
        try:
            return b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()

    for app in (outer, inner):
        metrics.init_app(app)
        init_app(app)
    assert b"inner" == outer.test_client().get("/proxy", buffered=True).data
    counts = per_endpoint(generate_latest(registry).decode(), N.requests_total)
    assert {"/proxy": 1.0, "/data": 1.0} == counts
    assert {("/proxy", "/proxy", 200), ("/data", "/data", 200)} == set(_access(out))


def test_a_view_serving_its_own_environ_keeps_its_request(out: io.BytesIO) -> None:
    """A view that serves its very environ to another instrumented app
    (``Response.from_app(legacy, request.environ)``) and then goes on: its dependency
    calls, its bound fields and its exception after that call stay its own request's,
    and legacy's line has the view's request id. An unbuffered answer the view drops
    (never closed) is legacy's request all the same, ended with the view's."""
    registry = CollectorRegistry()
    metrics = Metrics(registry=registry)
    legacy = _app("legacy", "/old/<path:page>")
    outer = Flask("outer")

    @outer.get("/old/<path:rest>")
    def forward(rest: str) -> Response | str:
        # Unbuffered: legacy's request ends once its body is sent, or, dropped (the
        # exception's traceback keeps it alive), with the view's request.
        answer = Response.from_app(legacy, request.environ)
        with metrics.track(c.DEPENDENCY_AI, "complete"):
            pass
        bind(after_legacy=rest)
        if rest == "boom":
            raise RuntimeError("after the legacy answer")
        return "fallback" if rest == "gone" else answer

    for app in (outer, legacy):
        metrics.init_app(app)
        init_app(app)
    client = outer.test_client()
    assert b"legacy" == client.get("/old/page", buffered=True).data
    assert 500 == client.get("/old/boom", buffered=True).status_code
    assert b"fallback" == client.get("/old/gone", buffered=True).data
    text = generate_latest(registry).decode()
    calls = [
        s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == N.dependency_calls_per_request_count
    ]
    # The view's three requests, each with its one call (none of legacy's).
    assert [("/old/<path:rest>", 3.0)] == [(s.labels["endpoint"], s.value) for s in calls]
    counts = per_endpoint(text, N.requests_total)
    assert {"/old/<path:rest>": 3.0, "/old/<path:page>": 3.0} == counts
    failed = [
        s.labels
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == N.request_exceptions_total and s.value
    ]
    assert [("/old/<path:rest>", "RuntimeError")] == [
        (e["endpoint"], e["exception"]) for e in failed
    ]
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    access = [e for e in lines if e.get("logger") == c.ACCESS_LOGGER]
    assert 6 == len(access)  # legacy's three and outer's three
    by_outer = [e for e in access if e["endpoint"] == "/old/<path:rest>"]
    assert ["page", "boom", "gone"] == [e.get("after_legacy") for e in by_outer]
    assert not any("after_legacy" in e for e in access if e not in by_outer)
    # One client request, one id: the view's line and legacy's line share it.
    ids = [e["request_id"] for e in by_outer]
    assert sorted(ids * 2) == sorted(e["request_id"] for e in access)
    assert 3 == len(set(ids))
    assert "RuntimeError" in json.dumps(by_outer[1].get("exception"))
    assert 0.0 == _in_flight(registry, N)


def _by_endpoint(registry: CollectorRegistry, name: str) -> dict[str, float]:
    """``name``'s samples of ``registry`` summed by their endpoint label."""
    return per_endpoint(generate_latest(registry).decode(), name)


def _lines(out: io.BytesIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_dropped_nested_answer_ends_within_its_views_request(out: io.BytesIO) -> None:
    """A view that keeps legacy's unbuffered answer and fails: legacy's request (its close
    included, 50 ms here) ends with the view's, whose duration holds it."""
    metrics = Metrics(registry=CollectorRegistry())
    legacy, outer = Flask("legacy"), Flask("outer")

    @legacy.get("/<path:rest>")
    def answer(rest: str) -> Response:
        response = Response(rest)
        response.call_on_close(lambda: time.sleep(0.05))
        return response

    @outer.get("/keep/<path:rest>")
    def keep(rest: str) -> str:
        kept = Response.from_app(legacy, request.environ)
        raise RuntimeError(f"after {kept.status}")

    for app in (outer, legacy):
        metrics.init_app(app)
        init_app(app)
    assert 500 == outer.test_client().get("/keep/x", buffered=True).status_code
    access = {e["endpoint"]: e for e in _lines(out) if e["logger"] == c.ACCESS_LOGGER}
    assert access["/<path:rest>"]["duration"] >= 0.05
    assert access["/keep/<path:rest>"]["duration"] >= access["/<path:rest>"]["duration"]


def test_a_forwarded_streamed_body_is_made_as_its_own_request(out: io.BytesIO) -> None:
    """legacy answers with a generator the view forwards unbuffered: what the generator
    does while the view's response is sent (a dependency call, a log line, ``bind``,
    after serving a third app) and what its close does are legacy's request's, and the
    view's lines stay its own."""
    registry = CollectorRegistry()
    metrics = Metrics(registry=registry)
    legacy, outer = Flask("legacy"), Flask("outer")

    third = _app("third", "/t")

    @legacy.get("/answer")
    def answer() -> Response:
        environ = dict(request.environ, PATH_INFO="/t")

        def chunks() -> Iterator[str]:
            yield "a"
            # Another app served from the generator: the context goes back to legacy's.
            Response.from_app(third, environ, buffered=True)
            with metrics.track(c.DEPENDENCY_AI, "stream"):
                pass
            bind(streamed="yes")
            logging.getLogger("legacy").warning("streaming")
            yield "b"

        def cleanup() -> None:
            with metrics.track(c.DEPENDENCY_DB, "cleanup"):
                pass
            logging.getLogger("legacy").warning("closed")

        response = Response(chunks())
        response.call_on_close(cleanup)
        return response

    @outer.get("/<path:rest>")
    def forward(rest: str) -> Response:
        return Response.from_app(legacy, request.environ)

    for app in (outer, legacy, third):
        metrics.init_app(app)
        init_app(app)
    assert b"ab" == outer.test_client().get("/answer", buffered=True).data
    calls = _by_endpoint(registry, N.dependency_calls_per_request_sum)
    assert {"/answer": 2.0} == calls  # the stream's AI call and the close's DB call
    lines = {(e["logger"], e["endpoint"], e["message"]): e for e in _lines(out)}
    assert {
        ("legacy", "/answer", "streaming"),
        ("legacy", "/answer", "closed"),
        (c.ACCESS_LOGGER, "/t", "request finished"),
        (c.ACCESS_LOGGER, "/answer", "request finished"),
        (c.ACCESS_LOGGER, "/<path:rest>", "request finished"),
    } == set(lines)
    access = {
        endpoint: e for (logger, endpoint, _), e in lines.items() if logger == c.ACCESS_LOGGER
    }
    assert "yes" == access["/answer"].get("streamed")
    assert "streamed" not in access["/<path:rest>"]


def _caller_and_other() -> tuple[CollectorRegistry, Metrics, Flask, Flask]:
    """A registry, a ``Metrics`` on it, app ``other`` answering ``/x``, and an empty
    app ``outer`` whose views call it (init_app them once their routes are added)."""
    registry = CollectorRegistry()
    return registry, Metrics(registry=registry), _app("other", "/x"), Flask("outer")


@pytest.mark.parametrize("answer", ["buffered", "read", "kept", "failing"])
def test_a_view_calling_another_app_with_a_fresh_environ_keeps_its_request(
    out: io.BytesIO, answer: str
) -> None:
    """A view that calls another instrumented app through that app's test client (an
    environ of its own) and then goes on: its dependency call, ``bind`` and log line are
    its own request's, whether the answer was buffered, read after them, kept unread
    past the view, or held by a view that then fails; an answer never read is the other
    app's request all the same, ended with the view's (counted once, nothing left in
    flight)."""
    registry, metrics, other, outer = _caller_and_other()
    kept: list[Any] = []  # answers that outlive the view's request, never read nor closed

    @outer.get("/v")
    def view() -> str:
        bind(before="1")
        response = other.test_client().get("/x", buffered=answer == "buffered")
        with metrics.track(c.DEPENDENCY_DB, "select"):
            pass
        bind(after="1")
        logging.getLogger("outer").warning("after the call")
        if answer == "read":
            assert b"other" == response.data
        elif answer == "kept":
            kept.append(response)  # alive after the view: only the view's end closes it
        elif answer == "failing":
            raise RuntimeError(f"after {response.status}")  # the traceback holds it
        return "v"

    for app in (outer, other):
        metrics.init_app(app)
        init_app(app)
    status = outer.test_client().get("/v", buffered=True).status_code
    assert (500 if answer == "failing" else 200) == status
    assert {"/v": 1.0} == _by_endpoint(registry, N.dependency_calls_per_request_sum)
    assert {"/v": 1.0, "/x": 1.0} == _by_endpoint(registry, N.requests_total)
    assert 0.0 == _in_flight(registry, N)
    lines = _lines(out)
    access = {e["endpoint"]: e for e in lines if e["logger"] == c.ACCESS_LOGGER}
    assert ("1", "1") == (access["/v"].get("before"), access["/v"].get("after"))
    assert 200 == access["/x"]["status_code"]
    assert "after" not in access["/x"]
    assert access["/x"]["request_id"] != access["/v"]["request_id"]  # an environ of its own
    (after,) = [e for e in lines if e["message"] == "after the call"]
    assert (access["/v"]["request_id"], "/v") == (after["request_id"], after["endpoint"])


@pytest.mark.parametrize("answer", ["read", "kept"])
def test_a_plain_generator_body_calling_another_app_keeps_its_request(
    out: io.BytesIO, answer: str
) -> None:
    """A streamed body without ``stream_with_context`` (no Flask request context) that
    calls another app through its test client: what the body does next is its own
    request's, and an answer it keeps unread past its end is ended with it; once both
    ended, nothing of either is left in the context (a sync worker's next lines, e.g.
    gunicorn's access line, would carry it)."""
    registry, metrics, other, outer = _caller_and_other()
    kept: list[Any] = []

    @outer.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[bytes]:
            yield b"a"
            response = other.test_client().get("/x")
            with metrics.track(c.DEPENDENCY_DB, "select"):
                pass
            logging.getLogger("outer").warning("after the call")
            if answer == "read":
                yield response.data
            else:
                kept.append(response)

        return Response(chunks())

    for app in (outer, other):
        metrics.init_app(app)
        init_app(app)
    data = outer.test_client().get("/stream", buffered=True).data
    assert (b"aother" if answer == "read" else b"a") == data
    assert {"/stream": 1.0} == _by_endpoint(registry, N.dependency_calls_per_request_sum)
    assert {"/stream": 1.0, "/x": 1.0} == _by_endpoint(registry, N.requests_total)
    assert 0.0 == _in_flight(registry, N)
    lines = _lines(out)
    access = {e["endpoint"]: e for e in lines if e["logger"] == c.ACCESS_LOGGER}
    (after,) = [e for e in lines if e["message"] == "after the call"]
    assert access["/stream"]["request_id"] == after.get("request_id")
    assert {} == get_context()


def test_a_stream_calling_another_app_keeps_only_the_open_answers(out: io.BytesIO) -> None:
    """A streamed body (``stream_with_context``) that calls another app on every chunk and
    reads each answer: the view's request keeps no ended answer (a long stream would
    hold every one of them until it ends), and each call is counted once."""
    registry, metrics, other, outer = _caller_and_other()
    held: list[int] = []

    @outer.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[bytes]:
            own = lifecycle.this_request()
            for _ in range(20):
                data = other.test_client().get("/x").data
                held.append(len(own.nested or ()) if own is not None else -1)
                yield data

        return Response(stream_with_context(chunks()))

    for app in (outer, other):
        metrics.init_app(app)
        init_app(app)
    assert b"other" * 20 == outer.test_client().get("/stream", buffered=True).data
    assert [1] * 20 == held  # the answer just read, no earlier one
    assert {"/stream": 1.0, "/x": 20.0} == _by_endpoint(registry, N.requests_total)
    assert 0.0 == _in_flight(registry, N)


def test_an_answer_a_thread_reads_past_the_view_is_left_to_it(out: io.BytesIO) -> None:
    """A thread in a copy of the view's context (``submit``) calls another app and is
    still reading its streamed answer when the view's request ends: that answer is not
    cut there; it ends when the thread has read it, with its own duration and the
    dependency call its body makes after the view's end."""
    registry = CollectorRegistry()
    metrics = Metrics(registry=registry)
    other, outer = Flask("other"), Flask("outer")
    waiting, go_on = threading.Event(), threading.Event()

    @other.get("/slow")
    def slow() -> Response:
        def chunks() -> Iterator[bytes]:
            yield b"a"
            waiting.set()  # the thread is making this answer's next chunk
            assert go_on.wait(10)
            with metrics.track(c.DEPENDENCY_AI, "complete"):
                pass
            yield b"b"

        return Response(chunks())

    def read() -> bytes:
        data: bytes = other.test_client().get("/slow").data
        return data

    pool = ThreadPoolExecutor(1)
    futures: list[Future[bytes]] = []

    @outer.get("/v")
    def view() -> str:
        futures.append(submit(pool, read))
        assert waiting.wait(10)
        return "v"

    for app in (outer, other):
        metrics.init_app(app)
        init_app(app)
    try:
        assert b"v" == outer.test_client().get("/v", buffered=True).data
        time.sleep(0.05)  # the answer's request lasts past the view's end
        go_on.set()
        assert b"ab" == futures[0].result(10)
    finally:
        go_on.set()
        pool.shutdown(wait=True)
    assert {"/slow": 1.0} == _by_endpoint(registry, N.dependency_calls_per_request_sum)
    assert {"/v": 1.0, "/slow": 1.0} == _by_endpoint(registry, N.requests_total)
    access = {e["endpoint"]: e for e in _lines(out) if e["logger"] == c.ACCESS_LOGGER}
    assert access["/slow"]["duration"] >= 0.05  # not cut at the view's end


def test_a_nested_request_whose_end_fails_still_gives_the_request_back(
    out: io.BytesIO,
) -> None:
    """The other app's view raises and one of its participants fails at the end: the
    view that served it its environ gets its request back all the same (its dependency
    call and ``bind`` after the call are its own)."""
    registry = CollectorRegistry()
    metrics = Metrics(registry=registry)
    other, outer = Flask("other"), Flask("outer")
    lifecycle.install(other).add(FailingEnd())

    @other.get("/<path:rest>")
    def fails(rest: str) -> str:
        raise ValueError(rest)

    @outer.get("/call/<path:rest>")
    def view(rest: str) -> str:
        with contextlib.suppress(RuntimeError):
            other.wsgi_app(request.environ, lambda *_args: lambda _data: None)
        with metrics.track(c.DEPENDENCY_DB, "select"):
            pass
        bind(after="1")
        return "v"

    for app in (outer, other):
        metrics.init_app(app)
        init_app(app)
    other.config["PROPAGATE_EXCEPTIONS"] = True
    assert 200 == outer.test_client().get("/call/x", buffered=True).status_code
    calls = _by_endpoint(registry, N.dependency_calls_per_request_sum)
    assert {"/call/<path:rest>": 1.0} == calls
    access = {e["endpoint"]: e for e in _lines(out) if e["logger"] == c.ACCESS_LOGGER}
    assert "1" == access["/call/<path:rest>"].get("after")


def test_routed_requests_are_never_said_to_be_unrouted(caplog: pytest.LogCaptureFixture) -> None:
    """404, 405 and redirects are routed (unmatched): no warning for them."""
    app = _app("plain", "/dir/")
    Metrics(app, registry=CollectorRegistry())
    client = app.test_client()
    with caplog.at_level("WARNING", logger="limone_obs"):
        codes = [client.get(p, buffered=True).status_code for p in ("/dir/", "/nope", "/dir")]
        codes.append(client.post("/dir/", buffered=True).status_code)
    assert [200, 404, 308, 405] == codes
    assert not [r for r in caplog.records if "did not route" in r.getMessage()]


def test_the_path_carries_a_proxy_prefix_set_by_proxyfix(out: io.BytesIO) -> None:
    """Behind a proxy that strips /notes-svc and says so in X-Forwarded-Prefix, with
    ProxyFix applied after the kit: the app's and gunicorn's lines show the full path."""
    app = _app("notes", "/search")
    registry = CollectorRegistry()
    Metrics(app, registry=registry)
    init_app(app)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_prefix=1)  # type: ignore[method-assign]
    served: list[dict[str, Any]] = []
    inner = app.wsgi_app

    def server(environ: Any, start_response: Any) -> Any:
        served.append(environ)  # the environ gunicorn holds for its access line
        return inner(environ, start_response)

    app.wsgi_app = server  # type: ignore[method-assign]
    headers = {"X-Forwarded-Prefix": "/notes-svc"}
    assert 200 == app.test_client().get("/search", headers=headers, buffered=True).status_code
    assert [("/notes-svc/search", "/search", 200)] == _access(out)
    fields = access_fields(_Sent(), served[0], datetime.timedelta(milliseconds=5))
    assert "/notes-svc/search" == fields["path"]
    assert {"/search": 1.0} == per_endpoint(generate_latest(registry).decode(), N.requests_total)


class _Sent:
    """What gunicorn's access log reads of a response."""

    status = "200 OK"
    sent = 5
    headers: list[tuple[str, str]] = []  # noqa: RUF012 - read only


@pytest.mark.integration
def test_requests_of_a_mounted_apps_namespace_hold_the_shared_workers(tmp_path: Path) -> None:
    """gunicorn (one gthread worker, 4 threads) serving notes with admin mounted, each
    with its own namespace: two slow admin requests are two busy slots of the server in
    notes' workers series too (the workers serve both apps). Each metrics path serves
    both namespaces' workers series, as it serves both namespaces' files."""
    mp = tmp_path / "mp"
    mp.mkdir()
    server_env = {"GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "4"}
    server_env["PROMETHEUS_MULTIPROC_DIR"] = str(mp)
    capped = ["--worker-connections", "4"]
    both = (N.workers, c.MetricNames("admin").workers)
    with gunicorn_server("tests.mounted_app:create()", tmp_path, server_env, args=capped) as (
        url,
        _,
    ):
        with ThreadPoolExecutor(max_workers=2) as pool:
            slow = [
                pool.submit(requests.get, f"{url}/admin/slow", params={"seconds": 6}, timeout=30)
                for _ in range(2)
            ]
            wait_until(lambda: _workers(url).get(c.WORKER_BUSY) == 2.0, "2 busy slots", 5.0)
            for path in ("/metrics", "/admin/metrics"):
                assert dict.fromkeys(both, 2.0) == _busy_by_series(f"{url}{path}")
            assert [200, 200] == [f.result().status_code for f in slow]
        assert {c.WORKER_BUSY: 0.0, c.WORKER_IDLE: 4.0} == _workers(url)


def _workers(url: str) -> dict[str, float]:
    """notes' workers series by state, from one scrape."""
    return {
        sample.labels[c.LABEL_STATE]: sample.value
        for sample in _samples(f"{url}/metrics")
        if sample.name == N.workers
    }


def _busy_by_series(url: str) -> dict[str, float]:
    """The busy sample of every workers series one scrape of ``url`` serves."""
    return {
        sample.name: sample.value
        for sample in _samples(url)
        if sample.name.endswith("_workers") and sample.labels.get(c.LABEL_STATE) == c.WORKER_BUSY
    }


def _samples(url: str) -> list[Any]:
    text = requests.get(url, timeout=10).text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def test_a_single_process_server_counts_the_mounted_apps_busy_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A threaded single-process server (werkzeug's, as waitress) serving notes with admin
    mounted, each with its own namespace: two admin requests in flight are two busy
    threads in notes' workers series too, and none once they ended."""
    monkeypatch.setattr(workers, "_state", {})  # no slots known: busy alone
    notes, admin = _app("notes", "/search"), Flask("admin")
    release = threading.Event()
    entered = threading.Semaphore(0)

    @admin.get("/slow")
    def slow() -> str:
        entered.release()
        release.wait(10)
        return "done"

    notes.wsgi_app = DispatcherMiddleware(notes.wsgi_app, {"/admin": admin})  # type: ignore[method-assign]
    Metrics(notes, registry=CollectorRegistry())
    Metrics(admin, registry=CollectorRegistry(), namespace="admin")
    with serve(notes, quiet=True) as url, ThreadPoolExecutor(max_workers=2) as pool:
        # Busy sums every Metrics alive in this process: another test's may hold some.
        before = _workers(url)[c.WORKER_BUSY]
        try:
            pending = [pool.submit(requests.get, f"{url}/admin/slow", timeout=30) for _ in "ab"]
            for _ in pending:
                assert entered.acquire(timeout=10), "an admin request never reached its view"
            assert {c.WORKER_BUSY: before + 2.0} == _workers(url)
        finally:
            release.set()
        assert [200, 200] == [f.result().status_code for f in pending]
        # Recorded after the last byte: a scrape right after the answers may come first.
        wait_until(lambda: _workers(url) == {c.WORKER_BUSY: before}, "no busy thread", 10.0)
