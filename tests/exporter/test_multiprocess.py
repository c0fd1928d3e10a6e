"""FlatCollector reads multiprocess files exactly like prometheus-client's collector.

Worker files are written in this process by pointing prometheus-client's value class at a
chosen pid (as client_python's own tests do), so every type and gauge mode is covered
without forking. The helpers here are shared with ``test_compaction.py``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    values,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.samples import Sample

from limone_obs.errors import ArtifactError
from limone_obs.exporter import merge_rules, multiprocess
from limone_obs.exporter._mp_collector import FlatCollector
from tests.support import race

GAUGE_MODES = (
    "all", "liveall", "min", "livemin", "max", "livemax",
    "sum", "livesum", "mostrecent", "livemostrecent",
)  # fmt: skip
KINDS = ("counter", "histogram", "summary", *(f"gauge_{m}" for m in GAUGE_MODES))
Snapshot = dict[tuple[str, str, str], list[tuple[str, tuple[tuple[str, str], ...], float]]]


@pytest.fixture
def mpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty multiprocess directory, with prometheus-client's value class restored after."""
    path = tmp_path / "mp"
    path.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    return path


def write_worker(path: Path, pid: int, kinds: tuple[str, ...] = KINDS, scale: int = 1) -> None:
    """Write the files worker ``pid`` would leave: every kind in ``kinds``, two label sets.

    Values are multiples of 1/4 so sums are exact in binary in any order.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    value_class = values.MultiProcessValue(process_identifier=lambda: pid)  # type: ignore[no-untyped-call]
    values.ValueClass = value_class
    registry = CollectorRegistry()
    for kind in kinds:
        metric = _metric(kind, registry)
        for i, route in enumerate(("/a", "/b/<int:id>")):
            _observe(metric, kind, route, (pid % 7 + i + 1) * scale / 4)
    # The files' mmaps hold every value already; releases before 0.26 keep no handle to close them.
    close = getattr(value_class, "close_all_files", None)
    if close is not None:
        close()


def _metric(kind: str, registry: CollectorRegistry) -> Counter | Histogram | Summary | Gauge:
    name, labels = f"t_{kind}", ["endpoint"]
    if kind == "counter":
        return Counter(name, "help", labels, registry=registry)
    if kind == "histogram":
        return Histogram(name, "help", labels, registry=registry, buckets=(0.5, 1.0, 2.0))
    if kind == "summary":
        return Summary(name, "help", labels, registry=registry)
    mode = kind.removeprefix("gauge_")
    return Gauge(name, "help", labels, registry=registry, multiprocess_mode=mode)  # type: ignore[arg-type]


def _observe(metric: object, kind: str, route: str, value: float) -> None:
    child = metric.labels(route)  # type: ignore[attr-defined]
    if kind == "counter":
        child.inc(value)
    elif kind in ("histogram", "summary"):
        child.observe(value)
        child.observe(value * 2)
    else:
        child.set(value)


def snapshot(families: object) -> Snapshot:
    """Families as comparable data: per (name, type, help), the sorted samples."""
    out: Snapshot = {}
    for family in families:  # type: ignore[attr-defined]
        samples = [(s.name, tuple(sorted(s.labels.items())), s.value) for s in family.samples]
        out[(family.name, family.type, family.documentation)] = sorted(samples)
    return {k: v for k, v in out.items() if v}


def reference(path: Path) -> Snapshot:
    """What prometheus-client's MultiProcessCollector reports for ``path``."""
    collector = MultiProcessCollector(None, path=str(path))  # type: ignore[no-untyped-call]
    return snapshot(collector.collect())  # type: ignore[no-untyped-call]


def flat(path: Path) -> Snapshot:
    """What a new FlatCollector reports for ``path``."""
    return snapshot(FlatCollector(str(path)).collect())


def test_matches_multiprocess_collector_for_every_kind(mpdir: Path) -> None:
    """Three workers writing every metric type and gauge mode: identical samples."""
    for pid in (101, 102, 103):
        write_worker(mpdir, pid)
    expected = reference(mpdir)
    assert len(expected) == len(KINDS)
    assert expected == flat(mpdir)


