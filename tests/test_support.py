"""The shared test helpers fail loudly: a helper thread's exception fails its test."""

from __future__ import annotations

import threading

import pytest

from tests.support import race, wait_until


class HelperError(RuntimeError):
    """Raised in a helper thread."""


def test_race_reraises_an_exception_of_its_threads() -> None:
    """Threads that all raise make race() raise, instead of a passing test."""

    def fail() -> None:
        raise HelperError("in a thread")

    with pytest.raises(HelperError, match="in a thread"):
        race(fail, threads=4)


def test_race_returns_when_every_thread_succeeds() -> None:
    """Without exceptions every thread runs the target once."""
    ran: list[int] = []
    race(lambda: ran.append(1), threads=4)
    assert [1, 1, 1, 1] == ran


def test_wait_until_fails_naming_what_it_waited_for() -> None:
    """A condition that never holds fails the test with its description."""
    with pytest.raises(pytest.fail.Exception, match="the flag"):
        wait_until(threading.Event().is_set, "the flag", timeout=0.1)
