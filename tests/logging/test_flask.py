"""Flask integration: request id, trace ids, user id, the access line, streaming."""

from __future__ import annotations

import contextvars
import datetime
import gc
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import structlog
from flask import (
    Flask,
    Response,
    copy_current_request_context,
    g,
    request,
    request_started,
    stream_with_context,
)
from flask.logging import default_handler
from jsonschema import Draft202012Validator
from prometheus_client import CollectorRegistry

from limone_obs import Metrics, lifecycle
from limone_obs import conventions as c
from limone_obs.errors import ConfigError
from limone_obs.logging import (
    bind,
    clear_context,
    configure_logging,
    get_context,
    get_logger,
    init_app,
    unbind,
)
from limone_obs.logging.flask_ext import EXTENSION_KEY
from limone_obs.logging.gunicorn import access_fields
from tests.logging.helpers import Sent, environs_served, parse_lines, schema_errors
from tests.support import serve, settled

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def make_app(**init: Any) -> Flask:
    """A small app: a routed view, a failing view, a streamed view."""
    app = Flask("logtest")
    log = get_logger("logtest.views")

    @app.get("/projects/<int:project_id>")
    def project(project_id: int) -> str:
        g.user = "user-7"
        log.info("loading project", project_id=project_id)
        return "ok"

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("view failed")

    @app.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[str]:
            for _ in range(3):
                time.sleep(0.05)
                log.info("chunk")
                yield "x"

        return Response(stream_with_context(chunks()))

    init_app(app, **init)
    return app


def access_lines(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The access lines among ``events``."""
    return [e for e in events if e["logger"] == "limone_obs.access"]


def test_access_line_has_request_fields(out: io.BytesIO, validator: Draft202012Validator) -> None:
    """One access line per request with endpoint, status, duration, user and ids."""
    configure_logging(stream=out)
    app = make_app(user_id=lambda: g.get("user"))
    app.test_client().get("/projects/42", headers={"traceparent": TRACEPARENT}).close()
    events = parse_lines(out.getvalue())
    assert [] == schema_errors(validator, events)
    [access] = access_lines(events)
    expected = {
        "endpoint": "/projects/<int:project_id>",
        "path": "/projects/42",
        "method": "GET",
        "status_code": 200,
        "user_id": "user-7",
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
    }
    assert expected == {k: access[k] for k in expected}
    assert access["duration"] >= 0


def test_app_lines_in_request_share_its_context(out: io.BytesIO) -> None:
    """The view's own line carries the request id and endpoint of the access line."""
    configure_logging(stream=out)
    make_app().test_client().get("/projects/1").close()
    view, access = parse_lines(out.getvalue())
    keys = ("request_id", "endpoint", "method", "path")
    assert {k: access[k] for k in keys} == {k: view[k] for k in keys}


def test_lines_of_request_started_and_before_request_carry_the_endpoint(
    out: io.BytesIO,
) -> None:
    """Flask routes while it pushes the request context: a ``request_started`` receiver
    and a ``before_request`` function already log the request's endpoint."""
    configure_logging(stream=out)
    app = make_app()
    log = get_logger("logtest.hooks")

    def started(_sender: Flask, **_extra: Any) -> None:
        log.info("started")

    request_started.connect(started, app)
    app.before_request(lambda: log.info("before"))
    app.test_client().get("/projects/1").close()
    lines = {e["message"]: e for e in parse_lines(out.getvalue())}
    endpoints = {m: lines[m].get("endpoint") for m in ("started", "before", "request finished")}
    assert dict.fromkeys(endpoints, "/projects/<int:project_id>") == endpoints


def test_incoming_request_id_is_kept_and_echoed(out: io.BytesIO) -> None:
    """A valid X-Request-ID is used on the lines and returned in the response."""
    configure_logging(stream=out)
    resp = make_app().test_client().get("/projects/1", headers={"X-Request-ID": "abc-123.x"})
    resp.close()
    assert "abc-123.x" == resp.headers["X-Request-ID"]
    assert ["abc-123.x"] == [e["request_id"] for e in access_lines(parse_lines(out.getvalue()))]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Request-ID": "mine"}, ["mine"]),
        ({"x-request-id": "mine"}, ["mine"]),
        ({"X-Note": "('x-request-id', 'no')"}, ["abc-123"]),
        ({"X-Request-IDs": "other"}, ["abc-123"]),
    ],
    ids=["set-by-app", "any-case", "quoted-in-a-value", "longer-name"],
)
def test_request_id_header_set_by_the_app_is_not_doubled(
    headers: dict[str, str], expected: list[str], out: io.BytesIO
) -> None:
    """A response that already has the request id header (any case) keeps only its own;
    a value or a longer name that merely contains the name still gets the echo."""
    configure_logging(stream=out)
    app = Flask("echo")
    app.add_url_rule("/", "index", lambda: ("ok", 200, headers))
    init_app(app)
    resp = app.test_client().get("/", headers={"X-Request-ID": "abc-123"})
    resp.close()
    assert expected == resp.headers.getlist("X-Request-ID")


