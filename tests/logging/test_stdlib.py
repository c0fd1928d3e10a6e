"""stdlib records (libraries, werkzeug) in the same schema; handler hygiene."""

from __future__ import annotations

import io
import logging
import queue
import sys
import warnings
from collections.abc import Iterator
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path

import pytest
import requests
from flask import Flask
from jsonschema import Draft202012Validator

from limone_obs.logging import JsonFormatter, JsonLineHandler, bind, configure_logging, init_app
from limone_obs.logging._sink import Sink
from tests.logging.helpers import parse_lines, schema_errors, stdlib_logger
from tests.support import serve, settled


def test_record_has_core_fields_and_extras(out: io.BytesIO) -> None:
    """A stdlib record carries the core fields and its ``extra=`` fields."""
    configure_logging(stream=out, service="svc", env="test")
    stdlib_logger("lib.db").warning("slow query %s", "q1", extra={"rows": 3, "table": "p"})
    [event] = parse_lines(out.getvalue())
    expected = {
        "level": "warning",
        "logger": "lib.db",
        "message": "slow query q1",
        "service": "svc",
        "env": "test",
        "rows": 3,
        "table": "p",
    }
    assert expected == {k: v for k, v in event.items() if k != "timestamp"}


def test_record_validates(out: io.BytesIO, validator: Draft202012Validator) -> None:
    """Records of every level, custom levels included, validate against the schema."""
    configure_logging(stream=out, level="debug")
    logger = stdlib_logger("lib")
    for level in (5, 10, 15, 20, 25, 30, 40, 50, 60):
        logger.log(level, "x")
    events = parse_lines(out.getvalue())
    assert [] == schema_errors(validator, events)
    assert 8 == len(events)  # level 5 is below debug


def test_record_carries_context(out: io.BytesIO) -> None:
    """A library's record logged inside a request carries the bound context."""
    configure_logging(stream=out)
    bind(request_id="r-1")
    stdlib_logger("requests").info("GET https://api.example")
    assert "r-1" == parse_lines(out.getvalue())[0]["request_id"]


def test_dict_message_becomes_fields(out: io.BytesIO) -> None:
    """python-json-logger's dict messages become fields of the line."""
    configure_logging(stream=out)
    stdlib_logger("lib").info({"action": "sync", "count": 2})
    [event] = parse_lines(out.getvalue())
    assert ("sync", 2, "") == (event["action"], event["count"], event["message"])


def test_exception_record_is_one_line(out: io.BytesIO, validator: Draft202012Validator) -> None:
    """``logger.exception`` writes one line with type, message and traceback."""
    configure_logging(stream=out)
    try:
        raise RuntimeError("db down")
    except RuntimeError:
        stdlib_logger("lib").exception("query failed")
    events = parse_lines(out.getvalue())
    assert [] == schema_errors(validator, events)
    exc = events[0]["exception"]
    assert ("RuntimeError", "db down") == (exc["type"], exc["message"])
    assert "Traceback" in exc["traceback"]


def test_unformattable_record_still_writes_a_line(out: io.BytesIO) -> None:
    """A record whose arguments do not fit its format string gives a line saying so."""
    # Not through the root logger: pytest's capture handler there re-raises the error.
    logger = logging.getLogger("badformat")
    logger.propagate = False
    handler = JsonLineHandler(Sink(out))
    logger.addHandler(handler)
    try:
        logger.info("%d things", "many")
    finally:
        logger.removeHandler(handler)
    [event] = parse_lines(out.getvalue())
    assert ("error", "log record could not be formatted") == (event["level"], event["message"])


def test_formatter_works_in_a_plain_stream_handler(validator: Draft202012Validator) -> None:
    """JsonFormatter's ``format()`` (python-json-logger's path) gives the same schema."""
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("plain")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("hello", extra={"k": 1})
    finally:
        logger.removeHandler(handler)
    events = parse_lines(text.getvalue())
    assert [] == schema_errors(validator, events)
    assert ("hello", 1) == (events[0]["message"], events[0]["k"])


