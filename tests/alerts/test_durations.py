"""Durations in words, as alert annotations, runbooks and the report write them."""

from __future__ import annotations

import pytest

from limone_obs.alerts import _durations


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 seconds"), (1, "1 second"), (45, "45 seconds"), (60, "1 minute"),
     (61, "1 minute"), (90, "1.5 minutes"), (3600, "1 hour"), (5400, "1.5 hours"),
     (86400, "1 day"), (2.1 * 86400, "2.1 days"), (28 * 86400 / 14.4, "1.9 days")],
)  # fmt: skip
def test_humanize_says_one_unit_in_the_singular(seconds: float, words: str) -> None:
    """One of a unit is singular ("about 1 minutes" was written), and a tenth is the
    finest step ("1.0 minutes" for 61 s)."""
    assert words == _durations.humanize(seconds)
