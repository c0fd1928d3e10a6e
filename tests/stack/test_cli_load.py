"""``limone-obs load`` and ``limone-obs webhook`` on the command line."""

from __future__ import annotations

from click.testing import CliRunner
from flask import Flask

from limone_obs.cli import main
from tests.stack.helpers import serve


def test_load_command_prints_a_summary() -> None:
    """The command sends the bounded load and prints requests, statuses and percentiles."""
    app = Flask(__name__)
    app.add_url_rule("/ok", "ok", lambda: "ok")
    with serve(app) as url:
        args = ["load", "--url", url, "--rps", "50", "--duration", "0.4", "--mix", "/ok"]
        result = CliRunner().invoke(main, args)
    assert 0 == result.exit_code, result.output
    assert "requests  20 in" in result.output
    assert "statuses  200: 20" in result.output
    assert "p95" in result.output


def test_load_command_refuses_a_remote_url() -> None:
    """A non-loopback --url is an error (exit 2) naming --allow-remote; nothing is sent."""
    result = CliRunner().invoke(main, ["load", "--url", "http://192.0.2.1:80"])
    assert 2 == result.exit_code
    assert "--allow-remote" in result.output


def test_webhook_command_stops_after_duration() -> None:
    """``limone-obs webhook --duration`` serves and then returns by itself (exit 0)."""
    result = CliRunner().invoke(main, ["webhook", "--port", "0", "--duration", "0.3"])
    assert 0 == result.exit_code, result.output
    assert "webhook receiver: http://127.0.0.1:" in result.output
