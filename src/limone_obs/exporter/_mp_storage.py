"""Direct writes to this worker's multiprocess files, for the per-request hot path.

prometheus-client's ``MmapedValue.inc`` takes a lock, calls ``os.getpid()`` (a system
call) to notice forks and goes through three more Python calls and a new bytes object to
store one double. A request makes five such writes, four of them after its body was sent,
when the worker's caches have gone cold (bench/README.md). Here each of the worker's files
is mapped once more, read-write, and a value is updated with one indexed store into a
``double`` view of that mapping; a finished request takes one lock.

The layout is prometheus-client's (a value's ``_file`` and ``_key``; the file's
``_positions`` and ``_f``). Every binding is checked against the file (8-byte aligned
slot, the stored value equals the client's own copy) and anything unexpected leaves the
value on the public methods. After a fork the child drops every binding
(``os.register_at_fork``): its next update goes through the public method, which opens
the child's own file, and binds again.

While bound, prometheus-client's in-memory copy (``value._value``) is left behind: in
multiprocess mode the files are what every scrape reads, and only this module writes
these label children.
"""

from __future__ import annotations

import mmap
import os
import weakref
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

from limone_obs.exporter import value_lock

#: Path -> a ``double`` view of this process's latest mapping of that file.
_views: dict[str, memoryview[float]] = {}
_bound: weakref.WeakSet[Inc | Observe] = weakref.WeakSet()
#: prometheus-client value -> its one Inc (see Inc.of); a histogram's sum -> its one
#: Observe and, for a request histogram, its Record.
_incs: weakref.WeakKeyDictionary[Any, Inc] = weakref.WeakKeyDictionary()
_observes: weakref.WeakKeyDictionary[Any, Observe] = weakref.WeakKeyDictionary()
_records: weakref.WeakKeyDictionary[Any, Record] = weakref.WeakKeyDictionary()


def is_mmaped(value: Any) -> bool:
    """True if ``value`` is prometheus-client's multiprocess value (``MmapedValue``)."""
    return getattr(value, "_multiprocess", False) is True and hasattr(value, "_file")


def _map(path: str) -> memoryview[float] | None:
    """A ``double`` view of a new shared read-write mapping of the whole file, or None."""
    try:
        with open(path, "r+b") as handle:  # the mapping keeps its own descriptor
            size = os.fstat(handle.fileno()).st_size
            mapping = mmap.mmap(handle.fileno(), size - size % 8)
    except (OSError, ValueError):
        return None
    return memoryview(mapping).cast("d")


