"""Metrics must never break a request: failures are logged (rate-limited) and swallowed.

A full disk under the multiprocess directory, or a bug of ours, would otherwise turn into a
500 for the user or an exception inside their dependency call.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("limone_obs.exporter")
_INTERVAL = 60.0
_last: dict[str, float] = {}
_lock = threading.Lock()


def report(where: str, exc: BaseException) -> None:
    """Log ``exc`` raised in ``where`` with its traceback, at most once a minute per place."""
    now = time.monotonic()
    with _lock:
        if now - _last.get(where, -_INTERVAL) < _INTERVAL:
            return
        _last[where] = now
    logger.error(
        "limone-obs could not record metrics in %s (the request goes on; repeats are "
        "suppressed for %d s): %s",
        where, int(_INTERVAL), exc, exc_info=exc,
    )  # fmt: skip
