"""Flask integration: request context on every line, and one access line per request.

The access line is written at the end of the request lifecycle
(:mod:`limone_obs.lifecycle`): when the server closes the response body or has iterated
it to the end, so a streamed AI answer logs its real duration, not the time to the first
byte. Works alone or with the exporter (:class:`limone_obs.Metrics`), in either order:
both join the app's one lifecycle, and the access line carries the very duration the
request histogram observes.
"""

from __future__ import annotations

import logging
import os
import re
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from flask import Flask, current_app, request
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from limone_obs import _forking, lifecycle
from limone_obs import conventions as c
from limone_obs._config import flag, read_values, warn_changed, warn_unread_environment
from limone_obs._tracecontext import parse_traceparent
from limone_obs.errors import ConfigError
from limone_obs.logging import _context, _pipeline, _url_secrets, setup
from limone_obs.logging._encode import dumps, encode_line, rfc3339

if TYPE_CHECKING:
    from contextvars import Token

    from _typeshed.wsgi import WSGIEnvironment

    from limone_obs.lifecycle import RequestState

EXTENSION_KEY = "limone_obs_logging"
logger = logging.getLogger(_pipeline.NOTICE_LOGGER)
#: An incoming request id is kept only if it fully matches this (else a new one is made).
REQUEST_ID_RE = _context.REQUEST_ID_RE
UserIdGetter = Callable[[], Any]
#: The call the settings warnings name.
_READER = "limone_obs.logging.init_app(app)"
#: The logging integration's Flask config keys (read by init_app, not from the environment).
FLASK_KEYS = (
    "LIMONE_OBS_LOG_REQUEST_ID_HEADER", "LIMONE_OBS_LOG_ACCESS", "LIMONE_OBS_LOG_EXCLUDED_PATHS",
)  # fmt: skip


#: Request ids drawn from the OS's random source at once (one system call per batch).
ID_BATCH = 256
_ids: deque[str] = deque()
# A forked child (a gunicorn worker) must not hand out ids its parent may also use.
os.register_at_fork(after_in_child=_ids.clear)

#: True once this process's first request checked that no logging set-up of the app
#: undid configure_logging since the app was set up (a forked worker checks its own).
_process_verified = False
#: Every app's access log: a forked worker's first request checks again.
_access_logs: weakref.WeakSet[AccessLog] = weakref.WeakSet()


def _unverify() -> None:
    global _process_verified  # noqa: PLW0603 - a forked worker checks its own
    _process_verified = False
    for access in list(_access_logs):
        access.unverified = True


os.register_at_fork(after_in_child=_unverify)


#: Ids drawn per system call: ID_BATCH, or 1 where a fork would copy a batch unseen.
_batch = ID_BATCH


def new_request_id() -> str:
    """Return a fresh request id: 32 random hex digits (128 bits from ``os.urandom``).

    The ids are drawn :data:`ID_BATCH` at a time: every request without a usable incoming
    id takes one, and a system call per request cost more than the rest of the id's work.
    ``deque.popleft`` hands each id to one caller only, in every thread (free-threaded
    builds included); a forked child starts with an empty batch. That takes Python's
    fork hooks (``os.register_at_fork``): where the server forks without them (uWSGI
    without ``py-call-uwsgi-fork-hooks``, see :mod:`limone_obs._forking`),
    :func:`init_app` turns batching off, so no id is left over for a child to repeat.
    """
    try:
        return _ids.popleft()
    except IndexError:
        return _refill()


def _refill() -> str:
    """Draw a new batch; return one of its ids and queue the others.

    Two threads refilling at once each queue fresh ids: nothing is handed out twice.
    """
    if _batch == 1:
        return os.urandom(16).hex()
    # hex() with a separator after every 16 bytes, then split: the batch is cut in C.
    ids = os.urandom(16 * _batch).hex(" ", 16).split()
    _ids.extend(ids[1:])
    return ids[0]


