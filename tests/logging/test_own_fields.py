"""An app's fields named like the request's own: the request's values stay, one type per
field in every line (what an Elasticsearch mapping needs), structlog's own context too."""

from __future__ import annotations

import enum
import io
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog.contextvars
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from limone_obs import conventions as c
from limone_obs.logging import _pipeline, bind, configure_logging, get_logger, init_app, unbind
from limone_obs.logging.schema import checker, field_rules, problems
from tests.logging.helpers import parse_lines, schema_errors

REQUEST_FIELDS = (c.LOG_REQUEST_ID, c.LOG_METHOD, c.LOG_PATH, c.LOG_ENDPOINT)


@pytest.fixture(autouse=True)
def no_structlog_context() -> Iterator[None]:
    """structlog's context variables are its own global state: none before or after."""
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


def serve(view: Any, out: io.BytesIO) -> list[dict[str, Any]]:
    """The lines of one GET /items/<int:item_id> served by ``view``, access line last."""
    configure_logging(stream=out)
    app = Flask("ownfields")
    app.add_url_rule("/items/<int:item_id>", view_func=view)
    init_app(app)
    response = app.test_client().get("/items/7")
    response.close()
    assert response.status_code == 200
    lines = parse_lines(out.getvalue())
    assert lines[-1][c.LOG_LOGGER] == c.ACCESS_LOGGER
    return lines


def assert_request_values(line: dict[str, Any], request_id: str) -> None:
    assert line[c.LOG_REQUEST_ID] == request_id
    assert line[c.LOG_METHOD] == "GET"
    assert line[c.LOG_PATH] == "/items/7"
    assert line[c.LOG_ENDPOINT] == "/items/<int:item_id>"


def test_event_fields_named_like_the_requests_own_are_kept_as_extra(out: io.BytesIO) -> None:
    """A structlog keyword or a stdlib ``extra=`` named request_id, method, path or
    endpoint inside a request is written as ``extra_<name>``: the line keeps the
    request's own value, which correlates its lines."""
    log = get_logger("views")
    std = logging.getLogger("views.std")

    def view(item_id: int) -> str:
        log.info("s", request_id="fake", method="POST", path="/x", endpoint="fe")
        std.warning("w", extra={"request_id": 42, "endpoint": {"a": 1}, "method": None})
        return "ok"

    app_line, std_line, access = serve(view, out)
    request_id = access[c.LOG_REQUEST_ID]
    for line in (app_line, std_line, access):
        assert_request_values(line, request_id)
    assert (app_line["extra_request_id"], app_line["extra_method"]) == ("fake", "POST")
    assert (app_line["extra_path"], app_line["extra_endpoint"]) == ("/x", "fe")
    assert std_line["extra_request_id"] == 42
    assert std_line["extra_endpoint"] == {"a": 1}
    assert "extra_method" in std_line
    assert std_line["extra_method"] is None


def test_bind_cannot_replace_the_requests_fields_on_any_line(out: io.BytesIO) -> None:
    """``bind()`` of a request field inside a request binds ``extra_<name>``; the access
    line keeps its own method, path, status, duration and abort marker; ``unbind``
    removes the extra."""
    log = get_logger("views")

    def view(item_id: int) -> str:
        bind(
            method=5, path=None, request_id="mine", status_code=201, duration="slow",
            client_aborted=True,
        )  # fmt: skip
        log.info("bound")
        unbind("duration")
        return "ok"

    bound, access = serve(view, out)
    request_id = access[c.LOG_REQUEST_ID]
    assert request_id != "mine"
    for line in (bound, access):
        assert_request_values(line, request_id)
        assert (line["extra_method"], line["extra_request_id"]) == (5, "mine")
        assert line["extra_status_code"] == 201
        # A valid marker bound by the view is not the server's: the body was sent whole.
        assert (line["extra_client_aborted"], c.LOG_CLIENT_ABORTED in line) == (True, False)
    assert bound["extra_duration"] == "slow"
    assert "extra_duration" not in access
    assert access[c.LOG_STATUS_CODE] == 200
    assert isinstance(access[c.LOG_DURATION], float)
    assert c.LOG_STATUS_CODE not in bound
    assert c.LOG_DURATION not in bound


