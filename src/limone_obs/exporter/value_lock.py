"""The one rule of the exporter's writes: a value is written under exactly one lock.

prometheus-client's public methods guard each value with that value's own lock. The
exporter's fast path (:mod:`._updaters`, :mod:`._mp_storage`) adds to its request series'
values directly, three or four of them per request under a single lock instead of one
each. A value written under two different locks is not protected by either, so every
writer of those values takes :data:`LOCK`: the fast updaters (the request series and the
queue-time histogram), the public ``observe`` of an exemplar-carrying request
(``RequestChildren.record_exemplar``), the first public write that binds a multiprocess
value, and the bindings themselves.

A plain ``threading.Lock``: it blocks without spinning, also on free-threaded builds.
Same-process A/B in ``bench/bench_lock.py``: against no lock at all it costs less than
1 % of a request (bench/README.md). Read it as ``value_lock.LOCK`` at each use: a forked
child gets a new one (a lock another thread held at the fork would stay held forever).
"""

from __future__ import annotations

import os
import threading

#: The lock of every value the exporter writes directly (see the module docstring).
LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    global LOCK  # noqa: PLW0603 - a lock held by another thread at fork stays held
    LOCK = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
