"""The app's own logging set-up run after configure_logging (a trial: the team's
``dictConfig`` and ``structlog.configure`` below the kit's call) undoes it, and its lines
are then neither JSON nor masked: the kit says so loudly, once, and the exporter shows it.
"""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import pytest
import structlog
from flask import Flask
from prometheus_client import CollectorRegistry, generate_latest

from limone_obs import Metrics, health
from limone_obs import conventions as c
from limone_obs.logging import configure_logging, flask_ext, init_app
from limone_obs.logging.setup import undone

PROBLEM = f'problem="{c.PROBLEM_LOGGING_REPLACED}"'


@pytest.fixture(autouse=True)
def root_kept() -> Iterator[None]:
    """The root logger's handlers and level as before the test (a dictConfig replaces
    them), and structlog's configuration."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _team_dict_config(stream: io.StringIO) -> None:
    """What the team's ``setup_logging()`` ran: its own text handler on the root."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"team": {"class": "logging.StreamHandler", "stream": stream}},
            "root": {"handlers": ["team"], "level": "INFO"},
        }
    )


def _app() -> tuple[Flask, Metrics]:
    app = Flask("set_up_again")
    metrics = Metrics(app, registry=CollectorRegistry())
    init_app(app)
    app.add_url_rule("/", "index", lambda: "ok")
    return app, metrics


def _problem_value(metrics: Metrics) -> str | None:
    for line in generate_latest(metrics.registry).decode().splitlines():
        if PROBLEM in line:
            return line.rsplit(" ", 1)[1]
    return None


def test_a_dict_config_after_configure_logging_is_reported_once(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The trial's order: configure_logging(), then the team's dictConfig, then the app.
    One line on stderr names what replaced the kit's handler and what to do, the
    exporter's problem gauge is 1, and a second app or request says nothing more."""
    configure_logging(stream=io.BytesIO())
    _team_dict_config(io.StringIO())
    app, metrics = _app()
    _app()
    assert app.test_client().get("/").status_code == 200
    err = capfd.readouterr().err
    assert err.count("logging was set up again after configure_logging()") == 1, err
    assert "the root logger's handlers were replaced (now: StreamHandler)" in err
    assert "NOT masked" in err
    assert "Call configure_logging() after the app's own logging set-up" in err
    assert _problem_value(metrics) == "1.0"


def test_a_set_up_after_the_app_is_found_at_the_first_request(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """structlog.configure with a logger factory of its own, run after the app was set up
    (a module imported later), writes past the kit: the process's first request finds it.
    (Processors alone still end in the kit's logger, which masks what they return.)"""
    configure_logging(stream=io.BytesIO())
    app, metrics = _app()
    assert ("", "0.0") == (capfd.readouterr().err, _problem_value(metrics))
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(),
    )
    monkeypatch.setattr(flask_ext, "_unverified", True)
    assert app.test_client().get("/").status_code == 200
    err = capfd.readouterr().err
    assert "gave structlog a logger factory of its own (PrintLoggerFactory)" in err, err
    assert _problem_value(metrics) == "1.0"


def test_structlog_processors_of_the_apps_own_are_no_problem() -> None:
    """structlog.configure(processors=...) after the kit keeps the kit's logger factory
    (lines still encoded and masked, with a warning of their own), and structlog's stdlib
    factory ends in the root's handlers, the kit's."""
    configure_logging(stream=io.BytesIO())
    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    assert undone() == []
    structlog.configure(logger_factory=structlog.stdlib.LoggerFactory())
    assert undone() == []


def test_a_console_handler_added_next_to_the_kits_is_reported() -> None:
    """A text handler on stderr beside the kit's prints every line a second time, plain."""
    configure_logging(stream=io.BytesIO())
    logging.getLogger().addHandler(logging.StreamHandler())
    assert undone() == ["a text console handler was added next to the kit's (StreamHandler)"]


def test_the_right_order_says_nothing_and_configuring_again_clears_the_problem(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The team's set-up first, then configure_logging: nothing undone. After a report,
    configure_logging again puts the kit back and the problem ends."""
    _team_dict_config(io.StringIO())
    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    configure_logging(stream=io.BytesIO())
    _, metrics = _app()
    assert (undone(), _problem_value(metrics)) == ([], "0.0")
    _team_dict_config(io.StringIO())
    _app()
    assert c.PROBLEM_LOGGING_REPLACED in health.problems()
    configure_logging(stream=io.BytesIO())
    assert (undone(), _problem_value(metrics)) == ([], "0.0")
    assert "logging was set up again" in capfd.readouterr().err


def test_without_configure_logging_nothing_is_checked() -> None:
    """An app that uses init_app without configure_logging has nothing to undo."""
    _team_dict_config(io.StringIO())
    _, metrics = _app()
    assert (undone(), _problem_value(metrics)) == ([], "0.0")