def _bind(values: Sequence[Any]) -> tuple[memoryview[float], tuple[int, ...]] | None:
    """Return one view of the file holding every value and their indexes, or None.

    The caller holds ``value_lock.LOCK``. None when the values are not in one file, a slot is not
    where prometheus-client's layout puts it, or a stored value differs from the client's.
    """
    try:
        file = values[0]._file
        path = file._f.name
        positions = [file._positions[value._key] for value in values]
        same_file = all(value._file is file for value in values)
    except (AttributeError, KeyError, TypeError):
        return None
    if not same_file or not isinstance(path, str) or any(p % 8 for p in positions):
        return None
    indexes = tuple(p // 8 for p in positions)
    needed = max(indexes) + 2  # the value and its timestamp
    view = _views.get(path)
    if view is None or len(view) < needed:
        view = _map(path)
        if view is None or len(view) < needed:
            return None
        _views[path] = view
    if any(view[i] != value._value for i, value in zip(indexes, values, strict=True)):
        return None
    return view, indexes


class Inc:
    """``inc(amount)`` of one multiprocess counter or gauge child.

    Get it with :meth:`of`: one per value, so a value bound here is never also written
    through a second, unbound object (whose public write would start from the client's
    outdated copy).
    """

    __slots__ = ("__weakref__", "_value", "index", "view")

    @classmethod
    def of(cls, value: Any) -> Inc:
        """The one ``Inc`` of ``value`` (created on first use)."""
        with value_lock.LOCK:
            inc = _incs.get(value)
            if inc is None:
                inc = _incs[value] = cls(value)
            return inc

    def __init__(self, value: Any) -> None:
        self._value = value
        #: The bound slot: ``view[index]``; view is None while unbound.
        self.view: memoryview[float] | None = None
        self.index = 0

    def inc(self, amount: float) -> None:
        """Add ``amount`` (a bound method is the cheapest call there is)."""
        with value_lock.LOCK:
            view = self.view
            if view is not None:
                view[self.index] += amount
            else:
                self._value.inc(amount)  # public: notices a fork, opens our own file
                self._bind()

    def _bind(self) -> None:
        # The caller holds value_lock.LOCK.
        bound = _bind((self._value,))
        if bound is not None:
            self.view, (self.index,) = bound
            _bound.add(self)

    def unbind(self) -> None:
        """Go back to the public method (after a fork)."""
        self.view = None


class Observe:
    """``observe(amount)`` of one multiprocess histogram child: two stores under one lock.

    Get it with :meth:`of`: one per histogram child, for the reason given at :class:`Inc`
    (the request histogram's :class:`Record` shares it).
    """

    __slots__ = ("__weakref__", "_bounds", "_buckets", "_hist", "_sum", "_values")

    @classmethod
    def of(cls, sum_value: Any, bucket_values: Sequence[Any], bounds: tuple[float, ...]) -> Observe:
        """The one ``Observe`` of the histogram whose sum is ``sum_value``."""
        with value_lock.LOCK:
            found = _observes.get(sum_value)
            if found is None:
                found = _observes[sum_value] = cls(sum_value, bucket_values, bounds)
            return found

    def __init__(
        self, sum_value: Any, bucket_values: Sequence[Any], bounds: tuple[float, ...]
    ) -> None:
        self._values = (sum_value, *bucket_values)
        self._bounds = bounds
        #: The bound file (``_hist[_sum]``, ``_hist[_buckets[i]]``); None while unbound.
        self._hist: memoryview[float] | None = None
        self._sum = 0
        self._buckets: tuple[int, ...] = ()

    def observe(self, amount: float) -> None:
        """Add ``amount`` to the sum and 1 to its bucket (a bound method: the cheapest call)."""
        with value_lock.LOCK:
            hist = self._hist
            if hist is None:
                self.observe_unbound(amount)
            else:
                hist[self._sum] += amount
                # bounds end with +Inf: any non-NaN amount lands in a bucket, as in observe().
                hist[self._buckets[bisect_left(self._bounds, amount)]] += 1.0

    def observe_unbound(self, amount: float) -> None:
        """Observe through the public methods, then bind; the caller holds value_lock.LOCK.

        Public first: it notices a fork and opens this process's file.
        """
        self._values[0].inc(amount)
        self._values[1 + bisect_left(self._bounds, amount)].inc(1.0)
        bound = _bind(self._values)
        if bound is not None:
            view, indexes = bound
            self._sum, self._buckets = indexes[0], indexes[1:]
            self._hist = view
            _bound.add(self)

    def unbind(self) -> None:
        """Go back to the public methods (after a fork)."""
        self._hist = None


class Record:
    """``record(elapsed, status, in_flight)`` of one multiprocess (method, endpoint).

    Observes ``elapsed`` in the duration histogram, adds 1 to the request counter of
    ``status`` (``counter(status)`` gives its label child) and, if ``in_flight``, takes 1
    from the in-flight gauge: four stores under one lock. Get it with :meth:`of`: one per
    histogram child, for the reason given at :class:`Inc`.
    """

    @classmethod
    def of(
        cls,
        sum_value: Any,
        bucket_values: Sequence[Any],
        bounds: tuple[float, ...],
        gauge: Inc,
        counter: Callable[[str], Any],
    ) -> Record:
        """The one ``Record`` of the histogram whose sum is ``sum_value``."""
        histogram = Observe.of(sum_value, bucket_values, bounds)  # takes the lock itself
        with value_lock.LOCK:
            record = _records.get(sum_value)
            if record is None:
                record = _records[sum_value] = cls(histogram, gauge, counter)
            return record

    __slots__ = ("_counter", "_counts", "_gauge", "histogram")

    def __init__(self, histogram: Observe, gauge: Inc, counter: Callable[[str], Any]) -> None:
        #: The duration histogram's one :class:`Observe`.
        self.histogram = histogram
        self._gauge = gauge
        self._counter = counter
        self._counts: dict[str, Inc] = {}

    def record(self, elapsed: float, status: str, in_flight: bool) -> None:
        """Observe ``elapsed``, count the request under ``status``, free its in-flight slot."""
        count = self._counts.get(status)
        if count is None:
            count = self._count(status)
        gauge = self._gauge
        histogram = self.histogram
        with value_lock.LOCK:
            hist = histogram._hist
            if hist is None:
                histogram.observe_unbound(elapsed)
            else:  # Observe.observe, inline: the lock is taken once for the four stores
                hist[histogram._sum] += elapsed
                hist[histogram._buckets[bisect_left(histogram._bounds, elapsed)]] += 1.0
            # A bound value must never see a public write again: its in-memory copy is old.
            if count is not None and count.view is not None:
                count.view[count.index] += 1.0
                count = None
            if in_flight and gauge.view is not None:
                gauge.view[gauge.index] -= 1.0
                in_flight = False
        if count is not None:  # unbound: its public path, outside the lock it takes itself
            count.inc(1.0)
        if in_flight:
            gauge.inc(-1.0)

    def _count(self, status: str) -> Inc | None:
        """The counter slot for ``status``; None once counted publicly (another value class)."""
        child = self._counter(status)
        value = getattr(child, "_value", None)
        if is_mmaped(value):
            count = self._counts[status] = Inc.of(value)
            return count
        child.inc()
        return None


def _after_fork_in_child() -> None:
    """Drop every binding: the child must write its own files, not its parent's."""
    for bound in list(_bound):
        bound.unbind()
    _bound.clear()
    _views.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