def test_repeated_scrapes_see_new_values_and_series(mpdir: Path) -> None:
    """A collector reused across scrapes sees values and series written after its first scrape."""
    collector = FlatCollector(str(mpdir))
    write_worker(mpdir, 201, ("counter",))
    collector.collect()
    write_worker(mpdir, 201, ("counter", "histogram"))
    write_worker(mpdir, 202, ("gauge_max",))
    assert reference(mpdir) == snapshot(collector.collect())


def test_recreated_file_is_read_afresh(mpdir: Path) -> None:
    """A file removed and written again (a reused pid) is not read with the old layout."""
    collector = FlatCollector(str(mpdir))
    write_worker(mpdir, 301, ("histogram", "counter"))
    collector.collect()
    for name in os.listdir(mpdir):
        os.remove(mpdir / name)
    write_worker(mpdir, 301, ("gauge_sum",))
    assert reference(mpdir) == snapshot(collector.collect())


def test_empty_directory_has_no_samples(mpdir: Path) -> None:
    """No files, no families."""
    assert {} == flat(mpdir)


def test_corrupt_file_is_reported_with_its_name(mpdir: Path) -> None:
    """A file whose header claims more bytes than it has raises an error naming it."""
    bad = mpdir / "counter_9.db"
    bad.write_bytes((4096).to_bytes(4, "little") + b"\0" * 12)
    with pytest.raises(ArtifactError, match=r"counter_9\.db"):
        FlatCollector(str(mpdir)).collect()


def test_exposition_registry_renders_every_worker(mpdir: Path) -> None:
    """The registry the exporter serves renders the summed counter of all workers."""
    write_worker(mpdir, 401, ("counter",))
    write_worker(mpdir, 402, ("counter",))
    registry = multiprocess.exposition_registry(str(mpdir))
    # pid 401 -> 401 % 7 = 2 -> (2+1)/4 = 0.75; pid 402 -> (3+1)/4 = 1.0
    assert 1.75 == registry.get_sample_value("t_counter_total", {"endpoint": "/a"})


@pytest.mark.parametrize("content", [b"", b"\0" * 65536], ids=["empty", "sized-no-header"])
def test_file_being_created_reads_as_empty(mpdir: Path, content: bytes) -> None:
    """A worker's file caught between creation and its header counts as no samples yet."""
    write_worker(mpdir, 501, ("counter",))
    (mpdir / "counter_502.db").write_bytes(content)
    assert reference_without(mpdir, "counter_502.db") == flat(mpdir)


@pytest.mark.parametrize("content", [b"", b"\0\0\0"], ids=["empty", "shorter-than-header"])
def test_public_path_scrape_skips_a_file_being_created(mpdir: Path, content: bytes) -> None:
    """With the fast path off, a worker's file caught before it was sized is left out of
    the scrape (prometheus-client's own collector raises on it: a 500 for the scrape)."""
    write_worker(mpdir, 503, ("counter", "histogram"))
    registry = multiprocess.exposition_registry(str(mpdir), fast=False)
    expected = snapshot(registry.collect())
    assert reference(mpdir).items() <= expected.items()  # the files' families, and health
    (mpdir / "counter_504.db").write_bytes(content)
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever prometheus-client raises
        reference(mpdir)
    assert expected == snapshot(registry.collect())


class _RetiringCollector(multiprocess.StartedFilesCollector):
    """The public path's collector, with one worker's file retired right after the first
    listing (as the gunicorn master does at a worker's exit): the first read fails."""

    def __init__(self, path: str, retired: Path) -> None:
        super().__init__(path)
        self.retired: Path | None = retired
        self.listings = 0

    def _merge(self) -> Iterable[Metric]:
        self.listings += 1
        if self.retired is None:
            return super()._merge()
        files = sorted(str(f) for f in Path(self.path).glob("*.db"))
        self.retired.unlink()
        self.retired = None
        merged: Iterable[Metric] = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
        return merged


def test_public_path_scrape_lists_again_when_a_file_is_retired_meanwhile(mpdir: Path) -> None:
    """A file removed between listing and reading: prometheus-client raises
    FileNotFoundError, the collector lists once more and reports the files left."""
    write_worker(mpdir, 505, ("counter",))
    write_worker(mpdir, 506, ("counter",))
    retired = mpdir / "counter_506.db"
    expected_after = reference_without(mpdir, "counter_506.db")
    collector = _RetiringCollector(str(mpdir), retired)
    assert expected_after == snapshot(collector.collect())
    assert (2, False) == (collector.listings, retired.exists())