def test_an_apps_own_request_id_header_of_another_value_is_said_once(
    out: io.BytesIO, caplog: pytest.LogCaptureFixture
) -> None:
    """An app that sets its own X-Request-ID (an after_request hook made before adopting
    the kit) sends an id no log line carries: one warning line says so and what to do;
    an app header equal to the kit's id says nothing."""
    configure_logging(stream=out)
    app = Flask("own_id")
    app.add_url_rule("/", "index", lambda: "ok")
    app.add_url_rule("/same", "same", lambda: "ok")

    @app.after_request
    def own_id(response: Response) -> Response:
        if request.path == "/same":
            response.headers["X-Request-ID"] = get_context()["request_id"]
        else:
            response.headers["X-Request-ID"] = "app-" + "1" * 12
        return response

    init_app(app)
    lifecycle._kept_said.clear()
    with caplog.at_level("WARNING", logger="limone_obs"):
        client = app.test_client()
        for path in ("/same", "/", "/"):
            client.get(path).close()
    lines = [r.getMessage() for r in caplog.records if "own X-Request-ID header" in r.getMessage()]
    assert 1 == len(lines), lines
    assert "get_context()['request_id']" in lines[0]


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "semi;colon", "<script>"])
def test_invalid_request_id_is_replaced(bad: str, out: io.BytesIO) -> None:
    """An over-long or odd-character request id is replaced by a new 32-hex one."""
    configure_logging(stream=out)
    resp = make_app().test_client().get("/projects/1", headers={"X-Request-ID": bad})
    resp.close()
    new = resp.headers["X-Request-ID"]
    assert (32, True) == (len(new), all(ch in "0123456789abcdef" for ch in new))


@pytest.mark.parametrize("bad", ["abc\n", "abc\r\nSet-Cookie: x=1"])
def test_request_id_with_line_break_is_replaced(bad: str, out: io.BytesIO) -> None:
    """An id that matches only up to a trailing newline is replaced, not echoed."""
    configure_logging(stream=out)
    client = make_app().test_client()
    resp = client.get("/projects/1", environ_overrides={"HTTP_X_REQUEST_ID": bad})
    resp.close()
    new = resp.headers["X-Request-ID"]
    # A fresh id: 32 hex digits (a random one may well contain "abc": not a test of it).
    assert (200, 32, True) == (
        resp.status_code,
        len(new),
        all(c in "0123456789abcdef" for c in new),
    )


SECRET_IDS = [
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijk",
    "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "password:hunter2hunter2",
]


@pytest.mark.parametrize("secret", SECRET_IDS)
def test_a_request_id_the_redactor_would_mask_is_replaced(secret: str, out: io.BytesIO) -> None:
    """A client's X-Request-ID shaped like a key or a JWT is neither logged nor echoed: the
    request gets a new id (the id is written in clear on every line of the request)."""
    configure_logging(stream=out)
    resp = make_app().test_client().get("/projects/1", headers={"X-Request-ID": secret})
    resp.close()
    new = resp.headers["X-Request-ID"]
    assert (32, True, False) == (
        len(new),
        all(ch in "0123456789abcdef" for ch in new),
        secret in out.getvalue().decode(),
    )


