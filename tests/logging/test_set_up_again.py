"""The app's own logging set-up run after configure_logging (a trial: the team's
``dictConfig`` and ``structlog.configure`` below the kit's call) can make lines go out
past the kit, neither JSON nor masked: the kit says so loudly, once, and the exporter
shows it. What still ends in the kit (a JSON formatter, structlog's stdlib factory,
processors of the app's own, in-memory test captures) is no problem.
"""

from __future__ import annotations

import io
import logging
import logging.config
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from flask import Flask
from prometheus_client import CollectorRegistry, generate_latest

from limone_obs import Metrics, health
from limone_obs import conventions as c
from limone_obs.logging import JsonFormatter, configure_logging, flask_ext, init_app
from limone_obs.logging.setup import undone

PROBLEM = f'problem="{c.PROBLEM_LOGGING_REPLACED}"'


@pytest.fixture(autouse=True)
def root_kept() -> Iterator[None]:
    """The root logger's handlers and level as before the test (a dictConfig replaces
    them), the named loggers' handlers, every logger's disabled flag (a dictConfig
    leaving ``disable_existing_loggers`` true disables them all), and structlog's
    configuration."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    enabled = [
        name
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger) and not logger.disabled
    ]
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in enabled:
        logging.getLogger(name).disabled = False
    for name in ("team", "audit"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).disabled = False
        logging.getLogger(name).propagate = True
    structlog.reset_defaults()


def _team_dict_config(log_file: Path, *, root: bool = True, json: bool = False) -> None:
    """What the team's ``setup_logging()`` ran: its own text handler writing to a file,
    on the root (replacing the kit's) or on a non-propagating logger of its own."""
    handler: dict[str, object] = {"class": "logging.FileHandler", "filename": str(log_file)}
    if json:
        handler["formatter"] = "json"
    config: dict[str, object] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "limone_obs.logging.JsonFormatter"}},
        "handlers": {"team": handler},
    }
    if root:
        config["root"] = {"handlers": ["team"], "level": "INFO"}
    else:
        config["loggers"] = {"team": {"handlers": ["team"], "propagate": False}}
    logging.config.dictConfig(config)


def _app() -> tuple[Flask, Metrics]:
    app = Flask("set_up_again")
    metrics = Metrics(app, registry=CollectorRegistry())
    init_app(app)
    app.add_url_rule("/", "index", lambda: "ok")
    return app, metrics


def _problem_value(metrics: Metrics, problem: str = PROBLEM) -> str | None:
    for line in generate_latest(metrics.registry).decode().splitlines():
        if problem in line:
            return line.rsplit(" ", 1)[1]
    return None


