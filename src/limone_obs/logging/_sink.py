"""Where finished lines go: a stream, and optionally a size-rotated file.

Both the structlog path and the stdlib handler write whole lines through one
:class:`Sink`, under one lock, so lines of different threads and of the two paths never
interleave within the process. On a pipe or socket (gunicorn workers sharing stdout) each
line goes out in one ``write(2)`` call, so lines up to ``PIPE_BUF`` bytes never interleave
with other processes' lines either (``configure_logging`` caps lines at that size there).
A stream of Python's own file classes on a regular file or a terminal is written the
same way, one ``os.write`` per line on its descriptor (see :func:`_plain_descriptor`).

A failing output (a closed pipe, a full disk) never raises into the caller: the line is
dropped, counted in :attr:`Sink.dropped` and in :func:`limone_obs.health.add_dropped_lines`
(the exporter's ``<ns>_log_lines_dropped_total``), and reported to ``sys.__stderr__`` at
most once per :data:`REPORT_INTERVAL` seconds.

A pipe or socket whose reader stops reading never blocks the caller for long: a line
waits at most ``timeout`` seconds for room (its wait for the lock, held by another thread
waiting for room, included), then it is dropped and counted, and the sink
is *stalled*: later lines are tried once without waiting (so requests keep their normal
latency) until the reader takes lines again; then one line says how many were dropped.
The pipe is written through a private non-blocking descriptor (``/proc/self/fd``), so
the process's own ``sys.stdout`` and other processes sharing the pipe keep blocking
semantics; a socket is written with ``MSG_DONTWAIT``. Without ``/proc`` (not Linux) a
line is written only when ``poll`` reports room, which bounds the wait except when
another process fills the pipe between the two calls.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import io
import os
import select
import socket
import stat
import sys
import termios
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from threading import get_ident
from typing import IO, Any

from limone_obs import health
from limone_obs.errors import ConfigError

#: Seconds between two reports of dropped lines on ``sys.__stderr__``.
REPORT_INTERVAL = 60.0
#: Most processes writing one ``configure_logging(file=...)`` at once.
MAX_FILES = 256
#: Default longest wait for a pipe or socket to take a line (``configure_logging``).
DEFAULT_WRITE_TIMEOUT = 0.1
#: Least wait for another thread's write to a pipe or socket, whatever the timeout.
LOCK_WAIT = 0.01
_FAILURES = (OSError, ValueError)  # ValueError: write to a closed file


def is_pipe_or_socket(stream: IO[Any]) -> bool:
    """True when ``stream`` writes to a FIFO/pipe or a socket (shared by processes)."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False  # no file descriptor (StringIO, BytesIO): process-local
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


#: Every live sink, for the fork hook below.
_sinks: weakref.WeakSet[Sink] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sink in list(_sinks):
        sink.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _where(fd: int) -> tuple[int, int, int]:
    """This process and the file ``fd`` names: (pid, device, inode)."""
    info = os.fstat(fd)
    return os.getpid(), info.st_dev, info.st_ino


