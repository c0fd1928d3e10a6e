"""Reserved storage for multiprocess values: a full or read-only disk is an error, not a SIGBUS.

prometheus-client grows a worker's ``<type>_<pid>.db`` file with ``truncate``, which
makes a sparse file, and writes into it through ``mmap``. When the filesystem has no page
left for a write, the kernel kills the worker with SIGBUS: gunicorn boots a new one, which
dies the same way (a crash loop, no request answered, no line logged). Here the file's
space is reserved with ``os.posix_fallocate`` whenever it is created or grows, so a full
filesystem is an ``OSError`` at that moment. Then the value is kept in this process's
memory instead: the worker goes on answering requests, scrapes no longer see its new
samples, and the problem is reported once per process (a log line and
``<ns>_exporter_problems{problem="storage_full"|"storage_unwritable"}``, through
:mod:`limone_obs.health`).

prometheus-client's ``MultiProcessValue`` looks ``MmapedDict`` up in its module on every
new file; :func:`install` replaces it there with :class:`ReservedMmapedDict` when the
class has the shape this module was written against (prometheus-client 0.2x), and
``LIMONE_OBS_FAST_PATH=0`` (public API only) leaves it alone.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import os
import struct
from typing import Any

from prometheus_client import mmap_dict, values

from limone_obs import conventions as c
from limone_obs import health
from limone_obs.exporter import fast_path
from limone_obs.exporter._mp_files import HEADER_BYTES

logger = logging.getLogger("limone_obs.exporter")
_INT = struct.Struct("i")
_TWO_DOUBLES = struct.Struct("dd")
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Attributes of prometheus-client's MmapedDict this module relies on.
_EXPECTED = ("_init_value", "read_value", "write_value", "close", "read_all_values")


def report_storage_error(filename: str, exc: OSError) -> None:
    """Report that ``filename`` could not be created or grown (once per process and kind)."""
    full = exc.errno in _FULL_ERRNOS
    problem = c.PROBLEM_STORAGE_FULL if full else c.PROBLEM_STORAGE_UNWRITABLE
    state = "is full" if full else "is not writable"
    message = (
        f"limone-obs: the multiprocess metrics directory {os.path.dirname(filename)!r} "
        f"{state} ({exc.strerror or exc}); worker pid {os.getpid()} keeps answering "
        "requests, but scrapes no longer see its new samples. Free space on that "
        "filesystem (or point PROMETHEUS_MULTIPROC_DIR at a larger, writable one), then "
        "restart the server"
    )
    if health.report_problem(problem, message):
        logger.error(message)


class ReservedMmapedDict(mmap_dict.MmapedDict):
    """prometheus-client's ``MmapedDict`` whose file space is reserved before it is written.

    Keys that did not fit (no file, or the file could not grow) live in ``_overflow`` in
    this process's memory: updates of them succeed and are not visible to scrapes.
    """

    def __init__(self, filename: str, read_mode: bool = False) -> None:
        if read_mode:
            super().__init__(filename, read_mode=True)  # type: ignore[no-untyped-call]
            return
        self._fname = filename
        self._overflow: dict[str, tuple[float, float]] = {}
        self._positions: dict[str, int] = {}
        self._f: Any = None
        self._m: Any = None
        self._capacity = 0
        self._used = HEADER_BYTES
        try:
            self._open(filename)
        except OSError as exc:
            self._close_file()
            report_storage_error(filename, exc)

    def _open(self, filename: str) -> None:
        created = not os.path.exists(filename)
        self._f = open(filename, "a+b")  # noqa: SIM115 - kept open for the mapping's life
        capacity = os.fstat(self._f.fileno()).st_size
        if capacity == 0:
            try:
                os.posix_fallocate(self._f.fileno(), 0, mmap_dict._INITIAL_MMAP_SIZE)
            except OSError:
                if created:  # leave no empty file behind for the scrapes to read
                    with contextlib.suppress(OSError):
                        os.remove(filename)
                raise
            capacity = mmap_dict._INITIAL_MMAP_SIZE
        self._capacity = capacity
        self._m = mmap.mmap(self._f.fileno(), capacity)
        self._used = _INT.unpack_from(self._m, 0)[0]
        if self._used == 0:
            self._used = HEADER_BYTES
            _INT.pack_into(self._m, 0, self._used)
        else:
            for key, _, _, pos in mmap_dict._read_all_values(self._m, self._used):  # type: ignore[no-untyped-call]
                self._positions[key] = pos

    def _close_file(self) -> None:
        if self._f is not None:
            self._f.close()
        self._f = self._m = None

    def _reserve(self, key: str) -> bool:
        """Append ``key`` to the file, growing it first; False (reported) if it cannot."""
        if self._m is None:
            return False
        encoded = key.encode("utf-8")
        padded = encoded + b" " * (8 - (len(encoded) + 4) % 8)
        entry = struct.pack(f"i{len(padded)}sdd", len(encoded), padded, 0.0, 0.0)
        if self._used + len(entry) > self._capacity and not self._grow(len(entry)):
            return False
        self._m[self._used : self._used + len(entry)] = entry
        self._used += len(entry)
        _INT.pack_into(self._m, 0, self._used)
        self._positions[key] = self._used - 16
        return True

    def _grow(self, needed: int) -> bool:
        capacity = self._capacity
        while self._used + needed > capacity:
            capacity *= 2
        try:
            os.posix_fallocate(self._f.fileno(), 0, capacity)
        except OSError as exc:
            report_storage_error(self._fname, exc)
            return False
        self._capacity = capacity
        self._m = mmap.mmap(self._f.fileno(), capacity)
        return True

    def _init_value(self, key: str) -> None:
        if not self._reserve(key):
            self._overflow.setdefault(key, (0.0, 0.0))

    def read_value(self, key: str) -> tuple[float, float]:
        """Return (value, timestamp) of ``key``, adding it (0.0) if new."""
        if key not in self._positions and key not in self._overflow:
            self._init_value(key)
        pos = self._positions.get(key)
        if pos is None:
            return self._overflow[key]
        value: tuple[float, float] = _TWO_DOUBLES.unpack_from(self._m, pos)
        return value

    def write_value(self, key: str, value: float, timestamp: float) -> None:
        """Store ``value`` of ``key``: in the file if it has a place there, else in memory."""
        if key not in self._positions and key not in self._overflow:
            self._init_value(key)
        pos = self._positions.get(key)
        if pos is None:
            self._overflow[key] = (value, timestamp)
            return
        self._m[pos : pos + 16] = _TWO_DOUBLES.pack(value, timestamp)

    def read_all_values(self) -> Any:
        """Yield (key, value, timestamp) of the keys stored in the file."""
        if self._m is None:
            return iter(())
        return super().read_all_values()  # type: ignore[no-untyped-call]

    def close(self) -> None:
        """Close the mapping and the file (memory-only dicts have neither).

        Values written afterwards stay in memory, as when the file could not be made: a
        thread that still holds this dict (the GC counter, after the application closed
        prometheus-client's files) must not raise in the middle of its update.
        """
        if self._m is not None:
            for key, pos in self._positions.items():
                self._overflow[key] = _TWO_DOUBLES.unpack_from(self._m, pos)
            self._positions.clear()
            self._m.close()
        self._close_file()


def install() -> bool:
    """Make prometheus-client reserve its multiprocess files; True if installed.

    Idempotent. False when ``LIMONE_OBS_FAST_PATH=0`` or prometheus-client's
    ``MmapedDict`` does not have the expected shape (then files grow as the client does).
    """
    current = getattr(values, "MmapedDict", None)
    if current is ReservedMmapedDict:
        return True
    # Behind the same gate as the exporter's other uses of prometheus-client internals.
    if os.environ.get(c.ENV_FAST_PATH) == "0" or not fast_path.tested_client():
        return False
    base = getattr(mmap_dict, "MmapedDict", None)
    shaped = base is current and all(hasattr(base, n) for n in _EXPECTED)
    if not shaped or not hasattr(mmap_dict, "_INITIAL_MMAP_SIZE"):
        return False
    setattr(values, "MmapedDict", ReservedMmapedDict)  # noqa: B010 - not exported
    return True