def reference_without(path: Path, name: str) -> Snapshot:
    """MultiProcessCollector's view of ``path`` without file ``name`` (it cannot read it)."""
    data = (path / name).read_bytes()
    os.remove(path / name)
    try:
        return reference(path)
    finally:
        (path / name).write_bytes(data)


def ordered(families: Iterable[Metric]) -> list[tuple[str, str, list[Sample]]]:
    """Families as data in their order, each with its samples in order."""
    return [(f.name, f.type, list(f.samples)) for f in families if f.samples]


def test_samples_come_in_multiprocess_collectors_order(mpdir: Path) -> None:
    """Same families, label sets and samples, in the same order (each label set grouped)."""
    for pid in (111, 112, 113):
        write_worker(mpdir, pid)
    collector = MultiProcessCollector(None, path=str(mpdir))  # type: ignore[no-untyped-call]
    expected = ordered(collector.collect())  # type: ignore[no-untyped-call]
    assert expected == ordered(FlatCollector(str(mpdir)).collect())


@pytest.mark.parametrize("fast", [True, False], ids=["flat", "prometheus-client"])
def test_openmetrics_exposition_parses_strictly(mpdir: Path, fast: bool) -> None:
    """prometheus-client's strict OpenMetrics parser accepts the scrape (histogram grouping)."""
    for pid in (121, 122):
        write_worker(mpdir, pid)
    registry = multiprocess.exposition_registry(str(mpdir), fast)
    text = openmetrics_latest(registry)  # type: ignore[no-untyped-call]
    parse = openmetrics_parser.text_string_to_metric_families
    families = list(parse(text.decode()))  # type: ignore[no-untyped-call]
    # The files' families, plus the kit's health gauge every exposition carries.
    assert len(KINDS) + 1 == len(families)


def test_unknown_file_prefix_is_an_error(mpdir: Path) -> None:
    """A .db file of no known type or gauge mode fails the scrape, naming the file."""
    write_worker(mpdir, 131, ("counter",))
    (mpdir / "gauge_median_131.db").write_bytes(b"")
    with pytest.raises(ArtifactError, match=r"gauge_median_131\.db"):
        FlatCollector(str(mpdir)).collect()


def test_gauge_modes_come_from_prometheus_client() -> None:
    """Every gauge mode prometheus-client accepts has a merge rule, and only those."""
    assert set(GAUGE_MODES) == merge_rules.gauge_modes()
    expected = {"counter", "histogram", "summary", *(f"gauge_{m}" for m in GAUGE_MODES)}
    assert expected == set(merge_rules.RULES)


GROWING_CHILDREN = 3000


def test_concurrent_scrapes_while_a_file_grows(mpdir: Path) -> None:
    """One flat collector serving several scrapes at once (a gthread worker's threads)
    while a worker's file grows: every scrape succeeds and reads each value right, and a
    scrape afterwards reads them all (its layout caches were not corrupted)."""
    value_class = values.MultiProcessValue(process_identifier=lambda: 141)  # type: ignore[no-untyped-call]
    values.ValueClass = value_class
    counter = Counter("t_grow", "help", ["k"], registry=CollectorRegistry())
    registry = multiprocess.exposition_registry(str(mpdir), fast=True)
    writing = threading.Event()
    writing.set()
    roles = iter(range(8))

    def work() -> None:
        if next(roles) == 0:  # the worker's requests: each child incremented once
            for i in range(GROWING_CHILDREN):
                counter.labels(str(i)).inc()
            writing.clear()
            return
        while writing.is_set():  # the scrapes
            for family in registry.collect():
                for sample in family.samples:
                    if sample.name == "t_grow_total":
                        assert sample.value in (0.0, 1.0), sample

    race(work, threads=5)
    grown = [s.value for f in registry.collect() for s in f.samples if s.name == "t_grow_total"]
    assert grown == [1.0] * GROWING_CHILDREN