@pytest.mark.parametrize(
    "kept", ["4bf92f3577b34da6a3ce929d0e0e4736", "0b6c1e2a-1f7e-4c1d-9a37-5f8e2d3c4b5a"]
)
def test_hex_and_uuid_request_ids_are_kept_with_redaction_on(kept: str, out: io.BytesIO) -> None:
    """nginx's $request_id (32 hex digits) and UUIDs pass as they are."""
    configure_logging(stream=out)
    resp = make_app().test_client().get("/projects/1", headers={"X-Request-ID": kept})
    resp.close()
    assert kept == resp.headers["X-Request-ID"]


def test_missing_request_id_is_generated(out: io.BytesIO) -> None:
    """Without the header each request gets its own new id."""
    configure_logging(stream=out)
    client = make_app().test_client()
    ids = {client.get("/projects/1").headers["X-Request-ID"] for _ in range(3)}
    assert 3 == len(ids)


def test_invalid_traceparent_is_ignored(out: io.BytesIO) -> None:
    """A malformed or all-zero traceparent adds no trace ids."""
    configure_logging(stream=out)
    client = make_app().test_client()
    client.get("/projects/1", headers={"traceparent": "garbage"}).close()
    client.get("/projects/1", headers={"traceparent": f"00-{'0' * 32}-b7ad6b7169203331-01"}).close()
    assert all("trace_id" not in e for e in parse_lines(out.getvalue()))


def test_unmatched_route_logs_unmatched_endpoint(out: io.BytesIO) -> None:
    """A 404 is logged with the shared <unmatched> endpoint, not its raw path as endpoint."""
    configure_logging(stream=out)
    make_app().test_client().get("/no/such/page").close()
    [access] = access_lines(parse_lines(out.getvalue()))
    assert ("<unmatched>", 404, "info") == (
        access["endpoint"],
        access["status_code"],
        access["level"],
    )


def test_failing_view_logs_exception_and_500(
    out: io.BytesIO, validator: Draft202012Validator
) -> None:
    """An unhandled view error gives Flask's exception line and an error-level 500 access line."""
    configure_logging(stream=out)
    make_app().test_client().get("/boom").close()
    events = parse_lines(out.getvalue())
    assert [] == schema_errors(validator, events)
    flask_line = next(e for e in events if "exception" in e and e["logger"] != "limone_obs.access")
    [access] = access_lines(events)
    assert ("RuntimeError", 500, "error") == (
        flask_line["exception"]["type"],
        access["status_code"],
        access["level"],
    )
    assert flask_line["request_id"] == access["request_id"]


def test_a_500s_traceback_is_written_once(out: io.BytesIO, validator: Draft202012Validator) -> None:
    """Flask's "Exception on /boom" line carries the traceback; the access line of the same
    request gives the exception's type and message only (the schema allows it)."""
    configure_logging(stream=out)
    make_app().test_client().get("/boom").close()
    events = parse_lines(out.getvalue())
    flask_line = next(e for e in events if "exception" in e and e["logger"] != c.ACCESS_LOGGER)
    [access] = access_lines(events)
    written = [e for e in events if "Traceback (most recent call last)" in json.dumps(e)]
    assert ([flask_line], {"type", "message"}, []) == (
        written,
        set(access["exception"]),
        schema_errors(validator, events),
    )
    assert access["exception"]["type"] == flask_line["exception"]["type"]


@pytest.mark.parametrize("silence", ["propagate", "logger disabled"])
def test_the_access_line_keeps_the_traceback_no_other_line_wrote(
    out: io.BytesIO, silence: str
) -> None:
    """When Flask does not log the exception (PROPAGATE_EXCEPTIONS: it re-raises; or its
    logger is off), the access line is the one place of the traceback: it keeps it."""
    configure_logging(stream=out)
    app = make_app()
    if silence == "propagate":
        app.config["PROPAGATE_EXCEPTIONS"] = True
    else:
        app.logger.disabled = True
    try:
        app.test_client().get("/boom").close()
    except RuntimeError:
        assert silence == "propagate"
    events = parse_lines(out.getvalue())
    [access] = access_lines(events)
    written = [e["logger"] for e in events if "Traceback (most recent call last)" in json.dumps(e)]
    assert ([c.ACCESS_LOGGER], "RuntimeError") == (written, access["exception"]["type"])


