"""Fast reads of prometheus-client's multiprocess files (``prometheus_client.mmap_dict``).

A file is an append-only list of entries: a 4-byte key length, the UTF-8 JSON key padded
to 8-byte alignment, then two doubles (value, timestamp). Keys never move once written, so
the position of every value is remembered per file and all values are unpacked by one
precompiled :class:`struct.Struct` call; only entries appended since the last scrape are
parsed. Keys are decoded once per process (:class:`KeyTable`), not once per scrape.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from dataclasses import dataclass, field

from prometheus_client.utils import floatToGoString

from limone_obs.errors import ArtifactError

_INT = struct.Struct("=i")
#: A file's header: the count of bytes in use (an int), padded to 8.
HEADER_BYTES = 8
_ENTRY_TAIL = 16  # value + timestamp
#: Above this many distinct keys the table is rebuilt: guards memory if keys churn.
MAX_KEYS = 200_000


@dataclass(frozen=True)
class KeyInfo:
    """One decoded mmap key: which family and sample it belongs to, and its labels."""

    metric: str
    sample: str
    labels: tuple[tuple[str, str], ...]
    help: str
    le: float | None
    le_text: str
    base_labels: tuple[tuple[str, str], ...]


class KeyTable:
    """Interns mmap keys as small ints and decodes each key's JSON once."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.texts: list[str] = []
        self.infos: list[KeyInfo] = []

    def id_of(self, key: str) -> int:
        """Return the id of ``key``, decoding it on first sight."""
        kid = self.ids.get(key)
        if kid is None:
            kid = self.ids[key] = len(self.infos)
            self.infos.append(_decode_key(key))
            self.texts.append(key)
        return kid


def _decode_key(key: str) -> KeyInfo:
    metric, sample, labels, help_text = json.loads(key)
    items = tuple(sorted(labels.items()))
    le = labels.get("le")
    if le is None:
        return KeyInfo(metric, sample, items, help_text, None, "", items)
    base = tuple(item for item in items if item[0] != "le")
    bound = float(le)
    # The text prometheus-client's MultiProcessCollector writes for this bound.
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return KeyInfo(metric, sample, items, help_text, bound, text, base)


@dataclass
class FileLayout:
    """Where the values of one file sit, as far as it had been written at the last read."""

    inode: int
    used: int = HEADER_BYTES
    key_ids: list[int] = field(default_factory=list)
    fmt: list[str] = field(default_factory=list)
    unpacker: struct.Struct = field(default_factory=lambda: struct.Struct("="))


def read_used(data: bytes) -> int:
    """Return the byte count in use that the file's header declares.

    A worker creates its file empty, then sizes it, then writes the header: a file caught
    in between reads as holding no entries yet (8, the header's own size).
    """
    if len(data) < HEADER_BYTES:
        return HEADER_BYTES
    return max(int(_INT.unpack_from(data, 0)[0]), HEADER_BYTES)


def read_file(filename: str) -> bytes:
    """Return the used part of a multiprocess file (raises FileNotFoundError if gone)."""
    with open(filename, "rb") as handle:  # a read is cheaper than a mmap for a few pages
        data = handle.read(mmap.PAGESIZE)
        if len(data) < HEADER_BYTES:
            return bytes(HEADER_BYTES)  # just created: no header, no entries yet
        used = read_used(data)
        if used > len(data):
            data += handle.read(used - len(data))
    return data[:used]


def extend_layout(layout: FileLayout, data: bytes, keys: KeyTable, filename: str) -> None:
    """Parse the entries of ``data`` written after ``layout.used`` into the layout."""
    used = read_used(data)
    if used > len(data):
        raise ArtifactError(f"{filename}: header says {used} bytes, file has {len(data)}")
    pos = layout.used
    if pos >= used:
        return
    while pos < used:
        if pos + 4 > used:
            raise ArtifactError(f"{filename}: corrupted entry at byte {pos}")
        (length,) = _INT.unpack_from(data, pos)
        padded = length + (8 - (length + 4) % 8)
        if length <= 0 or pos + 4 + padded + _ENTRY_TAIL > used:
            raise ArtifactError(f"{filename}: corrupted entry at byte {pos}")
        key = data[pos + 4 : pos + 4 + length].decode("utf-8")
        layout.key_ids.append(keys.id_of(key))
        layout.fmt.append(f"{4 + padded}xdd")
        pos += 4 + padded + _ENTRY_TAIL
    layout.used = used
    layout.unpacker = struct.Struct("=" + f"{HEADER_BYTES}x" + "".join(layout.fmt))


def values_of(layout: FileLayout, data: bytes) -> tuple[float, ...]:
    """Return (value, timestamp, value, timestamp, ...) for every entry of the layout."""
    return layout.unpacker.unpack_from(data, 0)


class FileReader:
    """Reads multiprocess files by name, reusing each file's layout between scrapes."""

    def __init__(self, keys: KeyTable) -> None:
        self.keys = keys
        self._layouts: dict[str, FileLayout] = {}

    def read(self, filename: str) -> tuple[list[int], tuple[float, ...]] | None:
        """Return (key ids, flat values) of ``filename``, or None if it no longer exists."""
        try:
            inode = os.stat(filename).st_ino
            data = read_file(filename)
        except FileNotFoundError:
            self._layouts.pop(filename, None)
            return None
        layout = self._layouts.get(filename)
        # A new inode or a shorter file means the file was recreated (a reused pid).
        if layout is None or layout.inode != inode or read_used(data) < layout.used:
            layout = self._layouts[filename] = FileLayout(inode)
        extend_layout(layout, data, self.keys, filename)
        return layout.key_ids, values_of(layout, data)

    def forget_except(self, filenames: set[str]) -> None:
        """Drop cached layouts of files that are gone (a dead worker's, after compaction)."""
        for name in [n for n in self._layouts if n not in filenames]:
            del self._layouts[name]
