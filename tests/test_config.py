"""Flask config keys exported as environment variables: not read, and said so once."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from flask import Flask
from prometheus_client import CollectorRegistry

from limone_obs import Metrics, _config
from limone_obs.exporter import extension
from limone_obs.logging import flask_ext, init_app
from limone_obs.logging.setup import reset_for_tests


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    """No variable reported yet in this process; the logging state reset after."""
    saved = set(_config._told)
    _config._told.clear()
    yield
    _config._told.clear()
    _config._told.update(saved)
    reset_for_tests()


def _instrumented(name: str, *, logging_first: bool = False) -> Flask:
    app = Flask(name)
    if logging_first:
        init_app(app)
    Metrics(app, registry=CollectorRegistry())
    if not logging_first:
        init_app(app)
    return app


def test_every_key_listed_is_one_the_extensions_read() -> None:
    """The lists the check walks are exactly the keys the two extensions set defaults for."""
    app = Flask("keys")
    before = set(app.config)
    Metrics(app, registry=CollectorRegistry())
    init_app(app)
    read = {k for k in set(app.config) - before if k.startswith("LIMONE_OBS_")}
    # The token is also read from the environment: not one to warn about.
    assert read - {"LIMONE_OBS_METRICS_TOKEN"} == {*extension.FLASK_KEYS, *flask_ext.FLASK_KEYS}


@pytest.mark.parametrize("logging_first", [False, True], ids=["metrics-first", "logging-first"])
@pytest.mark.parametrize("key", ["LIMONE_OBS_LOG_ACCESS", "LIMONE_OBS_EXEMPLARS", "LIMONE_OBS_RUM"])
def test_a_key_set_only_in_the_environment_is_reported_once(
    key: str,
    logging_first: bool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Exported, not in app.config: one warning naming it and what to do, for the first
    app only, whichever extension comes first (the logging reads LIMONE_OBS_RUM too);
    the default applies."""
    monkeypatch.setenv(key, "false")
    with caplog.at_level(logging.WARNING, logger="limone_obs"):
        first = _instrumented("first", logging_first=logging_first)
        _instrumented("second", logging_first=logging_first)
    told = [r.getMessage() for r in caplog.records if key in r.getMessage()]
    assert 1 == len(told), told
    reader = "init_app(app)" if key.startswith("LIMONE_OBS_LOG_") else "Metrics(app)"
    assert f"app.config['{key}'] before " in told[0]
    assert reader in told[0]
    assert first.config[key] is True


def test_a_key_the_app_set_is_not_reported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The app's config has it (from os.environ, as the warning says): nothing to say."""
    monkeypatch.setenv("LIMONE_OBS_LOG_ACCESS", "false")
    app = Flask("set")
    app.config["LIMONE_OBS_LOG_ACCESS"] = os.environ["LIMONE_OBS_LOG_ACCESS"]
    with caplog.at_level(logging.WARNING, logger="limone_obs"):
        init_app(app)
    assert not [r for r in caplog.records if "LIMONE_OBS_LOG_ACCESS" in r.getMessage()]
    assert app.config["LIMONE_OBS_LOG_ACCESS"] is False


def _changed_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "changed after" in r.getMessage()]


@pytest.mark.parametrize(
    ("key", "value", "reader"),
    [("LIMONE_OBS_LOG_ACCESS", False, "limone_obs.logging.init_app(app)"),
     ("LIMONE_OBS_METRICS_PATH", "/internal/metrics", "Metrics(app) or metrics.init_app(app)"),
     ("LIMONE_OBS_METRICS_TOKEN", "s3cr3t-token-value", "Metrics(app) or metrics.init_app(app)"),
     ("SECRET_KEY", "s3cr3t-signing-key", "Metrics(app) or metrics.init_app(app)")],
)  # fmt: skip
def test_a_key_set_after_init_is_said_at_the_first_request(
    key: str, value: object, reader: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A trial set ``LIMONE_OBS_LOG_ACCESS``/``LIMONE_OBS_METRICS_PATH`` after
    ``init_app``/``Metrics(app)``: nothing changed, without a word. The first request
    says so in one warning line naming the key (not its value: it may be a secret) and
    the call to set it before; later requests say nothing more."""
    app = _instrumented("late")
    app.get("/")(lambda: "ok")
    app.config[key] = value
    with caplog.at_level(logging.WARNING, logger="limone_obs"):
        client = app.test_client()
        assert 200 == client.get("/").status_code
        told = _changed_lines(caplog)
        client.get("/")
    assert 1 == len(told) == len(_changed_lines(caplog)), told
    assert f"app 'late': {key} changed after {reader} read the config" in told[0]
    assert str(value) not in told[0]


def test_an_unchanged_config_says_nothing_and_each_app_is_checked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Keys set before the extensions, or not at all: no line. Each app is checked at its
    own first request: a change made while another app serves (a review: the other's
    request took the check) is still said."""
    first = Flask("first")
    first.config["LIMONE_OBS_LOG_ACCESS"] = False
    Metrics(first, registry=CollectorRegistry())
    init_app(first)
    with caplog.at_level(logging.WARNING, logger="limone_obs"):
        first.test_client().get("/")
        assert [] == _changed_lines(caplog)
        second = _instrumented("second")
        first.test_client().get("/")
        second.config["LIMONE_OBS_LOG_EXCLUDED_PATHS"] = ["/health"]
        second.test_client().get("/")
    told = _changed_lines(caplog)
    assert 1 == len(told), told
    assert "app 'second': LIMONE_OBS_LOG_EXCLUDED_PATHS changed after" in told[0]


def test_a_list_changed_in_place_is_a_change_an_equal_one_is_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A trial appended to its excluded paths' list after init_app: the kit had copied it,
    without a word. An equal list put in place of a tuple changes nothing: no line."""
    paths = ["/a"]
    app = Flask("lists")
    app.config.update(LIMONE_OBS_EXCLUDED_PATHS=paths, LIMONE_OBS_LOG_EXCLUDED_PATHS=("/b",))
    Metrics(app, registry=CollectorRegistry())
    init_app(app)
    paths.append("/x")
    app.config["LIMONE_OBS_LOG_EXCLUDED_PATHS"] = ["/b"]
    with caplog.at_level(logging.WARNING, logger="limone_obs"):
        app.test_client().get("/")
    told = _changed_lines(caplog)
    assert 1 == len(told), told
    assert "LIMONE_OBS_EXCLUDED_PATHS changed after Metrics(app)" in told[0]
    assert "LIMONE_OBS_LOG_EXCLUDED_PATHS" not in told[0]


def test_on_off_text_set_again_after_init_is_no_change(caplog: pytest.LogCaptureFixture) -> None:
    """A review: the app applied the same settings again after init (``"off"``, which the
    kit had stored as False): they were reported as changed. Now only a real change is."""
    settings = {"LIMONE_OBS_LOG_ACCESS": "false", "LIMONE_OBS_EXEMPLARS": "off"}
    app = Flask("again")
    app.config.from_mapping(settings)
    Metrics(app, registry=CollectorRegistry())
    init_app(app)
    app.config.from_mapping({**settings, "LIMONE_OBS_EXEMPLARS": "on"})
    with caplog.at_level(logging.WARNING, logger="limone_obs"):
        app.test_client().get("/")
    told = _changed_lines(caplog)
    assert 1 == len(told), told
    assert "LIMONE_OBS_EXEMPLARS changed after" in told[0]
    assert "LIMONE_OBS_LOG_ACCESS" not in "".join(told)
