"""``limone-obs up``'s work directory: it only ever cleans a folder it created itself."""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from limone_obs.cli import main
from limone_obs.errors import StackError
from limone_obs.stack import claim, up


def _foreign_folder(tmp_path: Path) -> Path:
    """A folder like a Prometheus rules repository: rules/ and logs/ of somebody else."""
    folder = tmp_path / "rules-repo"
    (folder / "rules").mkdir(parents=True)
    (folder / "rules" / "mine.yml").write_text("groups: []\n")
    (folder / "logs").mkdir()
    (folder / "logs" / "audit.log").write_text("keep me\n")
    return folder


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


def test_unmarked_folder_is_refused_and_left_untouched(tmp_path: Path) -> None:
    """A non-empty folder without the marker raises StackError naming it; no file changes."""
    folder = _foreign_folder(tmp_path)
    before = _files(folder)
    with pytest.raises(StackError, match=str(folder.resolve())):
        up.fresh_workdir(folder)
    assert before == _files(folder)


def test_new_folder_is_created_and_marked(tmp_path: Path) -> None:
    """An absent folder is created with the marker and the empty data/ and logs/ folders."""
    folder = tmp_path / "w"
    up.fresh_workdir(folder)
    assert (folder / up.WORKDIR_MARKER).is_file()
    assert (folder / "data" / "prometheus").is_dir()
    assert (folder / "logs").is_dir()


def test_empty_folder_is_accepted(tmp_path: Path) -> None:
    """An existing empty folder (e.g. a fresh mktemp) becomes a work directory."""
    up.fresh_workdir(tmp_path)
    assert (tmp_path / up.WORKDIR_MARKER).is_file()


def test_marked_folder_is_cleaned_of_the_earlier_run_only(tmp_path: Path) -> None:
    """In a marked folder the earlier run's data, rules and logs go; other files stay."""
    folder = tmp_path / "w"
    up.fresh_workdir(folder)
    (folder / "data" / "prometheus" / "chunk").write_text("old")
    (folder / "rules").mkdir()
    (folder / "rules" / "old.yml").write_text("old")
    (folder / "logs" / "app.log").write_text("old")
    (folder / "notes.txt").write_text("kept")
    up.fresh_workdir(folder)
    expected = {up.WORKDIR_MARKER: up.WORKDIR_MARKER_TEXT, "notes.txt": "kept"}
    assert expected == _files(folder)


def test_a_file_is_refused(tmp_path: Path) -> None:
    """--workdir naming a file is refused with a StackError; the file stays."""
    path = tmp_path / "f"
    path.write_text("x")
    with pytest.raises(StackError, match="not a folder"):
        up.fresh_workdir(path)
    assert "x" == path.read_text()


def test_up_command_refuses_a_foreign_workdir(tmp_path: Path) -> None:
    """``limone-obs up --workdir <foreign folder>`` exits 2 naming it, before starting
    anything; the folder's files are unchanged."""
    folder = _foreign_folder(tmp_path)
    before = _files(folder)
    ports = [f"--{n}-port=0" for n in ("app", "prometheus", "alertmanager", "webhook")]
    result = CliRunner().invoke(main, ["up", "--workdir", str(folder), *ports])
    assert 2 == result.exit_code, result.output
    assert f"--workdir {folder.resolve()}: this folder was not created" in result.output
    assert before == _files(folder)


def test_up_command_refuses_a_workdir_another_up_is_using(tmp_path: Path) -> None:
    """A second ``up`` on the folder of a running one (other ports, another terminal) exits
    2 naming the running one's pid, and empties none of its data (it wiped the running
    stack's metrics and Prometheus storage, admin token and rules)."""
    folder = tmp_path / "w"
    up.fresh_workdir(folder)
    (folder / "data" / "prometheus" / "chunk").write_text("the running stack's")
    running = claim.WorkdirClaim.take(folder)
    try:
        before = _files(folder)
        ports = [f"--{n}-port=0" for n in ("app", "prometheus", "alertmanager", "webhook")]
        result = CliRunner().invoke(main, ["up", "--workdir", str(folder), *ports])
        after = _files(folder)
    finally:
        running.release()
    assert 2 == result.exit_code, result.output
    assert f"is in use by another limone-obs up (pid {os.getpid()})" in result.output
    assert "starting" not in result.output  # refused before it says it starts anything
    assert before == after


def test_children_of_a_killed_up_are_named_and_their_folder_kept(tmp_path: Path) -> None:
    """An ``up`` killed with SIGKILL leaves its children running (their lock is gone with
    it): the next run names them with the command that stops them and changes nothing;
    once they are gone, the folder is taken again."""
    folder = tmp_path / "w"
    up.fresh_workdir(folder)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        killed = claim.WorkdirClaim.take(folder)
        killed.started("prometheus", child.pid)
        killed.release(children_stopped=False)  # what SIGKILL leaves: the record, no lock
        with pytest.raises(StackError, match=rf"prometheus \(pid {child.pid}\).*kill {child.pid}"):
            claim.WorkdirClaim.take(folder)
    finally:
        child.kill()
        child.wait()
    claim.WorkdirClaim.take(folder).release()
    assert not (folder / claim.CHILDREN_FILE).exists()


@pytest.mark.parametrize("started", ["1", "-"])
def test_a_reused_pid_is_no_leftover_child(tmp_path: Path, started: str) -> None:
    """A recorded child whose pid now belongs to another process (started later, or its
    start unknown) is not taken for a leftover of the earlier run."""
    folder = tmp_path / "w"
    up.fresh_workdir(folder)
    (folder / claim.CHILDREN_FILE).write_text(f"{os.getpid()} {started} prometheus\n")
    claim.WorkdirClaim.take(folder).release()


def test_a_folder_that_cannot_be_locked_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A work folder on a filesystem without locks (NFS without lockd): a StackError
    naming the folder and what to do, not a traceback; no descriptor left open."""

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    folder = tmp_path / "w"
    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(StackError, match=r"cannot lock up\.lock .*No locks available"):
        claim.WorkdirClaim.take(folder)
    assert before == len(os.listdir("/proc/self/fd"))