class Sink:
    """Write each line to ``stream`` (text or binary) and to an optional rotating file.

    ``timeout`` bounds the wait on a pipe or socket (see the module docstring);
    ``notice(count)`` returns the line written when the output takes lines again after
    ``count`` were dropped (None: nothing is written, the lines are only counted).
    """

    def __init__(
        self,
        stream: IO[Any] | None,
        file: RotatingFile | None = None,
        *,
        timeout: float = DEFAULT_WRITE_TIMEOUT,
        notice: Callable[[int], bytes] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        #: The thread writing a line now (0: none): a write of that same thread is the
        #: stream logging the line again (see write).
        self._writer = 0
        self._stream = stream
        self._write_bytes: Callable[[bytes], object] | None = None
        self._flush: Callable[[], object] | None = None
        self._pipe: PipeWriter | None = None
        #: The descriptor of a plain file or terminal stream, written with os.write (-1: none),
        #: and the stream's raw file, whose ``closed`` is the cheapest to ask.
        self._fd = -1
        self._raw: io.FileIO | None = None
        #: The end of a line ``_fd`` took only part of (a full disk, a size limit), written
        #: before the next line (b"": none), and where the head went: (pid, device,
        #: inode). Only this process finishes it, and only in that same file; a sink
        #: that replaces this one on that file takes it over (hand_over).
        self._rest = b""
        self._rest_of = (-1, -1, -1)
        #: The sink that replaced this one (hand_over): a caller that still holds this one
        #: (a thread that read the old pipeline) writes there instead; and this one's pipe
        #: writer, released by close().
        self._successor: Sink | None = None
        self._retired: list[PipeWriter] = []
        if stream is not None and is_pipe_or_socket(stream):
            self._pipe = PipeWriter(stream)
        elif stream is not None:
            self._fd, self._raw = _plain_descriptor(stream)
            self._write_bytes, self._flush = _byte_writer(stream)
        self.file = file
        #: Guards the file output alone: a line whose wait for the sink's lock ran out (a
        #: writer waits for a stopped pipe reader) is still written to the file.
        self._file_lock = threading.Lock()
        self.timeout = timeout
        self._notice = notice
        #: Lines (per target) lost because the output failed or did not take them in time.
        self.dropped = 0
        #: Of those, the ones not yet added to limone_obs.health: added after the lock is
        #: released (see _tell_health).
        self._untold = 0
        #: Lines dropped since the pipe last took one (said in the recovery line).
        self._unreported = 0
        #: Lines dropped because the lock was not free within the timeout (another thread
        #: was waiting for the pipe): one item each, appended without the lock (health is
        #: told at once), added to the counts above by the next writer that holds it.
        self._missed: deque[None] = deque()
        self._stalled = False
        self._reported_at = -REPORT_INTERVAL
        _sinks.add(self)

    def write(self, line: bytes) -> None:
        """Write one complete line (ending in ``\\n``) to every target; never raises and
        never waits longer than ``timeout`` on a pipe or socket.

        A stream that writes into logging (Celery's ``LoggingProxy`` over ``sys.stdout``)
        brings the line back here from within this call: that line is dropped (counted),
        as waiting for the lock this very call holds would hang the thread for good.
        """
        me = get_ident()
        if self._writer == me:
            self._looped()
            return
        waited = 0.0
        if self._pipe is None:
            self._lock.acquire()
        else:
            # A pipe or socket: the wait for the lock (another thread waiting for room)
            # counts in this line's timeout; at least LOCK_WAIT, so another thread's
            # ordinary write (microseconds) drops no line under write_timeout=0.
            start = time.monotonic()
            if not self._lock.acquire(timeout=max(self.timeout, LOCK_WAIT)):
                self._missed.append(None)  # lost on the pipe or socket alone
                lost = 1 if self._write_file(line) is None else 2
                if lost == 2:
                    self._missed.append(None)
                _tell_health(lost)
                return
            waited = time.monotonic() - start
        try:
            self._writer = me
            try:
                if self._missed:
                    self._count_missed()
                successor = self._successor  # read under the lock: hand_over sets it there
                self._write_targets(line, waited)
            finally:
                self._writer = 0
            untold = self._untold
            if untold:
                self._untold = 0
        finally:
            self._lock.release()
        if untold:
            _tell_health(untold)
        if successor is not None:  # replaced (hand_over): the line goes where lines go now
            successor.write(line)

    def _count_missed(self) -> None:
        """Add the lines dropped while the lock was not free to the counts (lock held;
        health was told when they were dropped)."""
        missed = self._missed
        count = 0
        while missed:
            missed.popleft()
            count += 1
        self.dropped += count
        self._unreported += count

    def _write_targets(self, line: bytes, waited: float = 0.0) -> None:
        """Write ``line`` to the stream (descriptor, pipe or the stream's own methods) and
        the file, with the lock held, ``waited`` seconds of the timeout spent on the lock;
        a failing target drops the line (counted)."""
        fd = self._fd
        if fd >= 0:
            try:
                # The stream's own check: its descriptor number may belong to another
                # file once the stream is closed.
                if self._raw.closed:  # type: ignore[union-attr]
                    raise ValueError("write to a closed stream")
                if self._rest:
                    self._finish_rest(fd)
                written = _write(fd, line)
                if written != len(line):
                    self._finish_cut(fd, line, written)
            except _FAILURES as exc:
                self._drop(exc)
        elif self._pipe is not None:
            try:
                self._write_pipe(self._pipe, line, waited)
            except _FAILURES as exc:
                self._drop(exc)
        elif (write := self._write_bytes) is not None and (flush := self._flush) is not None:
            # Loaded, then called: CPython 3.11 cannot specialise calling an attribute
            # that holds a callable (see lifecycle.Lifecycle.__call__).
            try:
                write(line)
                flush()
            except _FAILURES as exc:
                self._drop(exc)
        failure = self._write_file(line)
        if failure is not None:
            self._drop(failure)

    def _write_file(self, line: bytes) -> Exception | None:
        """Write ``line`` to the file output, if any, under its own lock; the failure
        (the line dropped there), else None."""
        file = self.file
        if file is None:
            return None
        with self._file_lock:
            try:
                file.write(line)
            except _FAILURES as exc:
                return exc
        return None

    def _write_pipe(self, pipe: PipeWriter, line: bytes, waited: float) -> None:
        # Stalled: one try without waiting per line, so a stopped reader costs no latency,
        # and only once the pipe has a free page (the reader took one): a nearly full pipe
        # would otherwise take a short line now and then between dropped ones.
        if self._stalled and not pipe.has_room():
            self._stall()
            return
        wait = 0.0 if self._stalled else max(0.0, self.timeout - waited)
        if self._unreported and self._notice is not None:
            if not pipe.write(self._notice(self._unreported), wait):
                self._stall()
                return
            self._unreported = 0
        if pipe.write(line, wait):
            self._stalled = False
            self._unreported = 0
            return
        self._stall()

    def _looped(self) -> None:
        """A line that came back while this thread writes one (the stream logs what it is
        given): dropped, counted, reported like any other (never waits). The outer
        write, which holds the lock, tells health once it has released it."""
        self._drop(RecursionError("the output stream writes its lines into logging again"))

    def _stall(self) -> None:
        self._stalled = True
        self._unreported += 1
        self._drop(TimeoutError(f"the output took no line for {self.timeout} s"))

    def _drop(self, exc: Exception) -> None:
        # Called with the lock held. Report rarely: a dead pipe fails on every line.
        self.dropped += 1
        self._untold += 1
        now = time.monotonic()
        if now - self._reported_at < REPORT_INTERVAL:
            return
        self._reported_at = now
        report_on_stderr(
            f"limone-obs logging: output failed ({type(exc).__name__}: {exc}); "
            f"{self.dropped} line(s) dropped so far\n"
        )

    def _finish_cut(self, fd: int, line: bytes, written: int) -> None:
        """Write the rest of a line ``fd`` took only ``written`` bytes of; keep what it
        does not take (see ``_rest``)."""
        self._rest = _write_all(fd, line, written)
        if self._rest:
            self._rest_of = _where(fd)

    def _finish_rest(self, fd: int) -> None:
        """Write the rest of the cut line before the next one; raise (the next line is
        dropped) while the file does not take it. A rest whose file is no longer the one
        ``fd`` names (a log reopen) is dropped and counted: its head is in the old file."""
        if self._rest_of != _where(fd):
            self._rest = b""
            if self._rest_of[0] == os.getpid():  # else a forked copy: the parent's line
                self._drop(OSError(f"descriptor {fd} names another file than the cut line's"))
            return
        self._rest = _write_all(fd, self._rest, 0)
        if self._rest:
            raise OSError(f"descriptor {fd} did not take the rest of a cut line")

    def hand_over(self, new: Sink | None) -> None:
        """Before ``new`` replaces this sink: from now on lines written here go to ``new``
        (callers that read the old pipeline before the switch); give it the rest of a cut
        line when it writes the same file, so its first line comes after that line's end,
        else try to finish the line here once more (counted as dropped if that fails)."""
        if new is self:
            return
        with self._lock:
            if self._rest:
                try:
                    if new is not None and new._fd >= 0 and _where(new._fd) == self._rest_of:
                        with new._lock:  # new may already take forwarded lines
                            if new._rest:
                                raise OSError("the new output already has a cut line")
                            new._rest, new._rest_of = self._rest, self._rest_of
                    elif self._raw is None or self._raw.closed:
                        raise ValueError("write to a closed stream")
                    else:
                        self._finish_rest(self._fd)
                except _FAILURES as exc:
                    self._drop(exc)
                self._rest = b""
            if new is not None:
                self._hand_over_pipe(new)
                # Every target off: write() only forwards. The file output is closed now,
                # so the new one can take the same file (its lock) at its first line; our
                # pipe descriptor is released by close().
                if self.file is not None:
                    with self._file_lock:  # a line that could not wait for the lock
                        self.file.close()
                if self._pipe is not None:
                    self._retired.append(self._pipe)
                self._successor, self._fd, self._raw = new, -1, None
                self._write_bytes = self._flush = self.file = self._pipe = None
            untold, self._untold = self._untold, 0
        if untold:
            _tell_health(untold)

    def _hand_over_pipe(self, new: Sink) -> None:
        """Give ``new`` what this sink owes its pipe (lock held): the lines dropped since
        the pipe last took one, said in ``new``'s next recovery line, and a line cut
        short there (``new`` starts with a newline when it writes the same pipe)."""
        with new._lock:
            new._unreported += self._unreported
            old_pipe, new_pipe = self._pipe, new._pipe
            if old_pipe is not None and new_pipe is not None and old_pipe.partial:
                with contextlib.suppress(*_FAILURES):
                    if old_pipe.identity() == new_pipe.identity():
                        new_pipe.partial = True
        self._unreported = 0

    def after_fork_in_child(self) -> None:
        """A forked child starts with a free lock (another thread of the parent may have
        held it) and without the parent's cut line: the parent finishes it, and the
        child's first line starts on a line of its own instead of after the cut head."""
        self._lock = threading.Lock()
        self._file_lock = threading.Lock()
        # The parent's thread that was writing is not in the child, and its id may be
        # given to a new thread here: that thread's lines are no loop.
        self._writer = 0
        self._untold = 0  # a parent's thread was reporting them: the parent tells health
        if self._rest:
            self._rest = b""
            with contextlib.suppress(OSError):
                self._rest, self._rest_of = b"\n", _where(self._fd)

    def close(self) -> None:
        """Close the rotating file and our private pipe descriptor (the stream belongs to
        the caller and stays open). Call :meth:`hand_over` first when another sink takes
        over: a cut line's rest is finished there."""
        with self._lock, self._file_lock:
            for target in (self.file, self._pipe, *self._retired):
                if target is not None:
                    target.close()


def _tell_health(count: int) -> None:
    """Add ``count`` dropped lines to :mod:`limone_obs.health`, with no lock of the sink held.

    Health's listeners are not the sink's to know: one that switches greenlets (under
    gevent, starting a thread does) while this greenlet held the sink's lock (a thread
    lock when the app was preloaded before gevent's patching) would leave every other
    greenlet of the worker waiting for that lock for good.
    """
    health.add_dropped_lines(count)


_stderr_pipe: tuple[IO[Any], PipeWriter] | None = None


def report_on_stderr(text: str) -> None:
    """Write ``text`` to ``sys.__stderr__`` without ever blocking: stderr is often the
    same pipe as stdout, whose reader may be the one that stopped."""
    global _stderr_pipe  # noqa: PLW0603 - one writer per process, made on first use
    stderr = sys.__stderr__
    try:
        if stderr is None:
            return
        if not is_pipe_or_socket(stderr):
            stderr.write(text)
            stderr.flush()
            return
        if _stderr_pipe is None or _stderr_pipe[0] is not stderr:
            _stderr_pipe = (stderr, PipeWriter(stderr))
        _stderr_pipe[1].write(text.encode("utf-8", "replace"), 0.0)
    except _FAILURES:
        pass  # stderr is gone too: nothing left to tell


class PipeWriter:
    """Writes whole lines to a pipe or socket, waiting at most a given time for room.

    A line up to ``PIPE_BUF`` bytes is written whole or not at all (a non-blocking pipe
    write of that size is atomic). A longer line cut short by the timeout leaves a partial
    line in the pipe: the next line then starts with a newline, so it still parses.

    The private pipe descriptor is opened at the first write and reopened when the
    stream's descriptor points elsewhere (``dup2``), so a process that never logs holds
    no extra writer (its reader still sees end-of-file when the stream is closed). A file
    or terminal put there is written through the stream's own descriptor.
    """

    def __init__(self, stream: IO[Any]) -> None:
        self._stream = stream
        self._fd = -1
        self._private = False
        self._sock: socket.socket | None = None
        self._identity: tuple[int, int] = (-1, -1)
        self._poll = _unpatched("select", "poll")()
        #: A line went out in part: the next one starts with a newline.
        self.partial = False
        #: The pipe's size in bytes (0: a socket, or not known).
        self._capacity = 0

    def write(self, line: bytes, wait: float) -> bool:
        """Write ``line``; False when it was not (wholly) taken within ``wait`` seconds.
        Raises OSError or ValueError when the output failed (EPIPE, a closed stream)."""
        self._bind(self._stream.fileno())
        if self._flush_cannot_block():
            # Text printed earlier goes first (a no-op when none is pending). Skipped when
            # the pipe could not take a stream's whole buffer: the flush writes through the
            # stream's own blocking descriptor, and would wait as long as the reader does.
            self._stream.flush()
        view = memoryview(b"\n" + line if self.partial else line)
        size = len(view)
        deadline = 0.0
        try:
            while view:
                written = self._send(view)
                if written:
                    view = view[written:]
                    continue
                if not deadline:
                    deadline = time.monotonic() + wait
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._poll.poll(remaining * 1000):
                    break
        finally:
            # A line that went out in part leaves the next to start with a newline (also
            # when the write failed midway: a full disk under a file put over the pipe's
            # descriptor); one that went out whole clears that; one of which nothing
            # went out leaves it as it was.
            if len(view) < size:
                self.partial = bool(view)
        return not view

    def _flush_cannot_block(self) -> bool:
        """True when the stream's buffered text fits in the output now: a pipe with room
        for a whole stream buffer (what its reader has not read, asked with FIONREAD),
        else (a socket) room for a line."""
        if self._capacity:
            unread = array.array("i", [0])
            fcntl.ioctl(self._fd, termios.FIONREAD, unread)
            return self._capacity - unread[0] >= _FLUSH_ROOM
        return bool(self._poll.poll(0))

    def identity(self) -> tuple[int, int]:
        """The (device, inode) of what the stream writes to now."""
        info = os.fstat(self._stream.fileno())
        return info.st_dev, info.st_ino

    def has_room(self) -> bool:
        """True when a line of up to ``PIPE_BUF`` bytes can be written without waiting."""
        self._bind(self._stream.fileno())
        return bool(self._poll.poll(0))

    def _send(self, view: memoryview) -> int:
        """Bytes written now, 0 when the output has no room (never blocks)."""
        try:
            if self._sock is not None:
                return self._sock.send(view, socket.MSG_DONTWAIT)
            if not self._private and not self._poll.poll(0):
                return 0  # no private descriptor: only write when poll says there is room
            return os.write(self._fd, view)
        except BlockingIOError:
            return 0

    def _bind(self, fd: int) -> None:
        """Point at the pipe or socket ``fd`` refers to now (one ``fstat`` per line)."""
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) == self._identity:
            return
        self.close()
        if stat.S_ISSOCK(info.st_mode):
            # MSG_DONTWAIT is per call: the socket's own mode is unchanged. A duplicate:
            # the socket object closes its descriptor when collected, never the stream's.
            native_socket = _unpatched("socket", "socket")
            self._fd, self._sock = fd, native_socket(fileno=os.dup(fd))
        elif stat.S_ISFIFO(info.st_mode):
            self._fd, self._private = _nonblocking_reopen(fd)
            self._capacity = _pipe_size(self._fd)
        else:
            # Now a file or terminal (dup2 over the stream's descriptor): written through
            # the stream's own descriptor, whose O_APPEND and offset a reopen would lose
            # (it would write from offset 0, over what the file held).
            self._fd = fd
        self._poll = _unpatched("select", "poll")()
        self._poll.register(self._fd, select.POLLOUT)
        self._identity = (info.st_dev, info.st_ino)

    def close(self) -> None:
        """Release the private descriptor (never the stream's own)."""
        if self._sock is not None:
            self._sock.close()  # our duplicate only
            self._sock = None
        elif self._private:
            with contextlib.suppress(OSError):  # already closed: nothing to release
                os.close(self._fd)
        self._fd, self._private, self._identity = -1, False, (-1, -1)
        self._capacity = 0