def test_streamed_response_logs_full_duration(out: io.BytesIO) -> None:
    """The access line of a streamed body comes after its chunks and times all of them."""
    configure_logging(stream=out)
    resp = make_app().test_client().get("/stream", buffered=False)
    assert b"xxx" == b"".join(bytes(chunk) for chunk in resp.response)  # type: ignore[arg-type]
    resp.close()
    events = parse_lines(out.getvalue())
    assert ["chunk", "chunk", "chunk", "request finished"] == [e["message"] for e in events]
    assert events[-1]["duration"] >= 0.15
    assert len({e["request_id"] for e in events}) == 1


@pytest.mark.parametrize("ended_by", ["close", "garbage collector"])
def test_an_earlier_request_ended_during_a_later_one_leaves_it_its_fields(
    out: io.BytesIO, ended_by: str
) -> None:
    """A request that ends while a later one of the same context is still served (a
    test's unread answer closed, or collected, while the next streams) does not take the
    later request's fields, its own and structlog's, from its lines: restoring what was
    current before the earlier one began would. Once both ended, neither's are left."""
    configure_logging(stream=out)
    app = Flask("order")
    log = get_logger("order")

    @app.get("/first")
    def first() -> str:
        structlog.contextvars.bind_contextvars(tenant="t-0")  # what /later begins with
        return "first"

    @app.get("/later")
    def later() -> Response:
        bind(user="u-1")
        structlog.contextvars.bind_contextvars(tenant="t-1")

        def chunks() -> Iterator[str]:
            yield "a"
            log.info("after the first chunk")  # a plain generator: the context as it is
            yield "b"

        return Response(chunks())

    init_app(app)
    client = app.test_client()
    earlier = client.get("/first")  # unread: its request is still being served
    streaming = client.get("/later")  # its first chunk is made
    if ended_by == "close":
        earlier.close()
    else:
        del earlier
        gc.collect()
    try:
        assert b"ab" == streaming.data
        events = parse_lines(out.getvalue())
        (line,) = [e for e in events if e["message"] == "after the first chunk"]
        access = {e["endpoint"]: e for e in access_lines(events)}
        assert 2 == len(access)  # the earlier request ended too
        fields = ("request_id", "endpoint", "user", "tenant")
        assert (access["/later"]["request_id"], "/later", "u-1", "t-1") == tuple(
            line.get(k) for k in fields
        )
        assert {} == get_context()
        assert {} == structlog.contextvars.get_contextvars()
    finally:
        structlog.contextvars.clear_contextvars()


@pytest.mark.parametrize("view", ["plain", "cleared", "task"])
def test_context_is_cleared_after_request(out: io.BytesIO, view: str) -> None:
    """After the response is closed, nothing of the request stays bound: also when the
    view cleared its fields and bound others, or a thread of its own context's copy
    bound some (the request's fields are then no longer the dict current here)."""
    configure_logging(stream=out)
    app = make_app()

    @app.get("/cleared")
    def cleared() -> str:
        clear_context()
        bind(user="u-1")
        return "ok"

    @app.get("/task")
    def task() -> str:
        contextvars.copy_context().run(bind, job="j-1")  # a copy of the request's context
        return "ok"

    path = {"plain": "/projects/1", "cleared": "/cleared", "task": "/task"}[view]
    app.test_client().get(path).close()
    assert {} == get_context()


def test_bound_user_id_reaches_access_line(out: io.BytesIO) -> None:
    """``bind(user_id=...)`` inside a view shows on the access line, an integer as its text
    (one type for the field in every line)."""
    configure_logging(stream=out)
    app = make_app()

    @app.get("/me")
    def me() -> str:
        bind(user_id=99)
        return "me"

    app.test_client().get("/me").close()
    [access] = access_lines(parse_lines(out.getvalue()))
    assert access["user_id"] == "99"