def _unbatch_if_forked_unhooked() -> None:
    """Draw one id per request where the server forks without Python's fork hooks (a
    batch drawn before the fork would reach every worker); say so once per process."""
    global _batch  # noqa: PLW0603 - set once, before the app serves
    server = _forking.unhooked_fork()
    if server is None or _batch == 1:
        return
    _batch = 1
    _ids.clear()
    logger.warning(
        "limone-obs: %s: request ids are drawn one system call per request (a batch "
        "could be copied into every worker); for the faster path, %s",
        server,
        _forking.UWSGI_FIX,
    )


_new = object.__new__
_REQUEST_ID, _TRACE_ID, _SPAN_ID = c.LOG_REQUEST_ID, c.LOG_TRACE_ID, c.LOG_SPAN_ID
_METHOD, _PATH = c.LOG_METHOD, c.LOG_PATH
_reset_context = _context.reset_token
_request_secrets = _context.request_secrets
_structlog_snapshot = _pipeline.structlog_snapshot


class RequestLog:
    """What the logging layer adds to one request while it is served (``state.log``).

    Made and filled by :meth:`AccessLog.begin`, without an ``__init__``: CPython 3.11
    calls a Python ``__init__`` through a slow generic path, and this runs per request.
    """

    __slots__ = ("context", "request_id", "secrets", "structlog", "token", "user_id")

    #: The request's fields: the dict begin() bound (the endpoint added in place), then
    #: each one ``bind``/``unbind`` made from it in the request's context (_follow_bind).
    context: dict[str, Any]
    #: The request's id, also when a view unbinds it (its access line still carries it).
    request_id: str
    #: Restores the context that was current before the request; None once it did.
    token: Token[dict[str, Any]] | None
    #: Filled at teardown by the ``user_id`` getter given to init_app; None until then.
    user_id: str | None
    #: The forms of its secret URL values no line may show (set at routing; empty for
    #: most requests): for threads of a copied request context, which see the request's
    #: fields but not its context variables (see _request_fields).
    secrets: tuple[str, ...]
    #: structlog's ``bind_contextvars`` fields before the request (restored at its end),
    #: or None while nothing was ever bound in this process.
    structlog: dict[str, Any] | None


@dataclass(frozen=True)
class Settings:
    """The Flask config keys :func:`init_app` reads."""

    header: str
    access: bool
    excluded: frozenset[str]

    @classmethod
    def from_config(cls, app: Flask) -> Settings:
        """Read and check ``LIMONE_OBS_LOG_*`` keys (see :func:`init_app`)."""
        header = app.config.setdefault("LIMONE_OBS_LOG_REQUEST_ID_HEADER", c.REQUEST_ID_HEADER)
        if not isinstance(header, str) or not re.fullmatch(r"[A-Za-z0-9\-]+", header):
            raise ConfigError(
                f"LIMONE_OBS_LOG_REQUEST_ID_HEADER={header!r}: use an HTTP header name "
                "such as X-Request-ID"
            )
        metrics_path = app.config.get("LIMONE_OBS_METRICS_PATH", "/metrics")
        default_excluded: tuple[str, ...] = (metrics_path,) if metrics_path else ()
        # The RUM beacon and script (Metrics(app) serves them unless LIMONE_OBS_RUM is
        # off): one or two per page view, counted in <ns>_rum_beacons_total already.
        rum_path = app.config.get("LIMONE_OBS_RUM_PATH", c.RUM_DEFAULT_PATH)
        # Read, not stored back: Metrics(app), if it comes next, tells whether the app
        # set it (an environment variable of that name is not read).
        key = "LIMONE_OBS_RUM"
        rum = flag({key: app.config.get(key, True)}, key, True)
        if rum and isinstance(rum_path, str):
            default_excluded += (rum_path, c.rum_script_path(rum_path))
        excluded = app.config.setdefault("LIMONE_OBS_LOG_EXCLUDED_PATHS", default_excluded)
        if isinstance(excluded, str) or not all(isinstance(p, str) for p in excluded):
            raise ConfigError(
                f"LIMONE_OBS_LOG_EXCLUDED_PATHS={excluded!r}: use a list of exact paths"
            )
        access = flag(app.config, "LIMONE_OBS_LOG_ACCESS", True)
        return cls(header, access, frozenset(excluded))


