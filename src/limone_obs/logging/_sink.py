"""Where finished lines go: a stream, and optionally a size-rotated file.

Both the structlog path and the stdlib handler write whole lines through one
:class:`Sink`, under one lock, so lines of different threads and of the two paths never
interleave within the process.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from limone_obs.errors import ConfigError


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

    def write(self, line: bytes) -> None:
        """Write one complete line (ending in ``\\n``) to every target, then flush."""
        with self._lock:
            if self._write_bytes is not None and self._flush is not None:
                self._write_bytes(line)
                self._flush()
            if self.file is not None:
                self.file.write(line)

    def close(self) -> None:
        """Close the rotating file (the stream belongs to the caller and stays open)."""
        with self._lock:
            if self.file is not None:
                self.file.close()


def _byte_writer(stream: IO[Any]) -> tuple[Callable[[bytes], object], Callable[[], object]]:
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
