"""Time windows of a report: ``--from``/``--to`` and the ``--baseline`` they are compared with."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from limone_obs.errors import ConfigError

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE: Final = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(s|m|h|d|w)$")
_RELATIVE_RE: Final = re.compile(r"^(?:now)?-([0-9]+(?:\.[0-9]+)?(?:s|m|h|d|w))$")
#: Longest text accepted for a time argument (they are short; this bounds the parse).
_MAX_TEXT: Final = 64
#: The last second a datetime can show (9999-12-31 23:59:59 UTC).
_LATEST: Final = 253402300799.0


@dataclass(frozen=True)
class Span:
    """A closed time window in Unix seconds."""

    start: float
    end: float

    @property
    def seconds(self) -> int:
        """Length in whole seconds (PromQL range selectors take whole seconds)."""
        return max(1, round(self.end - self.start))

    def shifted(self, offset: float) -> Span:
        """The same window ``offset`` seconds earlier."""
        return Span(self.start - offset, self.end - offset)

    def label(self) -> str:
        """``2026-12-03 09:00:00 - 10:00:00 UTC``: for headings."""
        start, end = _utc(self.start), _utc(self.end)
        tail = "%H:%M:%S" if start.date() == end.date() else "%Y-%m-%d %H:%M:%S"
        return f"{start:%Y-%m-%d %H:%M:%S} - {end.strftime(tail)} UTC"


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def duration_seconds(text: str, option: str) -> float:
    """``"7d"`` -> 604800; ConfigError naming ``option`` otherwise."""
    match = _DURATION_RE.match(text.strip())
    if match is None:
        raise ConfigError(f"{option}: {text[:_MAX_TEXT]!r} is not a duration like 30s, 15m, 1h, 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_time(text: str, option: str, now: float | None = None) -> float:
    """Parse ``now``, ``now-1h`` / ``-1h``, an ISO 8601 time or Unix seconds into Unix seconds.

    An ISO time without a zone is taken as UTC. ConfigError (naming ``option`` and the
    accepted forms) for anything else.
    """
    now = time.time() if now is None else now
    value = text.strip()[: _MAX_TEXT + 1]
    if value == "now":
        return now
    relative = _RELATIVE_RE.match(value)
    if relative:
        return _in_range(now - duration_seconds(relative.group(1), option), value, option)
    try:
        return _in_range(float(value), value, option)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option}: {value[:_MAX_TEXT]!r} is not a time: use now, now-1h (or -1h), "
            "an ISO 8601 time like 2026-12-01T09:00:00Z, or Unix seconds"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _in_range(parsed.timestamp(), value, option)


def _in_range(ts: float, value: str, option: str) -> float:
    """``ts`` when it is a time from 1970 to 9999 (a datetime can show it); else a
    ConfigError naming ``option`` (``inf``, ``1e30``: an OverflowError in a traceback)."""
    if not (math.isfinite(ts) and 0 <= ts <= _LATEST):
        raise ConfigError(
            f"{option}: {value[:_MAX_TEXT]!r} is no time between 1970 and 9999: use now, "
            "now-1h (or -1h), an ISO 8601 time like 2026-12-01T09:00:00Z, or Unix seconds"
        )
    return ts


#: Seconds ``--to`` may lie ahead of this machine's clock (another's may run ahead).
_AHEAD: Final = 60


def parse_window(start: str, end: str, now: float | None = None) -> Span:
    """The report window from ``--from`` and ``--to``; ConfigError if empty or in the future."""
    now = time.time() if now is None else now
    span = Span(parse_time(start, "--from", now), parse_time(end, "--to", now))
    if span.end <= span.start:
        raise ConfigError(f"--from must be before --to (got {span.label()})")
    if span.end > now + _AHEAD:
        raise ConfigError(
            f"--to lies in the future ({span.label()}; it is {_utc(now):%H:%M:%S} UTC now, "
            f"and up to {_AHEAD:g} s ahead is taken for clocks that differ): use now or an "
            "earlier time"
        )
    return span


def parse_baseline(text: str | None, window: Span, now: float | None = None) -> Span | None:
    """The baseline window: the same length as ``window``.

    ``7d`` (or ``-7d``) means "the same span 7 days earlier"; a time (ISO, Unix seconds,
    ``now-…``) is the baseline's start. None or ``none`` means no baseline. The baseline
    must end before the window starts.
    """
    if text is None or text.strip().lower() in {"", "none"}:
        return None
    value = text.strip().removeprefix("-")
    if _DURATION_RE.match(value):
        baseline = window.shifted(duration_seconds(value, "--baseline"))
    else:
        try:
            begin = parse_time(text, "--baseline", now)
        except ConfigError:
            raise ConfigError(
                f"--baseline: {text.strip()[:_MAX_TEXT]!r} is no baseline: use an offset like "
                "7d (the same span 7 days earlier), a start time (now-1h, an ISO 8601 time "
                "like 2026-12-01T09:00:00Z, Unix seconds), or none"
            ) from None
        baseline = Span(begin, begin + (window.end - window.start))
    if baseline.end > window.start + 1e-6:
        raise ConfigError(
            f"--baseline: {baseline.label()} overlaps the window {window.label()}: "
            "give an offset at least as long as the window (e.g. 7d) or an earlier start"
        )
    return baseline
