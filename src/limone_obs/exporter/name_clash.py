"""Another metric stored under one of the kit's series names: left out of the scrape, reported.

In multiprocess mode a scrape merges every sample stored under one family name into one
family, whichever metric wrote it. An app's own ``Counter("ledger_requests_total", ...)``
next to ``Metrics(namespace="ledger")`` would add its samples to the kit's request
series, and the SLO rules (``sum(rate(ledger_requests_total[...]))``) would count them
twice, without a word. The kit knows its own families (:class:`OwnSeries`: name, help
text, label names); a file key under one of their names, or exposed under one of their
sample names, whose help text or label names differ is another metric's
(:func:`classify`). Both multiprocess collectors leave such samples out, so the kit's
series stay exact, and :func:`report` sets the problem ``metric_name_clash`` and writes
one error line per process saying what to do.

Only keys are classified, each once per process: the check costs nothing per request and,
at scrape, a look-up per key. The flat collector drops foreign samples before it merges.
prometheus-client's ``MultiProcessCollector`` (the public path) merges by family name,
so there a file holding foreign keys is merged from a copy without them
(:func:`copy_without`), written and read by prometheus-client's own ``MmapedDict``: both
paths serve the same samples.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.mmap_dict import MmapedDict

from limone_obs import conventions as c
from limone_obs import health
from limone_obs.exporter._mp_files import MAX_KEYS

logger = logging.getLogger("limone_obs.exporter")
#: Sample names of a family of each type in a multiprocess scrape (no ``_created`` there).
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum"),
}


@dataclass(frozen=True)
class Family:
    """One of the kit's families as the multiprocess files store it.

    ``name`` is the family name of the files' keys (a counter's without ``_total``).
    """

    name: str
    type: str
    help: str
    labels: frozenset[str]

    def sample_names(self) -> tuple[str, ...]:
        """The names its samples are exposed under."""
        return tuple(self.name + suffix for suffix in _SUFFIXES.get(self.type, ("",)))


def family_of(metric: Any, labels: Iterable[str]) -> Family:
    """The family of a prometheus-client metric object, read off its ``describe()``;
    ``labels``: the label names it was created with (prometheus-client has no public
    accessor for them)."""
    [described] = metric.describe()
    return Family(described.name, described.type, described.documentation, frozenset(labels))


@dataclass(frozen=True)
class OwnSeries:
    """The kit's families of one namespace, by name, and every sample name they expose."""

    namespace: str
    families: Mapping[str, Family]
    sample_names: frozenset[str]

    @classmethod
    def of(cls, namespace: str, families: Iterable[Family], scraped: Iterable[str]) -> OwnSeries:
        """``families``: those written to the files; ``scraped``: names of the families the
        kit computes at scrape time (gauges never in the files, so any key there is
        another metric's)."""
        by_name = {family.name: family for family in families}
        samples = {name for family in by_name.values() for name in family.sample_names()}
        return cls(namespace, by_name, frozenset(samples | set(scraped)))


@dataclass(frozen=True, order=True)
class Clash:
    """Another metric under a kit's series name: its series as exposed, help text, labels."""

    series: str
    help: str
    labels: tuple[str, ...]


def classify(
    own: OwnSeries, metric: str, sample: str, labels: Iterable[str], help_text: str
) -> Clash | None:
    """Tell whether a file key (family ``metric``, sample ``sample``, its label names
    without ``le``, ``help_text``) is another metric's under one of the kit's names.

    None when it is the kit's own family (same help text and label names) or uses none of
    the kit's names.
    """
    names = frozenset(labels)
    family = own.families.get(metric)
    if family is None and sample not in own.sample_names:
        return None
    if family is not None and family.help == help_text and family.labels == names:
        return None
    # Name the series as the app's code and /metrics spell it (a counter with ``_total``).
    series = sample if sample in (metric, f"{metric}_total") else metric
    return Clash(series, help_text, tuple(sorted(names)))


class ForeignKeyTexts:
    """The public path's classification of raw file keys, each decoded and classified once
    per process; ``own`` is asked once per scrape, and only when a key is new.

    The keys are read with prometheus-client's own reader. A file removed meanwhile is
    skipped: on this path only a dead worker's live gauges go (``mark_process_dead``),
    which prometheus-client's collector skips too.
    """

    def __init__(self, own: Callable[[], OwnSeries]) -> None:
        self._own = own
        self._current: OwnSeries | None = None
        self._verdicts: dict[str, Clash | None] = {}
        #: The namespace of the kit's series (known once a key was classified).
        self.namespace = ""

    def in_files(self, files: Iterable[str]) -> list[Clash]:
        """The clashes of the keys in ``files`` (a new scrape)."""
        self._current = None
        if len(self._verdicts) > MAX_KEYS:
            self._verdicts.clear()  # keys churn: bound the memory
        found = []
        for filename in files:
            for key, _, _, _ in _entries(filename) or ():
                clash = self._verdict(key)
                if clash is not None:
                    found.append(clash)
        return found

    def copy_without(self, filename: str, folder: str) -> str | None:
        """Copy multiprocess file ``filename`` into ``folder`` without its foreign keys;
        return the copy's path (None if the file is gone).

        The copy keeps the file's name (prometheus-client reads the type and pid from it)
        and is written by prometheus-client's ``MmapedDict``, so its collector reads it as
        it reads the original. Keys written since :meth:`in_files` are classified too.
        """
        entries = _entries(filename)
        if entries is None:
            return None
        copy = os.path.join(folder, os.path.basename(filename))
        target = MmapedDict(copy)  # type: ignore[no-untyped-call]
        try:
            for key, value, stamp, _ in entries:
                if self._verdict(key) is None:
                    target.write_value(key, value, stamp)  # type: ignore[no-untyped-call]
        finally:
            target.close()  # type: ignore[no-untyped-call]
        return copy

    def _verdict(self, key: str) -> Clash | None:
        try:
            return self._verdicts[key]
        except KeyError:
            pass
        own = self._current = self._current or self._own()
        self.namespace = own.namespace
        metric, sample, labels, help_text = json.loads(key)
        names = (name for name in labels if name != "le")
        clash = self._verdicts[key] = classify(own, metric, sample, names, help_text)
        return clash


def _entries(filename: str) -> Iterator[tuple[str, float, float, int]] | None:
    """(key, value, timestamp, position) of each entry of a multiprocess file, read at once
    by prometheus-client's reader; None if the file is gone."""
    try:
        entries: Iterator[tuple[str, float, float, int]]
        entries = MmapedDict.read_all_values_from_file(filename)  # type: ignore[no-untyped-call]
    except FileNotFoundError:
        return None
    return entries


def report(clashes: Iterable[Clash], namespace: str) -> None:
    """Report the clashes a scrape left out: the problem series, and the first time in
    this process an error line naming them and saying what to do."""
    found = sorted(set(clashes))
    if not found:
        return
    named = "; ".join(
        f"{clash.series} (help {clash.help!r}, labels {', '.join(clash.labels) or 'none'})"
        for clash in found
    )
    message = (
        "limone-obs: the app has a metric of its own under the name of one of the kit's "
        f"series (Metrics namespace {namespace!r}): {named}. Merged into the kit's series, "
        "its samples would be counted twice by the SLO rules, so every scrape leaves them "
        "out. Rename the app's own metric, or give Metrics another namespace "
        "(Metrics(app, namespace=...))"
    )
    if health.report_problem(c.PROBLEM_METRIC_NAME_CLASH, message):
        logger.error(message)