def test_outside_a_request_valid_fields_are_the_apps(out: io.BytesIO) -> None:
    """A job correlating its lines with ``bind(request_id=...)`` keeps the name, and may
    bind it again; a status or duration of the schema's type is kept, any other is not."""
    configure_logging(stream=out)
    log = get_logger("jobs")
    bind(request_id="job-1")
    bind(request_id="job-2")
    log.info("done", status_code=200, duration=0.5, user_id=12)
    log.info("odd", status_code="200", duration="slow", endpoint=3)
    done, odd = parse_lines(out.getvalue())
    assert done[c.LOG_REQUEST_ID] == "job-2"
    assert "extra_request_id" not in done
    assert (done[c.LOG_STATUS_CODE], done[c.LOG_DURATION]) == (200, 0.5)
    assert done[c.LOG_USER_ID] == "12"
    assert odd[c.LOG_REQUEST_ID] == "job-2"
    for name, value in ((c.LOG_STATUS_CODE, "200"), (c.LOG_DURATION, "slow"), ("endpoint", 3)):
        assert name not in odd
        assert odd[f"extra_{name}"] == value


def test_user_id_is_always_text(out: io.BytesIO) -> None:
    """An integer or UUID user id is written as its text (cut to 256 characters); a
    bool, a list or None is no user id: kept as ``extra_user_id``."""
    configure_logging(stream=out)
    log = get_logger("users")
    some = uuid.UUID(int=5)
    for value in (7, some, "x" * 300, True, ["u"], None):
        log.info("user", user_id=value)
    lines = parse_lines(out.getvalue())
    assert [line.get(c.LOG_USER_ID) for line in lines] == ["7", str(some), "x" * 256, *[None] * 3]
    assert [line.get("extra_user_id") for line in lines[3:]] == [True, ["u"], None]
    assert all(c.LOG_USER_ID not in line for line in lines[3:])


def test_a_whole_number_duration_is_written_as_a_float(out: io.BytesIO) -> None:
    """``duration=3`` from the app (an event, a record's ``extra=``) is written ``3.0``:
    Elasticsearch maps a field by its first value, and a whole number first makes every
    later access line's fraction of a second 0 (a trial). A bool or an integer too large
    for a float is no duration: ``extra_duration``."""
    configure_logging(stream=out)
    get_logger("jobs").info("job finished", duration=3)
    logging.getLogger("jobs.stdlib").warning("job finished", extra={"duration": 2})
    get_logger("jobs").info("job finished", duration=True)
    get_logger("jobs").info("job finished", duration=10**400)
    raw = out.getvalue().decode()
    assert ('"duration":3.0' in raw, '"duration":2.0' in raw) == (True, True)
    lines = parse_lines(out.getvalue())
    types = [type(line.get(c.LOG_DURATION)) for line in lines]
    assert types == [float, float, type(None), type(None)]
    assert [line.get("extra_duration") for line in lines[2:]] == [True, str(10**400)]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (c.LOG_STATUS_CODE, "200"), (c.LOG_STATUS_CODE, 200.5), (c.LOG_STATUS_CODE, True),
        (c.LOG_STATUS_CODE, 99), (c.LOG_STATUS_CODE, 600), (c.LOG_STATUS_CODE, 2**70),
        (c.LOG_DURATION, float("nan")), (c.LOG_DURATION, float("inf")),
        (c.LOG_DURATION, -1.0), (c.LOG_DURATION, "1"), (c.LOG_REQUEST_ID, ""),
        (c.LOG_REQUEST_ID, "two words"), (c.LOG_REQUEST_ID, "x" * 129),
        (c.LOG_TRACE_ID, "zz"), (c.LOG_SPAN_ID, 7), (c.LOG_USER_ID, 1.5),
    ],
)  # fmt: skip
def test_a_value_the_schema_refuses_is_extra(
    name: str, value: Any, out: io.BytesIO, validator: Draft202012Validator
) -> None:
    """Each value the schema refuses for a request field (as the line would show it: NaN
    is ``null``) is written as ``extra_<name>``, and the line validates."""
    configure_logging(stream=out)
    get_logger("edges").info("edge", **{name: value})
    [line] = parse_lines(out.getvalue())
    assert name not in line
    assert f"extra_{name}" in line
    assert schema_errors(validator, [line]) == []


