"""A multiprocess collector with the results of prometheus-client's, at a flat cost.

:class:`FlatCollector` yields the same families and samples as
``prometheus_client.multiprocess.MultiProcessCollector`` over the same directory, plus the
samples of retired workers kept in the compaction archive (see
:mod:`limone_obs.exporter.compaction`). It reads each file with a cached layout
(:mod:`._mp_files`) and decodes each key once per process, so a scrape costs about one
pass over the live workers' values. Given the kit's own series (``own``), it leaves out
the samples another metric stored under their names (:mod:`.name_clash`), classifying each
key once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import Metric

from limone_obs.exporter import compaction as cp
from limone_obs.exporter import merge_rules as mr
from limone_obs.exporter import name_clash
from limone_obs.exporter._mp_files import MAX_KEYS, FileReader, KeyInfo, KeyTable
from limone_obs.exporter.name_clash import Clash, OwnSeries

Labels = tuple[tuple[str, str], ...]
#: (file prefix, key id, pid ("" unless the prefix keeps one sample per pid))
Ref = tuple[str, int, str]


class _Acc:
    """Values of one scrape by :data:`Ref`, in the order prometheus-client meets them.

    Files are folded in directory order and keys in file order, as prometheus-client's
    ``MultiProcessCollector`` reads them, so the families, label sets and samples come
    out in its order.
    """

    def __init__(self) -> None:
        self.values: dict[Ref, mr.Pair] = {}

    def add(self, prefix: str, pid: str, key_ids: Iterable[int], flat: tuple[float, ...]) -> None:
        """Fold one file's values in, by the prefix's merge rule."""
        rule = mr.RULES[prefix]
        owner = pid if rule == mr.PER_PID else ""
        values = self.values
        for kid, value, stamp in zip(key_ids, flat[0::2], flat[1::2], strict=True):
            ref = (prefix, kid, owner)
            values[ref] = mr.combine(rule, values.get(ref), (value, stamp))


class _ForeignKeys:
    """The ids of a key table's keys that are other metrics under the kit's series names.

    Each key is classified once, when it is first met; ``own`` is asked only then, so a
    family the kit adds later (at ``init_app``) is known to the keys that follow.
    """

    def __init__(self, own: Callable[[], OwnSeries]) -> None:
        self._own = own
        self._checked = 0
        self.clashes: dict[int, Clash] = {}
        #: The namespace of the kit's series (known once a key was classified).
        self.namespace = ""

    def update(self, infos: list[KeyInfo]) -> dict[int, Clash]:
        """Classify the keys added since the last call; return every foreign key so far."""
        if self._checked < len(infos):
            own = self._own()
            self.namespace = own.namespace
            for kid in range(self._checked, len(infos)):
                info = infos[kid]
                labels = (name for name, _ in info.base_labels)
                clash = name_clash.classify(own, info.metric, info.sample, labels, info.help)
                if clash is not None:
                    self.clashes[kid] = clash
            self._checked = len(infos)
        return self.clashes


class FlatCollector:
    """Collects every worker's samples below ``path`` plus the compaction archive.

    With ``own`` (the kit's series), samples of other metrics under their names are left
    out and reported (:mod:`.name_clash`). Safe to call from several threads at once (a
    gthread worker serving two scrapes): one collects at a time.
    """

    def __init__(self, path: str, own: Callable[[], OwnSeries] | None = None) -> None:
        self._path = path
        self._own = own
        # The layouts and key table are read-then-extended caches: two scrapes updating
        # them at once would unpack values at the other's offsets (a 500, or wrong
        # numbers from then on). Scrapes are rare, so they simply wait for each other.
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._keys = KeyTable()
        self._reader = FileReader(self._keys)
        self._archive_bytes = b""
        self._archive = cp.Archive()
        # The archive as "files": (prefix, pid) -> (key ids, flat values), built per change.
        self._archive_files: dict[tuple[str, str], tuple[list[int], tuple[float, ...]]] = {}
        self._foreign = _ForeignKeys(self._own) if self._own is not None else None

    def collect(self) -> Iterable[Metric]:
        """Return the merged families (the interface of a prometheus-client collector)."""
        with self._lock:
            if len(self._keys.infos) > MAX_KEYS:
                self._reset()
            acc = _Acc()
            with cp.locked(self._path, exclusive=False):
                self._load_archive()
                self._add_archive(acc)
                self._add_files(acc)
            self._leave_out_foreign(acc)
            return _families(acc, self._keys.infos)

    def _leave_out_foreign(self, acc: _Acc) -> None:
        """Drop the samples other metrics stored under the kit's series names; report them."""
        if self._foreign is None:
            return
        foreign = self._foreign.update(self._keys.infos)
        if not foreign:
            return  # the usual case: only the new keys were looked at
        dropped = [ref for ref in acc.values if ref[1] in foreign]
        for ref in dropped:
            del acc.values[ref]
        name_clash.report((foreign[kid] for _, kid, _ in dropped), self._foreign.namespace)

    def _load_archive(self) -> None:
        data = cp.read_archive_bytes(self._path)
        if data == self._archive_bytes:
            return
        where = os.path.join(self._path, cp.ARCHIVE)
        archive = cp.parse_archive(data, where) if data else cp.Archive()
        grouped: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        for (prefix, pid, key), (value, stamp) in archive.entries.items():
            ids, flat = grouped.setdefault((prefix, pid), ([], []))
            ids.append(self._keys.id_of(key))
            flat += (value, stamp)
        self._archive_files = {k: (ids, tuple(flat)) for k, (ids, flat) in grouped.items()}
        self._archive, self._archive_bytes = archive, data

    def _add_archive(self, acc: _Acc) -> None:
        for (prefix, pid), (key_ids, flat) in self._archive_files.items():
            acc.add(prefix, pid, key_ids, flat)

    def _add_files(self, acc: _Acc) -> None:
        retiring = self._archive.retiring
        seen: set[str] = set()
        for name in os.listdir(self._path):
            parts = mr.split_name(name)
            if parts is None or parts[1] in retiring:
                continue
            filename = os.path.join(self._path, name)
            seen.add(filename)
            read = self._reader.read(filename)
            if read is not None:
                acc.add(parts[0], parts[1], *read)
        self._reader.forget_except(seen)


def _families(acc: _Acc, infos: list[KeyInfo]) -> list[Metric]:
    """Build the families: each label set's samples together (sum, buckets, count)."""
    families: dict[str, Metric] = {}
    groups: dict[tuple[str, Labels], dict[tuple[str, Labels], mr.Pair]] = {}
    buckets: dict[tuple[str, Labels], dict[tuple[float, str], float]] = {}
    for (prefix, kid, pid), pair in acc.values.items():
        rule = mr.RULES[prefix]
        if rule == mr.RECENT and pair[1] <= 0:
            continue  # like MultiProcessCollector: a sample never set (timestamp 0) is hidden
        info = infos[kid]
        _family(families, info, prefix.partition("_")[0])
        if info.le is not None:  # a histogram bucket: grouped with its label set's sum
            group = (info.metric, info.base_labels)
            groups.setdefault(group, {})
            bounds = buckets.setdefault(group, {})
            bounds[(info.le, info.le_text)] = bounds.get((info.le, info.le_text), 0.0) + pair[0]
            continue
        labels = (*info.labels, ("pid", pid)) if rule == mr.PER_PID else info.labels
        samples = groups.setdefault((info.metric, labels), {})
        # Keys that differ only in help text name the same sample: merge them by the rule.
        ref = (info.sample, labels)
        samples[ref] = mr.combine(rule, samples.get(ref), pair)
    for (metric, labels), bounds in buckets.items():
        _cumulate(groups[(metric, labels)], metric, labels, bounds)
    for (metric, _), samples in groups.items():
        family = families[metric]
        for (name, labels), (value, _) in samples.items():
            family.add_sample(name, dict(labels), value)
    return list(families.values())


def _cumulate(
    samples: dict[tuple[str, Labels], mr.Pair],
    metric: str,
    labels: Labels,
    bounds: dict[tuple[float, str], float],
) -> None:
    """Append a label set's cumulative buckets and its count, after its sum."""
    total = 0.0
    for (_, le_text), value in sorted(bounds.items()):
        total += value
        samples[(f"{metric}_bucket", (*labels, ("le", le_text)))] = (total, 0.0)
    samples[(f"{metric}_count", labels)] = (total, 0.0)


def _family(families: dict[str, Metric], info: KeyInfo, typ: str) -> Metric:
    family = families.get(info.metric)
    if family is None:
        family = families[info.metric] = Metric(info.metric, info.help, typ)
    return family
