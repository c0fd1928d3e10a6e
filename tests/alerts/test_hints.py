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


def test_every_tier_that_cannot_fire_is_named_in_one_run() -> None:
    """objective: 60 leaves only ticket-slow (factor 1) able to fire: the other three are
    named at once (only the first was, and each of the others showed up after the one
    before was switched off)."""
    message = _error(SPEC.format(objective=60))
    named = re.findall(r"tiers\.([a-z-]+): burn factor", message)
    assert ["page-fast", "page-slow", "ticket-fast"] == named


def test_an_objective_under_50_is_read_as_a_limit_of_bad_events() -> None:
    """objective: 1.5 (written for "at most 1.5 % errors") is named as such, with the
    percentage of good events to write instead; not three burn-factor messages."""
    message = _error(SPEC.format(objective=1.5))
    assert (
        "slo.yaml: slos[0] (availability).objective: 1.5 lets 98.5 % of events be bad: give "
        "the percentage of good events, e.g. 98.5 for at most 1.5 % bad"
    ) in message
    assert "burn factor" not in message


def test_the_objective_the_message_names_is_the_lowest_that_works() -> None:
    """The example objective the message gives is accepted, and 0.01 below it is not."""
    found = re.search(r"\(e\.g\. ([0-9.]+)\)", _error(SPEC.format(objective=90)))
    assert found is not None
    example = float(found.group(1))
    assert parse_spec(SPEC.format(objective=example)).slos[0].objective == example
    assert "tiers.page-fast" in _error(SPEC.format(objective=round(example - 0.01, 2)))


def test_a_percent_sign_on_a_number_is_named() -> None:
    """objective: 99.9% is a string in YAML: the message says to write 99.9 without %."""
    message = _error(SPEC.format(objective="99.9%"))
    assert (
        "slo.yaml: slos[0] (availability).objective: must be a number, found a string "
        "'99.9%': write 99.9, a plain number without %"
    ) in message


@pytest.mark.parametrize("where", ["top", "slo"])
def test_a_percent_sign_on_min_rate_is_no_share_to_drop(where: str) -> None:
    """min_rate is events per second: "write 5, a plain number without %" (a trial) would
    have set 5 events per second, below which most services' rate alerts stay quiet."""
    text = SPEC.format(objective=99.5)
    text = (
        text.replace("service: shop\n", "service: shop\nmin_rate: 5%\n")
        if where == "top"
        else text + "    min_rate: 5%\n"
    )
    message = _error(text)
    assert (
        "min_rate: must be a number, found a string '5%': min_rate is events per second "
        "(below it the rate alerts stay quiet), not a share: write a rate such as 0.1"
    ) in message
    assert "write 5" not in message


def test_a_quoted_number_is_named() -> None:
    """objective: "99.9" (quoted) is a string: the message says to drop the quotes."""
    message = _error(SPEC.format(objective='"99.9"'))
    assert "found a string '99.9': write 99.9, a plain number without quotes" in message


@pytest.mark.parametrize(
    ("written", "hint"),
    [("1e6", "write 1000000"), ("2.5e3", "write 2500"), ("1e-9", "write 1.0e-09")],
)
def test_a_number_yaml_reads_as_text_is_named(written: str, hint: str) -> None:
    """min_rate: 1e6 unquoted is text to YAML 1.1 (no dot, or no exponent sign): the
    message said "write 1e6, a plain number without quotes", which the user had done."""
    message = _error(SPEC.format(objective=99.9) + f"    min_rate: {written}\n")
    assert f"found a string '{written}': YAML reads {written} as text, quoted or not; {hint}" in (
        message
    )


def test_a_word_that_is_no_number_gets_no_hint() -> None:
    """A string that is no number once % goes gets the message as before, no guess."""
    message = _error(SPEC.format(objective="three nines"))
    assert message.endswith("must be a number, found a string 'three nines'")


