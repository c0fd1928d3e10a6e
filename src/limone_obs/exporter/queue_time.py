"""Queue time: how long a request waited between the proxy and the worker.

A proxy in front of gunicorn (nginx, HAProxy, Heroku's router) stamps each request with
``X-Request-Start``; the worker subtracts it from its own clock when the request starts.
The forms in use are ``t=<number>`` or a bare number, in seconds (nginx ``$msec``:
``t=1700000000.123``), milliseconds (Heroku: ``1700000000123``) or microseconds (Apache,
HAProxy ``%[date(0,us)]``): the unit follows from the magnitude, since a present-day
timestamp is ~1.7e9 s, ~1.7e12 ms or ~1.7e15 us.

The two clocks belong to different machines: a small negative wait is skew and counts
as 0; a wait beyond ``QUEUE_MAX_SECONDS`` is not believable, so it is not observed but
counted in ``<ns>_request_queue_ignored_total{reason="too_long"}``, a stamp as far in
the future in ``reason="clock_ahead"`` (not observed as 0: hours of skew would read as no
queueing at all), like an unreadable header (``reason="malformed"``). The parse is
bounded (a header longer than 40 characters is malformed without being read) and never
raises.
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Histogram

from limone_obs import conventions as c
from limone_obs.exporter import _failsafe
from limone_obs.exporter._updaters import Update
from limone_obs.exporter.fast_path import Updaters

_MAX_HEADER = 40
#: Below this a number is seconds, below the next milliseconds, then us, then ns.
_UNIT_LIMITS = ((1e11, 1.0), (1e14, 1e-3), (1e17, 1e-6), (1e20, 1e-9))
_SECONDS_BELOW = _UNIT_LIMITS[0][0]
_MAX_WAIT: float = c.QUEUE_MAX_SECONDS


def parse_start(header: str) -> float | None:
    """Return the Unix time (seconds) an ``X-Request-Start`` value names, or None."""
    if len(header) > _MAX_HEADER or "_" in header:  # float() reads "1_700_000_000" too
        return None
    try:
        number = float(header.strip().removeprefix("t="))
    except ValueError:
        return None
    if 0.0 < number < _SECONDS_BELOW:  # seconds (nginx), the usual form: one comparison
        return number
    if not math.isfinite(number) or number <= 0:
        return None
    for limit, scale in _UNIT_LIMITS:
        if number < limit:
            return number * scale
    return None


class QueueTime:
    """The queue-time histogram and the counter of ignored headers."""

    def __init__(
        self, names: c.MetricNames, registry: CollectorRegistry, updaters: Updaters
    ) -> None:
        self.histogram = Histogram(
            names.request_queue,
            "Time a request waited between the proxy (X-Request-Start) and the worker, "
            "in seconds.",
            registry=registry, buckets=c.QUEUE_BUCKETS,
        )  # fmt: skip
        self.ignored = Counter(
            names.request_queue_ignored,
            "X-Request-Start headers not observed: unreadable, or over 60 s off this clock (skew).",
            (c.LABEL_REASON,), registry=registry,
        )  # fmt: skip
        self._observe: Update = updaters.observer(self.histogram)
        self._malformed: Update = updaters.incrementer(
            self.ignored.labels(c.QUEUE_IGNORED_MALFORMED)
        )
        self._too_long: Update = updaters.incrementer(self.ignored.labels(c.QUEUE_IGNORED_TOO_LONG))
        self._ahead: Update = updaters.incrementer(self.ignored.labels(c.QUEUE_IGNORED_AHEAD))

    def observe(self, header: str, now: float) -> None:
        """Observe the wait ``header`` announces before ``now`` (Unix time); never raises.

        A negative wait (the proxy's clock ahead) is observed as 0; a wait beyond
        ``QUEUE_MAX_SECONDS`` either way and an unreadable header are counted as ignored,
        by reason.
        """
        try:
            start = parse_start(header)
            if start is None:
                self._malformed(1.0)
                return
            waited = now - start
            if waited > _MAX_WAIT:
                self._too_long(1.0)
            elif waited < -_MAX_WAIT:
                self._ahead(1.0)
            else:
                observe = self._observe  # loaded, then called: see lifecycle.Lifecycle.__call__
                observe(waited if waited > 0.0 else 0.0)
        except Exception as exc:  # metrics must never fail a request
            _failsafe.report("queue time", exc)