#: JSON-able values of every type, as an app might log them under any name.
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.uuids(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
OWN = sorted((*c.LOG_CORE_FIELDS, *c.LOG_CONTEXT_FIELDS, c.LOG_EXCEPTION, c.LOG_TRUNCATED))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=st.dictionaries(st.sampled_from(OWN), VALUES, min_size=1))
def test_any_value_under_an_own_name_leaves_a_valid_line(
    fields: dict[str, Any], validator: Draft202012Validator
) -> None:
    """Whatever an app logs or binds under the schema's own names, every line validates
    against the committed schema: a field never changes type from line to line."""
    out = io.BytesIO()
    configure_logging(stream=out)
    log = get_logger("fuzz")
    std = logging.getLogger("fuzz.std")
    log.info("kw", **fields)
    std.info("extra", extra={k: v for k, v in fields.items() if k != c.LOG_MESSAGE})
    bind(**fields)
    log.info("bound")
    unbind(*fields)
    lines = parse_lines(out.getvalue())
    assert len(lines) == 3
    assert schema_errors(validator, lines) == []
    assert all(list(problems(line)) == [] for line in lines)


def test_structlog_contextvars_reach_every_line(out: io.BytesIO) -> None:
    """``structlog.contextvars.bind_contextvars`` in a view reaches the structlog, stdlib
    and access lines of the request, masked and checked like the kit's ``bind()``;
    ``clear_contextvars`` removes it."""
    log = get_logger("views")
    std = logging.getLogger("views.std")

    def view(item_id: int) -> str:
        structlog.contextvars.bind_contextvars(
            tenant="acme", password="hunter2", request_id="theirs", level="x"
        )
        log.info("s")
        std.info("w")
        return "ok"

    lines = serve(view, out)
    request_id = lines[-1][c.LOG_REQUEST_ID]
    for line in lines:
        assert line["tenant"] == "acme"
        assert line["password"] == "[REDACTED]"
        assert (line["extra_request_id"], line["extra_level"]) == ("theirs", "x")
        assert_request_values(line, request_id)
    assert "hunter2" not in out.getvalue().decode()
    structlog.contextvars.clear_contextvars()
    log.info("after")
    assert "tenant" not in parse_lines(out.getvalue())[-1]


@pytest.mark.parametrize("registry", [True, False], ids=["registry", "public-api-only"])
def test_what_a_request_binds_with_structlog_ends_with_it(
    out: io.BytesIO, monkeypatch: pytest.MonkeyPatch, registry: bool
) -> None:
    """A sync worker serves requests one after another in one context: what a request
    bound with ``bind_contextvars`` (a user id) must not reach the next request's lines.
    What was bound before the requests (at start-up) stays on every line, and a request
    that rebound it gets it back afterwards. Also with a structlog without the registry
    the kit reads first."""
    if not registry:
        monkeypatch.setattr(_pipeline, "STRUCTLOG_VARS", None)
    configure_logging(stream=out)
    app = Flask("carry")

    @app.get("/login/<user>")
    def login(user: str) -> str:
        structlog.contextvars.bind_contextvars(user=user, worker="rebound")
        return "ok"

    @app.get("/anonymous")
    def anonymous() -> str:
        get_logger("views").info("anonymous page")
        return "ok"

    init_app(app)
    structlog.contextvars.bind_contextvars(worker="w1")  # at start-up, before any request
    client = app.test_client()
    for path in ("/login/alice", "/anonymous"):
        assert client.get(path).data == b"ok"  # read to its end: the request ends
    login_line, view_line, anonymous_line = parse_lines(out.getvalue())
    assert (login_line["user"], login_line["worker"]) == ("alice", "rebound")
    for line in (view_line, anonymous_line):
        assert "user" not in line
        assert line["worker"] == "w1"
    assert structlog.contextvars.get_contextvars() == {"worker": "w1"}


def test_a_request_binding_structlog_first_leaves_nothing_bound(out: io.BytesIO) -> None:
    """The first ``bind_contextvars`` of the process made in a request: nothing was bound
    before it, so nothing is after it."""
    configure_logging(stream=out)
    app = Flask("first")

    @app.get("/")
    def index() -> str:
        structlog.contextvars.bind_contextvars(order_id=42)
        return "ok"

    init_app(app)
    assert app.test_client().get("/").data == b"ok"
    assert parse_lines(out.getvalue())[-1]["order_id"] == 42
    assert structlog.contextvars.get_contextvars() == {}