@dataclass
class AppState:
    """Per-app state kept in ``app.extensions["limone_obs_logging"]``."""

    access: AccessLog
    settings: Settings
    user_id: UserIdGetter | None


def init_app(app: Flask, user_id: UserIdGetter | None = None) -> None:
    """Log ``app``'s requests: bind context per request, write one access line each.

    ``user_id`` is called (no arguments, inside the request context, at teardown) to fill
    the ``user_id`` field; a failing or None-returning callable leaves it out. Request
    handlers may also call ``limone_obs.logging.bind(user_id=...)`` once they know it.

    Flask config keys (defaults in brackets):

    - ``LIMONE_OBS_LOG_REQUEST_ID_HEADER`` [``"X-Request-ID"``]: header read for the
      incoming id (kept if 1-128 chars of ``A-Za-z0-9._:-``) and echoed in the response.
    - ``LIMONE_OBS_LOG_ACCESS`` [``True``]: write the access line.
    - ``LIMONE_OBS_LOG_EXCLUDED_PATHS`` [the exporter's metrics path, and its RUM beacon
      and script paths unless ``LIMONE_OBS_RUM`` is off]: exact paths that
      are neither logged nor given a context.

    It checks (here, and at each process's first request) that no logging set-up of the
    app ran after :func:`~limone_obs.logging.configure_logging` and undid it
    (:func:`~limone_obs.logging.setup.verify_configured`: one line on stderr and the
    ``logging_replaced`` exporter problem when one did), and, at the app's first request,
    that none of the keys above was set or changed after this call (one warning line
    naming them: they would change nothing).

    Raises ConfigError if ``app`` is already initialised or a setting is invalid.
    """
    if EXTENSION_KEY in app.extensions:
        raise ConfigError(
            f"limone_obs.logging.init_app was already called on Flask app {app.name!r}: "
            "call it once per app"
        )
    warn_unread_environment(app.config, FLASK_KEYS, app.name, _READER)
    settings = Settings.from_config(app)
    _unbatch_if_forked_unhooked()
    setup.verify_configured()
    access = AccessLog(settings)
    lifecycle.install(app).add(access, settings.excluded)
    if user_id is not None:
        app.teardown_request(_make_teardown(user_id))
    app.extensions[EXTENSION_KEY] = AppState(access, settings, user_id)
    # A key set or changed from here on is said at the app's first request, not ignored.
    read = read_values(app.config, FLASK_KEYS)
    access.config_check = partial(warn_changed, app.config, read, app.name, _READER)


def _request_fields() -> dict[str, Any] | None:
    """The log context of the request whose Flask request context is pushed here, if any
    (for threads running in a copy of it: :data:`_context.request_fields`). Its secret
    URL values become this context's too: the thread's lines are scrubbed of them."""
    state = lifecycle.current_state()
    log = state.log if state is not None else None
    if log is None:
        return None
    if _request_secrets() is not log.secrets:
        _context.set_request_secrets(log.secrets)
    fields: dict[str, Any] = log.context
    return fields


_context.request_fields = _request_fields


def _follow_bind(old: Mapping[str, Any], new: dict[str, Any]) -> None:
    """``bind``/``unbind`` replaced the context ``old`` by ``new``: if ``old`` was the
    fields of this context's request, ``new`` is now (for threads running in a copy of
    the request context, which see the request's fields, not its context variable).

    A bind made where the request's latest fields are current (the view, or an asyncio
    task of it that bound nothing else before) becomes the request's; a thread of a
    copied request context has no request of its own here, so what it binds stays its own.
    """
    state = lifecycle.this_request()
    log = state.log if state is not None and state.start is not None else None
    if log is not None and log.context is old:
        log.context = new


_context.on_replace = _follow_bind


