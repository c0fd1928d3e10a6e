"""Logging never raises into the caller when the output fails, and pipe lines stay whole."""

from __future__ import annotations

import io
import json
import logging
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from flask import Flask

from limone_obs.logging import _pipeline, configure_logging, get_logger, init_app
from limone_obs.logging._sink import Sink
from limone_obs.logging.gunicorn import _sink_handler
from limone_obs.logging.stdlib import JsonLineHandler
from tests.logging.helpers import parse_lines, stdlib_logger


@pytest.fixture
def dead_pipe() -> Iterator[IO[bytes]]:
    """The write end of a pipe whose reader is closed: every write gets EPIPE."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    stream = os.fdopen(write_fd, "wb")
    yield stream
    stream.close()


def _sink() -> Sink:
    sink = _pipeline.current.sink
    assert sink is not None
    return sink


def test_app_event_to_a_dead_pipe_does_not_raise(dead_pipe: IO[bytes]) -> None:
    """log.info on a pipe whose reader is gone returns normally; the line is counted."""
    configure_logging(stream=dead_pipe)
    get_logger("t").info("hello")
    assert 1 == _sink().dropped


def test_stdlib_record_to_a_dead_pipe_does_not_raise(dead_pipe: IO[bytes]) -> None:
    """A library's warning on a dead pipe does not raise into the library."""
    configure_logging(stream=dead_pipe)
    stdlib_logger("x").warning("careful")
    assert 1 == _sink().dropped


def test_exception_to_a_dead_pipe_does_not_raise(dead_pipe: IO[bytes]) -> None:
    """log.exception inside an except block on a dead pipe does not raise."""
    configure_logging(stream=dead_pipe)
    try:
        raise ValueError("boom")
    except ValueError:
        get_logger("t").exception("failed")
    assert 1 == _sink().dropped


def test_access_line_to_a_dead_pipe_does_not_break_the_request(dead_pipe: IO[bytes]) -> None:
    """The access line written from the body's close() on a dead pipe: the request succeeds."""
    configure_logging(stream=dead_pipe)
    app = Flask("t")
    app.add_url_rule("/p", "p", lambda: "ok")
    init_app(app)
    response = app.test_client().get("/p", buffered=True)
    assert (200, b"ok") == (response.status_code, response.data)
    assert _sink().dropped >= 1


def test_closed_stream_does_not_raise() -> None:
    """Writing to a closed stream (ValueError) drops the line instead of raising."""
    stream = io.BytesIO()
    configure_logging(stream=stream)
    stream.close()
    get_logger("t").info("after close")
    stdlib_logger("x").error("after close")
    assert 2 == _sink().dropped


def test_dropped_lines_are_reported_once(
    dead_pipe: IO[bytes], capfd: pytest.CaptureFixture[str]
) -> None:
    """Many dropped lines give one report on stderr (rate-limited), naming the error."""
    configure_logging(stream=dead_pipe)
    for _ in range(5):
        get_logger("t").info("lost")
    reports = capfd.readouterr().err.splitlines()
    assert 1 == len(reports)
    assert "BrokenPipeError" in reports[0]


class Unprintable:
    """An object whose __str__ and __repr__ both raise."""

    def __str__(self) -> str:
        raise RuntimeError("str boom")

    def __repr__(self) -> str:
        raise RuntimeError("repr boom")


def test_unprintable_record_message_gives_a_failure_line(out: io.BytesIO) -> None:
    """logging.getLogger(...).info(obj) with a raising __str__/__repr__: a line, no raise."""
    configure_logging(stream=out)
    [handler] = [h for h in logging.getLogger().handlers if isinstance(h, JsonLineHandler)]
    # Only our handler: pytest's capture handler (on the root) re-raises format errors.
    logger = logging.getLogger("lib.unprintable")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.info(Unprintable())
    finally:
        logger.removeHandler(handler)
    [event] = parse_lines(out.getvalue())
    expected = ("log record could not be formatted", "<unrepresentable Unprintable>")
    assert expected == (event["message"], event["original_msg"])


def test_line_cap_is_pipe_buf_on_a_pipe() -> None:
    """On a pipe the default cap is PIPE_BUF (4096 bytes), so a write is atomic."""
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb"), os.fdopen(write_fd, "wb") as stream:
        configure_logging(stream=stream)
        assert select.PIPE_BUF == _pipeline.current.max_line_bytes


