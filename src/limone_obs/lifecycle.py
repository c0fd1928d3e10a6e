"""One request lifecycle, shared by the exporter and the logging integration.

```
WSGI call -> start clock -> participants' begin (queue time, request id, context)
          -> Flask routing -> routing hook: the URL rule, once -> participants' routed
          -> view -> body sent to its last byte (the server's sendfile kept) -> close()
          -> end of request: one duration -> every participant's end (recorder, access line)
```

:func:`install` wraps ``app.wsgi_app`` once per app (Flask's documented way to add WSGI
middleware) and learns the URL rule where Flask stores it: the app's ``request_class``
(a documented setting) becomes a subclass whose ``view_args`` and ``routing_exception``
setters are the routing hook. Flask assigns one of them once it has matched the request,
while pushing the request context, before any ``before_request`` function, so every hook
and line of the request already sees the endpoint. Nothing is looked up through Flask's
``request`` proxy on the way (each lookup costs more than the rest of the hook). An app
that sets another ``request_class`` after the lifecycle is installed gets, from its next
request on, a URL value preprocessor doing the same work, and one warning line saying so.
Unhandled exceptions arrive through the ``got_request_exception`` signal. No method of the
app is replaced and no private attribute of Flask or Werkzeug is read, so the same code
runs on Flask 3.0, 3.1 and 3.2.

The exporter and the logging integration each add a :class:`Participant`; whichever is
initialised first installs the lifecycle, the second joins it. Timing at ``close()``, not
in ``after_request``, is what makes a streamed AI answer count its full duration: Flask's
``after_request`` runs before a streamed body is produced.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from operator import attrgetter
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from flask import Flask, Request, has_request_context, request
from flask.signals import got_request_exception

from limone_obs import conventions as c

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: Key of the app's :class:`Lifecycle` in ``app.extensions``.
EXTENSION_KEY = "limone_obs.lifecycle"
#: Key of the per-request :class:`RequestState` in the WSGI environ.
STATE_KEY = "limone_obs.request"
_new = object.__new__
_T = TypeVar("_T")
#: Set on the request classes :func:`routing_request_class` makes (and their subclasses).
ROUTING_MARK = "limone_obs_routing_hook"
logger = logging.getLogger("limone_obs")
#: Guards every request's ``tally``: thread-pool work of one request may add at once.
TALLY_LOCK = threading.Lock()


class Participant(Protocol):
    """What the exporter and the logging integration each do at the lifecycle's steps.

    Each step must not raise: a participant catches and reports its own failures, since
    an exception here would fail the user's request.
    """

    def begin(self, state: RequestState, environ: WSGIEnvironment) -> None:
        """The request arrived (clock started, nothing routed yet). ``environ[STATE_KEY]``
        is still the request of another instrumented app whose WSGI stack or view serves
        this one (a mount, ``Response.from_app``), if any."""

    def routed(self, state: RequestState) -> None:
        """Flask matched the request: ``state.endpoint`` is its URL rule (or unmatched)."""

    def end(self, state: RequestState, elapsed: float) -> None:
        """The body was sent to its last byte (or the request failed): ``elapsed`` seconds.

        Every participant's ``end`` runs even if another one raised (then re-raised).
        """

    def unnest(self, state: RequestState) -> None:
        """The app answered ``state`` inside a routed view of another instrumented app
        (or of this one) that served it its environ or called it with one of its own;
        the view goes on (``state``'s body may still be sent): undo what ``begin`` made
        current in the context, so the view's own request is current again."""

    def reenter(self, state: RequestState) -> Callable[[], None] | None:
        """A chunk of unnested ``state``'s body is about to be made: make ``state``'s
        context current again; return what undoes that once the chunk is made (or None)."""


class RequestState:
    """One request while it is served, as every participant sees it.

    A single object plays three parts (state, ``start_response`` wrapper and the response
    iterable handed to the server), to keep per-request allocations to a minimum: the
    lifecycle's cost is measured against bare Flask in bench/. Made by
    :meth:`Lifecycle.__call__`, which fills every field.
    """

    __slots__ = (
        "_app_headers", "_body", "_close_error", "_lifecycle", "_start_response", "busy",
        "client_aborted", "endpoint", "exception", "headers", "inner", "log",
        "logged_exception", "method", "metrics", "nested", "path", "start", "status", "tally",
    )  # fmt: skip

    #: ``perf_counter()`` at arrival; None once the request has ended.
    start: float | None
    #: The request method and path as the client sent them (untrusted: bound before use).
    method: str
    path: str
    #: The three-digit status code from start_response ("500" until it is called).
    status: str
    #: The URL rule (``/projects/<int:id>``), ENDPOINT_UNMATCHED, or None before routing.
    endpoint: str | None
    #: The request's first unhandled exception (its traceback in ``__traceback__``).
    exception: BaseException | None
    #: Response headers a participant adds unless the app set them (e.g. the request id).
    headers: list[tuple[str, str]] | None
    #: The same request's state in another instrumented app that this app's WSGI stack
    #: handed it to (a ``DispatcherMiddleware`` mount inside the wrapper), else None. The
    #: app that routed the request records it: participants record nothing for a state
    #: with an ``inner`` one (its own counts and access line would repeat that app's).
    #: A placeholder state when that app does not record the path (its metrics path).
    inner: RequestState | None
    #: The requests of instrumented apps that a view of this request served its own
    #: environ to (``Response.from_app``) or called with one of their own (a test
    #: client), still unended when they gave it back; ended with this one at the latest
    #: (a view that drops such an unbuffered answer never closes it), unless their body is
    #: being made in another thread right then (that thread ends them). None while there
    #: is none; the ended ones are dropped whenever another is added.
    nested: list[RequestState] | None
    #: The exporter's and the logging integration's own per-request data.
    metrics: Any
    log: Any
    #: Dependency calls of this request (``dependency -> [calls, seconds]``), None until
    #: the first one: added by :func:`add_call`, read by the exporter at the end.
    tally: dict[str, list[float]] | None
    #: The time at least one dependency call was working for this request, as
    #: ``[settled seconds, from, to, start, end, start, end, ...]`` (see
    #: :func:`_add_span`); unset until the first call (read with getattr: most requests
    #: make none).
    busy: list[float]
    #: The last exception whose traceback a log line of this request carried (set by the
    #: logging pipeline, :func:`traceback_logged`); unset until then (read with getattr:
    #: most requests log none, and this costs them nothing).
    logged_exception: BaseException
    #: True when the server stopped reading the body before its end (the client went
    #: away mid-body: see __iter__); unset otherwise (read with getattr, as above).
    client_aborted: bool
    #: The headers the app gave ``start_response`` (read only when the server stops
    #: reading the body early: its ``Content-Length`` says whether all was sent).
    _app_headers: Any
    _start_response: StartResponse
    _lifecycle: Lifecycle
    _body: Iterable[bytes]
    #: What the body's close() raised when the iteration ended (see __iter__); unset
    #: otherwise (read with getattr, as above).
    _close_error: Exception

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        """The ``start_response`` the app sees: remembers the status, adds headers, delegates."""
        code = status[:3]
        if status[3:4] != " " or code not in _HTTP_CODES:  # not "NNN reason" with 100-599
            code = _odd_status(status)
        self.status = code
        self._app_headers = headers
        if self.headers is not None:
            headers = _with_headers(headers, self.headers)
        start_response = self._start_response  # loaded, then called: see Lifecycle.__call__
        return start_response(status, headers, exc_info)

    def record_exception(self, exc: BaseException) -> None:
        """Remember the first unhandled exception of this request."""
        if self.exception is None:
            self.exception = exc

    def finish(self) -> None:
        """End the request once (later calls do nothing): one duration for every participant."""
        start = self.start
        if start is None:
            return
        self.start = None
        if self.nested is not None:
            self._end_nested()  # first: a request lasts as long as those nested in it
        elapsed = perf_counter() - start
        if self.endpoint is None and self.inner is None and self.exception is None:
            self._lifecycle.unrouted(self)  # answered by WSGI middleware, not by Flask
        failed: BaseException | None = None
        for end in self._lifecycle.ends:
            try:
                end(self, elapsed)
            except Exception as exc:  # the others still end: one's failure loses no count
                failed = failed or exc
        if failed is not None:
            raise failed

    def _end_nested(self) -> None:
        """End the nested requests still open (their bodies were dropped unclosed), as
        the server's close() would have: their counts and lines are recorded now."""
        with TALLY_LOCK:
            nested, self.nested = self.nested or [], None
        for other in nested:
            if other.start is None:
                continue
            body = getattr(other, "_body", None)
            if type(body) is _SentAs and body.making:
                # Its body is being made in another thread right now (a sub-request of a
                # thread that outlives the view): closing it there would cut it short;
                # that thread ends it once it has read it.
                continue
            with contextlib.suppress(Exception):  # each participant reports its own failure
                if body is not None:
                    other.close()
                else:  # the server's file wrapper, returned unwrapped: not at hand here
                    other.finish()

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        handed = False  # a chunk (maybe empty) went to the server: see _unsent()
        try:
            # A loop, not ``yield from``: that would close the body when the iteration is
            # dropped, and the server's close() would close it a second time.
            for chunk in self._body:
                sent += len(chunk)
                handed = True
                yield chunk
        except GeneratorExit:
            # The server dropped the iteration before the body's end: a client gone, or a
            # server that stops once it has sent Content-Length bytes and never calls
            # close() (asgiref's WsgiToAsgi). End the request now, and close the body as
            # PEP 3333 asks of the server (once: a close() from the server comes too late).
            if self.start is not None and sent < _content_length(getattr(self, "_app_headers", ())):
                self.client_aborted = True
            self.close()
            raise
        except BaseException as exc:
            # After a chunk, the status line is sent: keep it. Before the first one,
            # servers that send the headers with the first chunk answer 500 instead
            # (gunicorn, Werkzeug, asgiref's adapter), or the client gets the exception
            # (Werkzeug's test client): record that. Either way record the broken
            # stream, and end the request here: nothing more will be sent, and a client
            # that reads the body and gets this exception or a server (asgiref) may
            # never close it.
            if _unsent(handed, sent, self._start_response):
                self.status = "500"
            self.record_exception(exc)
            with contextlib.suppress(Exception):  # each participant reports its own failure
                self.close()
            raise
        # The server asks for the next chunk only after writing the previous one, so the
        # body is fully sent here; closing it and ending now also serves servers and
        # clients that never close() (asgiref's WsgiToAsgi, Werkzeug's test client without
        # buffered=True). The server's close() then finds it done.
        try:
            self.close()
        except Exception as exc:
            # The body was whole, its close() failed (a call_on_close callback raising).
            # Raised here it would cut the response the server is still finishing (a
            # chunked one's last chunk): the server's own close(), after its last byte,
            # raises it, as it would without the kit.
            self._close_error = exc

    def close(self) -> None:
        """Close the wrapped body (once), then end the request (even if closing failed:
        the failure is the request's exception). A second close(), from the server after
        the iteration, raises what the body's close() raised at the iteration's end."""
        body = self._body
        self._body = ()
        if type(body) is tuple and not body:
            pending = getattr(self, "_close_error", None)
            if pending is not None:
                del self._close_error
                raise pending
        try:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            self.record_exception(exc)  # before finish(): its count and access line have it
            raise
        finally:
            self.finish()


#: The status codes HTTP defines room for (RFC 9110: 100-599), as ``start_response`` has them.
_HTTP_CODES = frozenset(str(code) for code in range(100, 600))
#: The invalid statuses already named in a warning (a few: the app's own code makes them).
_invalid_said: set[str] = set()


def _odd_status(status: object) -> str:
    """The status recorded for a ``status`` not written ``"NNN reason"``: its code when it
    is one HTTP has and stands alone or before other white space (``"204"``,
    ``"204\tNo Content"``: gunicorn sends them as they are); else (``Response(status=1000)``,
    ``99``: Werkzeug takes any integer) 500, as for any other server-side failure, with a
    warning naming it (once per status and process, a few at most). Never raises."""
    if isinstance(status, str) and status[:3] in _HTTP_CODES:
        rest = status[3:]
        if not rest or rest[0].isspace():
            return status[:3]
    text = str(status)[:64] if isinstance(status, str) else type(status).__name__
    if text not in _invalid_said and len(_invalid_said) < 16:
        _invalid_said.add(text)
        with contextlib.suppress(Exception):  # a warning must not fail the request
            logger.warning(
                "limone-obs: the app answered with HTTP status %r, not a code from 100 to "
                "599 followed by a reason; it is recorded as status 500 in the metrics and "
                "the access line (the client got it as sent). Said once per status and process.",
                text,
            )
    return "500"


def _unsent(handed: bool, sent: int, start_response: Any) -> bool:
    """True when the server had sent no status line yet as the body failed: before its
    first chunk, or after only empty ones under servers that skip empty chunks unsent
    (gevent's pywsgi, waitress: gunicorn and Werkzeug send the headers with an empty one),
    unless the server sent the status at ``start_response`` (:func:`_status_sent_at_start`)."""
    if handed and (sent or not _skips_empty_chunks(start_response)):
        return False
    return not _status_sent_at_start(start_response)


def _skips_empty_chunks(start_response: Any) -> bool:
    """True for the ``start_response`` of a server that sends nothing, not even the
    headers, for an empty chunk: gevent's pywsgi (also through gunicorn's ``gevent_pywsgi``
    worker, a subclass of its handler) and waitress (a function inside its task). Read
    from the module the function is defined in."""
    module = getattr(start_response, "__module__", None) or ""
    return module.split(".")[0] in {"gevent", "waitress"}


def _status_sent_at_start(start_response: Any) -> bool:
    """True when the server's ``start_response`` sends the app's status as it is called,
    before the body: uWSGI's (``uwsgi_spit``) and a2wsgi's (the WSGI adapter uvicorn
    serves Flask through). Asked only when a body fails before its first chunk; what a
    module list would say is no answer (a process may import either and serve through
    another)."""
    if getattr(start_response, "__qualname__", None) == "uwsgi_spit":
        return True
    owner = type(getattr(start_response, "__self__", None))
    return owner.__module__.split(".")[0] == "a2wsgi"


class _SentAs:
    """The body of a nested request sent after its view got the context back: each chunk
    is made, and the body closed, with that request current in the context again (what
    its generator, its cleanup and its ``call_on_close`` functions call, log and bind is
    its own: each participant's ``reenter``), then the view's is current again."""

    __slots__ = ("_body", "_chunks", "_state", "making")

    def __init__(self, state: RequestState, body: Iterable[bytes]) -> None:
        self._state = state
        self._body = body
        self._chunks: Iterator[bytes] | None = None
        #: True while a chunk is being made (read by the outer request's end, which may
        #: run in another thread).
        self.making = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._chunks is None:
            self._chunks = iter(self._body)
        return self._as_current(self._chunks.__next__)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            self._as_current(close)

    def _as_current(self, step: Callable[[], _T]) -> _T:
        state = self._state
        token = _CURRENT.set(state)
        undo = [u for reenter in state._lifecycle.reenters if (u := reenter(state)) is not None]
        self.making = True
        try:
            return step()
        finally:
            self.making = False
            for leave in reversed(undo):
                leave()
            _CURRENT.reset(token)


#: The state of the request this context serves (set on arrival, never reset: a streamed
#: body is produced after the WSGI call returned, and asyncio tasks and thread-pool work
#: copied from the request's context must find it). Read where the request is not at
#: hand: dependency calls made anywhere in the app. So each thread keeps its last
#: request's state, and through it that request's app, until its next request.
_CURRENT: ContextVar[RequestState | None] = ContextVar("limone_obs_request", default=None)
_set_current = _CURRENT.set
_get_current = _CURRENT.get


def add_call(dependency: str, elapsed: float, span: bool = True) -> None:
    """Count a dependency call of ``elapsed`` seconds, ending now, in this context's
    request, if any (its part since the request arrived); with ``span``, the call's time
    also joins the request's busy time (:func:`add_busy`; a timed stream adds each item's
    time itself).

    The request is the one this context's variable names, else the one whose Flask request
    context is pushed here. Ignored outside a request, and once the request has ended (a
    thread still running after its response cannot change what was recorded).
    """
    end = perf_counter()
    state = _calling_state()
    if state is None:
        return
    with TALLY_LOCK:
        began = state.start
        if began is None:
            return
        # A call begun before the request (a coroutine made by an earlier one, a stream
        # resumed) counts from the request's arrival: never more than the request's time.
        elapsed = min(elapsed, end - began)
        if span:
            _add_span(state, end - elapsed, end)
        calls = state.tally
        if calls is None:
            state.tally = {dependency: [1.0, elapsed]}
            return
        entry = calls.get(dependency)
        if entry is None:
            calls[dependency] = [1.0, elapsed]
        else:
            entry[0] += 1.0
            entry[1] += elapsed


def add_busy(start: float, end: float) -> None:
    """Add the time from ``start`` to ``end`` (``perf_counter()``) that a dependency was
    working for this context's request to the request's busy time, if in a request (its
    part since the request arrived)."""
    state = _calling_state()
    if state is None:
        return
    with TALLY_LOCK:
        began = state.start
        if began is not None and end > began:
            _add_span(state, max(start, began), end)


def _calling_state() -> RequestState | None:
    """The request a dependency call made here belongs to (see :func:`add_call`)."""
    state = _get_current()
    if state is None or state.start is None:
        # Nothing set here (a thread of copy_current_request_context), or an ended request:
        # another instrumented app's request served inside this one (its state stays set)
        # leaves this request's own state reachable through Flask's request context.
        state = current_state()
    return state


#: Spans of busy time a request keeps apart before the oldest half is settled into one
#: sum (with the bounds of the time it covers).
MAX_BUSY_SPANS = 1024


def _add_span(state: RequestState, start: float, end: float) -> None:
    """Join ``start``..``end`` to ``state.busy`` (TALLY_LOCK held): ``[settled seconds,
    settled from, settled to, start0, end0, start1, end1, ...]``, disjoint spans in the
    order they end, merged with each span the new one overlaps. Calls end about in the
    order they are added, so a new span merges with the last ones only: O(1) a call,
    amortised. Past MAX_BUSY_SPANS the oldest half is settled into the sum; a later span
    that reaches back into it (a call begun before them) counts it once, exactly when it
    covers it whole, else at least the larger of the two."""
    busy: list[float] | None = getattr(state, "busy", None)
    if busy is None:
        state.busy = [0.0, start, start, start, end]  # nothing settled yet
        return
    if start < busy[2]:  # reaches back into what is settled
        start = _settle_into(busy, start, end)
        if start >= end:
            return
    while len(busy) > 3 and busy[-1] > start:  # overlaps the last span (or ends before it)
        end = max(end, busy.pop())
        start = min(start, busy.pop())
    busy += (start, end)
    if len(busy) > 2 * MAX_BUSY_SPANS + 3:
        settled = 2 * (MAX_BUSY_SPANS // 2)  # the oldest half: busy[3 : 3 + settled]
        oldest = busy[3 : 3 + settled]
        busy[0] += sum(oldest[1::2]) - sum(oldest[0::2])
        if busy[1] == busy[2]:  # nothing settled before: the sum starts with them
            busy[1] = oldest[0]
        busy[2] = oldest[-1]
        del busy[3 : 3 + settled]


def _settle_into(busy: list[float], start: float, end: float) -> float:
    """Join the part of ``start``..``end`` up to the end of the settled time to it; return
    where the rest of the span starts. The settled sum becomes the busy time within its
    bounds widened to ``start``: at least the sum (plus any time before its bounds) and at
    least this part, exact when the span covers the settled time whole."""
    settled_from, settled_to = busy[1], busy[2]
    before = max(0.0, settled_from - start)
    busy[0] = max(busy[0] + before, min(end, settled_to) - start)
    busy[1] = min(settled_from, start)
    return settled_to


def busy_seconds(busy: list[float]) -> float:
    """The seconds of a request's busy time (``RequestState.busy``): at least one tracked
    dependency call was working for it."""
    return busy[0] + sum(busy[4::2]) - sum(busy[3::2])


def traceback_logged(exc: BaseException) -> None:
    """Remember that a log line of this context's request, still being served, carried
    ``exc``'s traceback: its access line then need not repeat it."""
    state = _get_current()
    if state is not None and state.start is not None:
        state.logged_exception = exc


def _with_headers(headers: Any, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` plus each of ``extra`` whose name (any case) is not among them (one the
    app sets to another value is said, once per name: see :func:`_say_kept_header`)."""
    out = list(headers)
    for header in extra:
        name = header[0].lower()
        for present, value in headers:
            if present.lower() == name:
                if value != header[1] and name not in _kept_said:
                    _say_kept_header(present)
                break
        else:
            out.append(header)
    return out


#: Header names (lower case) already said by :func:`_say_kept_header` in this process.
_kept_said: set[str] = set()


def _say_kept_header(name: str) -> None:
    """Say once that the app's response sets header ``name`` (the request id's) itself,
    to another value than the kit's: a client then reports an id no log line carries."""
    _kept_said.add(name.lower())
    logger.warning(
        "limone-obs: the app's responses set their own %s header (an after_request hook, "
        "or the view), to another value than the request id this request's log lines "
        "carry: the app's is sent, so an id a client reports matches no log line. Drop "
        "the app's header: the kit sends the id on every response, and "
        "limone_obs.logging.get_context()['request_id'] is that id in the app.",
        name,
    )


def _content_length(headers: Any) -> float:
    """The ``Content-Length`` among ``headers`` (a WSGI header list), else infinity: a
    body without one (a stream) is whole only at its end. Never raises: it runs where
    the request must still end (headers of an odd shape count as none)."""
    try:
        for name, value in headers:
            if name.lower() == "content-length":
                return int(value)
    except Exception:
        pass
    return float("inf")


def _finish_on_close(body: Any, state: RequestState) -> bool:
    """Make ``body.close()`` end the request; False if the object does not allow it.

    The server sends its own file wrapper with sendfile(2) only when it gets that very
    object back, so it is returned unwrapped, with the end of the request moved into its
    close.
    """
    original = getattr(body, "close", None)

    def close() -> None:
        try:
            if original is not None:
                original()
        finally:
            state.finish()

    try:
        body.close = close
    except AttributeError:
        return False
    return True


def _route(state: RequestState, endpoint: str) -> None:
    """The routing hook's work: set ``state.endpoint`` once, then tell the participants.

    A request already routed (a copied request context matches again) or already ended
    (a test request context dispatched by hand afterwards) is left as it is.
    """
    if state.endpoint is not None or state.start is None:
        return
    state.endpoint = endpoint
    for routed in state._lifecycle.routeds:
        routed(state)


#: The getters are C functions: Flask reads each attribute on every request, and a
#: property calls a C getter without making a Python frame.
_get_view_args = attrgetter("limone_obs_view_args")
_get_routing_exception = attrgetter("limone_obs_routing_exception")


def _set_view_args(self: Request, args: dict[str, Any] | None) -> None:
    self.limone_obs_view_args = args  # type: ignore[attr-defined]
    state = self.environ.get(STATE_KEY)  # None outside a lifecycle (test_request_context)
    # _route's work, inline (one frame less on every request).
    if state is not None and state.endpoint is None and state.start is not None:
        # Flask assigns the rule, then its arguments, in one statement (url_rule is read
        # several times per request, view_args once: the hook sits on the latter).
        rule = self.url_rule
        state.endpoint = rule.rule if rule is not None else c.ENDPOINT_UNMATCHED
        for routed in state._lifecycle.routeds:
            routed(state)


def _set_routing_exception(self: Request, exc: Exception | None) -> None:
    self.limone_obs_routing_exception = exc  # type: ignore[attr-defined]
    state = self.environ.get(STATE_KEY)
    if state is not None and exc is not None:
        _route(state, c.ENDPOINT_UNMATCHED)  # 404, 405, a redirect: no URL rule


def routing_request_class(base: type[Request]) -> type[Request]:
    """A subclass of ``base`` whose ``view_args`` and ``routing_exception`` setters route.

    Flask assigns ``url_rule`` and ``view_args`` once it has matched the request, or
    ``routing_exception`` when it could not; the setter stores the value, as the plain
    attribute did, and hands the request's :class:`RequestState` (found in its environ)
    the URL rule or ENDPOINT_UNMATCHED. Where ``base`` defines either attribute with a
    descriptor of its own (a property), that descriptor still stores and reads the value
    and routing follows its setter. The subclass keeps ``base``'s name, module and
    behaviour.
    """
    namespace: dict[str, Any] = {
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
        ROUTING_MARK: True,
        "limone_obs_view_args": None,
        "limone_obs_routing_exception": None,
    }
    for name, getter, setter in (
        ("view_args", _get_view_args, _set_view_args),
        ("routing_exception", _get_routing_exception, _set_routing_exception),
    ):
        own = inspect.getattr_static(base, name, None)
        if hasattr(type(own), "__set__"):
            namespace[name] = _after_own_setter(own, setter)
        else:
            namespace[name] = property(
                getter, setter, doc=f"{name}, as Flask sets it; setting it routes."
            )
    return type(base.__name__, (base,), namespace)


def _after_own_setter(own: Any, route: Callable[[Request, Any], None]) -> property:
    """A property that keeps the app's own data descriptor ``own`` and routes after it set."""

    def get(self: Request) -> Any:
        return own.__get__(self, type(self))

    def set_(self: Request, value: Any) -> None:
        own.__set__(self, value)  # raises as it did (a read-only property): nothing routed
        route(self, value)  # also keeps the value in its own attribute, unread here

    return property(get, set_)


class Lifecycle:
    """The WSGI wrapper of one app: starts, routes and ends every request for its participants.

    ``mounts`` are WSGI apps served on exact paths before Flask sees the request (the
    metrics path); they belong to no request lifecycle. A path every participant
    excludes passes through untouched.
    """

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        #: The ``app.request_class`` the lifecycle last saw (see _request_class_changed).
        self.request_class: type[Request] = app.request_class
        #: True once the URL value preprocessor stands in for the request class's setters.
        self.preprocessing = False
        #: True once :meth:`unrouted` has said its warning (once per app).
        self.unrouted_said = False
        self._lock = threading.Lock()
        self.mounts: dict[str, WSGIApplication] = {}
        self.participants: tuple[Participant, ...] = ()
        self.begins: tuple[Any, ...] = ()
        self.routeds: tuple[Any, ...] = ()
        self.ends: tuple[Any, ...] = ()
        self.unnests: tuple[Any, ...] = ()
        self.reenters: tuple[Any, ...] = ()
        #: Paths no participant records, and the mounts: one set lookup per request.
        self._skip: frozenset[str] = frozenset()
        self._excluded: list[frozenset[str]] = []

    def add(self, participant: Participant, excluded: frozenset[str] = frozenset()) -> None:
        """Add ``participant``; ``excluded`` are the exact paths it does not want to see.

        The participant must check ``excluded`` itself in ``begin`` (another participant
        may still want the request); the lifecycle skips a path only if all exclude it.
        """
        self.participants = (*self.participants, participant)
        self.begins = (*self.begins, participant.begin)
        self.routeds = (*self.routeds, participant.routed)
        self.ends = (*self.ends, participant.end)
        self.unnests = (*self.unnests, participant.unnest)
        self.reenters = (*self.reenters, participant.reenter)
        self._excluded.append(excluded)
        self._update_skip()

    def mount(self, path: str, app: WSGIApplication) -> None:
        """Serve ``app`` on exactly ``path``, outside any request lifecycle."""
        self.mounts[path] = app
        self._update_skip()

    def _update_skip(self) -> None:
        common = frozenset.intersection(*self._excluded) if self._excluded else frozenset()
        self._skip = common | frozenset(self.mounts)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in self._skip:
            return self._pass_through(path, environ, start_response)
        if self.app.request_class is not self.request_class:
            self._request_class_changed()
        # Filled here, not in an __init__: CPython 3.11 calls a Python __init__ through
        # a slow generic path, and this runs on every request.
        outer = environ.get(STATE_KEY)
        state = _new(RequestState)
        state.start = perf_counter()
        state.method = environ.get("REQUEST_METHOD", "")
        state.path = path
        state.status = "500"
        state.endpoint = None
        state.exception = None
        state.headers = None
        state.metrics = None
        state.log = None
        state.tally = None
        state.inner = None
        state.nested = None
        state._start_response = start_response
        state._lifecycle = self
        if outer is not None and outer.start is not None and outer.endpoint is None:
            # Another instrumented app's wrapper handed this request on before its Flask
            # routed it (a mount inside it): this app routes it and records it, that one
            # records nothing. (A view that serves its environ to another app was routed:
            # both record their own.)
            outer.inner = state
        # What a nested request gives the context back to (see _give_back): the request of
        # another instrumented app that handed this one its environ, else that of a view
        # still being served here that called this app with an environ of its own (its
        # test client, a batch endpoint's sub-requests); in a sync worker the previous
        # request of this context has ended.
        previous = _get_current()
        back = outer
        shared: WSGIEnvironment | None = environ
        if outer is None and previous is not None and previous.start is not None:
            back, shared = _view_serving(previous), None
        # Needed past here only to give the context back. Kept, this frame would hold the
        # previous request's state; and this frame outlives the call in this request's
        # tracebacks (their frames keep their callers), which the state this context keeps
        # until its next request holds: a row of requests that failed, or logged a handled
        # exception with its traceback, kept every app they were made on alive (a trial).
        previous = None if back is None else previous
        _set_current(state)
        for begin in self.begins:
            begin(state, environ)
        # After the begins: there, the environ still holds the request of another
        # instrumented app serving this one, if any (its request id is this one's).
        environ[STATE_KEY] = state
        # Loaded, then called: CPython 3.11 specialises neither calling an attribute that
        # holds a callable (it looks for a method on the class first, every time) nor
        # self.wsgi_app(...) as written in one expression; the split form is.
        wsgi_app = self.wsgi_app
        try:
            body = wsgi_app(environ, state.start_response)
        except BaseException as exc:
            state.status = "500"
            state.record_exception(exc)
            try:
                state.finish()
            finally:
                if back is not None:
                    self._give_back(back, state, shared, previous)
            raise
        # The server's own file wrapper (send_file) goes back unwrapped: see _finish_on_close.
        if type(body) is environ.get("wsgi.file_wrapper") and _finish_on_close(body, state):
            if back is not None:
                self._give_back(back, state, shared, previous)
            return body
        state._body = body
        if back is not None:
            self._give_back(back, state, shared, previous)
        return state

    def _pass_through(
        self, path: str, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Serve a path no participant records (the metrics path, a mount) untouched."""
        _set_current(None)
        outer = environ.get(STATE_KEY)
        if outer is not None and outer.start is not None and outer.endpoint is None:
            # A path this app does not record (its metrics path), handed on by another
            # instrumented app's wrapper (a mount inside it): that app records it
            # neither (as it does not record its own metrics path).
            outer.inner = _UNRECORDED
        mounted = self.mounts.get(path)
        return (mounted or self.wsgi_app)(environ, start_response)

    def _give_back(
        self,
        outer: RequestState,
        state: RequestState,
        environ: WSGIEnvironment | None,
        previous: RequestState | None,
    ) -> None:
        """Once this app has routed and answered ``state`` (its body may still be sent),
        give the context back to the request current before it (``previous``, else
        ``outer``): that of the routed view that served this app its environ
        (``Response.from_app(app, request.environ)`` serves a copy; a direct call the
        environ itself, whose ``STATE_KEY`` goes back to ``outer`` too), or called it
        with an environ of its own (``environ`` None: that environ stays ``state``'s), or
        of a nested body being sent. What that view does next (dependency calls, ``bind``,
        an exception) is its own request's. The body still to be sent is made with
        ``state`` current again (:class:`_SentAs`). A request handed over before the
        outer app routed it (a mount) keeps all: the outer app's Flask never sees it.

        ``state``, still open, is ended with ``outer`` at the latest (``nested``); if
        ``outer`` ends in another thread meanwhile, ``state`` ends by itself only.
        """
        if outer.inner is state:
            return
        if state.start is not None:
            with TALLY_LOCK:  # a view may serve other apps from several threads at once
                if outer.start is not None:
                    # Without the ones that ended by themselves: a long stream that calls
                    # another app on every chunk keeps only those still open.
                    kept = [s for s in outer.nested or () if s.start is not None]
                    kept.append(state)
                    outer.nested = kept
            if hasattr(state, "_body"):
                state._body = _SentAs(state, state._body)
        for unnest in self.unnests:
            unnest(state)
        if environ is not None and environ.get(STATE_KEY) is state:
            environ[STATE_KEY] = outer
        if _get_current() is state:
            _set_current(previous if previous is not None else outer)

    def _request_class_changed(self) -> None:
        """``app.request_class`` was set after install: keep routing, and say how.

        A subclass of the routing class still routes. Any other class gets the URL value
        preprocessor (same work, slower: it asks Flask's ``request`` proxy), once, with a
        warning naming the class; nothing of the app's own class is changed.
        """
        with self._lock:
            current = self.app.request_class
            if current is self.request_class:
                return  # another thread got here first
            self.request_class = current
            if getattr(current, ROUTING_MARK, False) or self.preprocessing:
                return
            self.preprocessing = True
            # First in line, so every other preprocessor and before_request hook (and the
            # lines they log) already sees the endpoint.
            self.app.url_value_preprocessors.setdefault(None, []).insert(0, self.on_routed)
        logger.warning(
            "limone-obs: Flask app %r got request_class %s.%s after limone-obs was "
            "initialised; the URL rule is now learnt by a URL value preprocessor, which "
            "costs more per request. Set app.request_class before the first of "
            "Metrics(app) and limone_obs.logging.init_app(app) to keep the faster hook.",
            self.app.name,
            current.__module__,
            current.__qualname__,
        )

    def unrouted(self, state: RequestState) -> None:
        """A request ended that the app's Flask routing never saw, without an exception:
        WSGI middleware between the wrapper and Flask answered it (a ``DispatcherMiddleware``
        mount of an app without the kit, ``SharedDataMiddleware``). Participants record it
        as unmatched; this says so once per app and process, with what to do (never
        raises)."""
        if self.unrouted_said:
            return
        self.unrouted_said = True
        with contextlib.suppress(Exception):  # a warning must not fail the request's end
            logger.warning(
                "limone-obs: Flask app %r did not route %s %r (status %s): WSGI middleware "
                "applied to app.wsgi_app before Metrics(app) or limone_obs.logging.init_app "
                "answered it (a DispatcherMiddleware mount, SharedDataMiddleware). Such "
                "requests are recorded under endpoint %s. Instrument the mounted app as well "
                "(it then records its own requests and this app none of them), or apply the "
                "middleware after the kit so this app never sees them. Said once per app and "
                "process.",
                self.app.name,
                state.method[:16],
                state.path[:200],
                state.status,
                c.ENDPOINT_UNMATCHED,
            )

    def on_routed(self, _endpoint: str | None, _values: dict[str, Any] | None) -> None:
        """The URL value preprocessor used when the app's request class cannot route."""
        # Flask's documented way to the proxied request: one proxy lookup, not two.
        routed = request._get_current_object()  # type: ignore[attr-defined]
        state = routed.environ.get(STATE_KEY)
        if state is not None:
            rule = routed.url_rule
            _route(state, rule.rule if rule is not None else c.ENDPOINT_UNMATCHED)

    def on_exception(self, _sender: Flask, exception: BaseException, **_extra: Any) -> None:
        """Flask's ``got_request_exception`` signal: remember the request's exception."""
        state = request.environ.get(STATE_KEY)
        if state is not None:
            state.record_exception(exception)


def _view_serving(previous: RequestState) -> RequestState | None:
    """``previous``, still being served in this context, if it is calling another app
    right now: its Flask request context is the one pushed here (its view, an async view,
    a ``stream_with_context`` body), or its body is being made further up this call
    stack (a plain generator body); else None (a request left unread before this one, as
    a test's unbuffered test client leaves it)."""
    if current_state() is previous or _making_body_of(previous):
        return previous
    return None


#: Frames :func:`_making_body_of` looks through at most.
_MAX_FRAMES = 256


def _making_body_of(state: RequestState) -> bool:
    """True when ``state``'s body is being made further up this call stack.

    Looked for only where a request arrives while an earlier one of its context is still
    open and no Flask request context says whose call it is; the body's frames are on
    the stack while it runs, and absent while it waits for the server's next read.
    """
    code = RequestState.__iter__.__code__
    frame = inspect.currentframe()
    for _ in range(_MAX_FRAMES):
        if frame is None:
            return False
        if frame.f_code is code and frame.f_locals.get("self") is state:
            return True
        frame = frame.f_back
    return False


#: ``RequestState.inner`` of a request handed on to a path the mounted app does not
#: record (its metrics path, its excluded paths): no app records it.
_UNRECORDED = _new(RequestState)
_UNRECORDED.start = None


def install(app: Flask) -> Lifecycle:
    """Return ``app``'s lifecycle, installing it on first use (wrapper, routing hook, signal)."""
    lifecycle: Lifecycle | None = app.extensions.get(EXTENSION_KEY)
    if lifecycle is not None:
        return lifecycle
    if not getattr(app.request_class, ROUTING_MARK, False):
        app.request_class = routing_request_class(app.request_class)
    lifecycle = Lifecycle(app, app.wsgi_app)
    # A bound method: Flask calls it on every request, and calling an instance with
    # __call__ takes CPython's slower generic path.
    app.wsgi_app = lifecycle.__call__  # type: ignore[method-assign]
    # Weak: the signal is global, and a strong receiver (the lifecycle, holding the app)
    # would keep every app an app factory ever made alive, with its connections. The
    # app holds the lifecycle (extensions, wsgi_app) for as long as it lives.
    got_request_exception.connect(lifecycle.on_exception, app, weak=True)
    app.extensions[EXTENSION_KEY] = lifecycle
    return lifecycle


def this_request() -> RequestState | None:
    """The state of the request this context serves (set on arrival, ended or not), or
    None where nothing set it: a thread running in a copy of a request context."""
    return _get_current()


def current_state() -> RequestState | None:
    """The state of the request whose Flask request context is pushed here, or None.

    Also the fallback where this context's variable is empty: a thread running in a copy
    of the request context (``flask.copy_current_request_context``) has Flask's request
    context but none of the request's context variables (Flask copies none).
    """
    if not has_request_context():
        return None
    state: RequestState | None = request.environ.get(STATE_KEY)
    return state