def test_failing_user_id_callable_does_not_break_request(out: io.BytesIO) -> None:
    """A user_id callable that raises leaves user_id out; the response is unchanged."""
    configure_logging(stream=out)

    def broken() -> str:
        raise LookupError("no session")

    resp = make_app(user_id=broken).test_client().get("/projects/1")
    resp.close()
    [access] = access_lines(parse_lines(out.getvalue()))
    assert (200, False) == (resp.status_code, "user_id" in access)


def test_the_user_id_getters_value_follows_binds_rule(out: io.BytesIO) -> None:
    """The getter's value is written as ``bind(user_id=...)``'s is: text, an integer's or
    a UUID's text; a dict, a bool or a float is no user id: left out, with one warning
    line (its repr, ``"{'id': 1}"``, was written as the user id; a trial)."""
    configure_logging(stream=out)
    values: list[Any] = [7, uuid.UUID(int=5), {"id": 1}, True, 3.5]
    app = make_app(user_id=lambda: values.pop(0))
    client = app.test_client()
    for _ in range(5):
        client.get("/projects/1").close()
    events = parse_lines(out.getvalue())
    assert [a.get("user_id") for a in access_lines(events)] == [
        "7", str(uuid.UUID(int=5)), None, None, None,
    ]  # fmt: skip
    warned = [e for e in events if "user_id getter" in e["message"]]
    assert [(w["level"], "a dict" in w["message"]) for w in warned] == [("warning", True)]


def test_metrics_path_is_not_logged(out: io.BytesIO) -> None:
    """Scrapes of the exporter's /metrics write no access line."""
    configure_logging(stream=out)
    app = make_app()
    Metrics(app, registry=CollectorRegistry())
    app.test_client().get("/metrics").close()
    assert [] == access_lines(parse_lines(out.getvalue()))


@pytest.mark.parametrize("rum", [True, False])
def test_rum_beacon_and_script_are_not_logged(rum: bool, out: io.BytesIO) -> None:
    """The RUM script and its beacons (counted in rum_beacons_total) write no access line,
    like the metrics path; with RUM off those paths are ordinary (404) requests."""
    configure_logging(stream=out)
    app = Flask("rum")
    app.add_url_rule("/projects/<int:pid>", "p", lambda pid: f"project {pid}")
    app.config.update(LIMONE_OBS_RUM=rum, LIMONE_OBS_RUM_PATH="/t/rum")
    init_app(app)  # before Metrics: the settings are read from the config alone
    Metrics(app, registry=CollectorRegistry())
    client = app.test_client()
    script = client.get("/t/rum.js")
    script.close()  # the line is written when the server closes the body
    beacon = client.post("/t/rum", data=b"{}")
    beacon.close()
    client.get("/projects/1").close()
    paths = [line["path"] for line in access_lines(parse_lines(out.getvalue()))]
    expected = ["/projects/1"] if rum else ["/t/rum.js", "/t/rum", "/projects/1"]
    statuses = (200, 400) if rum else (404, 404)
    assert (expected, statuses) == (paths, (script.status_code, beacon.status_code))


@pytest.mark.parametrize("logging_first", [True, False])
def test_works_with_exporter_in_either_order(logging_first: bool, out: io.BytesIO) -> None:
    """With Metrics on the same app, each request is both counted and logged once."""
    configure_logging(stream=out)
    app = Flask("both")
    app.add_url_rule("/p/<int:pid>", "p", lambda pid: f"project {pid}")
    registry = CollectorRegistry()
    if logging_first:
        init_app(app)
        Metrics(app, registry=registry)
    else:
        Metrics(app, registry=registry)
        init_app(app)
    app.test_client().get("/p/1").close()
    count = registry.get_sample_value(
        "limoneide_requests_total", {"method": "GET", "endpoint": "/p/<int:pid>", "status": "200"}
    )
    [access] = access_lines(parse_lines(out.getvalue()))
    assert (1.0, "/p/<int:pid>") == (count, access["endpoint"])
    assert {"limone_obs", EXTENSION_KEY} <= set(app.extensions)


