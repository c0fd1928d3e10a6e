"""A real gunicorn (master + 2 workers on 127.0.0.1): every line it writes is schema JSON."""

from __future__ import annotations

import contextlib
import datetime
import json
import subprocess
import sys
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator

from limone_obs.exporter.process import children
from limone_obs.logging.gunicorn import MAX_PATH_CHARS, MAX_USER_AGENT_CHARS, access_fields
from limone_obs.stack import procs
from tests.logging.helpers import Sent, start_gunicorn
from tests.support import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gunicorn_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Run gunicorn with exporter/gunicorn.conf.py, send requests, stop it; yield its lines."""
    tmp = tmp_path_factory.mktemp("gunicorn")
    log = tmp / "gunicorn.log"
    proc, base = start_gunicorn(
        "tests.logging.gunicorn_app:create_app()", tmp, 2, log, GUNICORN_ACCESSLOG="-"
    )
    try:
        procs.wait_http(proc, f"{base}/ready", timeout=30)
        # Both workers up before the stop: a worker forked while the master handles the
        # stop still has the master's signal handlers, ignores its SIGTERM and keeps the
        # master waiting past the stop's grace (then killed, without its last line).
        wait_until(lambda: len(children(proc.pid)) == 2, "gunicorn's 2 workers")
        for n in range(1, 11):
            requests.get(f"{base}/work/{n}", timeout=5)
        requests.get(f"{base}/fail", timeout=5)
        with contextlib.suppress(requests.RequestException):  # the body is cut short
            requests.get(f"{base}/broken-stream", timeout=5)
        # gunicorn answers it on its error path, with an environ of its own.
        requests.get(f"{base}/fail-first", headers={"X-Request-ID": "fail-first-1"}, timeout=5)
    finally:
        code = proc.stop()
    assert code is not None
    return log.read_text(encoding="utf-8").splitlines()


def _events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def test_every_line_is_json_and_validates(
    gunicorn_lines: list[str], validator: Draft202012Validator
) -> None:
    """Master, worker, access, app and library lines all parse and validate."""
    problems = []
    for n, line in enumerate(gunicorn_lines, 1):
        try:
            event = json.loads(line)
        except ValueError:
            problems.append(f"line {n} is not JSON: {line[:200]}")
            continue
        problems += [f"line {n}: {e.message}" for e in validator.iter_errors(event)]
    assert [] == problems
    assert len(gunicorn_lines) > 20


def test_master_lines_are_json(gunicorn_lines: list[str]) -> None:
    """The master's start and shutdown lines are among the JSON lines."""
    messages = [e["message"] for e in _events(gunicorn_lines) if e["logger"] == "gunicorn.error"]
    assert any(m.startswith("Starting gunicorn") for m in messages)
    assert any(m.startswith("Booting worker") for m in messages)
    assert any("Shutting down" in m for m in messages)


def test_both_workers_and_master_wrote_lines(gunicorn_lines: list[str]) -> None:
    """gunicorn lines come from 3 processes (master + 2 workers), app lines from workers."""
    events = _events(gunicorn_lines)
    booted = [e for e in events if e["message"].startswith("Booting worker")]
    assert 2 <= len(booted)


def test_access_lines_from_gunicorn_and_app(gunicorn_lines: list[str]) -> None:
    """Each request has gunicorn's access line and the app's, with the same request id
    (a stream failing before its first chunk has two of gunicorn's: see below)."""
    events = [e for e in _events(gunicorn_lines) if e.get("path") != "/fail-first"]
    app_access = [e for e in events if e["logger"] == "limone_obs.access"]
    gunicorn_access = [e for e in events if e["logger"] == "gunicorn.access"]
    assert len(app_access) == len(gunicorn_access)
    assert 12 <= len(app_access)  # /ready (polled until up), 10 x /work, /fail
    assert {e["request_id"] for e in app_access} == {e["request_id"] for e in gunicorn_access}
    assert {"gunicorn-user"} == {e["user_id"] for e in app_access}


def test_both_access_lines_of_a_request_have_one_level(gunicorn_lines: list[str]) -> None:
    """A 5xx, or a streamed 200 whose body broke after its headers, is an error on
    gunicorn's access line as on the app's (a count of error lines saw only the app's);
    every other answer is info on both."""
    events = [e for e in _events(gunicorn_lines) if e.get("path") != "/fail-first"]
    levels: dict[str, set[tuple[str, int]]] = {}
    for e in events:
        if e["logger"] in ("limone_obs.access", "gunicorn.access"):
            levels.setdefault(e["request_id"], set()).add((e["level"], e["status_code"]))
    assert [] == [pair for pair in levels.values() if len(pair) != 1]
    assert {("error", 500)} in levels.values()  # /fail
    assert {("error", 200)} in levels.values()  # /broken-stream
    assert {("info", 200)} in levels.values()


