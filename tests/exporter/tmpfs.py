"""A small real tmpfs for the storage tests: full and read-only filesystems, not mocks.

Mounting needs root: elsewhere the test is skipped with the reason, and under ``CI=true``
it fails, so CI cannot pass by skipping the disk-full checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import in_ci


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@contextmanager
def small_tmpfs(path: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (e.g. ``"64k"``) at ``path``; unmount it on exit."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        _unavailable("mounting a small tmpfs needs root and mount(8)")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0777" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        _unavailable(f"mount -t tmpfs failed here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True, check=False)
        if os.path.ismount(path):  # still busy (a server that did not stop): detach it
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(path: Path) -> None:
    """Use up every free byte of the filesystem holding ``path`` with one file."""
    with open(path / "filler", "wb", buffering=0) as handle:
        try:
            while handle.write(b"\0" * 4096):
                pass
        except OSError:  # ENOSPC: the filesystem is full
            pass