def test_thread_in_a_copied_request_context_logs_and_counts_for_the_request(
    out: io.BytesIO,
) -> None:
    """``flask.copy_current_request_context`` copies no context variable: the thread's
    lines still carry the request's fields and its tracked call counts for the request;
    a thread outside a request gets neither."""
    configure_logging(stream=out)
    app = Flask("copied")
    registry = CollectorRegistry()
    metrics = Metrics(app, registry=registry)
    init_app(app)
    log = get_logger("copied.worker")

    def work(fields: list[dict[str, Any]]) -> None:
        with metrics.track(c.DEPENDENCY_DB, "select"):
            log.info("in the thread")
            logging.getLogger("copied.stdlib").warning("stdlib in the thread")
        fields.append(get_context())

    @app.get("/copied")
    def copied() -> str:
        fields: list[dict[str, Any]] = []
        thread = threading.Thread(target=copy_current_request_context(work), args=(fields,))
        thread.start()
        thread.join()
        return str(fields[0]["request_id"])

    request_id = app.test_client().get("/copied", headers={"X-Request-ID": "req-1"}).text
    outside: list[dict[str, Any]] = []
    thread = threading.Thread(target=work, args=(outside,))
    thread.start()
    thread.join()
    events = parse_lines(out.getvalue())
    in_thread = [e for e in events if "in the thread" in e["message"]]
    assert ["req-1"] * 2 + [None] * 2 == [e.get("request_id") for e in in_thread]
    assert ("req-1", "/copied", [{}]) == (request_id, in_thread[0]["endpoint"], outside)
    labels = {"endpoint": "/copied", "dependency": c.DEPENDENCY_DB}
    assert 1.0 == registry.get_sample_value("limoneide_dependency_calls_per_request_sum", labels)


def test_a_copied_request_context_sees_what_the_view_bound_so_far(out: io.BytesIO) -> None:
    """A thread started with ``copy_current_request_context`` logs the request's fields as
    the view has bound and unbound them so far; what the thread binds stays its own; the
    access line keeps the request id even when the view unbound it."""
    configure_logging(stream=out)
    app = Flask("bound")
    init_app(app)
    log = get_logger("bound.worker")

    def work(step: str) -> None:
        log.info("thread", step=step)
        bind(thread_only=step)
        log.info("thread after its bind", step=step)

    def in_a_copy(step: str) -> None:
        thread = threading.Thread(target=copy_current_request_context(work), args=(step,))
        thread.start()
        thread.join()

    @app.get("/bound")
    def bound() -> str:
        bind(user_id="u-7", project=3)
        in_a_copy("bound")
        unbind("project")
        in_a_copy("unbound")
        log.info("view")
        unbind("request_id")
        return "ok"

    assert "ok" == app.test_client().get("/bound", headers={"X-Request-ID": "req-9"}).text
    events = {(e["message"], e.get("step")): e for e in parse_lines(out.getvalue())}
    keys = ("request_id", "user_id", "project", "thread_only")
    seen = {k: tuple(event.get(key) for key in keys) for k, event in events.items()}
    assert ("req-9", "u-7", 3, None) == seen["thread", "bound"]
    assert ("req-9", "u-7", 3, "bound") == seen["thread after its bind", "bound"]
    assert ("req-9", "u-7", None, None) == seen["thread", "unbound"]
    assert ("req-9", "u-7", None, None) == seen["view", None]
    assert ("req-9", "u-7", None, None) == seen["request finished", None]


def test_a_pool_thread_does_not_carry_an_earlier_jobs_request(out: io.BytesIO) -> None:
    """A pool's one thread runs ``copy_current_request_context`` jobs of two requests;
    the first job binds a field. The second job's lines carry the second request's id,
    path and endpoint (they carried the first's, and its bound field), and are scrubbed
    of its secret URL value."""
    configure_logging(stream=out)
    app = Flask("pool")
    init_app(app)
    log = get_logger("pool.job")
    pool = ThreadPoolExecutor(1)

    def first_job() -> None:
        bind(job="first")
        log.info("first job")

    def second_job() -> None:
        log.info("second job", link=request.url)

    @app.get("/first")
    def first() -> str:
        pool.submit(copy_current_request_context(first_job)).result()
        return "ok"

    @app.get("/reset-password/<token>")
    def second(token: str) -> str:
        pool.submit(copy_current_request_context(second_job)).result()
        return "ok"

    client = app.test_client()
    with pool:
        client.get("/first", headers={"X-Request-ID": "req-first"}).close()
        client.get("/reset-password/PoolTok123", headers={"X-Request-ID": "req-second"}).close()
    events = {e["message"]: e for e in parse_lines(out.getvalue())}
    assert ("req-first", "first") == (events["first job"]["request_id"], events["first job"]["job"])
    second_line = events["second job"]
    assert ("req-second", "/reset-password/[REDACTED]", "/reset-password/<token>", None) == (
        second_line["request_id"], second_line["path"], second_line["endpoint"],
        second_line.get("job"),
    )  # fmt: skip
    assert second_line["link"] == "http://localhost/reset-password/[REDACTED]"
    assert "PoolTok123" not in out.getvalue().decode()


