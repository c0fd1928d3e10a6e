"""A multiprocess collector with the results of prometheus-client's, at a flat cost.

:class:`FlatCollector` yields the same families and samples as
``prometheus_client.multiprocess.MultiProcessCollector`` over the same directory, plus the
samples of retired workers kept in the compaction archive (see
:mod:`limone_obs.exporter.compaction`). It reads each file with a cached layout
(:mod:`._mp_files`) and decodes each key once per process, so a scrape costs about one
pass over the live workers' values.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from limone_obs.exporter import compaction as cp
from limone_obs.exporter._mp_files import MAX_KEYS, FileReader, KeyInfo, KeyTable

#: Merge rule of each live gauge mode: the same as its non-live twin.
_RULES = {**cp.RULES, **{p: cp.RULES[p.replace("live", "")] for p in cp.LIVE_PREFIXES}}
Labels = tuple[tuple[str, str], ...]


class _Acc:
    """Values of one scrape, per file prefix, keyed by key id (and pid for ``all`` gauges)."""

    def __init__(self) -> None:
        self.by_prefix: dict[str, dict[object, float]] = {}
        self.stamps: dict[str, dict[object, float]] = {}

    def add(self, prefix: str, pid: str, key_ids: Iterable[int], flat: tuple[float, ...]) -> None:
        """Fold one file's values in, by the prefix's merge rule."""
        rule = _RULES[prefix]
        slot = self.by_prefix.setdefault(prefix, {})
        values = flat[0::2]
        if rule == cp.ADD:
            for kid, value in zip(key_ids, values, strict=True):
                slot[kid] = slot.get(kid, 0.0) + value
        elif rule in (cp.MIN, cp.MAX):
            pick = min if rule == cp.MIN else max
            for kid, value in zip(key_ids, values, strict=True):
                old = slot.get(kid)
                slot[kid] = value if old is None else pick(old, value)
        elif rule == cp.RECENT:
            self._add_recent(slot, self.stamps.setdefault(prefix, {}), key_ids, flat)
        else:
            for kid, value in zip(key_ids, values, strict=True):
                slot[(kid, pid)] = value

    @staticmethod
    def _add_recent(
        slot: dict[object, float],
        stamps: dict[object, float],
        key_ids: Iterable[int],
        flat: tuple[float, ...],
    ) -> None:
        # Like MultiProcessCollector: a sample never set (timestamp 0) is not shown.
        for kid, value, stamp in zip(key_ids, flat[0::2], flat[1::2], strict=True):
            if stamp > stamps.get(kid, 0.0):
                slot[kid] = value
                stamps[kid] = stamp


class FlatCollector:
    """Collects every worker's samples below ``path`` plus the compaction archive."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._reset()

    def _reset(self) -> None:
        self._keys = KeyTable()
        self._reader = FileReader(self._keys)
        self._archive_bytes = b""
        self._archive = cp.Archive()
        # The archive as "files": (prefix, pid) -> (key ids, flat values), built per change.
        self._archive_files: dict[tuple[str, str], tuple[list[int], tuple[float, ...]]] = {}

    def collect(self) -> Iterable[Metric]:
        """Return the merged families (the interface of a prometheus-client collector)."""
        if len(self._keys.infos) > MAX_KEYS:
            self._reset()
        acc = _Acc()
        with cp.locked(self._path, exclusive=False):
            self._load_archive()
            self._add_archive(acc)
            self._add_files(acc)
        return _families(acc, self._keys.infos)

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
            parts = cp.split_name(name)
            if parts is None or parts[1] in retiring:
                continue
            filename = os.path.join(self._path, name)
            seen.add(filename)
            read = self._reader.read(filename)
            if read is not None:
                acc.add(parts[0], parts[1], *read)
        self._reader.forget_except(seen)


def _families(acc: _Acc, infos: list[KeyInfo]) -> list[Metric]:
    families: dict[str, Metric] = {}
    for prefix, slot in acc.by_prefix.items():
        typ = prefix.partition("_")[0]
        rule = _RULES[prefix]
        if typ == "histogram":
            _histogram_samples(families, slot, infos)
            continue
        samples: dict[tuple[str, str, Labels], float] = {}
        for ref, value in slot.items():
            kid, pid = ref if isinstance(ref, tuple) else (ref, "")
            info = infos[kid]
            _family(families, info, typ)
            labels = (*info.labels, ("pid", pid)) if rule == cp.PER_PID else info.labels
            _fold(samples, (info.metric, info.sample, labels), value, rule)
        for (metric, sample, labels), value in samples.items():
            families[metric].add_sample(sample, dict(labels), value)
    return list(families.values())


def _fold(
    samples: dict[tuple[str, str, Labels], float],
    ref: tuple[str, str, Labels],
    value: float,
    rule: str,
) -> None:
    # Keys that differ only in help text name the same sample: merge them by the rule.
    old = samples.get(ref)
    if old is None or rule in (cp.PER_PID, cp.RECENT):
        samples[ref] = value
    elif rule == cp.ADD:
        samples[ref] = old + value
    else:
        samples[ref] = min(old, value) if rule == cp.MIN else max(old, value)


def _family(families: dict[str, Metric], info: KeyInfo, typ: str) -> Metric:
    family = families.get(info.metric)
    if family is None:
        family = families[info.metric] = Metric(info.metric, info.help, typ)
    return family


def _histogram_samples(
    families: dict[str, Metric], slot: dict[object, float], infos: list[KeyInfo]
) -> None:
    buckets: dict[tuple[str, Labels], dict[tuple[float, str], float]] = defaultdict(
        lambda: defaultdict(float)
    )
    plain: dict[tuple[str, str, Labels], float] = defaultdict(float)
    for kid, value in slot.items():
        info = infos[kid]  # type: ignore[call-overload]
        _family(families, info, "histogram")
        if info.le is None:
            plain[(info.metric, info.sample, info.labels)] += value
        else:
            buckets[(info.metric, info.base_labels)][(info.le, info.le_text)] += value
    for (metric, sample, labels), value in plain.items():
        families[metric].add_sample(sample, dict(labels), value)
    for (metric, labels), bounds in buckets.items():
        family, total = families[metric], 0.0
        for (_, le_text), value in sorted(bounds.items()):
            total += value
            family.add_sample(f"{metric}_bucket", {**dict(labels), "le": le_text}, total)
        family.add_sample(f"{metric}_count", dict(labels), total)
