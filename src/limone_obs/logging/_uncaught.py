"""What Python prints past logging, masked: uncaught exceptions and text on stderr.

:func:`install` (run by ``configure_logging``; :func:`uninstall` by ``reset_for_tests``):

- ``sys.excepthook``, ``threading.excepthook`` and ``sys.unraisablehook``: an exception
  Python would print as a plain-text traceback on stderr (the main program's, a thread's,
  one raised where nothing can catch it: a ``__del__``, a generator's cleanup) becomes
  one JSON line of the logger :data:`LOGGER` at level error, its message and traceback
  masked like any line's. Each is replaced only while it is Python's own: a hook of the
  app's (Sentry's, a test runner's) is kept, and the text it prints is still masked by
  the stderr wrapper below. ``KeyboardInterrupt`` in the main thread and ``SystemExit``
  in a thread keep Python's own behaviour.
- ``sys.stderr``, while it is the process's own: a wrapper that masks each text written
  to it (:class:`MaskedStderr`) and hands everything else to the real stream (its
  descriptor, ``buffer``, ``isatty``: bytes written there are not masked). What a
  library prints there stays plain text, but no secret: gunicorn prints a worker's
  boot exception message with ``print(e, file=sys.stderr)`` after logging it, an app's
  own hook prints tracebacks, Werkzeug's debugger prints them in development.

Each hook falls back to Python's own when logging cannot take the line (the logger
turned off, no handler, logging itself failing). An exception the request's access line
already carries is not logged again (uWSGI hands a body's exception to the hook too).
At an interactive prompt (``python -i``, ``flask shell``) Python's own hook prints.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from limone_obs import lifecycle
from limone_obs.logging import _pipeline

if TYPE_CHECKING:
    from limone_obs.logging.redaction import Redactor

#: The logger of the uncaught exceptions' lines (asked for when one comes: made at
#: import, an app's later ``dictConfig`` would turn it off with its existing loggers).
LOGGER = "uncaught"
_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class MaskedStderr:
    """``sys.stderr`` with what is written to it masked by the current pipeline's
    redactor, whole (no line is cut: the text is a traceback, or another writer's line).
    The lines of one write are masked together, so a value that runs over several lines
    (a database error's row, a PEM key) is masked to its end; a line that is a JSON
    object (another JSON logger's) is masked field by field and written as JSON again:
    text masks that run to a line's end would swallow its closing quotes and its other
    fields. One write is masked on its own: a name and its value written by separate
    calls are not matched.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.wrapped = stream

    def write(self, text: str) -> int:
        """Write ``text`` masked; return its length (what the caller asked to write)."""
        redactor = _pipeline.current.redactor
        masked = text
        if redactor is not None and isinstance(text, str):
            try:
                masked = _masked(redactor, text)
            except Exception:  # a mask failing must not stop a traceback being printed
                masked = "[limone-obs could not mask this text on stderr]\n"
        self.wrapped.write(masked)
        return len(text)

    def writelines(self, lines: Any) -> None:
        """Write each of ``lines`` masked."""
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        if name == "wrapped":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.wrapped, name)


def _masked(redactor: Redactor, text: str) -> str:
    """``text`` masked: each line that is a JSON object as one, the runs of other lines
    between them as one text each (their line ends kept)."""
    out: list[str] = []
    run: list[str] = []
    for line in text.splitlines(True):
        event = _json_line(redactor, line)
        if event is None:
            run.append(line)
            continue
        if run:
            out.append(redactor.redact_whole("".join(run)))
            run = []
        out.append(event)
    if run:
        out.append(redactor.redact_whole("".join(run)))
    return "".join(out)


def _json_line(redactor: Redactor, line: str) -> str | None:
    """``line`` (its line end kept) masked as the JSON object it is, else None."""
    body = line.rstrip("\r\n")
    if not (body.startswith("{") and body.endswith("}")):
        return None
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    redactor.redact_event(event)
    return json.dumps(event, ensure_ascii=False, default=str) + line[len(body) :]


def install() -> None:
    """Install the hooks and the stderr wrapper where Python's own are in place."""
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _main_thread
    if threading.excepthook is threading.__excepthook__:
        threading.excepthook = _thread
    if sys.unraisablehook is sys.__unraisablehook__:
        sys.unraisablehook = _unraisable
    mask_stderr()


def mask_stderr() -> None:
    """Wrap ``sys.stderr`` in :class:`MaskedStderr` while it is the process's own (a
    stream of the app's, or the wrapper already, is left as it is)."""
    stderr = sys.stderr
    if stderr is sys.__stderr__ and stderr is not None:
        sys.stderr = MaskedStderr(stderr)


def uninstall() -> None:
    """Put Python's own hooks and stderr back where the kit's are in place."""
    if sys.excepthook is _main_thread:
        sys.excepthook = sys.__excepthook__
    if threading.excepthook is _thread:
        threading.excepthook = threading.__excepthook__
    if sys.unraisablehook is _unraisable:
        sys.unraisablehook = sys.__unraisablehook__
    if isinstance(sys.stderr, MaskedStderr):
        sys.stderr = sys.stderr.wrapped


def _main_thread(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(exc_type, KeyboardInterrupt) or hasattr(sys, "ps1"):
        # Ctrl-C, and an interactive prompt (``python -i``, ``flask shell``): a person
        # reads the traceback there.
        sys.__excepthook__(exc_type, exc, tb)
        return
    if _in_access_line(exc):
        return
    if not _log("Uncaught exception", (exc_type, exc, tb)):
        sys.__excepthook__(exc_type, exc, tb)


def _in_access_line(exc: BaseException) -> bool:
    """True when this context's request has ``exc`` on its access line. uWSGI reports
    through ``sys.excepthook`` an exception the response's body raised, after the
    lifecycle recorded it, and its own failed write to a client gone mid-body (an
    ``OSError``, while the request is still open or once it is marked
    ``client_aborted``): a view's own exceptions never get there under uWSGI (Flask
    answers them with a 500)."""
    state = lifecycle.this_request()
    if state is None:
        return False
    return state.exception is exc or (
        isinstance(exc, OSError)
        and "uwsgi" in sys.modules
        and (state.start is not None or getattr(state, "client_aborted", False))
    )


def _thread(args: Any) -> None:
    if args.exc_type is SystemExit:
        return  # as Python's own hook: a thread's way to end
    thread = args.thread
    name = thread.name if thread is not None else "unknown"
    if args.exc_value is None or not _log(
        f"Uncaught exception in thread {name!r}",
        (args.exc_type, args.exc_value, args.exc_traceback),
    ):
        threading.__excepthook__(args)


def _unraisable(unraisable: Any) -> None:
    what = unraisable.err_msg or "Exception ignored in"
    try:
        target = repr(unraisable.object) if unraisable.object is not None else ""
    except Exception:  # its repr may fail too (a half-built object)
        target = f"<{type(unraisable.object).__qualname__} object>"
    message = f"{what}: {target}" if target else what
    if unraisable.exc_value is None or not _log(
        message, (unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)
    ):
        sys.__unraisablehook__(unraisable)


def _log(message: str, exc_info: _ExcInfo) -> bool:
    """Log ``message`` with ``exc_info`` at error; False if logging cannot take it."""
    try:
        logger = logging.getLogger(LOGGER)
        if logger.disabled or not logger.isEnabledFor(logging.ERROR) or not logger.hasHandlers():
            return False
        logger.error("%s", message, exc_info=exc_info)
    except Exception:
        return False
    return True
