"""Direct updates of prometheus-client label children, for the per-request hot path.

``Histogram.observe`` walks every bucket bound in Python and each public ``inc`` re-checks
that the metric has labels; on a ~200 us Flask request those checks are a measurable share
of the exporter's cost (bench/). These helpers bind the child's value objects once and
update them directly, with a bisection for the bucket.

In-memory values (``MutexValue``) are added to under the exporter's one lock
(:mod:`.value_lock`) rather than each value's own: only the exporter writes its request
series, and a request's three updates then take one lock instead of three. The
in-flight gauge of one process is the length of a list (:func:`in_flight`): a request
enters with ``list.append`` and leaves with ``list.pop``, each one call into C that the
GIL (or the list's own lock on a free-threaded build) keeps whole. In multiprocess mode
(gunicorn) the updaters write the worker's files directly
(:mod:`~limone_obs.exporter._mp_storage`).

They rely on prometheus-client's child layout (``_value``, ``_sum``, ``_buckets``,
``_upper_bounds``; a ``MutexValue``'s float ``_value`` and ``_lock``), stable since 0.4.
If a release changes it, the helpers fall back to the public methods, and the tests in
``tests/exporter/test_updaters.py`` fail, so the change cannot go unnoticed.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from functools import partial
from typing import Any, cast

from limone_obs.exporter import _mp_storage, value_lock

Update = Callable[[float], None]
#: ``leave()``: takes one request out of an in-flight gauge (see :func:`in_flight`).
Leave = Callable[[], object]
#: ``record(elapsed, status, in_flight)``: see :func:`recorder`.
Record = Callable[[float, str, bool], None]
#: ``counter(status)``: the request counter's label child for a status code.
Counter = Callable[[str], Any]


class _Observe:
    """``observe(amount)`` of one in-memory histogram child: two additions, one lock.

    No exemplar support. Under the exporter's lock (:mod:`.value_lock`), not each value's
    own: only the exporter writes the histograms it observes this way.
    """

    __slots__ = ("_bounds", "_buckets", "_sum")

    def __init__(self, values: tuple[Any, ...], bounds: tuple[float, ...]) -> None:
        self._sum = values[0]
        self._buckets = values[1:]
        self._bounds = bounds

    def observe(self, amount: float) -> None:
        """Add ``amount`` to the sum and 1 to its bucket (a bound method: the cheapest call)."""
        with value_lock.LOCK:
            self._sum._value += amount
            # bounds end with +Inf, so any non-NaN amount lands in a bucket, as in observe().
            self._buckets[bisect_left(self._bounds, amount)]._value += 1.0


class _LockedInc:
    """``inc(amount)`` of one in-memory value, under the exporter's one lock."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def inc(self, amount: float) -> None:
        """Add ``amount`` (a bound method is the cheapest call there is)."""
        with value_lock.LOCK:
            self.value._value += amount


class _Record:
    """:data:`Record` of one in-memory (method, endpoint): three additions, one lock.

    prometheus-client's own ``inc`` takes a lock per value; the request series are written
    only by the exporter, so one lock around the three updates keeps them exact (readers
    see a float, whole, either way) at a fraction of the cost.
    """

    __slots__ = ("_bounds", "_buckets", "_counter", "_counts", "_leave", "_sum")

    def __init__(
        self, values: tuple[Any, ...], bounds: tuple[float, ...], leave: Leave, counter: Counter
    ) -> None:
        self._sum = values[0]
        self._buckets = values[1:]
        self._bounds = bounds
        self._leave = leave
        self._counter = counter
        self._counts: dict[str, Any] = {}

    def record(self, elapsed: float, status: str, in_flight: bool) -> None:
        """Observe ``elapsed``, count the request under ``status``, free its in-flight slot."""
        count = self._counts.get(status)
        if count is None:
            count = self._count(status)
        with value_lock.LOCK:
            self._sum._value += elapsed
            # bounds end with +Inf, so any non-NaN amount lands in a bucket, as in observe().
            self._buckets[bisect_left(self._bounds, elapsed)]._value += 1.0
            if count is not None:
                count._value += 1.0
        if in_flight:
            leave = self._leave  # loaded, then called: see lifecycle.Lifecycle.__call__
            leave()

    def _count(self, status: str) -> Any:
        """The counter's in-memory value for ``status``; None once counted publicly."""
        child = self._counter(status)
        value = getattr(child, "_value", None)
        if _is_in_memory(value):
            self._counts[status] = value
            return value
        child.inc()  # another value class (swapped at runtime): its own method
        return None


