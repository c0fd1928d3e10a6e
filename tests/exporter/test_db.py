"""SQLAlchemy statements timed as the ``db`` dependency (track_sqlalchemy)."""

from __future__ import annotations

import sqlite3
import time

import pytest
from flask import Flask
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from limone_obs import ConfigError, Metrics
from limone_obs import conventions as c
from limone_obs.exporter.db import operation_of, track_sqlalchemy
from tests.exporter.helpers import value

N = c.MetricNames()
SLEEP = 0.01


def sleepy_engine() -> Engine:
    """An in-memory SQLite engine with a ``sleep(seconds)`` SQL function."""
    engine = create_engine("sqlite://")

    def sleep(seconds: float) -> int:
        time.sleep(seconds)
        return 0

    @event.listens_for(engine, "connect")
    def add_sleep(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.create_function("sleep", 1, sleep)

    return engine


def make_app() -> tuple[Flask, Metrics, Engine]:
    app = Flask("db_tests")
    metrics = Metrics(app, registry=CollectorRegistry())
    engine = sleepy_engine()
    track_sqlalchemy(engine, metrics)

    @app.get("/items")
    def items() -> str:
        with engine.connect() as conn:
            for _ in range(5):  # an N+1 loop
                conn.execute(text("SELECT sleep(:s)"), {"s": SLEEP})
        return "ok"

    @app.get("/broken")
    def broken() -> str:
        with engine.connect() as conn:
            try:
                conn.execute(text("SELECT * FROM no_such_table"))
            except OperationalError:
                return "handled"
        return "not reached"

    return app, metrics, engine


def db(metrics: Metrics, operation: str, outcome: str, what: str) -> float | None:
    labels = {"dependency": c.DEPENDENCY_DB, "operation": operation, "outcome": outcome}
    name = N.dependency_duration_count if what == "count" else N.dependency_duration_sum
    return value(metrics, name, labels)


def test_every_statement_is_a_call_counted_in_its_request() -> None:
    """Five queries a request: five ``select`` calls of ``db``, each at least the SQL
    sleep long, and five calls in the request's calls per dependency."""
    app, metrics, _ = make_app()
    for _ in range(2):
        assert app.test_client().get("/items", buffered=True).get_data(as_text=True) == "ok"
    assert db(metrics, "select", c.OUTCOME_OK, "count") == 10
    seconds = db(metrics, "select", c.OUTCOME_OK, "sum")
    assert seconds is not None
    assert seconds >= 10 * SLEEP
    per_request = {"endpoint": "/items", "dependency": c.DEPENDENCY_DB}
    assert value(metrics, N.dependency_calls_per_request_sum, per_request) == 10
    assert value(metrics, N.dependency_calls_per_request_count, per_request) == 2


def test_a_failing_statement_is_an_error_call() -> None:
    """A statement the database refuses (caught by the view) is one ``error`` call, and
    the connection's next statement is timed on its own."""
    app, metrics, engine = make_app()
    assert app.test_client().get("/broken", buffered=True).get_data(as_text=True) == "handled"
    assert db(metrics, "select", c.OUTCOME_ERROR, "count") == 1
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert db(metrics, "select", c.OUTCOME_OK, "count") == 1


@pytest.mark.parametrize(
    ("statement", "operation"),
    [
        ("SELECT 1", "select"), ("  insert into t values (1)", "insert"),
        ("(SELECT 1) UNION (SELECT 2)", "select"), ("WITH x AS (SELECT 1) SELECT * FROM x", "with"),
        ("VACUUM", "other"), ("", "other"), ("DROP TABLE users; --secret", "drop"),
        # Comments first (sqlcommenter, query tags), a hint right after the keyword.
        ("/* app:report */ SELECT 1", "select"), ("-- report\n -- tag\nUPDATE t SET a=1", "update"),
        ("/* a\n b */(/* c */SELECT 1)", "select"), ("SELECT/*+ INDEX(t i) */ a FROM t", "select"),
        ("/* never closed SELECT 1", "other"), ("-- only a comment", "other"),
    ],
)  # fmt: skip
def test_the_operation_is_the_statements_keyword(statement: str, operation: str) -> None:
    """Never the SQL text (a series per query, with its literal values)."""
    assert operation_of(statement) == operation


def test_an_object_that_is_no_engine_is_refused() -> None:
    with pytest.raises(ConfigError, match="not an SQLAlchemy engine"):
        track_sqlalchemy(object(), Metrics(registry=CollectorRegistry()))


def test_an_async_engine_is_timed_through_its_sync_engine() -> None:
    """An AsyncEngine (an async view's database): its statements are calls too."""
    import asyncio  # noqa: PLC0415

    from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415

    metrics = Metrics(registry=CollectorRegistry())
    engine = create_async_engine("sqlite+aiosqlite://")
    track_sqlalchemy(engine, metrics)

    async def run() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await conn.execute(text("SELECT 2"))
        await engine.dispose()

    asyncio.run(run())
    assert db(metrics, "select", c.OUTCOME_OK, "count") == 2


def _items_app(metrics: Metrics, engine: Engine) -> Flask:
    """An app of a factory: ``/items`` runs 5 queries on the module's ``engine``."""
    app = Flask("db_factory")
    metrics.init_app(app)
    track_sqlalchemy(engine, metrics)

    @app.get("/items")
    def items() -> str:
        with engine.connect() as conn:
            for _ in range(5):
                conn.execute(text("SELECT 1"))
        return "ok"

    return app


def _calls_of_items(metrics: Metrics) -> tuple[float | None, float | None]:
    """(calls summed, requests observed) of /items' ``db`` calls per request."""
    per_request = {"endpoint": "/items", "dependency": c.DEPENDENCY_DB}
    return (
        value(metrics, N.dependency_calls_per_request_sum, per_request),
        value(metrics, N.dependency_calls_per_request_count, per_request),
    )


def test_an_engine_tracked_again_by_the_factory_counts_each_statement_once() -> None:
    """An app factory run twice (once per test) with a module-level engine and Metrics:
    5 queries a request stay 5 calls (they were 10, then 15)."""
    metrics, engine = Metrics(registry=CollectorRegistry()), sleepy_engine()
    _items_app(metrics, engine)
    app = _items_app(metrics, engine)
    with app.test_client().get("/items") as resp:
        assert resp.status_code == 200
    assert (5, 1) == _calls_of_items(metrics)
    assert db(metrics, "select", c.OUTCOME_OK, "count") == 5


def test_an_engine_shared_by_two_apps_counts_each_statement_in_its_apps_metrics() -> None:
    """Two apps, each with Metrics of its own, one engine: a request's statements count
    in its own app's series only; a statement outside any app, in the last tracker's."""
    engine = sleepy_engine()
    first, second = Metrics(registry=CollectorRegistry()), Metrics(registry=CollectorRegistry())
    apps = _items_app(first, engine), _items_app(second, engine)
    with apps[0].test_client().get("/items") as resp:
        assert resp.status_code == 200
    assert ((5, 1), (None, None)) == (_calls_of_items(first), _calls_of_items(second))
    for _ in range(2):
        with apps[1].test_client().get("/items") as resp:
            assert resp.status_code == 200
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert ((5, 1), (10, 2)) == (_calls_of_items(first), _calls_of_items(second))
    assert (5, 11) == (
        db(first, "select", c.OUTCOME_OK, "count"),
        db(second, "select", c.OUTCOME_OK, "count"),
    )


def test_an_engine_tracked_under_another_name_is_refused() -> None:
    """Tracked as ``db``, then as ``postgres``: every statement would count under both."""
    metrics, engine = Metrics(registry=CollectorRegistry()), sleepy_engine()
    track_sqlalchemy(engine, metrics)
    with pytest.raises(ConfigError, match="tracked already as dependency 'db'"):
        track_sqlalchemy(engine, metrics, dependency="postgres")
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert db(metrics, "select", c.OUTCOME_OK, "count") == 1


def test_a_proxy_of_an_engine_is_refused_and_leaves_no_listener() -> None:
    """A proxy (Werkzeug's LocalProxy, as Flask extensions hand out) cannot be tracked:
    ConfigError, and the engine behind it times nothing until it is tracked itself."""
    from werkzeug.local import LocalProxy  # noqa: PLC0415

    metrics, engine = Metrics(registry=CollectorRegistry()), sleepy_engine()
    for _ in range(2):
        with pytest.raises(ConfigError, match="a proxy of one"):
            track_sqlalchemy(LocalProxy(lambda: engine), metrics)
    assert 0 == len(engine.dispatch.before_cursor_execute)
    track_sqlalchemy(engine, metrics)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert db(metrics, "select", c.OUTCOME_OK, "count") == 1


def _select_on(*engines: Engine) -> None:
    """One ``SELECT 1`` on each of ``engines``."""
    for engine in engines:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))