def test_init_twice_is_an_error() -> None:
    """A second init_app on the same app raises ConfigError naming the app."""
    app = make_app()
    with pytest.raises(ConfigError, match="logtest"):
        init_app(app)


def test_bad_header_setting_is_an_error() -> None:
    """An invalid LIMONE_OBS_LOG_REQUEST_ID_HEADER raises ConfigError naming the key."""
    app = Flask("bad")
    app.config["LIMONE_OBS_LOG_REQUEST_ID_HEADER"] = "X Request"
    with pytest.raises(ConfigError, match="LIMONE_OBS_LOG_REQUEST_ID_HEADER"):
        init_app(app)


@pytest.mark.parametrize("off", [False, "false", "0", "off"])
def test_access_line_can_be_turned_off(out: io.BytesIO, off: object) -> None:
    """LIMONE_OBS_LOG_ACCESS=False keeps the context but writes no access line; so does
    the text "false" of a setting read from the environment (``bool("false")`` is True)."""
    configure_logging(stream=out)
    app = Flask("quiet")
    app.config["LIMONE_OBS_LOG_ACCESS"] = off
    app.add_url_rule("/", "i", lambda: (get_logger().info("view"), "ok")[1])
    init_app(app)
    app.test_client().get("/").close()
    [event] = parse_lines(out.getvalue())
    assert ("view", "/") == (event["message"], event["endpoint"])


