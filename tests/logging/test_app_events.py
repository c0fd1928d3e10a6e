"""App events (structlog): the schema, levels, fields, exceptions."""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import orjson
import pytest
import structlog
from flask import Flask
from jsonschema import Draft202012Validator

from limone_obs.errors import ConfigError
from limone_obs.logging import (
    bind,
    clear_context,
    configure_logging,
    get_logger,
    init_app,
    unbind,
)
from tests.logging.helpers import parse_lines, schema_errors


def test_event_has_core_fields_and_keywords(out: io.BytesIO) -> None:
    """An app event carries the six core fields plus its keyword arguments."""
    configure_logging(stream=out, service="svc", env="test")
    get_logger("app.ai").info("completion finished", model="m1", tokens=812)
    [event] = parse_lines(out.getvalue())
    expected = {
        "level": "info",
        "logger": "app.ai",
        "message": "completion finished",
        "service": "svc",
        "env": "test",
        "model": "m1",
        "tokens": 812,
    }
    assert expected == {k: v for k, v in event.items() if k != "timestamp"}


def test_every_level_validates(out: io.BytesIO, validator: Draft202012Validator) -> None:
    """Each logging method writes a line whose level is a lower-case schema level."""
    configure_logging(stream=out, level="debug")
    log = get_logger("app")
    for method in ("debug", "info", "warning", "warn", "error", "critical", "fatal"):
        getattr(log, method)("x")
    events = parse_lines(out.getvalue())
    assert [] == schema_errors(validator, events)
    expected = ["debug", "info", "warning", "warning", "error", "critical", "critical"]
    assert expected == [e["level"] for e in events]


def test_level_filters_events(out: io.BytesIO) -> None:
    """Events below the configured level are not written."""
    configure_logging(stream=out, level="warning")
    log = get_logger("app")
    log.info("hidden")
    log.warning("shown")
    assert ["shown"] == [e["message"] for e in parse_lines(out.getvalue())]


