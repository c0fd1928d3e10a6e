"""Prometheus durations (``5m``, ``1h``, ``30d``) as they appear in the SLO spec."""

from __future__ import annotations

import re
from typing import Final

_DURATION_RE: Final = re.compile(r"^([1-9][0-9]*)(s|m|h|d|w)$")
_ZERO_RE: Final = re.compile(r"^0+(s|m|h|d|w)$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def is_duration(text: object) -> bool:
    """True if ``text`` is one positive whole number followed by one unit (s, m, h, d, w)."""
    return isinstance(text, str) and _DURATION_RE.match(text) is not None


def is_zero(text: object) -> bool:
    """True if ``text`` is a zero length written as a duration (``0d``, ``0s``): its own
    message says it must be greater than zero, where ``is_duration`` only says no."""
    return isinstance(text, str) and _ZERO_RE.match(text) is not None


def seconds(text: str) -> int:
    """Return the length of the duration ``text`` (e.g. ``"1h"`` -> 3600); ValueError if invalid."""
    match = _DURATION_RE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h, 3d or 2w")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(total: int) -> str:
    """Return the shortest single-unit text for ``total`` seconds (7200 -> ``"2h"``)."""
    if total == 0:
        return "0s"
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if total % size == 0:
            return f"{total // size}{unit}"
    return f"{total}s"


#: The units of :func:`humanize`, largest first.
_WORD_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))


def humanize(total: float) -> str:
    """Return ``total`` seconds in words for annotations (``2.1 days``, ``50 minutes``,
    ``1 hour``): the largest unit it holds once, to a tenth."""
    unit, size = next(((u, s) for u, s in _WORD_UNITS if total >= s), ("second", 1))
    value = round(total / size, 1)
    shown = f"{value:g}" if value < 1e6 else f"{value:.0f}"
    return f"{shown} {unit}" if value == 1 else f"{shown} {unit}s"
