"""Where service and env come from: the environment wins, configure_logging's values are
exported for processes started later (issue 13)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from limone_obs.logging import configure_logging, get_logger
from tests.logging.helpers import parse_lines


@pytest.fixture(autouse=True)
def no_identity_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without LIMONE_OBS_SERVICE / LIMONE_OBS_ENV."""
    monkeypatch.delenv("LIMONE_OBS_SERVICE", raising=False)
    monkeypatch.delenv("LIMONE_OBS_ENV", raising=False)


def test_environment_wins_and_a_warning_says_so(
    out: io.BytesIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With LIMONE_OBS_ENV set, configure_logging(env=other) writes the variable's value
    on every line, and one warning line names the variable to set."""
    monkeypatch.setenv("LIMONE_OBS_ENV", "production")
    configure_logging(stream=out, service="svc", env="staging")
    get_logger("app").info("hello")
    events = parse_lines(out.getvalue())
    assert {("svc", "production")} == {(e["service"], e["env"]) for e in events}
    [warning] = [e for e in events if e["logger"] == "limone_obs.logging"]
    assert "LIMONE_OBS_ENV='staging'" in warning["message"]


def test_arguments_are_exported_to_child_processes(out: io.BytesIO) -> None:
    """Without the variables, configure_logging's values are exported: a process started
    afterwards (a preloaded app's worker, a subprocess) logs the same service/env."""
    configure_logging(stream=out, service="svc", env="staging")
    code = "from limone_obs.logging import get_logger; get_logger('child').info('hi')"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, check=True, env=os.environ
    )
    [event] = parse_lines(done.stdout)
    assert ("svc", "staging") == (event["service"], event["env"])


def test_a_later_call_replaces_its_own_export_and_says_so(out: io.BytesIO) -> None:
    """A second configure_logging in the same process may change the value it exported
    itself; one warning line names both values (the lines before say the old one)."""
    configure_logging(stream=out, env="one")
    configure_logging(stream=out, env="two")
    get_logger("app").info("hello")
    events = parse_lines(out.getvalue())
    [warning] = [e["message"] for e in events if e["logger"] == "limone_obs.logging"]
    lines = [e["env"] for e in events if e["logger"] == "app"]
    assert (["two"], True, True) == (lines, "env='two'" in warning, "'one'" in warning)


def test_a_later_call_without_the_values_keeps_the_earlier_ones(out: io.BytesIO) -> None:
    """configure_logging(level="debug") after configure_logging(service=..., env=...)
    keeps that service and env (not the defaults), in this process and its children,
    without a warning."""
    configure_logging(stream=out, service="billing-api", env="staging")
    configure_logging(stream=out, level="debug")
    get_logger("app").debug("hello")
    events = parse_lines(out.getvalue())
    exported = (os.environ.get("LIMONE_OBS_SERVICE"), os.environ.get("LIMONE_OBS_ENV"))
    found = ([(e["logger"], e["service"], e["env"]) for e in events], exported)
    assert ([("app", "billing-api", "staging")], ("billing-api", "staging")) == found


def test_a_value_given_after_the_default_says_nothing(out: io.BytesIO) -> None:
    """configure_logging() early (defaults), then with the service: no earlier call gave
    one, so no warning; the lines from then on say it."""
    configure_logging(stream=out)
    configure_logging(stream=out, service="billing-api")
    get_logger("app").info("hello")
    events = parse_lines(out.getvalue())
    assert [("app", "billing-api")] == [(e["logger"], e["service"]) for e in events]


def test_the_same_values_again_say_nothing(out: io.BytesIO) -> None:
    """An app factory run twice with the same settings (tests) writes no warning."""
    for _ in range(2):
        configure_logging(stream=out, service="billing-api", env="staging")
    assert [] == [e for e in parse_lines(out.getvalue()) if e["logger"] == "limone_obs.logging"]


def test_a_gunicorn_default_is_named_as_such(out: io.BytesIO) -> None:
    """When gunicorn's master filled in the defaults (the variables were unset where it
    started), the worker's warning says so instead of "set in the environment"."""
    from limone_obs.logging import _identity  # noqa: PLC0415 - the master's side, in-process

    try:
        _identity.from_environment()  # what the gunicorn logger class does in the master
        configure_logging(stream=out, service="svc", env="staging")
        events = parse_lines(out.getvalue())
    finally:  # the master's exports are not configure_logging's: remove them here
        for var in ("LIMONE_OBS_SERVICE", "LIMONE_OBS_ENV", "LIMONE_OBS_IDENTITY_DEFAULTED"):
            os.environ.pop(var, None)
    warnings = [e["message"] for e in events if e["logger"] == "limone_obs.logging"]
    assert 2 == len(warnings)
    assert all("gunicorn's master, where LIMONE_OBS_" in w for w in warnings)
    assert not any("set in the environment" in w for w in warnings)