def test_the_level_variable_wins_over_the_argument(
    out: io.BytesIO, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``LIMONE_OBS_LOG_LEVEL`` sets the level (it was ignored without a word), over the
    argument, with one warning line when they differ; ``warn`` is ``warning``."""
    monkeypatch.setenv("LIMONE_OBS_LOG_LEVEL", "debug")
    configure_logging(stream=out)
    get_logger().debug("seen")
    configure_logging(stream=out, level="info")
    get_logger().debug("seen again")
    monkeypatch.setenv("LIMONE_OBS_LOG_LEVEL", "WARN")
    configure_logging(stream=out)
    get_logger().info("not seen")
    events = parse_lines(out.getvalue())
    messages = [e["message"] for e in events]
    assert ["seen", "seen again"] == [m for m in messages if m.startswith(("seen", "not"))]
    said = [m for m in messages if "LIMONE_OBS_LOG_LEVEL" in m]
    assert [
        "limone-obs: LIMONE_OBS_LOG_LEVEL='debug' wins over configure_logging(level='info'): "
        "unset it to log at the level the code gives"
    ] == said


def test_an_unknown_level_in_the_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value of the variable that is no level is a ConfigError naming the variable."""
    monkeypatch.setenv("LIMONE_OBS_LOG_LEVEL", "loud")
    with pytest.raises(ConfigError, match="LIMONE_OBS_LOG_LEVEL='loud': unknown level"):
        configure_logging()


def test_timestamp_is_utc_rfc3339_with_milliseconds(out: io.BytesIO) -> None:
    """The timestamp looks like 2026-01-02T03:04:05.678Z."""
    configure_logging(stream=out)
    get_logger().info("x")
    [event] = parse_lines(out.getvalue())
    stamp = event["timestamp"]
    assert (24, "T", ".", "Z") == (len(stamp), stamp[10], stamp[19], stamp[-1])


def test_positional_arguments_are_formatted(out: io.BytesIO) -> None:
    """``log.info("user %s", name)`` formats the message like the stdlib."""
    configure_logging(stream=out)
    get_logger().info("user %s has %d projects", "ada", 3)
    assert "user ada has 3 projects" == parse_lines(out.getvalue())[0]["message"]


def test_bad_format_arguments_do_not_raise(out: io.BytesIO) -> None:
    """A format string that does not fit its arguments still writes one line."""
    configure_logging(stream=out)
    get_logger().info("%d items", "many")
    [event] = parse_lines(out.getvalue())
    assert event["message"].startswith("%d items")


def test_keyword_named_like_core_field_is_kept_aside(out: io.BytesIO) -> None:
    """``level=`` or ``message=`` keywords cannot overwrite the schema fields."""
    configure_logging(stream=out)
    get_logger().info("real", level="fake", message="other")
    [event] = parse_lines(out.getvalue())
    expected = ("info", "real", "fake", "other")
    assert expected == (
        event["level"],
        event["message"],
        event["extra_level"],
        event["extra_message"],
    )


def test_context_field_named_like_core_field_is_kept_aside(
    out: io.BytesIO, validator: Draft202012Validator
) -> None:
    """``bind(level=..., message=..., timestamp=...)`` cannot overwrite any line's own
    fields (app events, stdlib records, access lines): they are bound as ``extra_*``."""
    configure_logging(stream=out)
    app = Flask("core_bind")

    @app.get("/")
    def index() -> str:
        bind(level="fake", message="other", timestamp="then", exception="none")
        get_logger("app").info("real")
        logging.getLogger("stdlib").warning("also real")
        return "ok"

    init_app(app)
    assert b"ok" == app.test_client().get("/").data  # read to the end: the request ends
    events = parse_lines(out.getvalue())
    assert [] == schema_errors(validator, events)
    assert [("info", "real"), ("warning", "also real"), ("info", "request finished")] == [
        (e["level"], e["message"]) for e in events
    ]
    for event in events:
        assert event["timestamp"].endswith("Z")
        assert "exception" not in event
        assert ("fake", "other", "then", "none") == (
            event["extra_level"],
            event["extra_message"],
            event["extra_timestamp"],
            event["extra_exception"],
        )


def test_unbind_removes_a_core_named_field_bound_aside(out: io.BytesIO) -> None:
    """``unbind("message")`` undoes ``bind(message=...)``, which was bound as
    ``extra_message``."""
    configure_logging(stream=out)
    bind(message="other", level="fake", user="u1")
    unbind("message", "user")
    get_logger("app").info("after")
    clear_context()
    (event,) = parse_lines(out.getvalue())
    assert ("after", "fake") == (event["message"], event["extra_level"])
    assert "extra_message" not in event
    assert "user" not in event


def test_bound_logger_adds_fields(out: io.BytesIO) -> None:
    """``log.bind(k=v)`` adds k to every event of the new logger."""
    configure_logging(stream=out)
    get_logger("app", component="ai").bind(model="m1").info("x")
    [event] = parse_lines(out.getvalue())
    assert ("ai", "m1") == (event["component"], event["model"])


def test_context_fields_appear_on_lines(out: io.BytesIO) -> None:
    """Fields bound with ``bind`` appear on later lines of the same context."""
    configure_logging(stream=out)
    bind(request_id="abc123", user_id="u1")
    get_logger().info("x")
    [event] = parse_lines(out.getvalue())
    assert ("abc123", "u1") == (event["request_id"], event["user_id"])


def test_exception_is_one_line_with_type_message_traceback(
    out: io.BytesIO, validator: Draft202012Validator
) -> None:
    """``log.exception`` writes one line with the exception's type, message and traceback."""
    configure_logging(stream=out)
    try:
        raise KeyError("project 42")
    except KeyError:
        get_logger().exception("lookup failed")
    events = parse_lines(out.getvalue())
    assert [] == schema_errors(validator, events)
    [event] = events
    exc = event["exception"]
    assert ("KeyError", "'project 42'") == (exc["type"], exc["message"])
    assert "Traceback (most recent call last)" in exc["traceback"]
    assert 'raise KeyError("project 42")' in exc["traceback"]


def test_traceback_has_no_local_variables(out: io.BytesIO) -> None:
    """A local variable's value (e.g. a password) never appears in a traceback."""
    configure_logging(stream=out)

    def login() -> None:
        secret_value = "hunter2-very-secret"
        raise ValueError(f"bad login for {len(secret_value)}")

    try:
        login()
    except ValueError as exc:
        get_logger().error("failed", exc_info=exc)
    assert b"hunter2-very-secret" not in out.getvalue()


def _stacked_call(out: io.BytesIO) -> None:
    log = get_logger("stacked")
    log.info("with a stack", stack_info=True)
    log.info("without", stack_info=False)
    logging.getLogger("stacked.stdlib").info("stdlib's", stack_info=True)


def test_stack_info_is_the_callers_stack_as_text_like_the_stdlibs(
    out: io.BytesIO, validator: Draft202012Validator
) -> None:
    """``stack_info=True`` gives structlog's line the caller's stack as text, as it gives
    a stdlib record's (it was written as ``true``: one field name, two types, and no
    stack); a false value gives no field."""
    configure_logging(stream=out)
    _stacked_call(out)
    events = parse_lines(out.getvalue())
    assert ["with a stack", "without", "stdlib's"] == [e["message"] for e in events]
    app, plain, stdlib = events
    assert "stack_info" not in plain
    for event in (app, stdlib):
        stack = event["stack_info"]
        assert stack.startswith("Stack (most recent call last):\n"), stack
        last_frame = [line for line in stack.splitlines() if line.startswith("  File ")][-1]
        assert last_frame.endswith("in _stacked_call"), stack  # the caller's, no kit's
    assert [] == schema_errors(validator, events)


def test_exc_info_of_any_true_value_is_the_exception_being_handled(out: io.BytesIO) -> None:
    """``exc_info=1`` inside ``except``, as structlog reads any true value: the exception."""
    configure_logging(stream=out)
    try:
        raise KeyError("missing")
    except KeyError:
        get_logger().error("failed", exc_info=1)
    [event] = parse_lines(out.getvalue())
    assert "KeyError" == event["exception"]["type"]


def test_second_configure_does_not_duplicate(out: io.BytesIO) -> None:
    """Calling configure_logging twice still writes each event once."""
    configure_logging(stream=out)
    configure_logging(stream=out)
    get_logger().info("once")
    assert 1 == len(parse_lines(out.getvalue()))


def test_logger_made_before_configure_follows_it() -> None:
    """A module-level logger created before configure_logging uses the new stream and level."""
    log = get_logger("early")
    first, second = io.BytesIO(), io.BytesIO()
    configure_logging(stream=first)
    log.info("a")
    configure_logging(stream=second, level="error")
    log.info("dropped")
    log.error("b")
    assert (["a"], ["b"]) == (
        [e["message"] for e in parse_lines(first.getvalue())],
        [e["message"] for e in parse_lines(second.getvalue())],
    )


def test_text_stream_is_accepted() -> None:
    """A text stream (StringIO) receives the same lines as a binary one."""
    text = io.StringIO()
    configure_logging(stream=text)
    get_logger().info("x")
    assert "x" == parse_lines(text.getvalue())[0]["message"]


class BrokenMapping(Mapping[str, str]):
    """A mapping whose every access raises."""

    def __getitem__(self, key: str) -> str:
        raise RuntimeError("broken")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("broken")

    def __len__(self) -> int:
        raise RuntimeError("broken")


def test_unrenderable_event_writes_a_failure_line(out: io.BytesIO) -> None:
    """A field that breaks rendering gives an error line instead of raising."""
    configure_logging(stream=out)
    get_logger("app").info("x", weird=BrokenMapping())
    [event] = parse_lines(out.getvalue())
    expected = ("error", "log event could not be rendered", "RuntimeError: broken")
    assert expected == (event["level"], event["message"], event["render_error"])


def test_plain_structlog_loggers_use_the_same_schema(
    out: io.BytesIO, validator: Draft202012Validator
) -> None:
    """Code calling ``structlog.get_logger()`` directly gets the same JSON lines."""
    configure_logging(stream=out)
    structlog.get_logger("direct").warning("via structlog", k=1)
    events = parse_lines(out.getvalue())
    assert [] == schema_errors(validator, events)
    assert ("direct", "warning", 1) == (events[0]["logger"], events[0]["level"], events[0]["k"])


def test_a_logger_without_a_name_is_named_after_its_module(out: io.BytesIO) -> None:
    """structlog.get_logger() and get_logger() without a name fill ``logger`` with the
    calling module's name, as structlog's own stdlib factory does (not the service)."""
    configure_logging(stream=out, service="svc")
    structlog.get_logger().info("from structlog")
    get_logger().info("from the kit")
    assert [__name__, __name__] == [e["logger"] for e in parse_lines(out.getvalue())]


def test_a_structlog_configuration_made_before_is_replaced_loudly(
    out: io.BytesIO, caplog: pytest.LogCaptureFixture
) -> None:
    """The app's own structlog.configure is replaced (its processors would silently stop
    running): a warning line names them and the argument that keeps them. The kit's own
    configuration, made again by a second call, is not warned about."""

    def add_team(
        _logger: object, _method: str, event: MutableMapping[str, Any]
    ) -> Mapping[str, Any]:
        return {**event, "team": "ledger"}

    structlog.configure(processors=[add_team, structlog.processors.JSONRenderer()])
    configure_logging(stream=out)
    configure_logging(stream=out)
    replaced = [
        r.getMessage() for r in caplog.records if "structlog configuration" in r.getMessage()
    ]
    assert 1 == len(replaced)
    assert "add_team, JSONRenderer" in replaced[0]
    assert "configure_logging(processors=[...])" in replaced[0]


def test_a_renderer_among_the_processors_is_refused() -> None:
    """structlog's renderers turn the event into text the kit cannot write: refused at
    configure time, naming the renderer."""
    with pytest.raises(ConfigError, match="JSONRenderer is a renderer"):
        configure_logging(processors=[structlog.processors.JSONRenderer()])  # type: ignore[list-item]


def test_a_processor_that_fails_loses_nothing_of_the_event(out: io.BytesIO) -> None:
    """A processor returning text, or raising: the line has the event's message and
    fields as they were, and render_error names the processor."""

    def to_text(_logger: object, _method: str, event: MutableMapping[str, Any]) -> str:
        return str(event)

    def broken(_logger: object, _method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        raise KeyError("missing")

    for processor in (to_text, broken):
        configure_logging(stream=out, processors=[processor])  # type: ignore[list-item]
        get_logger("p").info("kept", order_id=7)
    first, second = parse_lines(out.getvalue())
    for line, name in ((first, "to_text returned a str"), (second, "broken raised KeyError")):
        assert ("kept", 7) == (line["message"], line["order_id"])
        assert name in line["render_error"]


def test_processors_see_the_message_as_event(out: io.BytesIO) -> None:
    """configure_logging's processors get the message under "event", as structlog's do:
    a scrubber of the message scrubs it, a filter on it drops the event."""

    def scrub(
        _logger: object, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        return {**event, "event": str(event["event"]).replace("alice@example.com", "<email>")}

    def drop(
        _logger: object, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if event.get("event") == "drop me":
            raise structlog.DropEvent
        return event

    configure_logging(stream=out, processors=[scrub, drop])
    get_logger("p").info("invoice sent to alice@example.com", n=1)
    get_logger("p").info("drop me")
    [line] = parse_lines(out.getvalue())
    assert ("invoice sent to <email>", 1) == (line["message"], line["n"])
    assert "event" not in line


@pytest.mark.parametrize(
    "app_config",
    [
        "",
        "structlog.configure(processors=[structlog.processors.add_log_level,\n"
        "                                structlog.processors.JSONRenderer()])\n",
    ],
    ids=["no-app-config", "app-json-renderer"],
)
def test_a_structlog_logger_bound_at_import_follows_configure_logging(app_config: str) -> None:
    """A module binding a structlog logger when it is imported (before the app factory
    calls configure_logging): its lines are the kit's JSON with secrets masked, at the
    level configure_logging set. Also when it was bound under the app's own structlog
    configuration (a JSON renderer): its calls raised a TypeError there."""
    script = (
        "import structlog, limone_obs.logging as kit\n"
        f"{app_config}"
        "log = structlog.get_logger().bind(component='stock')\n"
        "kit.configure_logging(service='svc', level='info')\n"
        "log.debug('hidden')\n"
        "log.info('bound at import', password='hunter2')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    [line] = [line for line in parse_lines(done.stdout) if line.get("component")]
    assert ("bound at import", "stock", "svc", "info") == (
        line["message"],
        line["component"],
        line["service"],
        line["level"],
    )
    assert "hunter2" not in done.stdout


def test_structlogs_async_and_filtering_methods_work(out: io.BytesIO) -> None:
    """Code written for structlog's own bound logger (await log.ainfo, is_enabled_for)
    keeps working once configure_logging took structlog over."""
    configure_logging(stream=out, level="info")
    log = structlog.get_logger("async.user")

    async def handler() -> None:
        await log.ainfo("async line", n=1)
        await log.adebug("filtered")

    asyncio.run(handler())
    [line] = parse_lines(out.getvalue())
    assert ("async line", 1) == (line["message"], line["n"])
    assert (True, False) == (log.is_enabled_for(logging.INFO), log.is_enabled_for(logging.DEBUG))


def test_a_replaced_structlog_level_is_named_not_its_default_processors(
    out: io.BytesIO, caplog: pytest.LogCaptureFixture
) -> None:
    """An app that configured only structlog's level (a filtering wrapper class): the
    warning names that class and where the level now comes from, and calls the processors
    structlog's defaults rather than listing them as if the app had set them."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    configure_logging(stream=out)
    # The same after the kit's import-time configuration (processors the kit's own).
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    configure_logging(stream=out)
    said = [r.getMessage() for r in caplog.records if "structlog configuration" in r.getMessage()]
    assert 2 == len(said)
    assert (
        "(processors: structlog's defaults; wrapper class: BoundLoggerFilteringAtWarning" in said[0]
    )
    assert "(wrapper class: BoundLoggerFilteringAtError, whose level gives way" in said[1]


SECRET = "s3cr3t-VALUE-9f8e7d"


def _masked_team(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return {**event, "team": "ledger"}


def _renamed_json(logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
    """structlog's EventRenamer("message") then JSONRenderer: the message under "message"."""
    renamed = structlog.processors.EventRenamer("message")(logger, method, event)
    return structlog.processors.JSONRenderer()(logger, method, renamed)


def _to_tuple(_logger: object, _method: str, event: MutableMapping[str, Any]) -> Any:
    return ((event.pop("event"), "extra-arg"), event)


@pytest.mark.parametrize(
    ("last", "kind", "fields_kept"),
    [
        (structlog.processors.JSONRenderer(), "a str", True),
        (structlog.processors.JSONRenderer(serializer=orjson.dumps), "a bytes", True),
        (structlog.dev.ConsoleRenderer(colors=True), "a str", False),
        (structlog.processors.KeyValueRenderer(), "a str", False),
        (None, "an event dict (no renderer)", True),
        (_to_tuple, "a str", True),
        (_renamed_json, "a str", True),
    ],
)
def test_an_app_structlog_configuration_made_after_never_fails_a_request(
    out: io.BytesIO,
    caplog: pytest.LogCaptureFixture,
    validator: Draft202012Validator,
    *,
    last: Any,
    kind: str,
    fields_kept: bool,
) -> None:
    """The app configures structlog after configure_logging (the team's old setup left in
    its factory), with a renderer of its own or none, and stdlib processors that ask the
    logger for its level: every line is still one JSON line of the schema with its
    secrets masked, the request answers 200 (it answered 500: the kit's logger took
    only bytes), and one warning line says what happened and what to do."""
    configure_logging(stream=out)
    chain: list[Any] = [
        structlog.stdlib.filter_by_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
        _masked_team,
        structlog.processors.format_exc_info,
    ]
    structlog.configure(processors=chain if last is None else [*chain, last])
    app = Flask(__name__)
    init_app(app)

    @app.get("/ping")
    def ping() -> str:
        log = structlog.get_logger("orders")
        log.info("ping", password=SECRET, user="bob")
        try:
            raise ValueError(f"refused token={SECRET}")
        except ValueError:
            log.exception("failed")
        return "ok"

    assert [200, 200] == [app.test_client().get("/ping").status_code for _ in range(2)]
    lines = parse_lines(out.getvalue())
    assert [] == schema_errors(validator, lines)
    mine = [line for line in lines if line["logger"] == "orders"]
    assert 4 == len(mine), lines
    assert ["info", "error"] * 2 == [line["level"] for line in mine]
    assert "ping" in mine[0]["message"]
    if fields_kept and last is not _to_tuple:  # a tuple's parts are joined
        assert "ping" == mine[0]["message"]
    assert SECRET not in out.getvalue().decode()
    if fields_kept:  # a JSON renderer's or the event dict's fields stay fields
        assert ("ledger", "bob") == (mine[0]["team"], mine[0]["user"])
        assert ("ValueError", "refused token=[REDACTED]") == (
            mine[1]["exception"]["type"],
            mine[1]["exception"]["message"],
        )
    told = [r.getMessage() for r in caplog.records if "are not the kit's" in r.getMessage()]
    assert 1 == len(told), told
    assert f"returned {kind}," in told[0]


def test_structlogs_stdlib_setup_made_after_keeps_message_and_exception(
    out: io.BytesIO, validator: Draft202012Validator
) -> None:
    """structlog's documented stdlib setup (``ProcessorFormatter.wrap_for_formatter``,
    stdlib ``LoggerFactory``) made after configure_logging hands the kit's handler records
    whose msg is the event dict: the event is the message (it was written empty, the text
    under "event", the level twice as extra_level), secrets masked, and ``log.exception``
    carries the exception."""
    configure_logging(stream=out)
    structlog.configure(
        processors=[
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    log = structlog.get_logger("shop.orders")
    log.info("order placed", password=SECRET, n=1)
    try:
        raise ValueError("card declined")
    except ValueError:
        log.exception("payment failed")
    lines = parse_lines(out.getvalue())
    assert [] == schema_errors(validator, lines)
    placed, failed = lines
    assert ("order placed", "info", "[REDACTED]", 1) == (
        placed["message"],
        placed["level"],
        placed["password"],
        placed["n"],
    )
    assert not {"event", "extra_level", "extra_timestamp"} & (placed.keys() | failed.keys())
    assert ("payment failed", "error", "ValueError") == (
        failed["message"],
        failed["level"],
        failed["exception"]["type"],
    )
