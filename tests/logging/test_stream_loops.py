"""A log stream that writes into logging again never hangs the process.

Celery's worker replaces ``sys.stdout`` with a ``LoggingProxy`` (``worker_redirect_stdouts``,
on by default) whose ``write`` logs the text through the root logger: a line the kit wrote
there came back to the kit's handler, which waited for the lock its own write held, and
the worker process hung for good (a trial's py-spy: ``Sink.write -> LoggingProxy.write ->
Logger.log -> JsonLineHandler.emit -> Sink.write``). The streams here behave as that proxy
does (they log what they are given); nothing of the kit is replaced.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from limone_obs import health
from limone_obs.logging import configure_logging, get_logger
from limone_obs.logging.setup import reset_for_tests

#: Seconds a log call may take before the test calls it hung (a guard, not a speed claim).
HANG_GUARD = 30.0


class LoggingStream(io.TextIOBase):
    """As Celery's LoggingProxy: a text stream whose writes are logged by ``logger``."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text.strip():
            self.logger.warning(text.rstrip("\n"))
        return len(text)


class AnonymousLoggingStream(LoggingStream):
    """The same without the ``logger`` attribute a check could recognise."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger)
        self._target = self.logger
        del self.logger

    def write(self, text: str) -> int:
        if text.strip():
            self._target.warning(text.rstrip("\n"))
        return len(text)


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    health.reset()
    yield
    reset_for_tests()
    health.reset()


def _logs_without_hanging(message: str) -> None:
    """Log ``message`` in a thread; fail if the call does not return."""
    worker = threading.Thread(target=lambda: get_logger("task").info(message), daemon=True)
    worker.start()
    worker.join(timeout=HANG_GUARD)
    assert not worker.is_alive(), f"the log call hung for {HANG_GUARD} s"


def test_a_stdout_that_logs_is_replaced_by_the_process_stdout(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """configure_logging() while sys.stdout is such a proxy (a Celery worker building the
    app): the lines go to the process's own stdout, as JSON, and a warning line says so."""
    monkeypatch.setattr(sys, "stdout", LoggingStream(logging.getLogger("celery.redirected")))
    configure_logging(service="worker", env="test")
    _logs_without_hanging("task started")
    out = capfd.readouterr().out
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert ["task started"] == [e["message"] for e in events if e["logger"] == "task"]
    (warning,) = [e["message"] for e in events if "writes into the logger" in e["message"]]
    assert "'celery.redirected'" in warning


def test_a_stream_that_logs_unrecognised_drops_the_looped_line(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A stream that logs what it is given, passed explicitly and not recognised: the
    call returns, the line that came back is dropped and counted."""
    stream: Any = AnonymousLoggingStream(logging.getLogger("relay"))
    configure_logging(stream=stream)
    _logs_without_hanging("task started")
    assert health.dropped_lines() >= 1
    assert "writes its lines into logging again" in capfd.readouterr().err
