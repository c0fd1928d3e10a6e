"""Compaction of dead workers' multiprocess files into one archive, so scrapes stay flat.

prometheus-client's multiprocess mode leaves ``<type>_<pid>.db`` files (gauges:
``gauge_<mode>_<pid>.db``) of every worker that ever lived, and a scrape reads them all.
:func:`compact` merges a dead worker's files into ``limone_archive.json`` and removes them:

- samples merge by the rules of :mod:`.merge_rules` (the collector's too); ``live*``
  gauges (the process is dead) are dropped.
- Order of operations, each step leaving a directory that scrapes exactly once:
  1. write the new archive to a temporary file (ignored by readers);
  2. rename it over the archive; it lists the merged pids as ``retiring``, and readers skip
     a retiring pid's files, so the samples count once, from the archive;
  3. remove the worker's files, one by one;
  4. write and rename the archive again without the ``retiring`` list (a later worker may
     reuse the pid).
  A crash between any two steps is finished by the next :func:`compact` (:func:`recover`).
- Mergers hold an exclusive ``flock`` on ``limone_compaction.lock`` (two workers dying at
  once), readers a shared one, so a scrape never sees half a merge.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from limone_obs.errors import ArtifactError
from limone_obs.exporter import _procfs
from limone_obs.exporter._mp_files import FileReader, KeyTable
from limone_obs.exporter.merge_rules import LIVE_PREFIXES, PER_PID, RULES, combine, split_name

ARCHIVE = "limone_archive.json"
LOCK = "limone_compaction.lock"
TMP_SUFFIX = ".tmp"
FORMAT = 1
#: (file prefix, pid label ("" unless per-pid), mmap key) -> (value, timestamp)
Entries = dict[tuple[str, str, str], tuple[float, float]]
Step = Callable[[], None]


@dataclass(frozen=True)
class Archive:
    """The merged samples of every retired worker, and the pids whose files to skip."""

    generation: int = 0
    retiring: frozenset[str] = frozenset()
    entries: Entries = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Serialise deterministically (sorted entries)."""
        rows = [[*k, *v] for k, v in sorted(self.entries.items())]
        doc = {
            "format": FORMAT,
            "generation": self.generation,
            "retiring": sorted(self.retiring),
            "entries": rows,
        }
        return orjson.dumps(doc)


def parse_archive(data: bytes, where: str) -> Archive:
    """Decode archive bytes; raise ArtifactError naming ``where`` if they are not one."""
    try:
        doc = orjson.loads(data)
        if doc["format"] != FORMAT:
            raise ValueError(f"format {doc['format']!r}, expected {FORMAT}")
        entries: Entries = {
            (str(p), str(pid), str(k)): (float(v), float(ts)) for p, pid, k, v, ts in doc["entries"]
        }
        return Archive(int(doc["generation"]), frozenset(map(str, doc["retiring"])), entries)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(
            f"{where}: not a limone-obs archive ({exc}); stop the server, empty the "
            "multiprocess directory and start again"
        ) from None