def test_a_misspelt_key_is_told_the_closest_allowed_one() -> None:
    """treshold_seconds in a latency SLO: "did you mean threshold_seconds?" then the list,
    and no second message that threshold_seconds is missing."""
    text = """
service: shop
slos:
  - name: latency
    kind: latency
    objective: 95
    treshold_seconds: 1.0
"""
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="slo.yaml")
    messages = [str(error) for error in getattr(info.value, "errors", [info.value])]
    assert (
        "slo.yaml: slos[0] (latency).treshold_seconds: unknown key 'treshold_seconds' for an "
        "SLO of kind 'latency'; did you mean threshold_seconds? allowed: "
    ) in messages[0]
    assert not [m for m in messages if m.endswith("threshold_seconds: is required")], messages


def test_a_misspelt_top_level_key_and_kind_are_told_the_closest() -> None:
    """perod -> period at the top level; kind: ratios -> ratio."""
    text = SPEC.format(objective=99.9).replace("kind: ratio", "kind: ratios")
    text = text.replace("service: shop", "service: shop\nperod: 28d")
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="slo.yaml")
    message = str(info.value)
    assert "slo.yaml: perod: unknown key 'perod'; did you mean period? allowed:" in message
    assert "kind: 'ratios' is not allowed; did you mean ratio? use one of:" in message


def test_a_key_unlike_any_allowed_one_gets_no_guess() -> None:
    """A key far from every allowed one lists them without a "did you mean"."""
    text = SPEC.format(objective=99.9).replace("service: shop", "service: shop\nzzz: 1")
    message = _error(text)
    assert "slo.yaml: zzz: unknown key 'zzz'; allowed: " in message


@pytest.mark.parametrize(
    ("added", "says"),
    [
        ("period: 0d", "slo.yaml: period: '0d' must be greater than zero; write e.g. 28d or 30d"),
        (
            "alertmanager: {group_wait: 0s}",
            "slo.yaml: alertmanager.group_wait: '0s' must be greater than zero; write e.g. 30s, "
            "5m, 1h, 3d or 2w",
        ),
    ],
)
def test_a_zero_duration_must_be_greater_than_zero(added: str, says: str) -> None:
    """0d is a duration of nothing: the message says so instead of "not a duration"."""
    text = SPEC.format(objective=99.9).replace("service: shop", f"service: shop\n{added}")
    assert says in _error(text)


def test_a_non_duration_period_suggests_periods() -> None:
    """period: 30 days is no duration; the message suggests 28d or 30d, not 30s."""
    message = _error(
        SPEC.format(objective=99.9).replace("service: shop", "service: shop\nperiod: 30 days")
    )
    assert "slo.yaml: period: '30 days' is not a duration; write e.g. 28d or 30d" in message


LATENCY = """
service: shop
slos:
  - name: latency
    kind: latency
    objective: 99
    histogram: limoneide_request_duration_seconds
    threshold_seconds: {threshold}
    stages: [{stage}]
"""


@pytest.mark.parametrize(
    ("threshold", "stage", "where", "hint"),
    [
        ("300ms", "0.1", "threshold_seconds", "write 0.3, a plain number of seconds"),
        ("2.5 s", "1", "threshold_seconds", "write 2.5, a plain number of seconds"),
        ("2.5", "100ms", "stages[0]", "write 0.1, a plain number of seconds"),
    ],
)
def test_a_time_written_with_its_unit_is_named_in_seconds(
    threshold: str, stage: str, where: str, hint: str
) -> None:
    """threshold_seconds: 300ms (or a stage of 100ms) is text: the message gives the
    number of seconds to write instead."""
    message = _error(LATENCY.format(threshold=threshold, stage=stage))
    assert f"slos[0] (latency).{where}: must be a number" in message
    assert hint in message


def test_an_objective_with_a_unit_gets_no_seconds_hint() -> None:
    """Only a field of seconds reads "2m" as a time."""
    assert "seconds" not in _error(SPEC.format(objective="2m"))