def _is_in_memory(value: Any) -> bool:
    """True for prometheus-client's in-memory value (``MutexValue``): a float and a lock."""
    return (
        not _mp_storage.is_mmaped(value)
        and isinstance(getattr(value, "_value", None), float)
        and hasattr(value, "_lock")
    )


def _histogram_parts(child: Any) -> tuple[tuple[float, ...], tuple[Any, ...]] | None:
    """The bucket bounds (ending with +Inf) and the sum and bucket values of a child."""
    try:
        bounds = tuple(float(b) for b in child._upper_bounds)
        values = (child._sum, *child._buckets)
    except (AttributeError, TypeError):
        return None
    if len(bounds) != len(values) - 1 or not bounds or bounds[-1] != math.inf:
        return None
    return bounds, values


def observer(child: Any) -> Update:
    """Return a fast ``observe(amount)`` for a histogram label child (or its own method).

    In one process: two float additions under the exporter's lock; in multiprocess mode:
    two stores into the worker's file (:class:`._mp_storage.Observe`). Any other layout
    gets the child's own method. Only for histograms no one else writes (see
    :mod:`.value_lock`).
    """
    parts = _histogram_parts(child)
    if parts is None:
        return cast("Update", child.observe)
    bounds, values = parts
    if all(map(_mp_storage.is_mmaped, values)):
        return _mp_storage.Observe.of(values[0], values[1:], bounds).observe
    if all(map(_is_in_memory, values)):
        return _Observe(values, bounds).observe
    return cast("Update", child.observe)


def in_flight(child: Any) -> tuple[Update, Leave]:
    """Return ``(enter, leave)`` for an in-flight gauge child.

    ``enter(1.0)`` counts a request in, ``leave()`` counts one out. In one process the
    gauge reads the length of a list that ``enter`` appends to and ``leave`` pops from:
    no lock and no Python call per request. In multiprocess mode, and for another value
    class, they add +1 / -1 to the child's value.
    """
    value = getattr(child, "_value", None)
    if _is_in_memory(value):
        requests: list[float] = []
        child.set_function(requests.__len__)
        return requests.append, requests.pop
    inc = incrementer(child)
    return inc, partial(inc, -1.0)


def recorder(duration: Any, enter: Update, leave: Leave, counter: Counter) -> Record:
    """Return ``record(elapsed, status, in_flight)`` for the requests of one label pair.

    It observes ``elapsed`` in ``duration`` (a histogram child), adds 1 to the child
    ``counter(status)`` returns and, if ``in_flight``, calls ``leave``. With ``enter`` and
    ``leave`` from :func:`in_flight` that takes no further Python call: in multiprocess
    mode four stores into the worker's files under one lock, else three float additions
    under one lock and a ``list.pop``.
    """
    parts = _histogram_parts(duration)
    gauge = getattr(enter, "__self__", None)
    if parts is not None:
        bounds, values = parts
        if isinstance(gauge, _mp_storage.Inc) and all(map(_mp_storage.is_mmaped, values)):
            return _mp_storage.Record.of(values[0], values[1:], bounds, gauge, counter).record
        if isinstance(gauge, list) and all(map(_is_in_memory, values)):
            return _Record(values, bounds, leave, counter).record
    observe = observer(duration)
    counts: dict[str, Update] = {}

    def record(elapsed: float, status: str, in_flight: bool) -> None:
        observe(elapsed)
        count = counts.get(status)
        if count is None:
            count = counts[status] = incrementer(counter(status))
        count(1.0)
        if in_flight:
            leave()

    return record


def incrementer(child: Any) -> Update:
    """Return a fast ``inc(amount)`` for a counter or gauge child (or its own method).

    Negative amounts are passed through unchecked: callers use ``-1`` only on gauges.
    """
    value = getattr(child, "_value", None)
    if _mp_storage.is_mmaped(value):
        return _mp_storage.Inc.of(value).inc
    if _is_in_memory(value):
        return _LockedInc(value).inc
    inc = getattr(value, "inc", None)
    return cast("Update", inc if callable(inc) else child.inc)