class KeepMe(logging.Handler):
    """Stands in for a handler someone else installed (e.g. Sentry's)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def foreign_handler() -> Iterator[KeepMe]:
    """A non-console handler on the root logger, removed after the test."""
    handler = KeepMe()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def test_foreign_handlers_are_kept(out: io.BytesIO, foreign_handler: KeepMe) -> None:
    """configure_logging keeps root handlers it did not create (Sentry's, files)."""
    configure_logging(stream=out)
    configure_logging(stream=out)
    stdlib_logger("lib").error("x")
    assert (1, 1) == (len(foreign_handler.records), len(parse_lines(out.getvalue())))


def test_text_console_handler_is_replaced(out: io.BytesIO) -> None:
    """A basicConfig-style text handler on stderr is removed, so no line is printed twice."""
    plain = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(plain)
    try:
        configure_logging(stream=out)
        assert plain not in logging.getLogger().handlers
    finally:
        logging.getLogger().removeHandler(plain)


def test_non_propagating_text_handler_writes_to_the_output(out: io.BytesIO) -> None:
    """A console handler on a logger that does not propagate (an app.logger set up by
    the app) is replaced by one writing JSON to the configured output, with its level and
    filters; a later configure_logging moves it to the new output."""
    logger = logging.getLogger("island")
    logger.propagate = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.addFilter(lambda record: "hidden" not in record.getMessage())
    logger.addHandler(handler)
    try:
        configure_logging(stream=out)
        assert handler not in logger.handlers
        logger.warning("kept")
        logger.warning("hidden line")
        logger.info("below the level")
        later = io.BytesIO()
        configure_logging(stream=later)
        logger.error("moved")
        [replacement] = logger.handlers
    finally:
        logger.handlers.clear()
    assert ["kept"] == [
        e["message"] for e in parse_lines(out.getvalue()) if e["logger"] == "island"
    ]
    assert ["moved"] == [e["message"] for e in parse_lines(later.getvalue())]
    assert isinstance(replacement, JsonLineHandler)


def test_the_apps_own_text_file_handler_is_named_once(
    out: io.BytesIO, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A text FileHandler of the app's own (an audit log) writes lines the kit neither
    formats nor masks: one warning line names its logger and file, once per process; with
    the kit's JsonFormatter, as the line advises, its lines are JSON and masked."""
    audit = logging.getLogger("ledger.audit")
    audit.propagate = False
    text = logging.FileHandler(tmp_path / "audit.log")
    audit.addHandler(text)
    try:
        configure_logging(stream=out)
        configure_logging(stream=out)
        named = [r.getMessage() for r in caplog.records if "audit.log" in r.getMessage()]
        assert 1 == len(named)
        assert "logger 'ledger.audit'" in named[0]
        assert "limone_obs.logging.JsonFormatter" in named[0]
        text.setFormatter(JsonFormatter())
        audit.warning("login password=%s", "s3cret-value")
    finally:
        audit.removeHandler(text)
        text.close()
    [line] = parse_lines((tmp_path / "audit.log").read_bytes())
    assert "s3cret-value" not in line["message"]


def test_a_queue_handler_beside_the_kits_is_named_with_its_listener(
    out: io.BytesIO, caplog: pytest.LogCaptureFixture
) -> None:
    """The asynchronous set-up (a trial): a ``QueueHandler`` on the root whose
    ``QueueListener`` writes text to the console printed every line a second time,
    unmasked, and nothing said so. One warning line names it with what its listener
    writes through; one whose listener writes the kit's JSON is not named."""
    text_queue: queue.Queue[logging.LogRecord] = queue.Queue()
    json_queue: queue.Queue[logging.LogRecord] = queue.Queue()
    json_console = logging.StreamHandler(sys.__stderr__)
    json_console.setFormatter(JsonFormatter())
    listeners = [
        QueueListener(text_queue, logging.StreamHandler(sys.__stderr__)),
        QueueListener(json_queue, json_console),
    ]
    # Its instance dict asked for (a copy, a debugger): the queue's referrer is then that
    # dict, not the listener (a review: the JSON one was named as unmasked).
    assert vars(listeners[1])["queue"] is json_queue
    handlers = [QueueHandler(text_queue), QueueHandler(json_queue)]
    root = logging.getLogger()
    for handler in handlers:
        root.addHandler(handler)
    try:
        configure_logging(stream=out)
    finally:
        for handler in handlers:
            root.removeHandler(handler)
    named = [r.getMessage() for r in caplog.records if "QueueHandler" in r.getMessage()]
    assert 1 == len(named), named
    assert "QueueHandler (its QueueListener writes through StreamHandler)" in named[0]
    assert "would print each line a second time" in named[0]
    assert 2 == len(listeners)


def test_in_memory_and_json_handlers_are_not_named(
    out: io.BytesIO, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Handlers whose lines stay in the process (a StringIO capture) or are already the
    kit's JSON are not warned about."""
    lib = logging.getLogger("lib.quiet")
    memory = logging.StreamHandler(io.StringIO())
    json_file = logging.FileHandler(tmp_path / "json.log")
    json_file.setFormatter(JsonFormatter())
    lib.addHandler(memory)
    lib.addHandler(json_file)
    try:
        configure_logging(stream=out)
    finally:
        lib.handlers.clear()
        json_file.close()
    assert not [r for r in caplog.records if "has a handler of its own" in r.getMessage()]


def test_library_basic_config_adds_no_duplicate(out: io.BytesIO) -> None:
    """A library calling ``logging.basicConfig()`` afterwards does not double the lines."""
    configure_logging(stream=out)
    logging.basicConfig()
    stdlib_logger("lib").warning("once")
    assert 1 == len(parse_lines(out.getvalue()))


def test_service_and_env_default_from_environment(
    out: io.BytesIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without arguments, service and env come from LIMONE_OBS_SERVICE / LIMONE_OBS_ENV."""
    monkeypatch.setenv("LIMONE_OBS_SERVICE", "from-env")
    monkeypatch.setenv("LIMONE_OBS_ENV", "staging")
    configure_logging(stream=out)
    stdlib_logger("lib").warning("x")
    [event] = parse_lines(out.getvalue())
    assert ("from-env", "staging") == (event["service"], event["env"])


def test_warnings_are_captured(out: io.BytesIO) -> None:
    """``warnings.warn`` becomes a JSON line (logger py.warnings)."""
    configure_logging(stream=out)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old api", DeprecationWarning, stacklevel=1)
    [event] = parse_lines(out.getvalue())
    assert ("py.warnings", "warning") == (event["logger"], event["level"])


def test_werkzeug_dev_server_lines_are_json(validator: Draft202012Validator) -> None:
    """A real werkzeug server on 127.0.0.1: its lines and the app's validate."""
    out = io.BytesIO()
    configure_logging(stream=out)
    app = Flask("wz")
    app.add_url_rule("/hello", "hello", lambda: "hi")
    init_app(app)
    with serve(app) as base:
        assert 200 == requests.get(f"{base}/hello", timeout=5).status_code
    # The server's thread writes the access line after the response's last byte.
    events = settled(
        lambda: parse_lines(out.getvalue()),
        lambda lines: any(e["logger"] == "limone_obs.access" for e in lines),
    )
    assert [] == schema_errors(validator, events)
    loggers = {e["logger"] for e in events}
    assert {"werkzeug", "limone_obs.access"} <= loggers


def test_formatter_format_never_raises() -> None:
    """JsonFormatter.format on a record whose message cannot be built returns a line."""
    record = logging.LogRecord("lib", logging.INFO, __file__, 1, "%d things", ("many",), None)
    [event] = parse_lines(JsonFormatter().format(record))
    assert "log record could not be formatted" == event["message"]


def test_terminal_escapes_are_taken_out_of_messages(out: io.BytesIO) -> None:
    """werkzeug's development server colours its request lines for a terminal; in a JSON
    line the escape codes are noise, so they are taken out (a real server and request)."""
    configure_logging(stream=out)
    app = Flask("coloured")
    with serve(app) as base:
        assert 404 == requests.get(f"{base}/missing", timeout=10).status_code
    (line,) = [e for e in parse_lines(out.getvalue()) if e["logger"] == "werkzeug"]
    assert '"GET /missing HTTP/1.1" 404 -' in line["message"]
    assert b"\\u001b" not in out.getvalue()
    # A window title (OSC), bold and reset (CSI) and a two-byte sequence.
    logging.getLogger("werkzeug").warning("\x1b]0;title\x07\x1b[1mbold\x1b[0m \x1b=keypad")
    assert "bold keypad" == parse_lines(out.getvalue())[-1]["message"]
    # An unterminated window title only loses its ESC ]: the text after it stays.
    logging.getLogger("app").warning("user %s from %s", "mallory\x1b]", "10.0.0.1")
    assert "user mallory from 10.0.0.1" == parse_lines(out.getvalue())[-1]["message"]


def test_the_kits_loggers_disabled_by_a_dict_config_are_turned_back_on(
    out: io.BytesIO, caplog: pytest.LogCaptureFixture
) -> None:
    """A dictConfig leaving disable_existing_loggers true, run after the kit's loggers
    exist, disables them (and their problem reports): configure_logging turns them back
    on and says so; the app's other loggers stay as the app left them."""
    kit = logging.getLogger("limone_obs.exporter")
    other = logging.getLogger("lib.disabled_by_the_app")
    # What dictConfig does to every existing logger it does not name (a real dictConfig
    # would also close every handler of this test process).
    kit.disabled = other.disabled = True
    try:
        configure_logging(stream=out)
        assert (False, True) == (kit.disabled, other.disabled)
    finally:
        other.disabled = False
    said = [
        r.getMessage() for r in caplog.records if "disabled the kit's loggers" in r.getMessage()
    ]
    assert 1 == len(said)
    assert "limone_obs.exporter" in said[0]


def test_a_record_formatted_by_two_handlers_keeps_its_traceback_in_both(
    out: io.BytesIO, tmp_path: Path
) -> None:
    """An app's own file handler given the kit's formatter, before the kit's own on the
    same logger: each formats the one record with its traceback (the once-only rule is
    for other lines about the same exception)."""
    audit = logging.FileHandler(tmp_path / "audit.log")
    audit.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(audit)
    try:
        configure_logging(stream=out)
        root.handlers.remove(audit)
        root.handlers.insert(0, audit)  # the app's handler formats first
        try:
            raise RuntimeError("upstream refused")
        except RuntimeError:
            stdlib_logger("lib.calls").exception("call failed")
            stdlib_logger("lib.calls").exception("again, the same exception")
    finally:
        root.removeHandler(audit)
        audit.close()
    first, again = parse_lines(out.getvalue())
    [in_file, _] = parse_lines((tmp_path / "audit.log").read_bytes())
    assert "upstream refused" in first["exception"]["traceback"]
    assert "upstream refused" in in_file["exception"]["traceback"]
    assert "traceback" not in again["exception"]
