"""``limone-obs load`` and ``limone-obs webhook`` on the command line."""

from __future__ import annotations

from click.testing import CliRunner
from flask import Flask, request

from limone_obs import conventions as c
from limone_obs.cli import main
from limone_obs.stack import procs
from tests.stack.helpers import serve


def _failing_app() -> Flask:
    app = Flask(__name__)
    app.add_url_rule("/ok", "ok", lambda: "ok")
    app.add_url_rule("/boom", "boom", lambda: ("boom", 500))
    return app


def _load(url: str, mix: str, *extra: str) -> list[str]:
    return ["load", "--url", url, "--rps", "50", "--duration", "0.2", "--mix", mix, *extra]


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


def test_load_command_exits_1_when_requests_get_no_answer() -> None:
    """Every request refused (nothing listens): the summary prints, then exit 1 with
    ``error:`` counting the requests that got no HTTP answer."""
    url = f"http://{procs.LOOPBACK}:{procs.free_port()}"
    result = CliRunner().invoke(main, _load(url, "/ok"))
    assert 1 == result.exit_code, result.output
    assert "error: 10 of 10 requests got no HTTP answer" in result.output
    assert "transport failures: ConnectionError: 10" in result.output


def test_load_command_5xx_alone_pass_by_default() -> None:
    """5xx answers count as errors in the summary but do not fail the run by default."""
    with serve(_failing_app()) as url:
        result = CliRunner().invoke(main, _load(url, "/boom"))
    assert 0 == result.exit_code, result.output
    assert "errors    10 (5xx" in result.output


def test_load_command_max_error_rate_fails_the_run() -> None:
    """With --max-error-rate 0.4, half the requests answering 500 ends with exit 1."""
    with serve(_failing_app()) as url:
        result = CliRunner().invoke(main, _load(url, "/ok,/boom", "--max-error-rate", "0.4"))
    assert 1 == result.exit_code, result.output
    assert "error: error rate 50.0% is above --max-error-rate 0.4" in result.output


def test_load_command_error_rate_at_the_threshold_passes() -> None:
    """An error rate equal to --max-error-rate passes (exit 0): only above it fails."""
    with serve(_failing_app()) as url:
        result = CliRunner().invoke(main, _load(url, "/ok,/boom", "--max-error-rate", "0.5"))
    assert 0 == result.exit_code, result.output


def _recording_app(seen: list[str | None]) -> Flask:
    """Answers /ok and keeps each request's X-Request-Start (None when absent)."""
    app = Flask(__name__)

    def ok() -> str:
        seen.append(request.headers.get(c.QUEUE_START_HEADER))
        return "ok"

    app.add_url_rule("/ok", "ok", ok)
    return app


def test_load_command_says_first_what_it_sends() -> None:
    """The first line names the requests, the URL, the rate and the queue header (it was a
    bare ``load``: the progress bar's label, printed alone when stdout is not a terminal)."""
    with serve(_recording_app([])) as url:
        result = CliRunner().invoke(main, _load(url, "/ok"))
    expected = f"load: 10 requests to {url} at 50/s (with X-Request-Start)"
    assert (0, expected) == (result.exit_code, result.output.splitlines()[0])
    assert "load" not in result.output.splitlines()


def test_load_command_no_queue_header_sends_none() -> None:
    """--no-queue-header: no request carries X-Request-Start, and the first line says so."""
    seen: list[str | None] = []
    with serve(_recording_app(seen)) as url:
        result = CliRunner().invoke(main, _load(url, "/ok", "--no-queue-header"))
    assert (0, [None] * 10, True) == (
        result.exit_code,
        seen,
        result.output.startswith(f"load: 10 requests to {url} at 50/s (no X-Request-Start)"),
    ), result.output


def test_load_help_says_it_sends_the_queue_header() -> None:
    """--help says each request carries X-Request-Start and how to switch it off."""
    text = " ".join(CliRunner().invoke(main, ["load", "--help"]).output.split())
    assert (True, True) == (
        "Each request carries X-Request-Start" in text,
        "--queue-header / --no-queue-header" in text,
    )