def _make_teardown(user_id: UserIdGetter) -> Callable[[BaseException | None], None]:
    """The teardown that fills the access line's ``user_id`` from the getter: a string,
    an integer's or a UUID's text (as for ``bind``); any other value is left out, with
    one warning line per getter (its repr would be no user id: ``"{'id': 1}"``)."""
    said = False

    def teardown(_exc: BaseException | None) -> None:
        nonlocal said
        state = lifecycle.current_state()
        log = state.log if state is not None else None
        if log is None or log.user_id is not None:
            return
        try:
            value = user_id()
        except Exception:
            return  # an auth helper failing (e.g. no session) must not break the request
        if value is None:
            return
        text = _pipeline.user_id_text(value)
        if text is not None:
            log.user_id = text
        elif not said:
            said = True
            logger.warning(
                "limone-obs: the user_id getter given to init_app returned a %s, not a "
                "string, an integer or a UUID: the access line leaves user_id out. Return "
                "the user's id itself (e.g. user.id). Said once per getter.",
                type(value).__qualname__,
            )

    return teardown


class AccessLog:
    """The logging integration's part of the request lifecycle (a ``Participant``).

    ``begin`` binds the request context (id, trace, method, path) and echoes the request
    id in the response; ``routed`` adds the endpoint; ``end`` writes the access line with
    the lifecycle's duration and clears the context.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.excluded = settings.excluded
        self.access = settings.access
        self._header = settings.header
        self._environ_header = "HTTP_" + settings.header.upper().replace("-", "_")
        #: The redactor the cache below was made with, and per URL rule the names of its
        #: variables that name a secret (``/reset/<token>``: ``("token",)``): bounded by
        #: the app's rules.
        self._secret_vars: tuple[Any, dict[str | None, tuple[str, ...]]] = (None, {})
        #: True until this app's first request in this process (one test per request):
        #: the checks of :meth:`_verify` are due.
        self.unverified = True
        #: Compares the app's config with what init_app read, at its first request.
        self.config_check: Callable[[], None] | None = None
        _access_logs.add(self)

    def _verify(self) -> None:
        """The first request's checks: the process's logging set-up (once per process),
        this app's config (once)."""
        global _process_verified  # noqa: PLW0603 - once per process
        self.unverified = False
        if not _process_verified:
            _process_verified = True
            setup.verify_configured()
            setup.verify_called()
        check, self.config_check = self.config_check, None
        if check is not None:
            check()

    def begin(self, state: RequestState, environ: WSGIEnvironment) -> None:
        """Bind this request's context and ask for the request id header on the response."""
        if self.unverified:
            self._verify()
        if _request_secrets():  # the previous request served in this context had some
            _context.set_request_secrets(())
        path = state.path
        if path in self.excluded:
            return
        script = environ.get("SCRIPT_NAME")
        if script:  # the app's mount point: a proxy's prefix (ProxyFix), a dispatcher mount
            path = script + path
        if not path.isascii():  # the URL's bytes as Latin-1 (PEP 3333): as Flask decodes it
            path = _url_secrets.wsgi_text(path)
        # The client's request id if it is a safe one (length and charset), else the one
        # of another instrumented app's request serving this one (a mount, a view's
        # Response.from_app: one client request, one id), else a new one; each header
        # parsed only when present: this runs on every request.
        incoming = environ.get(self._environ_header)
        redactor = _pipeline.current.redactor
        request_id = incoming is not None and _context.valid_request_id(incoming, redactor)
        if not request_id:
            outer = environ.get(lifecycle.STATE_KEY)
            outer_log = outer.log if outer is not None else None
            request_id = outer_log.request_id if outer_log is not None else new_request_id()
        method = state.method[:16]
        path = path[:2048] if redactor is None else redactor.redact_text(path[:2048])
        traceparent = environ.get("HTTP_TRACEPARENT")
        trace = None if traceparent is None else parse_traceparent(traceparent)
        # One dict display per case: cheaper than adding the fields one by one.
        context: dict[str, Any] = (
            {_REQUEST_ID: request_id, _METHOD: method, _PATH: path}
            if trace is None
            else {
                _REQUEST_ID: request_id,
                _TRACE_ID: trace[0],
                _SPAN_ID: trace[1],
                _METHOD: method,
                _PATH: path,
            }
        )
        log = _new(RequestLog)
        log.context = context
        log.request_id = request_id
        log.token = _context.replace_context(context)
        log.user_id = None
        log.secrets = ()
        # structlog_snapshot()'s test, inline: no call while nothing was ever bound.
        bound = _pipeline.STRUCTLOG_VARS
        log.structlog = _structlog_snapshot() if bound is None or bound else None
        state.log = log
        header = (self._header, request_id)
        state.headers = [header] if state.headers is None else [*state.headers, header]

    def routed(self, state: RequestState) -> None:
        """Add the endpoint to the context, for the lines the view logs; mask the path's
        values of URL variables that name a secret (``/reset-password/<token>``)."""
        log = state.log
        if log is not None:
            # In place: begin() made this dict for this request alone, and routing comes
            # before the view, so no line or task has read it yet.
            endpoint = state.endpoint
            log.context[c.LOG_ENDPOINT] = endpoint
            redactor, cache = self._secret_vars
            secret = cache.get(endpoint) if redactor is _pipeline.current.redactor else None
            if secret is None:
                secret = self._secret_vars_of(endpoint)
            try:
                if secret:
                    log.secrets = _mask_path_values(log.context, secret, endpoint or "")
                elif endpoint == c.ENDPOINT_UNMATCHED:
                    self._mask_refused_method(log)
            except Exception:  # never the user's request's failure
                _masking_failed(log, endpoint if secret else None)

    def _mask_refused_method(self, log: RequestLog) -> None:
        """A 405 (the path matches a rule, not for this method) or a redirect of routing
        (308: ``/reset/<token>/`` asked without its slash) has no URL variables, but its
        path holds them all the same: match it again (for a method the rule takes, or at
        the redirect's target), and mask its secret ones. So does a 404 whose path matches
        a rule without its trailing slash; any other 404 matches nothing: its path stays
        as sent."""
        current = request._get_current_object()  # type: ignore[attr-defined]
        refused = current.routing_exception
        try:
            adapter = current_app.create_url_adapter(current)
            if adapter is None:
                return
            if isinstance(refused, MethodNotAllowed) and refused.valid_methods:
                method = next(iter(refused.valid_methods))
                rule, args = adapter.match(method=method, return_rule=True)
            elif isinstance(refused, RequestRedirect):
                target = unquote(urlsplit(refused.new_url).path)
                root = current.script_root
                target = target[len(root) :] if root and target.startswith(root) else target
                rule, args = adapter.match(target, current.method, return_rule=True)
            elif isinstance(refused, NotFound) and len(current.path) > 1:
                # A slash too many (a link with "/" appended): the rule without it.
                if not current.path.endswith("/"):
                    return
                path = current.path.rstrip("/")
                rule, args = adapter.match(path, current.method, return_rule=True)
            else:
                return
        except Exception:  # no match after all (a custom converter's own error): as sent
            return
        names = self._secret_vars[1].get(rule.rule)
        if names is None:
            names = self._secret_vars_of(rule.rule)
        if names:
            log.secrets = _mask_path_values(log.context, names, rule.rule, args)

    def _secret_vars_of(self, endpoint: str | None) -> tuple[str, ...]:
        """The variables of URL rule ``endpoint`` whose names the current redactor masks,
        cached (a new cache when the redactor changed)."""
        redactor = _pipeline.current.redactor
        if self._secret_vars[0] is not redactor:
            self._secret_vars = (redactor, {})
        names = _RULE_VARIABLE.findall(endpoint or "")
        found = tuple(n for n in names if redactor is not None and redactor.is_sensitive(n))
        self._secret_vars[1][endpoint] = found
        return found

    def end(self, state: RequestState, elapsed: float) -> None:
        """Write the access line once and clear the request's context."""
        log = state.log
        if log is None:
            return
        try:
            # A request another instrumented app served inside this one's WSGI stack (a
            # mount) has its access line from that app, with the URL rule it matched.
            if self.access and state.inner is None:
                p = _pipeline.current  # read once: the line goes where it was made for
                line = _access_line(p, state, log, elapsed)
                if _request_secrets():  # a secret URL value in a bound object's repr?
                    line = p.scrub_line(line)
                # The pipeline's sink, called here (one frame less than _pipeline.write).
                sink = p.sink
                if sink is None:
                    _pipeline.write(line)
                else:
                    sink.write(line)
        finally:
            if log.token is not None:  # None: unnest() gave the context back already
                if _context.get_context() is log.context:
                    _leave_context(log)
                else:  # bound elsewhere, or ended out of order (see _hand_over_context)
                    _hand_over_context(log)

    def unnest(self, state: RequestState) -> None:
        """Give the context back to the view that served this request its own environ
        (or called this app with one of its own): its lines, and its ``bind`` calls, are
        its own request's again."""
        log = state.log
        if log is not None and log.token is not None:
            _leave_context(log)

    def reenter(self, state: RequestState) -> Callable[[], None] | None:
        """Make this request's log context current again while a chunk of its body is
        made after unnest() (its lines and ``bind`` calls are its own)."""
        log = state.log
        if log is None:
            return None
        token = _context.replace_context(log.context)
        return partial(_reset_context, token)


