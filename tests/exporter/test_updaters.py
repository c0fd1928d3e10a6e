"""The hot-path updaters must leave exactly the samples the public API leaves."""

from __future__ import annotations

from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from limone_obs import conventions as c
from limone_obs.exporter import _updaters, fast_path
from limone_obs.exporter._instruments import Instruments
from tests.support import race

VALUES = (0.0, 0.004, 0.005, 0.3, 0.6, 0.6000001, 1.0, 2.05, 29.9, 30.0, 31.0, 1e9)


def _text(registry: CollectorRegistry) -> list[str]:
    """Exposition lines without the _created timestamps, which differ between registries."""
    lines = generate_latest(registry).decode().splitlines()
    return [line for line in lines if "_created" not in line]


def _pair() -> tuple[CollectorRegistry, CollectorRegistry]:
    return CollectorRegistry(), CollectorRegistry()


def test_fast_paths_match_the_public_api() -> None:
    """observer/incrementer on this prometheus-client are the direct ones and agree exactly."""
    fast_reg, public_reg = _pair()
    kinds = []
    for registry, fast in ((fast_reg, True), (public_reg, False)):
        hist = Histogram("h", "h", ["a"], registry=registry, buckets=c.DEFAULT_BUCKETS).labels("x")
        count = Counter("n", "n", ["a"], registry=registry).labels("x")
        gauge = Gauge("g", "g", ["a"], registry=registry).labels("x")
        observe = _updaters.observer(hist) if fast else hist.observe
        inc = _updaters.incrementer(count) if fast else count.inc
        gauge_inc = _updaters.incrementer(gauge) if fast else gauge.inc
        kinds.append(type(getattr(observe, "__self__", None)).__name__)
        for amount in VALUES:
            observe(amount)
            inc(1.0)
            gauge_inc(1.0)
        gauge_inc(-3.0)
    assert kinds[0] == "_Observe"
    assert _text(public_reg) == _text(fast_reg)


def test_recorder_matches_the_public_api() -> None:
    """A request recorded in one call equals observe + inc + dec through the public API."""
    fast_reg, public_reg = _pair()
    for registry, fast in ((fast_reg, True), (public_reg, False)):
        hist = Histogram("h", "h", ["a"], registry=registry, buckets=c.DEFAULT_BUCKETS).labels("x")
        gauge = Gauge("g", "g", ["a"], registry=registry).labels("x")
        counter = Counter("n", "n", ["a", "s"], registry=registry)
        if fast:  # in_flight makes the gauge read its own count
            enter, leave = _updaters.in_flight(gauge)
            record = _updaters.recorder(hist, enter, leave, partial(counter.labels, "x"))
        for i, amount in enumerate(VALUES):
            status = ("200", "404", "500")[i % 3]
            if fast:
                enter(1.0)
                record(amount, status, i % 4 != 0)
            else:
                gauge.inc()
                hist.observe(amount)
                counter.labels("x", status).inc()
                if i % 4 != 0:
                    gauge.dec()
        if fast:
            assert type(record.__self__).__name__ == "_Record"  # type: ignore[attr-defined]
    assert _text(public_reg) == _text(fast_reg)


def test_in_flight_gauge_reads_the_requests_inside() -> None:
    """In one process the gauge is the number of requests entered and not yet left."""
    registry = CollectorRegistry()
    gauge = Gauge("g", "g", ["a"], registry=registry).labels("x")
    enter, leave = _updaters.in_flight(gauge)

    def value() -> float | None:
        return registry.get_sample_value("g", {"a": "x"})

    assert value() == 0.0
    enter(1.0)
    enter(1.0)
    assert value() == 2.0
    leave()
    assert value() == 1.0
    leave()
    assert value() == 0.0


def test_in_flight_gauge_is_exact_under_threads() -> None:
    """8 threads entering and leaving 5000 times each leave the gauge at exactly 0."""
    registry = CollectorRegistry()
    enter, leave = _updaters.in_flight(Gauge("g", "g", registry=registry))

    def serve() -> None:
        for _ in range(5000):
            enter(1.0)
            leave()

    race(serve)
    assert registry.get_sample_value("g") == 0.0


def test_unknown_child_layout_falls_back_to_public_methods() -> None:
    """An object without prometheus-client's internals gets its own methods back."""

    class Child:
        def observe(self, amount: float) -> None:
            self.seen = amount

        def inc(self, amount: float = 1) -> None:
            self.seen = amount

    child = Child()
    assert _updaters.observer(child) == child.observe
    assert _updaters.incrementer(child) == child.inc


def test_request_children_are_created_once_under_concurrency() -> None:
    """Threads meeting a new URL rule at once get one shared set of updaters."""
    instruments = Instruments(
        c.MetricNames(),
        CollectorRegistry(),
        c.DEFAULT_BUCKETS,
        c.DEFAULT_DEPENDENCY_BUCKETS,
        fast_path.FAST,
    )
    got: list[object] = []
    for endpoint in (f"/r{i}" for i in range(20)):
        got.clear()
        race(partial(_meet, instruments, endpoint, got))
        assert len({id(children) for children in got}) == 1, endpoint


def _meet(instruments: Instruments, endpoint: str, got: list[object]) -> None:
    got.append(instruments.request_children("GET", endpoint))