def test_flask_default_handler_is_replaced(out: io.BytesIO) -> None:
    """An app whose logger was used before configure_logging loses Flask's text handler."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()  # as in a real process: pytest's capture handler hides the case
    try:
        app = Flask("early")
        app.logger.warning("before configuration")  # attaches Flask's default text handler
    finally:
        root.handlers[:] = saved
    assert default_handler in app.logger.handlers
    configure_logging(stream=out)
    app.logger.error("after")
    assert (False, ["after"]) == (
        default_handler in app.logger.handlers,
        [e["message"] for e in parse_lines(out.getvalue())],
    )


def _reset_app() -> Flask:
    """Routes whose URL variables name secrets (a reset token, an API key) and one that
    does not."""
    app = Flask("secret-urls")
    log = get_logger("secret-urls")

    @app.get("/reset-password/<token>")
    def reset(token: str) -> str:
        log.info(f"reset asked with {token}")  # a message quoting the secret
        return "ok"

    @app.get("/users/<int:user_id>/keys/<path:api_key>")
    def key(user_id: int, api_key: str) -> str:
        return "ok"

    @app.get("/docs/<name>")
    def docs(name: str) -> str:
        return "ok"

    init_app(app)
    return app


@pytest.mark.parametrize(
    ("url", "secret", "expected"),
    [
        ("/reset-password/PATHTOKEN1leak9f8e", "PATHTOKEN1leak9f8e", "/reset-password/[REDACTED]"),
        ("/users/7/keys/k3y/with/slashes", "k3y/with/slashes", "/users/7/keys/[REDACTED]"),
        ("/reset-password/t%C3%B6ken-%C3%A9", "töken-é", "/reset-password/[REDACTED]"),
    ],
    ids=["token", "path-converter", "non-ascii"],
)
def test_a_secret_url_variable_is_masked_in_the_path(
    url: str, secret: str, expected: str, out: io.BytesIO
) -> None:
    """A URL rule variable that names a secret (``<token>``, ``<api_key>``) is masked in
    the ``path`` of every line of the request; ``endpoint`` still shows the rule."""
    configure_logging(stream=out)
    _reset_app().test_client().get(url).close()
    events = parse_lines(out.getvalue())
    paths = {e["path"] for e in events if "path" in e}
    assert (paths, secret in out.getvalue().decode()) == ({expected}, False)


@pytest.mark.parametrize(
    ("url", "path"),
    [("/docs/token-guide", "/docs/token-guide"), ("/docs/caf%C3%A9-%E2%82%AC", "/docs/café-€")],
    ids=["ascii", "non-ascii"],
)
def test_other_url_variables_are_kept_in_the_path(url: str, path: str, out: io.BytesIO) -> None:
    """A variable with an ordinary name keeps its value in the path, decoded as Flask
    decodes it (not the URL's bytes as Latin-1 characters, which PEP 3333 servers pass);
    gunicorn's access line has the same path."""
    configure_logging(stream=out)
    app = _reset_app()
    served = environs_served(app)
    app.test_client().get(url).close()
    (line,) = access_lines(parse_lines(out.getvalue()))
    assert (line["path"], line["endpoint"]) == (path, "/docs/<name>")
    fields = access_fields(Sent(), served[0], datetime.timedelta(milliseconds=5))
    assert fields["path"] == path


def test_gunicorn_access_line_gets_the_masked_path(out: io.BytesIO) -> None:
    """gunicorn's access line (``access_fields``, after the response, from the same
    environ) writes the masked path too, not PATH_INFO."""
    configure_logging(stream=out)
    app = _reset_app()
    served = environs_served(app)
    app.test_client().get("/reset-password/PATHTOKEN1leak9f8e").close()
    fields = access_fields(Sent(), served[0], datetime.timedelta(milliseconds=5))
    assert fields["path"] == "/reset-password/[REDACTED]"


def test_werkzeugs_request_line_is_scrubbed_of_the_secret(out: io.BytesIO) -> None:
    """Under werkzeug's server, its own line per request ("GET /reset-password/... HTTP/1.1"
    200), written after the response, does not show the secret URL value either; nor does
    a message of the view that quotes it. A value of 3 characters is masked in the path
    only (replacing it in every text would garble the lines)."""
    configure_logging(stream=out)
    app = _reset_app()
    with serve(app) as url:
        for token in ("PATHTOKEN1leak9f8e", "abc"):
            assert requests.get(f"{url}/reset-password/{token}", timeout=10).status_code == 200
        assert requests.get(f"{url}/docs/token-guide", timeout=10).status_code == 200
    # Werkzeug's line comes before the body, the access line after it: wait for the last.
    access = settled(lambda: access_lines(parse_lines(out.getvalue())), lambda ls: len(ls) >= 3)
    text = out.getvalue().decode()
    server_lines = [e["message"] for e in parse_lines(out.getvalue()) if e["logger"] == "werkzeug"]
    assert ("PATHTOKEN1leak9f8e" in text, len(server_lines), len(access)) == (False, 3, 3)
    assert any("GET /reset-password/[REDACTED] HTTP/1.1" in m for m in server_lines)
    assert any("GET /docs/token-guide HTTP/1.1" in m for m in server_lines)  # no stale secret


def test_a_refused_method_on_a_secret_url_is_masked_too(out: io.BytesIO) -> None:
    """A POST to a GET-only ``/reset-password/<token>`` (405) matched no URL variables,
    but its path holds the token: it is masked as for a GET. A 404 keeps its path."""
    configure_logging(stream=out)
    with serve(_reset_app()) as url:
        refused = requests.post(f"{url}/reset-password/PostSecretTok999", timeout=10)
        missing = requests.get(f"{url}/nothing/here", timeout=10)
    assert (refused.status_code, missing.status_code) == (405, 404)
    # The server's threads write each access line after the response's last byte: wait
    # for both, in either order.
    lines = settled(lambda: parse_lines(out.getvalue()), lambda ls: len(access_lines(ls)) >= 2)
    paths = sorted(e["path"] for e in access_lines(lines))
    assert paths == ["/nothing/here", "/reset-password/[REDACTED]"]
    assert "PostSecretTok999" not in out.getvalue().decode()