def test_gunicorns_error_path_lines_carry_the_path_and_request_id(
    gunicorn_lines: list[str],
) -> None:
    """A stream failing before its first chunk is answered on gunicorn's error path,
    whose environ has no path or headers: its access line has them from the parsed
    request (it had an empty path and no request id: it matched no line of the app's)."""
    events = _events(gunicorn_lines)
    access = [e for e in events if e["logger"] == "gunicorn.access"]
    assert all(e["path"] for e in access), [e for e in access if not e["path"]]
    failed = [e for e in access if e["path"] == "/fail-first"]
    # gunicorn's line once the app returned (200: written before the body failed), then
    # its error path's (500, what the client got): both errors, as the app's line is.
    assert [(200, "error"), (500, "error")] == [(e["status_code"], e["level"]) for e in failed]
    assert {"fail-first-1"} == {e.get("request_id") for e in failed}


def test_app_and_library_lines_carry_request_context(gunicorn_lines: list[str]) -> None:
    """Inside a worker the app event and the library record carry the request id; no secret."""
    events = _events(gunicorn_lines)
    work = [e for e in events if e["message"] == "working" or e["logger"] == "some.library"]
    assert 20 == len(work)
    assert all(e.get("endpoint") == "/work/<int:n>" and "request_id" in e for e in work)
    assert all("never-shown" not in json.dumps(e) for e in events)


def test_worker_exception_is_one_line(gunicorn_lines: list[str]) -> None:
    """The failing view's exception is one line with its traceback."""
    events = _events(gunicorn_lines)
    failed = [e for e in events if e.get("exception", {}).get("type") == "RuntimeError"]
    assert 1 <= len(failed)
    assert "worker view failed" in failed[0]["exception"]["traceback"]


def test_a_stream_failing_after_its_headers_writes_its_traceback_once(
    gunicorn_lines: list[str],
) -> None:
    """A streamed body that raises after its first chunk: the access line (written when
    gunicorn closes the body) carries the traceback, and gunicorn's own "Error handling
    request" line that follows only the exception's type and message."""
    events = _events(gunicorn_lines)
    broke = [e for e in events if "stream broke after" in e.get("exception", {}).get("message", "")]
    access = [e for e in broke if e["logger"] == "limone_obs.access"]
    others = [e for e in broke if e["logger"] != "limone_obs.access"]
    assert 1 == len(access)
    assert "stream broke" in access[0]["exception"]["traceback"]
    assert [e for e in others if e["logger"] == "gunicorn.error"]
    assert all("traceback" not in e["exception"] for e in others)


@pytest.mark.parametrize("raw", ["abc\n", "has space", "x" * 129, "a\r\nSet-Cookie: x=1"])
def test_access_fields_drop_an_unsafe_request_id(raw: str) -> None:
    """A client's X-Request-ID with a newline, space or over 128 chars is not logged."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_REQUEST_ID": raw}
    fields = access_fields(Sent(), environ, datetime.timedelta(milliseconds=5))
    assert "request_id" not in fields


def test_access_fields_drop_a_request_id_the_redactor_would_mask() -> None:
    """A client's X-Request-ID shaped like an access key is not logged in clear."""
    key = "AKIAIOSFODNN7EXAMPLE"
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_REQUEST_ID": key}
    fields = access_fields(Sent(), environ, datetime.timedelta(milliseconds=5))
    assert "request_id" not in fields


def test_access_fields_keep_a_safe_request_id() -> None:
    """A well-formed X-Request-ID from the client is logged as given."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_REQUEST_ID": "abc-123.x"}
    fields = access_fields(Sent(), environ, datetime.timedelta(milliseconds=5))
    assert "abc-123.x" == fields["request_id"]


@pytest.mark.parametrize(
    ("header", "ids"),
    [
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
         ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")),
        ("00-00000000000000000000000000000000-b7ad6b7169203331-01", None),
        ("garbage", None),
    ],
    ids=["valid", "all-zero", "garbage"],
)  # fmt: skip
def test_access_fields_carry_the_trace_ids(header: str, ids: tuple[str, str] | None) -> None:
    """A valid ``traceparent`` gives gunicorn's access line the trace and span ids the
    app's lines of the request have; an invalid one gives none."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_TRACEPARENT": header}
    fields = access_fields(Sent(), environ, datetime.timedelta(milliseconds=5))
    assert (ids or (None, None)) == (fields.get("trace_id"), fields.get("span_id"))


