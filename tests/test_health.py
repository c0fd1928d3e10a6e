"""limone_obs.health: the process-wide record of the kit's own problems."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from limone_obs import health
from limone_obs.conventions import PROBLEM_STORAGE_FULL
from tests.support import fork_while_held


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    health.reset()
    yield
    health.reset()


def test_a_problem_is_first_only_once() -> None:
    """The first report returns True (log it), later ones False; the first message stays."""
    assert health.report_problem(PROBLEM_STORAGE_FULL, "disk full")
    assert not health.report_problem(PROBLEM_STORAGE_FULL, "still full")
    assert {PROBLEM_STORAGE_FULL: "disk full"} == health.problems()


def test_cleared_problem_reports_again() -> None:
    """After clear_problem the same problem is new again."""
    health.report_problem(PROBLEM_STORAGE_FULL, "x")
    health.clear_problem(PROBLEM_STORAGE_FULL)
    assert {} == health.problems()
    assert health.report_problem(PROBLEM_STORAGE_FULL, "x")


def test_unknown_problem_is_refused() -> None:
    """Label values are a fixed list: an unknown problem is a ValueError."""
    with pytest.raises(ValueError, match="unknown problem"):
        health.report_problem("made_up", "x")


def test_dropped_lines_add_up() -> None:
    """Dropped lines accumulate until reset."""
    health.add_dropped_lines(3)
    health.add_dropped_lines(2)
    assert 5 == health.dropped_lines()


def test_a_child_forked_while_the_lock_is_held_can_count() -> None:
    """The parent's lock held by another thread at the fork does not hang the child's
    first dropped log line (the child gets a free lock)."""
    status = fork_while_held(health._lock, lambda: health.add_dropped_lines(1))
    assert 0 == status, "the child hung on the lock (killed) or failed"