def _hand_over_context(log: RequestLog) -> None:
    """End ``log``'s request where its own fields are not the current ones. If those are
    the fields of the request this context serves, still open and begun right after this
    one (this one ends out of order: a test's unread answer closed, or collected, while
    the next streams), leave them and give that request what to restore at its end (what
    was current before this one began). Else restore that now, as an in-order end does
    (a view's task bound elsewhere, ``clear_context()``; or a chain of such requests, in
    tests only: the later one then loses its fields for the rest of its lines): a token
    dropped here would leave this request's fields current after it ended."""
    later = lifecycle.this_request()
    later_log = later.log if later is not None and later.start is not None else None
    if (
        later_log is not None
        and later_log.token is not None
        and later_log.token.old_value is log.context
    ):
        later_log.token, log.token = log.token, None
        later_log.structlog = log.structlog
    else:
        _leave_context(log)


def _leave_context(log: RequestLog) -> None:
    """Restore the log context (and structlog's) that was current before ``log``'s
    request began; once (``log.token`` is None after)."""
    token = log.token
    if token is None:
        return
    log.token = None
    # The context variable's own reset (one frame less than reset_context); a token of
    # another Context (close() called from another thread) clears it.
    try:
        _reset_context(token)
    except ValueError:
        _context.reset_context(None)
    else:
        # In the request's own context only: what the request bound with structlog's
        # bind_contextvars would be on the next request's lines (a sync worker serves
        # them one after another in one context).
        if log.structlog is not None or _pipeline.STRUCTLOG_VARS:
            _pipeline.restore_structlog_context(log.structlog)


