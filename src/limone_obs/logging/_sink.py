"""Where finished lines go: a stream, and optionally a size-rotated file.

Both the structlog path and the stdlib handler write whole lines through one
:class:`Sink`, under one lock, so lines of different threads and of the two paths never
interleave within the process. On a pipe or socket (gunicorn workers sharing stdout) each
line goes out in one ``write(2)`` call, so lines up to ``PIPE_BUF`` bytes never interleave
with other processes' lines either (``configure_logging`` caps lines at that size there).

A failing output (a closed pipe, a full disk) never raises into the caller: the line is
dropped, counted in :attr:`Sink.dropped`, and reported to ``sys.__stderr__`` at most once
per :data:`REPORT_INTERVAL` seconds.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from limone_obs.errors import ConfigError

#: Seconds between two reports of dropped lines on ``sys.__stderr__``.
REPORT_INTERVAL = 60.0
_FAILURES = (OSError, ValueError)  # ValueError: write to a closed file


def is_pipe_or_socket(stream: IO[Any]) -> bool:
    """True when ``stream`` writes to a FIFO/pipe or a socket (shared by processes)."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False  # no file descriptor (StringIO, BytesIO): process-local
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class Sink:
    """Write each line to ``stream`` (text or binary) and to an optional rotating file."""

    def __init__(self, stream: IO[Any] | None, file: RotatingFile | None = None) -> None:
        self._lock = threading.Lock()
        self._stream = stream
        self._write_bytes: Callable[[bytes], object] | None = None
        self._flush: Callable[[], object] | None = None
        if stream is not None:
            self._write_bytes, self._flush = _byte_writer(stream)
        self.file = file
        #: Lines (per target) lost because the output failed.
        self.dropped = 0
        self._reported_at = -REPORT_INTERVAL

    def write(self, line: bytes) -> None:
        """Write one complete line (ending in ``\\n``) to every target; never raises."""
        with self._lock:
            if self._write_bytes is not None and self._flush is not None:
                try:
                    self._write_bytes(line)
                    self._flush()
                except _FAILURES as exc:
                    self._drop(exc)
            if self.file is not None:
                try:
                    self.file.write(line)
                except _FAILURES as exc:
                    self._drop(exc)

    def _drop(self, exc: Exception) -> None:
        # Called with the lock held. Report rarely: a dead pipe fails on every line.
        self.dropped += 1
        now = time.monotonic()
        if now - self._reported_at < REPORT_INTERVAL:
            return
        self._reported_at = now
        report = (
            f"limone-obs logging: output failed ({type(exc).__name__}: {exc}); "
            f"{self.dropped} line(s) dropped so far\n"
        )
        try:
            if sys.__stderr__ is not None:
                sys.__stderr__.write(report)
                sys.__stderr__.flush()
        except _FAILURES:
            pass  # stderr is gone too: nothing left to tell

    def close(self) -> None:
        """Close the rotating file (the stream belongs to the caller and stays open)."""
        with self._lock:
            if self.file is not None:
                self.file.close()


def _byte_writer(stream: IO[Any]) -> tuple[Callable[[bytes], object], Callable[[], object]]:
    if is_pipe_or_socket(stream):
        return _fd_writer(stream)
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        # Text streams over a binary buffer (sys.stdout): skip the text layer, but first
        # push out text written there so our lines do not overtake it.
        stream.flush()
        return buffer.write, buffer.flush
    if isinstance(stream, io.TextIOBase):

        def write_text(line: bytes) -> None:
            stream.write(line.decode("utf-8"))

        return write_text, stream.flush
    return stream.write, stream.flush


def _fd_writer(stream: IO[Any]) -> tuple[Callable[[bytes], object], Callable[[], object]]:
    """Write straight to the descriptor: one ``write(2)`` per line, which the kernel
    keeps whole on a pipe up to ``PIPE_BUF`` bytes (a buffered writer may split a line
    or join it with buffered text into one oversized write)."""
    fd = stream.fileno()

    def write_line(line: bytes) -> None:
        stream.flush()  # text printed earlier goes first (a no-op when nothing is pending)
        view = memoryview(line)
        while view:  # only a line over PIPE_BUF can be written in parts
            view = view[os.write(fd, view) :]

    return write_line, _no_flush


def _no_flush() -> None:
    """Nothing to flush: :func:`_fd_writer` does not buffer."""


class RotatingFile:
    """Append lines to ``path``; past ``max_bytes`` move it to ``path.1`` (``backups`` kept)."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        if max_bytes < 1024 or backups < 0:
            raise ConfigError(
                f"configure_logging(file_max_bytes={max_bytes}, file_backups={backups}): "
                "use at least 1024 bytes and a non-negative number of backups"
            )
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("ab")
        except OSError as exc:
            raise ConfigError(
                f"configure_logging(file={str(path)!r}): cannot open: {exc}"
            ) from None
        self._size = self._fh.tell()

    def write(self, line: bytes) -> None:
        """Append ``line``, rotating first if it would push the file past ``max_bytes``."""
        if self._size and self._size + len(line) > self.max_bytes:
            self._rotate()
        self._fh.write(line)
        self._fh.flush()
        self._size += len(line)

    def _rotate(self) -> None:
        self._fh.close()
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.backups:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._fh = self.path.open("ab")
        self._size = 0

    def close(self) -> None:
        """Close the file."""
        self._fh.close()
