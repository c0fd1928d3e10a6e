"""The naming rules of conventions.py that several areas share."""

from __future__ import annotations

import re

import pytest

from limone_obs import conventions as c


def _selects(threshold: float, le: str) -> bool:
    op, value = c.le_match(threshold)
    return re.fullmatch(value, le) is not None if op == "=~" else value == le


@pytest.mark.parametrize(
    ("threshold", "selected", "not_selected"),
    [
        (1.0, ["1.0", "1"], ["10", "1.05", "0.1"]),
        (2, ["2.0", "2"], ["2.5", "20"]),
        (0.6, ["0.6"], ["0.60", "6", "0.65"]),
    ],
)
def test_le_matcher_selects_both_spellings_of_one_bound(
    threshold: float, selected: list[str], not_selected: list[str]
) -> None:
    """A whole bound matches prometheus-client's "1.0" and Prometheus 3's "1", nothing else."""
    assert [True] * len(selected) == [_selects(threshold, le) for le in selected]
    assert [False] * len(not_selected) == [_selects(threshold, le) for le in not_selected]


def test_le_matcher_text_is_the_one_the_rules_use() -> None:
    """The PromQL text escapes the regex once more for the string literal."""
    assert ('le=~"1(\\\\.0)?"', 'le="0.6"') == (c.le_matcher(1.0), c.le_matcher(0.6))
    assert c.LE_ONE_SECOND_MATCHER == c.le_matcher(1)