#: Secret URL values shorter than this are masked in the path only, not in every text of
#: the request's lines (replacing "a" everywhere would garble them).
_MIN_SCRUBBED = 4
#: A variable of a Flask URL rule (``<token>``, ``<int:id>``, ``<re("x"):name>``): its name.
_RULE_VARIABLE = re.compile(r"<(?:[^<>]*:)?([A-Za-z_][A-Za-z0-9_]*)>")


def _mask_path_values(
    context: dict[str, Any],
    names: tuple[str, ...],
    rule: str,
    args: Mapping[str, Any] | None = None,
) -> tuple[str, ...]:
    """Mask in the request's ``path`` the values Flask matched for ``names`` of URL rule
    ``rule`` (a token in a password-reset or magic-link URL), there and for gunicorn's
    access line, and have every line of the request scrubbed of them; the ``endpoint``
    field still shows the rule. Rare (only rules with such variables), so Flask's request
    is asked for the values here (``args``: values matched otherwise, for a refused
    method). Returns the texts every line is scrubbed of."""
    current = request._get_current_object()  # type: ignore[attr-defined]
    if args is None:
        args = current.view_args or {}
    if not isinstance(context.get(c.LOG_PATH), str):
        return ()
    redactor = _pipeline.current.redactor
    mask = redactor.mask if redactor is not None else "[REDACTED]"
    environ = current.environ
    # Made again from the whole path: begin() cut it to 2048 characters, which may have
    # cut a long value, and then it would not be found.
    script, info = str(environ.get("SCRIPT_NAME", "")), str(environ.get("PATH_INFO", ""))
    raw = script + info
    decoded_info = _url_secrets.wsgi_text(info)
    decoded = _url_secrets.wsgi_text(script) + decoded_info
    uri = str(environ.get("REQUEST_URI") or environ.get("RAW_URI") or "")
    # Where each variable is in the path, as the URL wrote it (a converter's value may
    # read otherwise: <uuid:token> in upper case): masked there, static parts kept.
    spans = _url_secrets.rule_spans(rule, decoded_info)
    path = decoded_info
    for start, end in sorted((spans[n] for n in names if n in spans), reverse=True):
        path = f"{path[:start]}{mask}{path[end:]}"
    path = _url_secrets.wsgi_text(script) + path
    secrets: list[str] = []
    for name in names:
        value = args.get(name)
        text = value if isinstance(value, str) else str(value) if value is not None else ""
        as_sent = decoded_info[slice(*spans[name])] if name in spans else ""
        # The longer first: "000123" is masked whole before "123" could cut into it.
        for one in sorted({t for t in (text, as_sent) if t}, key=len, reverse=True):
            if name not in spans:  # the rule's shape could not place it: wherever it is
                path = path.replace(one, mask)
            # Every other form a line of the request may hold it in (request.url quotes
            # it, the server's request line has it as the client encoded it); a shorter
            # one would garble every line: it is masked in the path only.
            if len(one) >= _MIN_SCRUBBED:
                secrets += _forms(one, decoded, raw, uri)
    path = path[:2048] if redactor is None else redactor.redact_text(path[:2048])
    context[c.LOG_PATH] = path
    environ[c.ENVIRON_LOG_PATH] = path
    found = tuple(f for f in dict.fromkeys(secrets) if len(f) >= _MIN_SCRUBBED)
    _context.set_request_secrets(found)
    return found


