"""The gate in front of the exporter's uses of prometheus-client internals.

The per-request updates (:mod:`._updaters`, :mod:`._mp_storage`), the flat multiprocess
collector and the compaction of dead workers' files (:mod:`._mp_collector`,
:mod:`.compaction`) read prometheus-client's private layout for speed. They are used only
on the prometheus-client releases in :data:`TESTED_VERSIONS`, where the tests compare them
with the public API sample for sample. On any other release, or with
``LIMONE_OBS_FAST_PATH=0``, the exporter uses prometheus-client's public API and its
``MultiProcessCollector`` instead: the same series and counts, at a higher cost per
request (bench/README.md). The choice is logged once per process, on one line.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from limone_obs import _forking
from limone_obs import conventions as c
from limone_obs.exporter import _updaters
from limone_obs.exporter._updaters import Counter, Leave, Record, Update

#: prometheus-client releases whose internals the fast path was tested against. Add a
#: release only after ``scripts/compat`` passed with it in both modes.
TESTED_VERSIONS = frozenset({"0.26.0"})
logger = logging.getLogger("limone_obs.exporter")
_warned: set[str] = set()
_warn_lock = threading.Lock()


def client_version() -> str:
    """The installed prometheus-client release."""
    return version("prometheus-client")


def tested_client() -> bool:
    """True when the installed prometheus-client is one the fast path was tested with."""
    return client_version() in TESTED_VERSIONS


def enabled() -> bool:
    """True when the fast path may be used (the setting, the prometheus-client release);
    else logs why not (once per process)."""
    reason = _release_reason()
    if reason is not None:
        warn_once(reason)
    return reason is None


def _release_reason() -> str | None:
    """Why the setting or the prometheus-client release rules the fast path out, or None."""
    if os.environ.get(c.ENV_FAST_PATH, "1").strip() == "0":
        return (
            f"limone-obs: {c.ENV_FAST_PATH}=0, the exporter uses prometheus-client's public "
            "API (exact counts, a higher cost per request)"
        )
    found = client_version()
    if found not in TESTED_VERSIONS:
        return (
            f"limone-obs: prometheus-client {found} is not among the releases its fast path "
            f"was tested with ({', '.join(sorted(TESTED_VERSIONS))}): using the public API "
            "(exact counts, a higher cost per request)"
        )
    return None


def public_reason() -> str | None:
    """Why this process's request series use prometheus-client's public API (the warning
    line), or None for the fast path: the setting, the release, or a server forking the
    process without Python's fork hooks (:func:`_fork_reason`).

    Not logged here: ``Metrics`` logs it when an app is instrumented, not when it is made,
    since an extension object made at import, before ``configure_logging()``, would
    print it as bare text instead of a log line in the app's format.
    """
    return _release_reason() or _fork_reason()


def warn_once(message: str) -> None:
    """Log ``message`` as a warning, once per process."""
    with _warn_lock:
        if message in _warned:
            return
        _warned.add(message)
    logger.warning(message)


@dataclass(frozen=True)
class Updaters:
    """How the exporter updates its label children: the fast path or the public API."""

    fast: bool
    observer: Callable[[Any], Update]
    incrementer: Callable[[Any], Update]
    in_flight: Callable[[Any], tuple[Update, Leave]]
    recorder: Callable[[Any, Update, Leave, Counter], Record]


def _public_in_flight(child: Any) -> tuple[Update, Leave]:
    return child.inc, child.dec


def _public_recorder(duration: Any, _enter: Update, leave: Leave, counter: Counter) -> Record:
    observe = duration.observe

    def record(elapsed: float, status: str, in_flight: bool) -> None:
        observe(elapsed)
        counter(status).inc()
        if in_flight:
            leave()

    return record


FAST = Updaters(
    True, _updaters.observer, _updaters.incrementer, _updaters.in_flight, _updaters.recorder
)
PUBLIC = Updaters(
    False,
    lambda child: child.observe,
    lambda child: child.inc,
    _public_in_flight,
    _public_recorder,
)


def _fork_reason() -> str | None:
    """The reason for a process a server forks without Python's fork hooks
    (:mod:`limone_obs._forking`), else None: there the fast path's bindings to the
    master's files would reach the workers, while prometheus-client notices a fork on
    every write."""
    server = _forking.unhooked_fork()
    if server is None:
        return None
    return (
        f"limone-obs: {server}: the exporter uses prometheus-client's public API, which "
        "notices the fork on every write (exact counts, a higher cost per request); "
        f"for the faster path, {_forking.UWSGI_FIX}"
    )