def read_archive_bytes(path: str) -> bytes:
    """Return the archive's bytes, or b"" when no worker was retired yet."""
    try:
        with open(os.path.join(path, ARCHIVE), "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return b""


def read_archive(path: str) -> Archive:
    """Return the archive of directory ``path`` (empty if there is none)."""
    data = read_archive_bytes(path)
    return parse_archive(data, os.path.join(path, ARCHIVE)) if data else Archive()


@contextlib.contextmanager
def locked(path: str, *, exclusive: bool) -> Iterator[None]:
    """Hold the directory's compaction lock (exclusive for mergers, shared for scrapes).

    ``flock`` is released by the kernel when the holder dies, so a killed merger never
    blocks later scrapes.
    """
    fd = os.open(os.path.join(path, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def worker_files(path: str, pids: Iterable[str]) -> list[str]:
    """Return the names of the multiprocess files of ``pids`` in ``path``, sorted."""
    wanted = set(pids)
    names = []
    for name in os.listdir(path):
        parts = split_name(name)
        if parts is not None and parts[1] in wanted:
            names.append(name)
    return sorted(names)


def merge_files(archive: Archive, path: str, names: Iterable[str]) -> Entries:
    """Return the archive's entries with the samples of files ``names`` merged in."""
    entries = dict(archive.entries)
    reader = FileReader(KeyTable())
    for name in names:
        prefix, pid = split_name(name) or ("", "")
        if prefix in LIVE_PREFIXES:
            continue  # the process is dead: its live gauges are dropped
        rule = RULES[prefix]
        read = reader.read(os.path.join(path, name))
        if read is None:
            continue
        key_ids, flat = read
        for i, kid in enumerate(key_ids):
            slot = (prefix, pid if rule == PER_PID else "", reader.keys.texts[kid])
            entries[slot] = combine(rule, entries.get(slot), (flat[2 * i], flat[2 * i + 1]))
    return entries


def write_tmp(path: str, archive: Archive) -> Step:
    """Step: write ``archive`` to the temporary file and flush it to disk; a failed write
    (a full disk) removes the partial file instead of leaving it behind."""

    def step() -> None:
        tmp = os.path.join(path, ARCHIVE + TMP_SUFFIX)
        try:
            with open(tmp, "wb") as handle:
                handle.write(archive.to_bytes())
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise

    return step


def publish(path: str) -> Step:
    """Step: atomically replace the archive by the temporary file."""

    def step() -> None:
        os.replace(os.path.join(path, ARCHIVE + TMP_SUFFIX), os.path.join(path, ARCHIVE))

    return step


def remove(path: str, name: str) -> Step:
    """Step: remove one merged worker file (already gone is fine)."""

    def step() -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(path, name))

    return step


def plan(path: str, pids: Iterable[str]) -> tuple[list[Step], list[str]]:
    """Return the steps that retire ``pids``, and the files they remove.

    Call it with the exclusive lock held.

    Also finishes the work of a merge that crashed: files of pids the archive lists as
    retiring are removed, and a stale temporary file is overwritten.
    """
    archive = read_archive(path)
    leftover = worker_files(path, archive.retiring)
    names = [n for n in worker_files(path, pids) if n not in leftover]
    if not names and not archive.retiring:
        return [], []
    retiring = archive.retiring | {split_name(n)[1] for n in names}  # type: ignore[index]
    merged = Archive(archive.generation + 1, retiring, merge_files(archive, path, names))
    done = Archive(archive.generation + 2, frozenset(), merged.entries)
    steps = [write_tmp(path, merged), publish(path)] if names else []
    steps += [remove(path, n) for n in leftover + names]
    return [*steps, write_tmp(path, done), publish(path)], leftover + names


def compact(path: str, pids: Iterable[int | str]) -> int:
    """Merge the files of dead processes ``pids`` into the archive; return files removed.

    Never pass a live process: its later samples would be lost. Safe to call from several
    processes at once, and to call with no pids to finish a merge that crashed.
    """
    with locked(path, exclusive=True):
        steps, removed = plan(path, [str(p) for p in pids])
        for step in steps:
            step()
    return len(removed)


def dead_pids(path: str, live: Iterable[int]) -> set[int]:
    """Return pids that have files in ``path`` but are neither in ``live`` nor running."""
    return {p for p in file_pids(path) - set(live) if not running(p)}


def file_pids(path: str) -> set[int]:
    """The pids that have files in ``path`` now."""
    found: set[int] = set()
    for name in os.listdir(path):
        parts = split_name(name)
        if parts is not None and parts[1].isdigit():
            found.add(int(parts[1]))
    return found


def running(pid: int) -> bool:
    """True if process ``pid`` exists and has not exited (another user's too).

    A zombie (exited, not reaped yet: its parent was killed with it and nothing has
    reaped it, or the parent is slow to) is not running: its files are complete and no
    longer written, and a server started meanwhile must not take them for a live one's.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _procfs.stat_fields(pid)  # None without /proc: then it runs, as far as known
    return fields is None or not _procfs.zombie(fields)
