"""Linux's ``/proc/<pid>/stat``, read one way for the process series and the compaction."""

from __future__ import annotations


def stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces
    and parentheses), from the state on (field 3); None if the process is gone or there
    is no ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].split()


def zombie(fields: list[bytes]) -> bool:
    """True if :func:`stat_fields` describe a zombie: exited, not reaped yet."""
    return bool(fields) and fields[0] == b"Z"


def parent(fields: list[bytes]) -> int | None:
    """The parent pid in :func:`stat_fields` (field 4), None if they are too short."""
    return int(fields[1]) if len(fields) > 1 else None