def test_structlog_contextvars_are_checked_as_bind_is(out: io.BytesIO) -> None:
    """A status or duration bound with ``bind_contextvars`` in a request is ``extra_<name>``
    on every line of it, as with the kit's ``bind()``: the access line has its own."""
    log = get_logger("views")

    def view(item_id: int) -> str:
        structlog.contextvars.bind_contextvars(status_code=201, duration=5.0)
        log.info("s")
        return "ok"

    app_line, access = serve(view, out)
    for line in (app_line, access):
        assert (line["extra_status_code"], line["extra_duration"]) == (201, 5.0)
    assert c.LOG_STATUS_CODE not in app_line
    assert c.LOG_DURATION not in app_line
    assert access[c.LOG_STATUS_CODE] == 200


def test_structlog_contextvars_without_structlogs_registry(
    out: io.BytesIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A structlog without the registry the kit reads first: its public
    ``get_contextvars`` gives the same fields."""
    monkeypatch.setattr(_pipeline, "STRUCTLOG_VARS", None)
    configure_logging(stream=out)
    structlog.contextvars.bind_contextvars(tenant="acme")
    get_logger("jobs").info("job")
    structlog.contextvars.unbind_contextvars("tenant")
    get_logger("jobs").info("job")
    first, second = parse_lines(out.getvalue())
    assert first["tenant"] == "acme"
    assert "tenant" not in second


#: Values near each field rule's edges: ids of the right and wrong shapes and lengths,
#: status codes around their range, integral floats (JSON integers), negative durations.
EDGES = (
    VALUES
    | st.from_regex(r"[0-9a-f]{15,33}", fullmatch=True)
    | st.from_regex(r"[A-Za-z0-9._:\-]{0,130}", fullmatch=True)
    | st.integers(90, 610)
    | st.floats(-1.0, 700.0)
    | st.sampled_from([200.0, 200.5, True, False, -0.0, "x" * 256, "x" * 257])
)


RULES = field_rules()


def _edges(rule: dict[str, Any]) -> list[Any]:
    """Values on and beside each bound of ``rule``, as ints, floats and strings."""
    found: list[Any] = [None, True, "", "x", {}, [], float("nan"), 1.5]
    for bound in ("minimum", "maximum"):
        if bound in rule:
            edge = rule[bound]
            found += [edge - 1, edge, edge + 1, float(edge), edge - 0.5, edge + 0.5]
    for bound in ("minLength", "maxLength"):
        if bound in rule:
            found += ["a" * max(rule[bound] + d, 0) for d in (-1, 0, 1)]
    return found


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name, rule in sorted(RULES.items()) for value in _edges(rule)],
)
def test_the_compiled_field_test_agrees_with_the_schema_on_edges(name: str, value: Any) -> None:
    """On every bound of every field rule, schema.checker says what schema.problems says."""
    rule = RULES[name]
    assert checker(rule)(value) is (next(problems(value, rule), None) is None)


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(sorted(RULES)), value=EDGES)
def test_the_compiled_field_test_agrees_with_the_schema(name: str, value: Any) -> None:
    """schema.checker (made once, run per line) says what schema.problems says, value for
    value: too strict would rename an app's valid field, too lax would break the line."""
    rule = RULES[name]
    assert checker(rule)(value) is (next(problems(value, rule), None) is None)


#: Names Elasticsearch refuses (the whole line with them), and what the kit writes.
REFUSED_NAMES = {
    "": "extra_", " ": "extra_ ", "_id": "extra__id", "_index": "extra__index",
    "@timestamp": "extra_@timestamp", ".a": "extra__a", "b.": "extra_b_", "a..b": "extra_a__b",
    "service.name": "extra_service_name", "path.raw": "extra_path_raw", " .a": "extra_ _a",
    "a. ": "extra_a_ ", "a. .b": "extra_a_ _b",
}  # fmt: skip


def test_names_elasticsearch_refuses_are_written_as_extra(
    out: io.BytesIO, validator: Draft202012Validator
) -> None:
    """A keyword, a stdlib ``extra=``, a ``bind()`` and a structlog context field whose
    name Elasticsearch refuses (empty, ``_id``, ``@timestamp``, a stray dot, a dotted name
    under a field of the schema: it refuses the whole line) are written as
    ``extra_<name>``, dots as ``_``, values kept; ``user.id`` (no field of the kit's
    under ``user``) stays as it is."""
    configure_logging(stream=out)
    fields = {name: n for n, name in enumerate(REFUSED_NAMES)}
    get_logger("names").info("keywords", **fields, **{"user.id": 7})
    logging.getLogger("names.stdlib").info("extras", extra={"_tenant": 1, "service.name": 2})
    bind(**{"@version": 3})
    structlog.contextvars.bind_contextvars(**{"method.name": 4, "_routing": 5})
    get_logger("names").info("bound")
    keywords, extras, bound = parse_lines(out.getvalue())
    assert {**{REFUSED_NAMES[k]: v for k, v in fields.items()}, "user.id": 7} == {
        k: v for k, v in keywords.items() if k not in ("timestamp", "level", "logger",
                                                     "message", "service", "env")
    }  # fmt: skip
    assert 2 == extras["extra_service_name"]
    # The stdlib's own rule: extra= names starting with "_" are a record's private ones.
    assert "_tenant" not in extras
    assert "extra__tenant" not in extras
    assert (3, 4, 5) == (
        bound["extra_@version"],
        bound["extra_method_name"],
        bound["extra__routing"],
    )
    assert [] == schema_errors(validator, [keywords, extras, bound])


def test_unbind_removes_a_field_bound_under_a_refused_name(out: io.BytesIO) -> None:
    """``unbind("_id")`` removes the ``extra__id`` that ``bind(_id=...)`` added."""
    configure_logging(stream=out)
    bind(**{"_id": 1, "service.name": 2, "kept": 3})
    unbind("_id", "service.name")
    get_logger().info("after")
    [event] = parse_lines(out.getvalue())
    assert ("extra__id", "extra_service_name") not in event.items()
    assert {"kept"} == {k for k in event if k.startswith(("extra_", "kept"))}


def test_a_renamed_field_never_replaces_another(out: io.BytesIO) -> None:
    """``_id`` beside an ``extra__id`` of the app's: both values are written."""
    configure_logging(stream=out)
    get_logger().info("both", **{"_id": 1, "extra__id": 2})
    [event] = parse_lines(out.getvalue())
    assert (2, 1) == (event["extra__id"], event["extra__id_"])


class _Field(enum.Enum):
    LEVEL = "level"
    SERVICE = "service"
    REQUEST_ID = "request_id"
    REFUSED = "_id"


def test_a_dict_messages_keys_are_checked_as_written(
    out: io.BytesIO, validator: Draft202012Validator
) -> None:
    """A stdlib dict message's keys are checked by the name they are written under: an
    ``Enum`` key whose value is ``level`` replaced the line's level (and ``service``,
    ``request_id``); now each is ``extra_<name>``, as a string key is. Keys written alike
    (``1`` and ``"1"``) both stay; ``extra={1: ...}`` no longer fails the whole record."""
    configure_logging(stream=out)
    logging.getLogger("dicts").info(
        {_Field.LEVEL: "debug", _Field.SERVICE: "other", _Field.REQUEST_ID: 42,
         _Field.REFUSED: 1, 1: "a", "1": "b"}
    )  # fmt: skip
    numbered: dict[Any, Any] = {1: "one"}  # typeshed wants str keys; the stdlib takes any
    logging.getLogger("dicts").info("numbered", extra=numbered)
    first, second = parse_lines(out.getvalue())
    assert ("info", "limoneide") == (first["level"], first["service"])
    assert "request_id" not in first
    assert ("debug", "other", 42) == (
        first["extra_level"],
        first["extra_service"],
        first["extra_request_id"],
    )
    assert (1, "a", "b") == (first["extra__id"], first["1"], first["1_"])
    assert ("numbered", "one") == (second["message"], second["1"])
    assert [] == schema_errors(validator, [first, second])


def test_a_renamed_field_keeps_the_apps_own_extra_field(out: io.BytesIO) -> None:
    """``level=2`` beside ``extra_level=1``: both values are written (the 1 was replaced),
    from a keyword, a stdlib ``extra=`` and structlog's context alike."""
    configure_logging(stream=out)
    get_logger().info("kw", level=2, extra_level=1)
    logging.getLogger("std").info("std", extra={"extra_level": "mine", "level": "x"})
    bind(extra_message="app")
    structlog.contextvars.bind_contextvars(message="structlog's")
    get_logger().info("ctx")
    kw, std, ctx = parse_lines(out.getvalue())
    assert (1, 2) == (kw["extra_level"], kw["extra_level_"])
    assert ("mine", "x") == (std["extra_level"], std["extra_level_"])
    assert ("app", "structlog's") == (ctx["extra_message"], ctx["extra_message_"])