def test_line_cap_stays_16_kib_on_a_file(tmp_path: Path) -> None:
    """On a regular file the default cap stays 16 KiB; an explicit cap always wins."""
    with (tmp_path / "a.log").open("wb") as stream:
        configure_logging(stream=stream)
        default_cap = _pipeline.current.max_line_bytes
        configure_logging(stream=stream, max_line_bytes=8192)
        assert (16 * 1024, 8192) == (default_cap, _pipeline.current.max_line_bytes)


def test_gunicorns_stderr_pipe_gets_lines_of_pipe_buf_where_stdout_is_a_file(
    tmp_path: Path,
) -> None:
    """The kit's gunicorn logging writes ``gunicorn.error`` to stderr: a pipe (shared by the
    workers) keeps its lines to PIPE_BUF bytes although stdout, a file, allows 16 KiB."""
    read_fd, write_fd = os.pipe()
    with (tmp_path / "out.log").open("wb") as stdout, os.fdopen(write_fd, "wb") as stderr:
        configure_logging(stream=stdout)
        handler = _sink_handler(logging.StreamHandler(stderr))
        record = logging.makeLogRecord(
            {"name": "gunicorn.error", "levelno": logging.ERROR, "levelname": "ERROR",
             "msg": "Error handling request " + "x" * 9000}
        )  # fmt: skip
        handler.handle(record)
        handler.sink.close()  # its own descriptor of the pipe: the reader then sees the end
    with os.fdopen(read_fd, "rb") as reader:
        data = reader.read()
    assert len(data) <= select.PIPE_BUF
    [event] = parse_lines(data)
    assert event["message"].startswith("Error handling request x")


def test_a_file_put_over_a_pipe_stream_is_appended_to(tmp_path: Path) -> None:
    """``dup2`` of a file over the pipe the logging writes to (a log reopen): the next
    lines are appended to the file, after what it held, not written over it."""
    path = tmp_path / "out.log"
    path.write_bytes(b"kept 1\nkept 2\n")
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "wb") as stream:
        configure_logging(stream=stream)
        get_logger("t").info("to the pipe")
        file_fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.dup2(file_fd, write_fd)
        finally:
            os.close(file_fd)
        get_logger("t").info("to the file")
        stdlib_logger("s").warning("to the file too")
        os.set_blocking(read_fd, False)
        piped = reader.read()
    first, second, lines = path.read_bytes().split(b"\n", 2)
    assert (b"kept 1", b"kept 2") == (first, second)
    assert ["to the file", "to the file too"] == [e["message"] for e in parse_lines(lines)]
    assert ["to the pipe"] == [e["message"] for e in parse_lines(piped)]


def _log_big_lines(worker: int) -> None:
    log = get_logger("w")
    for i in range(300):
        log.error("traceback-sized line", worker=worker, i=i, tb="x" * 12000)


def _fork_writers(count: int) -> list[int]:
    pids = []
    for worker in range(count):
        pid = os.fork()
        if pid == 0:  # child: write, then leave without running pytest's teardown
            code = 1
            try:
                _log_big_lines(worker)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    return pids


def test_forked_writers_on_one_pipe_never_interleave() -> None:
    """4 processes sharing a pipe (like gunicorn workers on stdout), 300 lines of ~12 KB
    each: every line read back is one whole JSON object, and none is lost."""
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader:
        with os.fdopen(write_fd, "wb") as stream:
            configure_logging(stream=stream)
            pids = _fork_writers(4)
        data = reader.read()  # EOF once every child has exited
    statuses = [os.waitpid(pid, 0)[1] for pid in pids]
    events: list[dict[str, Any]] = [json.loads(line) for line in data.splitlines()]
    assert [0, 0, 0, 0] == statuses
    assert 1200 == len(events)
    assert max(len(line) + 1 for line in data.splitlines()) <= select.PIPE_BUF
    assert all(event["truncated"] for event in events)


def test_unconfigured_process_on_a_pipe_caps_at_pipe_buf() -> None:
    """Before configure_logging (e.g. the gunicorn master), stdout being a pipe also gives
    the PIPE_BUF cap: a 12 KB event comes out as one cut line of at most 4096 bytes."""
    code = "from limone_obs.logging import get_logger; get_logger('m').info('x', tb='y' * 12000)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=True)
    [line] = done.stdout.splitlines()
    assert (True, True) == (json.loads(line)["truncated"], len(line) + 1 <= select.PIPE_BUF)