def test_access_fields_cap_client_text() -> None:
    """A 100 KB path and user agent are cut to fixed caps before they are redacted and
    written (bounded work per access line, whatever the client sends)."""
    environ = {"REQUEST_METHOD": "GET" * 100, "PATH_INFO": "/x=" + "a" * 100_000,
               "HTTP_USER_AGENT": "u" * 100_000}  # fmt: skip
    fields = access_fields(Sent(), environ, datetime.timedelta(milliseconds=5))
    assert (16, MAX_PATH_CHARS, MAX_USER_AGENT_CHARS) == (
        len(fields["method"]),
        len(fields["path"]),
        len(fields["user_agent"]),
    )


@pytest.mark.parametrize(
    ("code", "status", "logged"),
    [(204, "204 No Content", 204), (1000, "1000 UNKNOWN", 500), (99, "99 UNKNOWN", 500),
     (None, "1000 UNKNOWN", 500), (None, "404 Not Found", 404), (None, "odd", 500),
     (None, "", 500)],
)  # fmt: skip
def test_access_fields_log_a_status_outside_http_as_500(
    code: int | None, status: str, logged: int
) -> None:
    """gunicorn's line has the status the app's own access line records: 500 for one
    outside 100-599 (the schema's range), never its first three characters."""

    class Odd(Sent):
        pass

    Odd.status_code, Odd.status = code, status  # type: ignore[attr-defined]
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    fields = access_fields(Odd(), environ, datetime.timedelta(milliseconds=5))
    assert logged == fields["status_code"]


_SETTINGS_SCRIPT = """
import json, sys
from gunicorn.config import Config
from limone_obs.logging.gunicorn import Logger, logconfig_dict
error_file, access_file, level = sys.argv[1:4]
cfg = Config()
cfg.set("logconfig_dict", logconfig_dict)  # the kit's config, then the user's settings
cfg.set("loglevel", level)
cfg.set("errorlog", error_file)
cfg.set("accesslog", access_file)
logger = Logger(cfg)
logger.debug("a debug line")
logger.info("an info line")
logger.access_log.info("request finished", extra={"status_code": 200})
"""


@pytest.mark.parametrize("level", ["debug", "warning"])
def test_the_kits_config_honours_gunicorns_own_log_settings(tmp_path: Any, level: str) -> None:
    """``errorlog``, ``accesslog`` and ``loglevel`` set after importing the kit's config
    (or on the command line) take effect, in JSON: gunicorn ignores them itself once a
    ``logconfig_dict`` is set."""
    error_file, access_file = tmp_path / "error.log", tmp_path / "access.log"
    done = subprocess.run(
        [sys.executable, "-c", _SETTINGS_SCRIPT, str(error_file), str(access_file), level],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    errors = [json.loads(line)["message"] for line in error_file.read_text().splitlines()]
    expected = {"debug": ["a debug line", "an info line"], "warning": []}[level]
    assert expected == errors
    access = [json.loads(line) for line in access_file.read_text().splitlines()]
    assert [("gunicorn.access", 200)] == [(e["logger"], e["status_code"]) for e in access]
    assert "a debug line" not in done.stderr + done.stdout


_CONSOLE_SCRIPT = """
import sys
from gunicorn.config import Config
from limone_obs.logging.gunicorn import Logger, logconfig_dict
cfg = Config()
cfg.set("logconfig_dict", logconfig_dict)
cfg.set("errorlog", "/dev/stderr")  # the usual container setting
cfg.set("accesslog", "/dev/stdout")
logger = Logger(cfg)
print(sorted({type(h).__name__ for h in logger.error_log.handlers + logger.access_log.handlers}))
logger.info("to stderr")
"""


def test_dev_stdout_and_dev_stderr_are_the_console_written_through_a_sink() -> None:
    """``errorlog = "/dev/stderr"`` (``accesslog = "/dev/stdout"``) names the console: its
    lines go through the kit's sink like "-" (bounded wait on a stopped pipe reader), not a
    FileHandler that blocks the worker for as long as the reader stops."""
    argv = [sys.executable, "-c", _CONSOLE_SCRIPT]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert 0 == done.returncode, done.stderr
    assert "['JsonLineHandler']" == done.stdout.splitlines()[0]
    assert ["to stderr"] == [json.loads(line)["message"] for line in done.stderr.splitlines()]