def test_an_engine_and_its_execution_options_copies_count_each_statement_once() -> None:
    """A copy made by ``execution_options()`` shares the engine's listeners: the engine
    and a copy (and a copy of the copy) tracked together count each statement once
    (the copy's counted twice), in either order."""
    for copy_first in (False, True):
        metrics, engine = Metrics(registry=CollectorRegistry()), sleepy_engine()
        copy = engine.execution_options(isolation_level="AUTOCOMMIT")
        copy_of_copy = copy.execution_options(stream_results=True)
        order = (copy, engine, copy_of_copy) if copy_first else (engine, copy, copy_of_copy)
        for tracked in order:
            track_sqlalchemy(tracked, metrics)
        _select_on(engine, copy, copy_of_copy)
        assert db(metrics, "select", c.OUTCOME_OK, "count") == 3, copy_first
        assert 1 == len(engine.dispatch.before_cursor_execute)


def test_a_copy_tracked_alone_times_its_engine_too() -> None:
    """Tracking only the copy is tracking its engine: the engine's own statements count
    too (they went uncounted), and another name for the engine is refused."""
    metrics, engine = Metrics(registry=CollectorRegistry()), sleepy_engine()
    track_sqlalchemy(engine.execution_options(isolation_level="AUTOCOMMIT"), metrics)
    _select_on(engine)
    assert db(metrics, "select", c.OUTCOME_OK, "count") == 1
    with pytest.raises(ConfigError, match="tracked already as dependency 'db'"):
        track_sqlalchemy(engine, metrics, dependency="reports")


def test_an_async_engines_copy_counts_each_statement_once() -> None:
    """``AsyncEngine.execution_options()``: its ``sync_engine`` is a copy of the engine's."""
    import asyncio  # noqa: PLC0415

    from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415

    metrics = Metrics(registry=CollectorRegistry())
    engine = create_async_engine("sqlite+aiosqlite://")
    copy = engine.execution_options(isolation_level="AUTOCOMMIT")
    track_sqlalchemy(engine, metrics)
    track_sqlalchemy(copy, metrics)

    async def run() -> None:
        for each in (engine, copy):
            async with each.connect() as conn:
                await conn.execute(text("SELECT 1"))
        await engine.dispose()

    asyncio.run(run())
    assert db(metrics, "select", c.OUTCOME_OK, "count") == 2
