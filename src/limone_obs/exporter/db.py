"""Database queries timed as a dependency: :func:`track_sqlalchemy`.

Every statement an SQLAlchemy engine sends is one call of the dependency (``db`` by
default), its operation the statement's first keyword (``select``, ``insert``, ...; any
other is ``other``: the SQL text itself would be a series per query, with its literal
values), timed from SQLAlchemy's ``before_cursor_execute`` event to
``after_cursor_execute`` (``ok``) or ``handle_error`` (``error``). As with
``metrics.track()``, each counts in its request's calls per dependency: an N+1 loop of
queries shows in the calls-per-request panels without a ``track()`` around every query.

SQLAlchemy is not a dependency of the kit: it is imported when :func:`track_sqlalchemy`
is called.
"""

from __future__ import annotations

import re
import threading
import weakref
from typing import TYPE_CHECKING, Any, cast

from flask import current_app, has_app_context

from limone_obs import conventions as c
from limone_obs.errors import ConfigError
from limone_obs.exporter.extension import EXTENSION_KEY

if TYPE_CHECKING:
    from limone_obs.exporter.extension import Metrics
    from limone_obs.exporter.tracking import Track

#: Statement keywords kept as the ``operation`` label; any other is ``other``.
OPERATIONS = frozenset(
    {"select", "insert", "update", "delete", "with", "create", "alter", "drop", "begin",
     "commit", "rollback", "savepoint", "release", "pragma", "set", "show", "explain"}
)  # fmt: skip
OTHER = "other"
#: Key of the per-connection stack of running statements in ``connection.info``.
_RUNNING = "limone_obs_running"


#: What may come before a statement's first keyword: white space, opening brackets, and
#: comments (``/* app:report */``, ``-- tag``: sqlcommenter and query tagging put theirs
#: first). The keyword is the letters after them (``SELECT/*+ hint */`` is a select).
_FIRST_KEYWORD = re.compile(r"(?:\s+|\(|--[^\n]*|/\*.*?\*/)*([A-Za-z]*)", re.DOTALL)


def operation_of(statement: object) -> str:
    """The ``operation`` label of SQL ``statement``: its first keyword, lower-cased, if it
    is one of :data:`OPERATIONS`, else ``other``. Comments before it are skipped."""
    if not isinstance(statement, str):
        return OTHER
    found = _FIRST_KEYWORD.match(statement)
    word = found.group(1).lower() if found is not None else ""
    return word if word in OPERATIONS else OTHER


class _EngineTracking:
    """The one set of event listeners of a tracked engine, and the ``Metrics`` it times
    statements with: the current app's among those that tracked it (an engine made at
    module level serves every app the factory makes), else the one that tracked it last."""

    def __init__(self, dependency: str) -> None:
        self.dependency = dependency
        self.metrics: weakref.WeakSet[Metrics] = weakref.WeakSet()
        self.latest: weakref.ref[Metrics] | None = None

    def add(self, metrics: Metrics) -> None:
        self.metrics.add(metrics)
        self.latest = weakref.ref(metrics)

    def current(self) -> Metrics | None:
        """The ``Metrics`` of the app whose context is pushed, if it tracked the engine,
        else the one that tracked it last, else any that tracked it and is still alive
        (None once all are gone)."""
        if has_app_context():
            state = current_app.extensions.get(EXTENSION_KEY)
            metrics = getattr(state, "metrics", None)
            if metrics is not None and metrics in self.metrics:
                return cast("Metrics", metrics)
        latest = self.latest() if self.latest is not None else None
        if latest is None:
            latest = next(iter(self.metrics), None)
        return latest

    def before(self, conn: Any, _cursor: Any, statement: Any, *_args: Any) -> None:
        metrics = self.current()
        if metrics is None:
            return
        track = metrics.track(self.dependency, operation_of(statement))
        track.__enter__()
        conn.info.setdefault(_RUNNING, []).append(track)

    def after(self, conn: Any, *_args: Any) -> None:
        _finish(conn, failed=False)

    def failed(self, context: Any) -> None:
        conn = getattr(context, "connection", None)
        if conn is not None:
            _finish(conn, failed=True)