_told_masking_failed: list[bool] = []


def _masking_failed(log: RequestLog, rule: str | None) -> None:
    """Masking the secret URL values of ``log``'s request failed (a URL this code did not
    foresee): its path becomes its URL rule (``/reset-password/<token>``, no value at all)
    when the rule has such values, and one error line per process says so."""
    if rule is not None:
        log.context[c.LOG_PATH] = rule
        request.environ[c.ENVIRON_LOG_PATH] = rule
    if not _told_masking_failed:
        _told_masking_failed.append(True)
        logger.exception(
            "limone-obs: masking the secret URL values of a request failed; its path is "
            "logged as its URL rule. Please report this with the traceback."
        )


def _forms(value: str, path: str, raw_path: str, uri: str) -> list[str]:
    """:func:`_url_secrets.forms`, or ``value`` alone if an odd URL made that fail: this
    runs in Flask's routing, inside the user's request, and must never fail it."""
    try:
        return _url_secrets.forms(value, path, raw_path, uri)
    except Exception:
        return [value]


_ACCESS_MESSAGE = "request finished"
#: The line's core fields after the timestamp, by level, for one service and env (see
#: _heads): the strings themselves, not the pipeline, so an old pipeline's sink and stream
#: are not kept alive by the cache.
_heads_of: tuple[str | None, str | None, dict[str, bytes]] = (None, None, {})


