"""One ``limone-obs up`` a work folder: its lock, and the record of the children it starts.

``up`` empties its work folder's data at the start of a run. A second ``up`` on the same
folder (other ports, another terminal) would empty the data of a stack still running
there, overwrite its admin token and rules, and share its fault switches; the children of
an ``up`` killed with SIGKILL keep running and writing there too. So a run holds an
exclusive ``flock`` on ``<workdir>/up.lock`` (released by the kernel however the run
ends), and lists every child it starts in ``<workdir>/up.children`` (pid, name and start
time, which tells a reused pid), a file it removes once it has stopped them. A new run
refuses the folder while either says another run's processes are there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from limone_obs.errors import StackError
from limone_obs.exporter import _procfs

LOCK_FILE = "up.lock"
CHILDREN_FILE = "up.children"


class WorkdirClaim:
    """This run's hold on its work folder (see the module's docstring)."""

    def __init__(self, workdir: Path, fd: int) -> None:
        self.workdir = workdir
        self._fd: int | None = fd

    @classmethod
    def take(cls, workdir: Path) -> WorkdirClaim:
        """Lock ``workdir`` (created if absent) for this run.

        Raises StackError, touching nothing else in the folder, when another ``up`` holds
        it (named by its pid) or when children an earlier ``up`` started there still run
        (it was killed without stopping them: named, with the command that stops them).
        """
        fd = _lock(workdir)
        claim = cls(workdir, fd)
        try:
            claim._refuse_leftovers()
        except StackError:
            claim.release(children_stopped=False)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return claim

    def started(self, name: str, pid: int) -> None:
        """Record child ``name`` (``pid``) as started by this run (not one that has
        exited already, or without ``/proc``: nothing would tell it from a reused pid)."""
        started = _start_time(pid)
        if started is None:
            return
        with (self.workdir / CHILDREN_FILE).open("a") as out:
            out.write(f"{pid} {started} {name}\n")

    def release(self, *, children_stopped: bool = True) -> None:
        """Give the folder up; ``children_stopped``: forget the children's record too."""
        if children_stopped:
            with contextlib.suppress(FileNotFoundError):
                (self.workdir / CHILDREN_FILE).unlink()
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def _refuse_leftovers(self) -> None:
        """Raise StackError naming the children of an earlier run that still run."""
        running = _still_running(self.workdir / CHILDREN_FILE)
        if not running:
            with contextlib.suppress(FileNotFoundError):
                (self.workdir / CHILDREN_FILE).unlink()
            return
        named = ", ".join(f"{name} (pid {pid})" for pid, name in running)
        pids = " ".join(str(pid) for pid, _ in running)
        raise StackError(
            f"--workdir {self.workdir.resolve()}: an earlier limone-obs up was stopped "
            f"without stopping its children, which still run and use this folder: {named}. "
            f"Stop them (kill {pids}), then run up again"
        )


def _still_running(record: Path) -> list[tuple[int, str]]:
    """The children listed in ``record`` that still run (the same process: same start)."""
    try:
        lines = record.read_text().splitlines()
    except FileNotFoundError:
        return []
    running = []
    for line in lines:
        fields = line.split(maxsplit=2)
        if len(fields) != 3 or not fields[0].isdigit():
            continue
        pid, started, name = int(fields[0]), fields[1], fields[2]
        if _start_time(pid) == started:
            running.append((pid, name))
    return running


def _lock(workdir: Path) -> int:
    """``workdir``'s lock file, created if absent and locked; its descriptor.

    Raises StackError naming the folder when another run holds it (its pid) or when it
    cannot be locked at all (a read-only folder, a filesystem without locks).
    """
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(workdir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StackError(f"--workdir {workdir}: cannot create {LOCK_FILE} there: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise StackError(
            f"--workdir {workdir.resolve()} is in use by another limone-obs up "
            f"(pid {owner or 'unknown'}): a second run there would empty the data of "
            "the one running. Stop that one (Ctrl-C in its terminal), or pass another "
            "--workdir (and other ports) to run both"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise StackError(
            f"--workdir {workdir.resolve()}: cannot lock {LOCK_FILE} ({exc}), which keeps "
            "two runs of up out of one folder: pass a --workdir on a local filesystem"
        ) from exc
    return fd


def _start_time(pid: int) -> str | None:
    """Process ``pid``'s start time (clock ticks after boot), None if it does not run."""
    fields = _procfs.stat_fields(pid)
    if fields is None or len(fields) < 20 or _procfs.zombie(fields):
        return None
    return fields[19].decode()
