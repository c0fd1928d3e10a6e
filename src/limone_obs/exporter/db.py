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

from typing import TYPE_CHECKING, Any

from limone_obs import conventions as c

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


def operation_of(statement: object) -> str:
    """The ``operation`` label of SQL ``statement``: its first keyword, lower-cased, if it
    is one of :data:`OPERATIONS`, else ``other``."""
    if not isinstance(statement, str):
        return OTHER
    words = statement.lstrip(" \t\r\n(").split(None, 1)
    word = words[0].lower() if words else ""
    return word if word in OPERATIONS else OTHER


def track_sqlalchemy(engine: Any, metrics: Metrics, dependency: str = c.DEPENDENCY_DB) -> None:
    """Time every statement ``engine`` executes as a call of ``dependency``.

    ``engine`` is an SQLAlchemy ``Engine`` or ``AsyncEngine`` (its ``sync_engine`` takes
    the events). Call once per engine, e.g. in the app factory after creating it. Raises
    ConfigError when the object is no engine SQLAlchemy can listen to.
    """
    from sqlalchemy import event  # noqa: PLC0415 - optional: imported when used
    from sqlalchemy.exc import InvalidRequestError  # noqa: PLC0415

    from limone_obs.errors import ConfigError  # noqa: PLC0415

    target = getattr(engine, "sync_engine", engine)

    def before(conn: Any, _cursor: Any, statement: Any, *_args: Any) -> None:
        track = metrics.track(dependency, operation_of(statement))
        track.__enter__()
        conn.info.setdefault(_RUNNING, []).append(track)

    def after(conn: Any, *_args: Any) -> None:
        _finish(conn, failed=False)

    def failed(context: Any) -> None:
        conn = getattr(context, "connection", None)
        if conn is not None:
            _finish(conn, failed=True)

    try:
        event.listen(target, "before_cursor_execute", before)
        event.listen(target, "after_cursor_execute", after)
        event.listen(target, "handle_error", failed)
    except InvalidRequestError as exc:
        raise ConfigError(
            f"track_sqlalchemy({engine!r}): not an SQLAlchemy engine ({exc}); pass the "
            "Engine or AsyncEngine the app creates"
        ) from None


def _finish(conn: Any, *, failed: bool) -> None:
    """End the connection's latest running statement (``error`` when ``failed``)."""
    running: list[Track] = conn.info.get(_RUNNING) or []
    if not running:
        return  # began before track_sqlalchemy was called
    track = running.pop()
    if failed:
        track.fail()
    track.__exit__(None, None, None)
