"""gunicorn's own lines (master, error, access) as JSON in the limone-obs schema.

In ``gunicorn.conf.py``::

    logger_class = "limone_obs.logging.gunicorn.Logger"
    logconfig_dict = limone_obs.logging.gunicorn.logconfig_dict

(``limone_obs.gunicorn_conf`` sets both.) Service and env of every line, the master's
included, come from ``LIMONE_OBS_SERVICE`` / ``LIMONE_OBS_ENV``: set them where gunicorn
starts; the logger class exports them (or the defaults) to the workers, and the app's
``configure_logging`` then uses the same values.

:class:`Logger` puts :class:`~limone_obs.logging.stdlib.JsonFormatter` on every handler of
``gunicorn.error`` and ``gunicorn.access`` (also without ``logconfig_dict``); a handler
writing to stdout or stderr is replaced by one writing through a sink, so a stopped
reader never blocks a worker for long (see :mod:`limone_obs.logging._sink`); and it writes
access lines with fields (method, path, status_code, duration, request_id) instead of an
Apache format string. gunicorn's access log stays off unless ``accesslog`` is set (also
for uvicorn's ``UvicornWorker``, which writes its access lines through it): the app's own
access line (``limone_obs.access``) already carries the endpoint, user and trace ids, and
two lines per request would double the log volume.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import select
import sys
from typing import Any

from gunicorn import glogging

from limone_obs import conventions as c
from limone_obs import lifecycle
from limone_obs._tracecontext import parse_traceparent
from limone_obs.logging import _context, _identity, _pipeline, _uncaught
from limone_obs.logging._sink import Sink, is_pipe_or_socket
from limone_obs.logging._url_secrets import wsgi_text
from limone_obs.logging.stdlib import JsonFormatter, JsonLineHandler, in_place_of

_FORMATTER = "limone_obs.logging.stdlib.JsonFormatter"
#: Longest path and user agent written to gunicorn's access line (the app's caps too).
MAX_PATH_CHARS = 2048
MAX_USER_AGENT_CHARS = 512

#: A ``logging.config.dictConfig`` dict for gunicorn's ``logconfig_dict`` setting: JSON on
#: stdout for the root and access loggers, on stderr for ``gunicorn.error``; gunicorn's
#: loggers do not propagate, so no line is written twice.
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": _FORMATTER}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        },
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        },
    },
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {
            "level": "INFO",
            "handlers": ["error_console"],
            "propagate": False,
            "qualname": "gunicorn.error",
        },
        "gunicorn.access": {
            "level": "INFO",
            "handlers": ["console"],
            "propagate": False,
            "qualname": "gunicorn.access",
        },
    },
}


class Logger(glogging.Logger):  # type: ignore[misc] # gunicorn ships no type information
    """A gunicorn ``logger_class`` whose every line is one JSON object."""

    def setup(self, cfg: Any) -> None:
        """Take service/env from the environment (exported for the workers, so every
        line agrees: see :mod:`limone_obs.logging._identity`), let gunicorn set up its
        handlers, then make each of them write JSON."""
        adopt_identity()
        super().setup(cfg)
        if cfg.logconfig_dict == logconfig_dict:
            self._honour_log_settings(cfg)
        if not cfg.accesslog:
            # Off for other writers too: uvicorn's UvicornWorker gives its uvicorn.access
            # logger this logger's handlers and level, and would write a second access
            # line per request (and one per scrape) beside the app's.
            self.access_log.setLevel(logging.CRITICAL + 1)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                if _is_console(handler):
                    log.removeHandler(handler)
                    log.addHandler(_sink_handler(handler))
                elif not isinstance(handler.formatter, JsonFormatter):
                    handler.setFormatter(JsonFormatter())
        # gunicorn prints a worker's boot exception with print(e, file=sys.stderr) after
        # logging it: before the app's configure_logging (an import that fails, an app
        # factory raising first) that text went out plain, a DSN's password with it.
        # Masked from here on, in the master and every worker it forks.
        _uncaught.mask_stderr()

    def _honour_log_settings(self, cfg: Any) -> None:
        """Apply gunicorn's ``loglevel``, ``errorlog`` and ``accesslog`` files, which
        gunicorn itself ignores once a ``logconfig_dict`` is set (the kit's config sets
        one: a config that imports it and then sets them, or ``--log-level debug``, would
        otherwise change nothing, without a word). A file is written in JSON through a
        ``logging.FileHandler``, reopened by gunicorn on USR1 like its own; a path naming
        the console (``/dev/stdout``) through the kit's sink, like ``"-"``."""
        self.error_log.setLevel(self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO))
        for log, output in ((self.error_log, cfg.errorlog), (self.access_log, cfg.accesslog)):
            if output in (None, "-"):
                continue
            console = _console_stream(output)
            if console is not None and console in (sys.stdout, sys.stderr):
                handler: logging.Handler = logging.StreamHandler(console)  # a sink, below
            else:
                handler = logging.FileHandler(output)
            for old in list(log.handlers):  # the kit's console handler: the output instead
                log.removeHandler(old)
            handler.setFormatter(JsonFormatter())
            log.addHandler(handler)

    def _compute_access_log_enabled(self) -> bool:
        # Only an explicit accesslog turns gunicorn's access lines on (see module docs).
        return bool(self.cfg.accesslog)

    def access(self, resp: Any, _req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """Write one structured access line (when ``accesslog`` is set)."""
        if not self.cfg.accesslog:  # also on gunicorn < 27 (no access_log_enabled there)
            return
        try:
            fields = access_fields(resp, environ, request_time, _req)
            log = self.access_log.error if _failed(fields, environ) else self.access_log.info
            log("request finished", extra=fields)
        except Exception:
            self.error_log.exception("could not write the access line")


def _console_stream(path: str) -> Any:
    """``sys.stdout`` or ``sys.stderr`` when ``path`` names the file one of them writes
    (``/dev/stdout``, ``/proc/self/fd/2``, the very file stdout was redirected to): the
    output is then the console's, written through a sink like ``"-"`` (a FileHandler
    there would block the worker for as long as a pipe's reader stops). Else None."""
    try:
        there = os.stat(path)
    except OSError:
        return None
    for stream in (sys.stdout, sys.stderr):
        try:
            mine = os.fstat(stream.fileno())
        except (AttributeError, OSError, ValueError):
            continue
        if (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino):
            return stream
    return None


def _is_console(handler: logging.Handler) -> bool:
    """A plain StreamHandler on stdout or stderr (not a file)."""
    return type(handler) is logging.StreamHandler and getattr(handler, "stream", None) in (
        sys.stdout,
        sys.stderr,
        sys.__stdout__,
        sys.__stderr__,
    )


def _sink_handler(handler: logging.StreamHandler[Any]) -> JsonLineHandler:
    """The same output through a :class:`Sink`: whole lines, and a bounded wait when the
    reader stops (a StreamHandler would block the worker, and its request, for good); its
    own line cap (``gunicorn.error`` writes stderr, maybe a pipe where stdout is a file)."""
    stream = handler.stream
    cap = select.PIPE_BUF if is_pipe_or_socket(stream) else None
    return in_place_of(handler, Sink(stream, notice=_pipeline.dropped_notice), cap)


def adopt_identity() -> None:
    """Make this process's lines (gunicorn's master: it never calls
    ``configure_logging``) use ``LIMONE_OBS_SERVICE``/``LIMONE_OBS_ENV``, and export them
    for the workers, so the app's ``configure_logging`` writes the same values."""
    service, env = _identity.from_environment()
    _pipeline.install(dataclasses.replace(_pipeline.current, service=service, env=env))


def access_fields(
    resp: Any, environ: dict[str, Any], request_time: Any, req: Any = None
) -> dict[str, Any]:
    """The schema fields gunicorn knows about one request. Client-sent text is capped
    (like the app's access line) before it is redacted: bounded work per line.

    gunicorn's error path (a request it could not serve: a worker timeout, a body that
    failed before its first chunk, a request line too long) gives an environ without
    the request's path and headers: those are read from ``req``, its parsed request."""
    fields: dict[str, Any] = {
        c.LOG_METHOD: str(environ.get("REQUEST_METHOD", ""))[:16],
        c.LOG_PATH: _path(environ, req)[:MAX_PATH_CHARS],
        c.LOG_STATUS_CODE: _status(resp),
        c.LOG_DURATION: round(request_time.total_seconds(), 6),
        c.LOG_REMOTE_ADDR: str(environ.get("REMOTE_ADDR", ""))[:64],
        c.LOG_USER_AGENT: str(
            environ.get("HTTP_USER_AGENT") or _request_header(req, "User-Agent") or ""
        )[:MAX_USER_AGENT_CHARS],
        c.LOG_RESPONSE_BYTES: getattr(resp, "sent", None),
    }
    # The client's header is unchecked input: kept only if it is a safe id (no newline,
    # nothing the redactor would mask).
    request_id = _context.valid_request_id(
        _header(resp, c.REQUEST_ID_HEADER)
        or environ.get("HTTP_X_REQUEST_ID")
        or _request_header(req, c.REQUEST_ID_HEADER),
        _pipeline.current.redactor,
    )
    if request_id:
        fields[c.LOG_REQUEST_ID] = request_id
    # The W3C trace ids, as the app's own lines of the request have them.
    trace = parse_traceparent(
        environ.get("HTTP_TRACEPARENT") or _request_header(req, "traceparent")
    )
    if trace is not None:
        fields[c.LOG_TRACE_ID], fields[c.LOG_SPAN_ID] = trace
    return fields


def _failed(fields: dict[str, Any], environ: dict[str, Any]) -> bool:
    """True when the app's own access line of the request is an error (a count of error
    lines sees both lines of a request alike): a 5xx, or an exception the kit's
    lifecycle recorded (a streamed body that broke after its 200's headers)."""
    status = fields.get(c.LOG_STATUS_CODE)
    if isinstance(status, int) and status >= 500:
        return True
    state = environ.get(lifecycle.STATE_KEY)
    return isinstance(state, lifecycle.RequestState) and state.exception is not None


def _status(resp: Any) -> int:
    """The response's status code; 500 for one outside HTTP's 100-599 (as the app's own
    access line records it: see ``lifecycle.RequestState.start_response``)."""
    code = getattr(resp, "status_code", None)
    if not isinstance(code, int):  # gunicorn could not read the app's status line
        try:
            code = int(str(getattr(resp, "status", "")).split(None, 1)[0])
        except (IndexError, ValueError):
            return 500
    return code if 100 <= code <= 599 else 500


def _path(environ: dict[str, Any], req: Any) -> str:
    """The app's masked path when it masked one (a secret URL variable), else the path
    with the app's mount point, decoded as the app's own access line has it; the parsed
    request's path where the environ has none (gunicorn's error path)."""
    masked = environ.get(c.ENVIRON_LOG_PATH)
    if masked:
        return str(masked)
    if "PATH_INFO" not in environ:
        return str(getattr(req, "path", None) or "")
    return str(wsgi_text(f"{environ.get('SCRIPT_NAME', '')}{environ['PATH_INFO']}"))


def _request_header(req: Any, name: str) -> str | None:
    """The first value of header ``name`` of gunicorn's parsed request, None without one."""
    wanted = name.upper()
    try:
        for key, value in getattr(req, "headers", None) or ():
            if str(key).upper() == wanted:
                return str(value)
    except (TypeError, ValueError):  # not gunicorn's (name, value) pairs
        return None
    return None


def _header(resp: Any, name: str) -> str | None:
    wanted = name.lower()
    for key, value in getattr(resp, "headers", ()) or ():
        if str(key).lower() == wanted:
            return str(value)
    return None
