"""The kit's own health in this process: problems it found in itself, log lines it dropped.

Sits below the exporter and the logging integration so that both can report here without
importing each other; the exporter exposes the state as ``<ns>_exporter_problems{problem}``
and ``<ns>_log_lines_dropped_total`` (names in :mod:`limone_obs.conventions`). Reporting
never raises and never blocks for long: it runs inside the user's requests.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable

from limone_obs.conventions import EXPORTER_PROBLEMS

_lock = threading.Lock()
_problems: dict[str, str] = {}
_dropped_lines = 0
#: References to the listeners (see subscribe); a dead weak reference returns None.
_listeners: list[Callable[[], Callable[[], None] | None]] = []


def _after_fork_in_child() -> None:
    # Another thread of the parent may have held the lock at the fork: it would never
    # be released in the child, whose first dropped log line would then hang.
    global _lock  # noqa: PLW0603 - replaced, not shared, in the child
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def subscribe(listener: Callable[[], None]) -> None:
    """Call ``listener()`` after every change of the problems or the dropped-line count.

    It runs in the reporting thread (inside a request, or with the reporter's locks held,
    such as prometheus-client's value lock): keep it short, and never block or switch
    greenlets in it (no ``threading.Thread.start``: under gevent, another greenlet could
    then wait for good on a lock held here). Its exceptions are swallowed, since
    reporting never raises. A bound method is held weakly, so an exporter that is gone
    stops listening.
    """
    ref: Callable[[], Callable[[], None] | None] = (
        weakref.WeakMethod(listener)
        if hasattr(listener, "__self__")
        else lambda: listener  # a strong reference, same call shape
    )
    with _lock:
        _listeners.append(ref)


def _notify() -> None:
    with _lock:
        resolved = [(ref, ref()) for ref in _listeners]
        _listeners[:] = [ref for ref, listener in resolved if listener is not None]
    for _ref, listener in resolved:
        if listener is None:
            continue
        with contextlib.suppress(Exception):  # reporting the kit's health never raises
            listener()


def report_problem(problem: str, message: str) -> bool:
    """Record ``problem`` (one of ``EXPORTER_PROBLEMS``) with a message saying what to do.

    Returns True the first time this process reports that problem, so the caller can write
    its one log line then and stay quiet after. Raises ValueError for an unknown problem
    (a programming error: the label values are a fixed list).
    """
    if problem not in EXPORTER_PROBLEMS:
        raise ValueError(f"unknown problem {problem!r}: use one of {EXPORTER_PROBLEMS}")
    with _lock:
        first = problem not in _problems
        _problems.setdefault(problem, message)
    if first:
        _notify()
    return first


def clear_problem(problem: str) -> None:
    """Forget ``problem`` (it was fixed, e.g. the disk has space again)."""
    with _lock:
        known = _problems.pop(problem, None) is not None
    if known:
        _notify()


def problems() -> dict[str, str]:
    """Return a copy of the current problems: problem -> the first message reported."""
    with _lock:
        return dict(_problems)


def add_dropped_lines(count: int) -> None:
    """Count ``count`` log lines dropped because the sink did not accept them in time."""
    global _dropped_lines  # noqa: PLW0603 - one process-wide counter, guarded by _lock
    with _lock:
        _dropped_lines += count
    _notify()


def dropped_lines() -> int:
    """Return how many log lines this process has dropped since it started."""
    with _lock:
        return _dropped_lines


def reset() -> None:
    """Forget every problem and the dropped-line count (tests; a forked worker's start).

    Listeners stay subscribed and are told.
    """
    global _dropped_lines  # noqa: PLW0603 - see add_dropped_lines
    with _lock:
        _problems.clear()
        _dropped_lines = 0
    _notify()