def test_a_dict_config_after_configure_logging_is_reported_once(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The trial's order: configure_logging(), then the team's dictConfig, then the app.
    One line on stderr names the handler and what to do, the exporter's problem gauge
    is 1, and a second app or request says nothing more. The team's file has the
    password in clear: what the warning is about."""
    configure_logging(stream=io.BytesIO())
    _team_dict_config(tmp_path / "team.log")
    app, metrics = _app()
    _app()
    assert app.test_client().get("/").status_code == 200
    logging.getLogger("orders").warning("login password=hunter2")
    err = capfd.readouterr().err
    assert err.count("logging was set up again after configure_logging()") == 1, err
    assert f"logger 'root' writes through a text handler added since, FileHandler({tmp_path}" in err
    assert "NOT masked" in err
    assert "Call configure_logging() after the app's own logging set-up" in err
    assert _problem_value(metrics) == "1.0"
    assert "password=hunter2" in (tmp_path / "team.log").read_text()


def _as_if_new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next request is this process's first (as in a fresh worker: the fork hook)."""
    monkeypatch.setattr(flask_ext, "_process_verified", True)  # restored after the test
    flask_ext._unverify()


def test_a_set_up_after_the_app_is_found_at_the_first_request(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A text handler on a logger of the app's own (not propagating) and a structlog
    factory that prints, set after the app was set up (a module imported later): the
    process's first request finds both."""
    configure_logging(stream=io.BytesIO())
    app, metrics = _app()
    assert ("", "0.0") == (capfd.readouterr().err, _problem_value(metrics))
    _team_dict_config(tmp_path / "team.log", root=False)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory())
    _as_if_new_process(monkeypatch)
    assert app.test_client().get("/").status_code == 200
    err = capfd.readouterr().err
    assert "logger 'team' writes through a text handler added since" in err, err
    assert "a logger factory that prints structlog's events itself, PrintLoggerFactory" in err
    assert _problem_value(metrics) == "1.0"


def test_init_app_in_a_process_where_configure_logging_never_ran_says_so(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial's app called ``Metrics(app)`` and ``init_app(app)`` and forgot
    ``configure_logging()``: its access lines were JSON and masked, its own lines plain
    text with a password in clear, without a word. The process's first request says so
    once (stderr, the exporter's problem); ``configure_logging`` ends the problem."""
    unconfigured = f'problem="{c.PROBLEM_LOGGING_NOT_CONFIGURED}"'
    app, metrics = _app()
    _as_if_new_process(monkeypatch)
    for _ in range(2):
        assert app.test_client().get("/").status_code == 200
    err = capfd.readouterr().err
    assert 1 == err.count("configure_logging() never ran"), err
    assert "NOT masked" in err
    assert "Call limone_obs.logging.configure_logging() once at start-up" in err
    assert "1.0" == _problem_value(metrics, unconfigured)
    configure_logging(stream=io.BytesIO())
    assert "0.0" == _problem_value(metrics, unconfigured)


def test_init_app_after_configure_logging_says_nothing_of_it(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented order: no such line, the problem stays 0."""
    configure_logging(stream=io.BytesIO())
    app, metrics = _app()
    _as_if_new_process(monkeypatch)
    assert app.test_client().get("/").status_code == 200
    assert "never ran" not in capfd.readouterr().err
    assert "0.0" == _problem_value(metrics, f'problem="{c.PROBLEM_LOGGING_NOT_CONFIGURED}"')


def test_what_still_ends_in_the_kit_is_no_problem(tmp_path: Path) -> None:
    """structlog processors of the app's own (the kit's logger still encodes and masks
    what they return), structlog's stdlib factory or ``logging.getLogger`` (records reach
    the kit's handler), test captures in memory, and a dictConfig handler with the kit's
    JsonFormatter (gunicorn's SIGHUP runs the kit's logconfig_dict again)."""
    configure_logging(stream=io.BytesIO())
    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    assert undone() == []
    for factory in (
        structlog.stdlib.LoggerFactory(),
        logging.getLogger,
        structlog.testing.CapturingLoggerFactory(),
    ):
        structlog.configure(logger_factory=factory)
        assert undone() == [], factory
    root = logging.getLogger()
    root.addHandler(logging.StreamHandler(io.StringIO()))  # pytest's caplog, assertLogs
    _team_dict_config(tmp_path / "json.log", json=True)
    assert isinstance(root.handlers[0].formatter, JsonFormatter)
    assert undone() == []


def test_a_handler_named_when_configure_logging_ran_is_not_named_again(tmp_path: Path) -> None:
    """The team's audit file handler, there before configure_logging: named in its own
    warning then (kept on purpose), not reported as undoing the kit."""
    logging.getLogger("audit").addHandler(logging.FileHandler(tmp_path / "audit.log"))
    configure_logging(stream=io.BytesIO())
    assert undone() == []


def test_a_console_handler_added_next_to_the_kits_is_reported(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A text handler on stderr beside the kit's prints every line a second time, plain."""
    configure_logging(stream=io.BytesIO())
    logging.getLogger().addHandler(logging.StreamHandler())
    assert undone() == ["logger 'root' writes through a text handler added since, StreamHandler"]


def test_the_right_order_says_nothing_and_configuring_again_clears_the_problem(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The team's set-up first, then configure_logging: nothing undone. After a report,
    configure_logging again puts the kit back and the problem ends."""
    _team_dict_config(tmp_path / "team.log")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory())
    configure_logging(stream=io.BytesIO())
    _, metrics = _app()
    assert (undone(), _problem_value(metrics)) == ([], "0.0")
    _team_dict_config(tmp_path / "again.log")
    _app()
    assert c.PROBLEM_LOGGING_REPLACED in health.problems()
    configure_logging(stream=io.BytesIO())
    assert (undone(), _problem_value(metrics)) == ([], "0.0")
    assert "logging was set up again" in capfd.readouterr().err


def test_without_configure_logging_nothing_is_checked(tmp_path: Path) -> None:
    """An app that uses init_app without configure_logging has nothing to undo."""
    _team_dict_config(tmp_path / "team.log")
    _, metrics = _app()
    assert (undone(), _problem_value(metrics)) == ([], "0.0")


def test_structlog_rendering_text_for_stdlib_is_told_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """structlog configured after the kit with its stdlib factory and a JSONRenderer (a
    trial): the kit's handler gets each event as one string, masked but no longer
    fields. One warning line says so and how to keep the fields; not a problem."""
    configure_logging(stream=io.BytesIO())
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.stdlib.LoggerFactory(),
    )
    with caplog.at_level(logging.WARNING, logger="limone_obs.logging"):
        _, metrics = _app()
        _app()
    told = [r.getMessage() for r in caplog.records if "renders its events" in r.getMessage()]
    assert len(told) == 1, told
    assert "with JSONRenderer and hands the text to stdlib logging" in told[0]
    assert "ProcessorFormatter.wrap_for_formatter" in told[0]
    assert _problem_value(metrics) == "0.0"


def test_handlers_that_send_or_replace_the_kits_output_are_reported() -> None:
    """A syslog handler added since (a review: only stream handlers were seen), a root
    whose handlers a queue handler replaced (``basicConfig(force=True)``), a root left
    with none (``dictConfig`` with ``"handlers": []``: Python's last-resort handler then
    prints warnings on stderr, unmasked)."""
    import queue  # noqa: PLC0415
    from logging.handlers import QueueHandler, QueueListener, SysLogHandler  # noqa: PLC0415

    configure_logging(stream=io.BytesIO())
    syslog = SysLogHandler(address=("127.0.0.1", 9))  # UDP: nothing is sent here
    try:
        logging.getLogger("team").addHandler(syslog)
        assert undone() == [
            "logger 'team' writes through a text handler added since, SysLogHandler"
        ]
    finally:
        logging.getLogger("team").removeHandler(syslog)
        syslog.close()
    # Beside the kit's output, with a listener writing text to the console (a trial:
    # every line printed twice, unmasked, without a word).
    records: queue.Queue[logging.LogRecord] = queue.Queue()
    listener = QueueListener(records, logging.StreamHandler(sys.__stderr__))
    beside = QueueHandler(records)
    logging.getLogger().addHandler(beside)
    try:
        assert undone() == [
            "logger 'root' writes through a text handler added since, QueueHandler (its "
            "QueueListener writes through StreamHandler)"
        ]
    finally:
        logging.getLogger().removeHandler(beside)
    assert listener.queue is records
    # In place of the kit's, with no listener to be found: its records leave as text.
    logging.basicConfig(force=True, handlers=[QueueHandler(queue.Queue())])
    assert undone() == ["logger 'root' writes through a text handler added since, QueueHandler"]
    logging.config.dictConfig(
        {"version": 1, "disable_existing_loggers": False, "root": {"handlers": []}}
    )
    assert undone() == [
        "the root logger has no handler left (Python's last-resort handler prints warnings "
        "and errors on stderr)"
    ]


def test_unittests_assert_logs_is_no_problem() -> None:
    """``with self.assertLogs():`` swaps the root's handlers for a capture while it runs
    (a review: a process's first request inside one reported it)."""
    import unittest  # noqa: PLC0415

    configure_logging(stream=io.BytesIO())
    case = unittest.TestCase()
    with case.assertLogs(level="INFO"):
        logging.getLogger("a_unittest").info("captured")
        assert undone() == []


def test_sqlalchemys_echo_handler_is_reported() -> None:
    """``create_engine(..., echo=True)`` after configure_logging puts a plain-text stdout
    handler of SQLAlchemy's own on its engine logger: its lines bypass the kit."""
    from sqlalchemy import create_engine  # noqa: PLC0415

    configure_logging(stream=io.BytesIO())
    create_engine("sqlite://", echo=True)
    engine_log = logging.getLogger("sqlalchemy.engine.Engine")
    try:
        assert undone() == [
            "logger 'sqlalchemy.engine.Engine' writes through a text handler added since, "
            "StreamHandler"
        ]
    finally:
        engine_log.handlers.clear()
        engine_log.setLevel(logging.NOTSET)


def test_a_dict_config_that_disabled_the_kits_loggers_turns_them_back_on(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A team's dictConfig after configure_logging() leaving ``disable_existing_loggers``
    at its default: it disabled the kit's own loggers, so the set-up-again warning and
    every later problem report went nowhere but stderr. They are turned back on, and the
    warning reaches the team's handler through logging as the docs say."""
    configure_logging(stream=io.BytesIO())
    team_log = tmp_path / "team.log"
    logging.config.dictConfig(
        {
            "version": 1,
            "handlers": {"team": {"class": "logging.FileHandler", "filename": str(team_log)}},
            "root": {"handlers": ["team"], "level": "INFO"},
        }
    )
    assert logging.getLogger("limone_obs").disabled  # what dictConfig did
    app, _ = _app()
    assert app.test_client().get("/").status_code == 200
    kits = [n for n in logging.root.manager.loggerDict if n.startswith("limone_obs")]
    assert [] == [n for n in kits if logging.getLogger(n).disabled]
    written = team_log.read_text()
    assert "had disabled the kit's loggers" in written
    assert "logging was set up again after configure_logging()" in written
    assert "logging was set up again" in capfd.readouterr().err