#: Free bytes a pipe needs before the stream is flushed into it: a text stream's pending
#: text and its binary buffer, each at most ``io.DEFAULT_BUFFER_SIZE`` by default, and a
#: line.
_FLUSH_ROOM = 2 * io.DEFAULT_BUFFER_SIZE + select.PIPE_BUF


def _pipe_size(fd: int) -> int:
    """The size of the pipe ``fd`` writes to (0 where it cannot be asked: not Linux)."""
    try:
        size: int = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
        unread = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, unread)
    except (AttributeError, OSError):
        return 0
    return size


def _unpatched(module: str, name: str) -> Any:
    """``module.name`` as the standard library defines it, also where gevent's monkey
    patching (gunicorn's gevent worker) replaced it.

    The pipe writer waits for room with the sink's lock held. A lock made before the
    patching (an app preloaded in gunicorn's master) is a thread lock, so a wait that
    lets another greenlet run would let that greenlet block the whole worker on the lock
    for good; a gevent socket would also make the shared descriptor non-blocking for the
    app's own ``sys.stdout``. These waits block the thread instead, for at most the
    write timeout, as in every other server.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None:
        with contextlib.suppress(Exception):  # gevent's own API; fall back to the module
            return monkey.get_original(module, name)
    return getattr(sys.modules[module], name)


def _nonblocking_reopen(fd: int) -> tuple[int, bool]:
    """A new descriptor of the pipe ``fd`` writes to, non-blocking without changing the
    mode of ``fd`` itself (shared with ``sys.stdout`` and other processes); ``(fd,
    False)`` where that is impossible (no ``/proc``: a poll-guarded blocking write)."""
    try:
        return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC), True
    except OSError:
        return fd, False


#: Stream classes whose ``write`` only writes: a stream of exactly one of them may be
#: written through its descriptor. A subclass (pytest's capture, a tee) keeps its ``write``.
_PLAIN_STREAMS = (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom, io.FileIO)
_write = os.write


def _plain_descriptor(stream: IO[Any]) -> tuple[int, io.FileIO | None]:
    """The descriptor of ``stream`` and its raw file if lines may go straight to it, else
    ``(-1, None)``.

    That is a stream of one of :data:`_PLAIN_STREAMS` whose every layer is one of them
    too, down to a ``FileIO`` (not a subclass, so no layer has a ``write`` of its own), on
    a regular file or a character device (a terminal, ``/dev/null``): one ``os.write`` per
    line instead of the stream's buffer and flush, which cost more than the rest of the
    write. The stream is flushed here once, so what was written to it before comes first.

    Two consequences, both by design: each line reaches the file whole and at once, so
    text the app itself writes to the same stream later and that sits in the stream's
    buffer lands after the log lines written meanwhile (no line is broken by it); and if
    another thread closes the stream between the ``closed`` check and the write, and a
    file opened meanwhile takes its descriptor number, that one line goes to that file
    (a window of a few instructions; closing a stream the logging still writes to is the
    app's bug, and the next line is dropped and counted).
    """
    raw: Any = stream
    try:
        while type(raw) is not io.FileIO:  # every layer exactly ours: none has its own write
            if type(raw) not in _PLAIN_STREAMS:
                return -1, None
            raw = getattr(raw, "buffer", None) or getattr(raw, "raw", None)
    except ValueError:  # a detached layer
        return -1, None
    try:
        fd = raw.fileno()
        mode = os.fstat(fd).st_mode
        stream.flush()
    except _FAILURES:
        return -1, None
    if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
        return -1, None
    return fd, raw


def _write_all(fd: int, line: bytes, written: int) -> bytes:
    """Write ``line`` from byte ``written`` on; return what ``fd`` did not take (b"": all).

    A write that fails after part of a line went out (a full disk, a file size limit)
    returns the rest instead of raising, so the caller can finish the line later rather
    than leave it broken; one that takes nothing raises.
    """
    view = memoryview(line)[written:]
    while view:
        try:
            written = _write(fd, view)
        except OSError:
            if len(view) == len(line):
                raise
            return bytes(view)
        if not written:
            if len(view) == len(line):
                raise OSError(f"descriptor {fd} took no bytes of a log line")
            return bytes(view)
        view = view[written:]
    return b""


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
    """Append lines to ``path``; past ``max_bytes`` move it to ``path.1`` (``backups`` kept).

    One writing process per file, so rotation never loses another process's lines and no
    file grows past its cap (but by one line longer than the cap, alone in its file): the
    first process that writes takes ``path``; another one writing at the same time
    (gunicorn workers) takes the first free of
    ``<stem>-1<suffix>``, ``<stem>-2<suffix>`` ... A process holds its file by a lock on
    ``.<file name>.lock`` beside it for as long as it lives, so the files of dead
    processes are reused: there are never more files than processes alive at once. The
    file is chosen at the first write in each process (a forked child never writes to the
    file its parent holds).
    """

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        if max_bytes < 1024 or backups < 0:
            raise ConfigError(
                f"configure_logging(file_max_bytes={max_bytes}, file_backups={backups}): "
                "use at least 1024 bytes and a non-negative number of backups"
            )
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.open("ab").close()
        except OSError as exc:
            raise ConfigError(
                f"configure_logging(file={str(path)!r}): cannot open: {exc}"
            ) from None
        #: The file this process writes (``path`` or a numbered sibling), once it wrote.
        self.current = path
        self._pid = -1
        #: Its descriptor (O_APPEND), written with one ``os.write`` a line: no buffered
        #: file object, whose lock a forked child may inherit held (another thread was
        #: writing) and whose buffer would keep a line a full disk refused, to be written
        #: again later (and by a forked child too).
        self._fd = -1
        #: The end of a line the file took only part of (a full disk): written before the
        #: next line, by this process only.
        self._rest = b""
        self._lock_fd = -1
        self._size = 0
        self._closed = False

    def write(self, line: bytes) -> None:
        """Append ``line``, rotating first if it would push the file past ``max_bytes``."""
        if self._closed:  # a sink still held after close(): never take a file again
            raise ValueError(f"write to a closed log file ({self.path})")
        if self._pid != os.getpid():
            self._bind()
        if self._fd < 0:  # an earlier rotation could not open the new file: again
            self._open()
        if self._rest:  # the end of a line a full disk cut: first, or this line is dropped
            rest = _write_all(self._fd, self._rest, 0)
            self._size += len(self._rest) - len(rest)
            self._rest = rest
            if rest:
                raise OSError(f"{self.current} did not take the rest of a cut line")
        if self._size and self._size + len(line) > self.max_bytes:
            self._rotate()
        rest = _write_all(self._fd, line, 0)  # raises when nothing of it was written
        self._size += len(line) - len(rest)
        self._rest = rest

    def _bind(self) -> None:
        """Take the first file no live process holds (see the class docstring)."""
        self._release()  # a forked child drops its copies; the parent keeps its lock
        for slot in range(MAX_FILES):
            candidate = self._slot_path(slot)
            lock_fd = os.open(
                candidate.with_name(f".{candidate.name}.lock"),
                os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                0o644,
            )
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(lock_fd)
                continue
            self._lock_fd, self.current = lock_fd, candidate
            self._pid = os.getpid()
            self._open()
            return
        raise OSError(f"{MAX_FILES} processes already write {self.path}")

    def _slot_path(self, slot: int) -> Path:
        if slot == 0:
            return self.path
        return self.path.with_name(f"{self.path.stem}-{slot}{self.path.suffix}")

    def _open(self) -> None:
        """Open (or create) :attr:`current` for appending; its size is where we are."""
        self._fd = os.open(
            self.current, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        """Move the full file to ``.1`` (older ones up by one), then start a new one.

        A file that is no longer the one at its path (moved away by hand or by logrotate,
        which may have created an empty one there) is not ours to shift: writing goes on
        in the file at the path. Only the unbroken run ``.1``, ``.2`` ... moves up, so a
        rotation that failed midway and is tried again never pushes a backup over the
        gap it left. If anything fails, the line is dropped and counted and the next
        write tries again.
        """
        fd, self._fd = self._fd, -1
        try:
            mine = os.fstat(fd)
        finally:
            os.close(fd)
        current = self.current
        try:
            there = os.stat(current)
        except FileNotFoundError:
            there = None
        if there is not None and (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino):
            self._shift(current)
        self._open()

    def _shift(self, current: Path) -> None:
        """Move ``current`` to ``.1``, the backups before it one up, the oldest out."""
        if not self.backups:
            current.unlink(missing_ok=True)
            return
        top = 1  # the first missing backup (or the oldest kept, overwritten)
        while top < self.backups and current.with_name(f"{current.name}.{top}").exists():
            top += 1
        for index in range(top - 1, 0, -1):
            older = current.with_name(f"{current.name}.{index}")
            os.replace(older, current.with_name(f"{current.name}.{index + 1}"))
        os.replace(current, current.with_name(f"{current.name}.1"))

    def _release(self) -> None:
        # A forked child closes its copies only (nothing to flush, no lock to take) and
        # leaves a cut line's rest to the parent, whose line it is.
        self._rest = b""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # a child's copy: the parent's lock stays
            self._lock_fd = -1
        self._pid = -1

    def close(self) -> None:
        """Close the file and give it up for another process."""
        self._release()
        self._closed = True
