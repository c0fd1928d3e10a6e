"""The rule of the exporter's writes: every value it writes directly, under one lock."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from limone_obs import conventions as c
from limone_obs.exporter import fast_path, value_lock
from limone_obs.exporter._instruments import Instruments, RequestChildren
from tests.support import race

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def _children() -> tuple[RequestChildren, CollectorRegistry]:
    registry = CollectorRegistry()
    instruments = Instruments(
        c.MetricNames(), registry, c.DEFAULT_BUCKETS, c.DEFAULT_DEPENDENCY_BUCKETS, fast_path.FAST
    )
    return instruments.request_children("GET", "/x"), registry


def _count(registry: CollectorRegistry) -> float | None:
    name = c.MetricNames().request_duration_count
    return registry.get_sample_value(name, {"method": "GET", "endpoint": "/x"})


WRITERS: dict[str, Callable[[RequestChildren], object]] = {
    "record": lambda ch: ch.record(0.5, "200", False),
    "record_exemplar": lambda ch: ch.record_exemplar(0.5, "200", TRACE_ID, False),
    "counter": lambda ch: ch.counter("200")(1.0),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_writer_waits_for_the_one_lock(writer: str) -> None:
    """While value_lock.LOCK is held, no writer of the request series gets through."""
    children, registry = _children()
    children.counter("200")  # bind the counter before the lock is taken
    done = threading.Event()

    def write() -> None:
        WRITERS[writer](children)
        done.set()

    thread = threading.Thread(target=write)
    with value_lock.LOCK:
        thread.start()
        assert not done.wait(0.2)  # blocked on the lock (a timeout only makes this pass)
    thread.join(10)
    assert done.is_set()
    name = c.MetricNames().requests_total
    total = registry.get_sample_value(name, {"method": "GET", "endpoint": "/x", "status": "200"})
    assert 1.0 == total


def test_traced_and_plain_records_from_threads_count_exactly() -> None:
    """8 threads mixing plain and exemplar records on one series lose no observation."""
    children, registry = _children()

    def serve() -> None:
        for i in range(300):
            if i % 3:
                children.record(0.25, "200", False)
            else:
                children.record_exemplar(0.25, "200", TRACE_ID, False)

    race(serve)
    assert 2400 == _count(registry)


def test_a_forked_child_gets_a_new_lock() -> None:
    """The lock is replaced after fork: one held by another thread would stay held."""
    before = value_lock.LOCK
    value_lock._after_fork_in_child()
    assert value_lock.LOCK is not before
    assert not value_lock.LOCK.locked()