def _heads(p: _pipeline.Pipeline) -> dict[str, bytes]:
    """The encoded core fields after the timestamp (level to env), for each access level,
    made for ``p`` and cached in :data:`_heads_of`.

    Every access line of a pipeline shares them: encoded once, not per line. The cache is
    looked up by the identity of ``p.service`` and ``p.env`` (cheaper than comparing
    them; a pipeline with equal values in other string objects only encodes them again).
    """
    global _heads_of  # noqa: PLW0603 - a one-entry cache, replaced atomically
    heads = {
        level: dumps(
            {
                c.LOG_LEVEL: level,
                c.LOG_LOGGER: c.ACCESS_LOGGER,
                c.LOG_MESSAGE: _ACCESS_MESSAGE,
                c.LOG_SERVICE: p.service,
                c.LOG_ENV: p.env,
            }
        )[1:-1]
        + b","
        for level in ("info", "error")
    }
    _heads_of = (p.service, p.env, heads)
    return heads


def _access_line(
    p: _pipeline.Pipeline, state: RequestState, log: RequestLog, duration: float
) -> bytes:
    """The access line of pipeline ``p``: the core fields in schema order, the request's
    context, then the request's outcome; one JSON line, capped like every other line."""
    status_code = int(state.status)  # three digits, 100-599: see RequestState.start_response
    # An unhandled exception or a 5xx is an error; anything else was served.
    level = "error" if state.exception is not None or status_code >= 500 else "info"
    context = _context.get_context()
    # The usual case: the request's fields (what begin() bound, or a bind() in the view).
    if context is not log.context and (
        context.get(c.LOG_REQUEST_ID) != log.request_id or log.token is None
    ):
        # Ended from another context (another thread's, or, once unnest() gave it back,
        # that of the view that served this request, with the same id): use only this
        # request's fields.
        context = log.context
    # The context was redacted when bound and holds no core field (bind() renames them).
    fields = {**context}
    if c.LOG_REQUEST_ID not in fields:  # the view unbound it: the access line keeps it
        fields[c.LOG_REQUEST_ID] = log.request_id
    fields[c.LOG_ENDPOINT] = state.endpoint or c.ENDPOINT_UNMATCHED
    fields[c.LOG_STATUS_CODE] = status_code
    # To the microsecond; round(x, 6) goes through a decimal string and back, this
    # integer rounding does not (the JSON shows the same digits).
    fields[c.LOG_DURATION] = round(duration * 1e6) / 1e6
    if log.user_id is not None:
        fields[c.LOG_USER_ID] = log.user_id
    if getattr(state, "client_aborted", False):  # unset on most requests: see RequestState
        fields[c.LOG_CLIENT_ABORTED] = True
    if _pipeline.STRUCTLOG_VARS is None or _pipeline.STRUCTLOG_VARS:  # see Pipeline.head
        p.add_structlog_context(fields)
    if _request_secrets():  # a secret URL value, maybe in a field bound by the view
        fields = _url_secrets.scrub_event(fields, p.mask)
    exc = state.exception
    if exc is not None:
        exc_info = (type(exc), exc, exc.__traceback__)
        # Flask's "Exception on ..." error line (or the view's own) carried the traceback,
        # with this request's id: the access line gives the type and message only.
        logged = getattr(state, "logged_exception", None) is exc
        fields[c.LOG_EXCEPTION] = p.exception_summary(exc_info) if logged else p.exception(exc_info)
    timestamp = rfc3339(time.time())
    # The core fields come from _heads, encoded once per service and env; only the request's own
    # fields are encoded here. ``fields`` always holds the status, so its JSON object is
    # never empty and dropping its "{" leaves a valid continuation.
    cached = _heads_of  # read once: another thread may replace it meanwhile
    heads = cached[2] if cached[0] is p.service and cached[1] is p.env else _heads(p)
    line = b"".join(
        (b'{"timestamp":"', timestamp.encode(), b'",', heads[level], dumps(fields)[1:], b"\n")
    )
    if len(line) <= p.max_line_bytes:
        return line
    # Over the cap: the common encoder cuts it down, as for every other line.
    event = {
        c.LOG_TIMESTAMP: timestamp,
        c.LOG_LEVEL: level,
        c.LOG_LOGGER: c.ACCESS_LOGGER,
        c.LOG_MESSAGE: _ACCESS_MESSAGE,
        c.LOG_SERVICE: p.service,
        c.LOG_ENV: p.env,
        **fields,
    }
    return encode_line(event, p.max_line_bytes)
