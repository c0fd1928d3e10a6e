"""Direct multiprocess writes leave exactly the files prometheus-client's public API leaves."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

from limone_obs import conventions as c
from limone_obs.exporter import _mp_storage, _updaters

DURATIONS = (0.004, 0.3, 0.6, 0.6000001, 1.0, 2.05, 29.9, 31.0)
STATUSES = ("200", "200", "404", "500", "200", "404", "200", "200")


@pytest.fixture
def mp_value_class(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore prometheus-client's value class and its environment after the test, and
    close the files of the value classes the test made (theirs only: the kit's
    process-wide series, such as the GC counts, keep the files they write to)."""
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    made: list[Any] = []
    make = values.MultiProcessValue

    def recorded(*args: Any, **kwargs: Any) -> Any:
        made.append(make(*args, **kwargs))  # type: ignore[no-untyped-call]
        return made[-1]

    monkeypatch.setattr(values, "MultiProcessValue", recorded)
    yield
    for value_class in made:
        close = getattr(value_class, "close_all_files", None)  # since 0.26
        if close is not None:
            close()


class Series:
    """The exporter's three request series, as a worker with ``pid`` writes them."""

    def __init__(self, path: Path, pid: int) -> None:
        path.mkdir(exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
        values.ValueClass = values.MultiProcessValue(process_identifier=lambda: pid)  # type: ignore[no-untyped-call]
        registry = CollectorRegistry()
        self.path = path
        self.duration = Histogram("d", "d", ["e"], registry=registry, buckets=c.DEFAULT_BUCKETS)
        self.gauge = Gauge("g", "g", ["e"], registry=registry, multiprocess_mode="livesum")
        self.counter = Counter("n", "n", ["e", "s"], registry=registry)

    def record_fast(self) -> tuple[Any, Any]:
        """Serve the requests through the exporter's hot path; return its two updaters."""
        gauge, leave = _updaters.in_flight(self.gauge.labels("/x"))
        counter = self.counter.labels
        record = _updaters.recorder(
            self.duration.labels("/x"), gauge, leave, lambda s: counter("/x", s)
        )
        for elapsed, status in zip(DURATIONS, STATUSES, strict=True):
            gauge(1.0)
            record(elapsed, status, True)
        gauge(1.0)  # one request still in flight
        return record, gauge

    def record_public(self) -> None:
        """Serve the same requests through prometheus-client's public methods."""
        for elapsed, status in zip(DURATIONS, STATUSES, strict=True):
            self.gauge.labels("/x").inc()
            self.duration.labels("/x").observe(elapsed)
            self.counter.labels("/x", status).inc()
            self.gauge.labels("/x").dec()
        self.gauge.labels("/x").inc()

    def samples(self) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
        """Every sample of the directory, as prometheus-client's collector reads it."""
        collector = MultiProcessCollector(None, path=str(self.path))  # type: ignore[no-untyped-call]
        return sorted(
            (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "pid")), s.value)
            for family in collector.collect()  # type: ignore[no-untyped-call]
            for s in family.samples
        )


def test_direct_writes_match_the_public_api(tmp_path: Path, mp_value_class: None) -> None:
    """Same requests, one worker each way: the collector reads identical samples."""
    fast = Series(tmp_path / "fast", 11)
    record, gauge = fast.record_fast()
    public = Series(tmp_path / "public", 12)
    public.record_public()
    recorder: Any = record.__self__
    assert isinstance(recorder, _mp_storage.Record)
    assert recorder.histogram._hist is not None  # bound, like the gauge and every status's counter
    assert gauge.__self__.view is not None
    assert sorted(recorder._counts) == ["200", "404", "500"]
    assert all(count.view is not None for count in recorder._counts.values())
    assert public.samples() == fast.samples()


