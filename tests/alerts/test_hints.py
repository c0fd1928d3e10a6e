"""Validation messages say what to do, and what they say works (found in a new user's trial)."""

from __future__ import annotations

import re

import pytest

from limone_obs.alerts.spec import parse_spec
from limone_obs.errors import SpecError

SPEC = """
service: shop
slos:
  - name: availability
    kind: ratio
    objective: {objective}
"""


def _error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="slo.yaml")
    return str(info.value)


def test_a_tier_that_cannot_fire_asks_to_raise_the_objective() -> None:
    """At 90 % the page-fast tier (factor 14.4) can never fire: the message asks to raise
    the objective above 100 x (1 - 1/14.4), never to lower it."""
    message = _error(SPEC.format(objective=90))
    assert "slo.yaml: slos[0] (availability).tiers.page-fast: burn factor 14.4" in message
    assert "raise the objective above 100 x (1 - 1/14.4) = 93.0556 (e.g. 93.06)" in message
    assert "lower the objective" not in message


def test_the_objective_the_message_names_is_the_lowest_that_works() -> None:
    """The example objective the message gives is accepted, and 0.01 below it is not."""
    found = re.search(r"\(e\.g\. ([0-9.]+)\)", _error(SPEC.format(objective=90)))
    assert found is not None
    example = float(found.group(1))
    assert parse_spec(SPEC.format(objective=example)).slos[0].objective == example
    assert "tiers.page-fast" in _error(SPEC.format(objective=round(example - 0.01, 2)))
