"""PromQL selector parsing and the sample label sets of the generated tests."""

from __future__ import annotations

import pytest

from limone_obs.alerts import samples
from limone_obs.alerts.selectors import Matcher, parse_selector


def test_round_trip_keeps_escapes() -> None:
    """A regex with an escaped dot renders exactly as written."""
    text = 'x_bucket{le=~"1(\\\\.0)?",job="a"}'
    assert text == parse_selector(text).promql()


def test_matchers_are_unescaped() -> None:
    """The model holds the regex itself: 1(\\.0)? matches both 1 and 1.0."""
    matcher = parse_selector('x{le=~"1(\\\\.0)?"}').matchers[0]
    assert (True, True, False) == (
        matcher.matches("1"),
        matcher.matches("1.0"),
        matcher.matches("10"),
    )


def test_commas_inside_values_do_not_split() -> None:
    """status=~"5..|4,29" is one matcher."""
    assert 2 == len(parse_selector('x{a="1,2", b!~"c"}').matchers)


def test_a_bare_metric_has_no_matchers() -> None:
    """limoneide_requests_total alone is a selector."""
    assert () == parse_selector("limoneide_requests_total").matchers


@pytest.mark.parametrize("text", ["{a='1'}", "x{a=1}", 'x{a~"1"}', 'x{a="1"', "x y"])
def test_invalid_selectors_raise(text: str) -> None:
    """Malformed selectors raise ValueError."""
    with pytest.raises(ValueError, match=r"."):
        parse_selector(text)


def test_with_default_keeps_an_explicit_matcher() -> None:
    """A selector naming job keeps its own job matcher."""
    sel = parse_selector('x{job="other"}').with_default(Matcher("job", "=", "limoneide"))
    assert 'x{job="other"}' == sel.promql()


def test_good_and_bad_sample_labels() -> None:
    """For errors status=~"5..", a bad series gets status 500 and a good one status 200."""
    errors = parse_selector('r{job="a",status=~"5.."}')
    total = parse_selector('r{job="a"}')
    assert ({"job": "a", "status": "500"}, {"job": "a", "status": "200"}) == (
        samples.bad_labels(errors, total),
        samples.good_labels(errors, total),
    )