def test_observer_writes_the_file_like_the_public_observe(
    tmp_path: Path, mp_value_class: None
) -> None:
    """A multiprocess histogram observed through ``observer`` (the queue time) leaves the
    samples the public ``observe`` leaves; it binds once, and shares its one binding with
    the request recorder of the same histogram."""
    fast = Series(tmp_path / "fast", 16)  # each Series is one worker: fast, then public
    observe = _updaters.observer(fast.duration.labels("/x"))
    for elapsed in DURATIONS:
        observe(elapsed)
    histogram: Any = observe.__self__  # type: ignore[attr-defined]
    assert isinstance(histogram, _mp_storage.Observe)
    assert histogram._hist is not None  # bound after its first, public, write
    record, _ = fast.record_fast()
    assert record.__self__.histogram is histogram
    again = _updaters.observer(fast.duration.labels("/x"))
    assert again.__self__ is histogram  # type: ignore[attr-defined]
    public = Series(tmp_path / "public", 17)
    for elapsed in DURATIONS:
        public.duration.labels("/x").observe(elapsed)
    public.record_public()
    assert public.samples() == fast.samples()


def test_a_second_updater_of_a_bound_value_keeps_every_count(
    tmp_path: Path, mp_value_class: None
) -> None:
    """Updaters made at different times for one value share its binding: nothing is lost."""
    series = Series(tmp_path / "mp", 14)
    child = series.counter.labels("/x", "200")
    first = _updaters.incrementer(child)
    first(1.0)
    first(1.0)  # bound: the client's in-memory copy still says 1.0
    second = _updaters.incrementer(child)
    second(1.0)
    assert ("n_total", (("e", "/x"), ("s", "200")), 3.0) in series.samples()


def test_a_second_recorder_of_a_bound_histogram_keeps_every_count(
    tmp_path: Path, mp_value_class: None
) -> None:
    """Two recorders of one (method, endpoint), as two threads could make: nothing is lost."""
    series = Series(tmp_path / "mp", 15)
    gauge, leave = _updaters.in_flight(series.gauge.labels("/x"))

    def recorder() -> Any:
        counter = series.counter.labels
        return _updaters.recorder(
            series.duration.labels("/x"), gauge, leave, lambda s: counter("/x", s)
        )

    first = recorder()
    first(0.25, "200", False)
    first(0.25, "200", False)  # bound: the client's in-memory copies still hold the first
    recorder()(0.5, "200", False)
    samples = series.samples()
    assert ("d_count", (("e", "/x"),), 3.0) in samples
    assert ("d_sum", (("e", "/x"),), 1.0) in samples
    assert ("n_total", (("e", "/x"), ("s", "200")), 3.0) in samples


def test_a_slot_that_does_not_check_out_is_not_bound(tmp_path: Path, mp_value_class: None) -> None:
    """A file whose slot disagrees with the client's copy (another layout) is not written."""
    series = Series(tmp_path / "mp", 13)
    value = series.counter.labels("/x", "200")._value
    value.inc(2.0)
    assert _mp_storage._bind((value,)) is not None
    value._file.write_value(value._key, 7.0, 0.0)  # the slot no longer holds the client's 2.0
    assert _mp_storage._bind((value,)) is None
    value._file._positions[value._key] += 4  # a slot off the 8-byte grid
    assert _mp_storage._bind((value,)) is None


def test_a_forked_child_writes_its_own_file(tmp_path: Path, mp_value_class: None) -> None:
    """After fork the child's samples go to its pid's file; the parent's stay as they were."""
    path = tmp_path / "mp"
    path.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    counter = Counter("n", "n", ["s"], registry=registry)
    inc = _updaters.incrementer(counter.labels("200"))
    inc(1.0)
    inc(1.0)
    assert inc.__self__.view is not None  # type: ignore[attr-defined]  # bound, in the parent
    pid = os.fork()
    if pid == 0:  # the child: write through the same updater, then leave at once
        try:
            inc(1.0)
            inc(1.0)
            inc(1.0)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    inc(1.0)
    per_file = {
        file.name: [v for _k, v, _t, _p in MmapedDict.read_all_values_from_file(file)]  # type: ignore[no-untyped-call]
        for file in path.iterdir()
    }
    assert per_file == {f"counter_{os.getpid()}.db": [3.0], f"counter_{pid}.db": [3.0]}