#: Tracked engines (their ``sync_engine``): one set of listeners each, whatever the
#: number of ``track_sqlalchemy`` calls, so no statement is timed twice.
_tracked: weakref.WeakKeyDictionary[Any, _EngineTracking] = weakref.WeakKeyDictionary()
_tracked_lock = threading.Lock()


def track_sqlalchemy(engine: Any, metrics: Metrics, dependency: str = c.DEPENDENCY_DB) -> None:
    """Time every statement ``engine`` executes as a call of ``dependency``.

    ``engine`` is an SQLAlchemy ``Engine`` or ``AsyncEngine`` (its ``sync_engine`` takes
    the events). A copy made by ``execution_options()`` shares its engine's listeners,
    so it is tracked as that engine: the statements of the engine and of all its copies
    count, each once, whichever of them is tracked (tracking the copy alone used to
    miss the engine's; tracking both, to count the copy's twice). Call it in the app
    factory after creating the engine. Calling it again for the same engine (an app
    factory run once per test, an engine made at module level and shared by several
    apps) times each statement once all the same: with the ``Metrics`` of the app whose
    context is pushed, if it tracked the engine, else with the one given last. Raises
    ConfigError when the object is no engine SQLAlchemy can listen to, or when the engine
    is tracked already under another ``dependency`` name by a live ``Metrics`` (each
    statement would count under both).
    """
    target = _base_engine(getattr(engine, "sync_engine", engine))
    try:
        weakref.ref(target)
    except TypeError:
        raise ConfigError(
            f"track_sqlalchemy({engine!r}): not an SQLAlchemy engine (a proxy of one?); "
            "pass the Engine or AsyncEngine the app creates"
        ) from None
    with _tracked_lock:
        tracking = _tracked.get(target)
        if tracking is not None and tracking.metrics and tracking.dependency != dependency:
            raise ConfigError(
                f"track_sqlalchemy({engine!r}, dependency={dependency!r}): this engine (or "
                "the one its execution_options() copied, whose listeners it shares) is "
                f"tracked already as dependency {tracking.dependency!r}; each statement "
                "would count under both names. Track an engine under one name"
            )
        if tracking is None:
            tracking = _tracked[target] = _listen(engine, target, dependency)
        tracking.dependency = dependency
        tracking.add(metrics)


def _base_engine(engine: Any) -> Any:
    """The engine whose events ``engine`` shares: itself, or for a copy made by
    ``execution_options()`` (an ``OptionEngine``, joined to its parent's listeners), the
    engine it was copied from, through copies of copies."""
    from sqlalchemy.engine import Engine  # noqa: PLC0415 - optional: imported when used

    # SQLAlchemy keeps the parent in ``_proxied`` (1.4 to 2.1); a test checks a copy's
    # statements count once, so a rename there fails loudly rather than counting twice.
    while isinstance(parent := getattr(engine, "_proxied", None), Engine):
        engine = parent
    return engine


def _listen(engine: Any, target: Any, dependency: str) -> _EngineTracking:
    """Attach a new tracking's three listeners to ``target``: all of them, or none."""
    from sqlalchemy import event  # noqa: PLC0415 - optional: imported when used
    from sqlalchemy.exc import InvalidRequestError  # noqa: PLC0415

    tracking = _EngineTracking(dependency)
    added: list[tuple[str, Any]] = []
    try:
        for name, listener in (
            ("before_cursor_execute", tracking.before),
            ("after_cursor_execute", tracking.after),
            ("handle_error", tracking.failed),
        ):
            event.listen(target, name, listener)
            added.append((name, listener))
    except (InvalidRequestError, TypeError) as exc:
        for name, listener in added:
            event.remove(target, name, listener)
        raise ConfigError(
            f"track_sqlalchemy({engine!r}): not an SQLAlchemy engine ({exc}); pass the "
            "Engine or AsyncEngine the app creates"
        ) from None
    return tracking


def _finish(conn: Any, *, failed: bool) -> None:
    """End the connection's latest running statement (``error`` when ``failed``)."""
    running: list[Track] = conn.info.get(_RUNNING) or []
    if not running:
        return  # began before track_sqlalchemy was called
    track = running.pop()
    if failed:
        track.fail()
    track.__exit__(None, None, None)
