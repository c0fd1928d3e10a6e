"""limone_obs.report.window: the time arguments of ``limone-obs report``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from limone_obs.errors import ConfigError
from limone_obs.report.window import Span, parse_baseline, parse_time, parse_window

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("now-1h", NOW - 3600),
        ("-30m", NOW - 1800),
        ("1799990000", 1_799_990_000.0),
        ("2027-01-15T07:00:00Z", NOW - 3600),
    ],
)
def test_time_forms(text: str, expected: float) -> None:
    """now, now-<duration>, -<duration>, Unix seconds and ISO 8601 (Z) are accepted."""
    assert expected == parse_time(text, "--from", NOW)


def test_iso_without_zone_is_utc() -> None:
    """An ISO time without a zone is UTC, like Prometheus' own times."""
    assert parse_time("2027-01-15T09:20:00", "--to", NOW) == parse_time(
        "2027-01-15T09:20:00+00:00", "--to", NOW
    )


@pytest.mark.parametrize(
    "text",
    ["yesterday", "now-", "-5x", "1h", "x" * 10_000, "inf", "nan", "1e30", "-1", "99999999999999",
     "now-99999999999d"],
)  # fmt: skip
def test_bad_time_names_option_and_forms(text: str) -> None:
    """A bad time is a ConfigError naming the option and the accepted forms, cut short."""
    with pytest.raises(ConfigError, match="--from") as info:
        parse_time(text, "--from", NOW)
    assert len(str(info.value)) < 300


def test_window_must_be_ordered_and_past() -> None:
    """--from after --to, or --to in the future, is refused."""
    with pytest.raises(ConfigError, match="before --to"):
        parse_window("now", "now-1h", NOW)
    with pytest.raises(ConfigError, match="future") as info:
        parse_window("now-1h", str(NOW + 3600), NOW)
    # What "now" is here, and the allowance for clocks that differ (a trial asked).
    clock = datetime.fromtimestamp(NOW, tz=UTC).strftime("%H:%M:%S")
    assert f"it is {clock} UTC now, and up to 60 s ahead is taken" in str(info.value)


def test_relative_baseline_is_the_same_span_earlier() -> None:
    """--baseline 7d is the window's span seven days earlier."""
    window = Span(NOW - 3600, NOW)
    assert Span(NOW - 3600 - 604800, NOW - 604800) == parse_baseline("7d", window, NOW)
    assert parse_baseline("-7d", window, NOW) == parse_baseline("7d", window, NOW)


def test_absolute_baseline_starts_there() -> None:
    """A time as --baseline is the start of a baseline as long as the window."""
    window = Span(NOW - 600, NOW)
    assert Span(NOW - 7200, NOW - 6600) == parse_baseline(str(NOW - 7200), window, NOW)


def test_baseline_none_and_overlap() -> None:
    """'none' means no baseline; one overlapping the window is refused."""
    window = Span(NOW - 3600, NOW)
    assert parse_baseline("none", window, NOW) is None
    with pytest.raises(ConfigError, match="overlaps"):
        parse_baseline("30m", window, NOW)


def test_a_baseline_of_no_form_names_the_baseline_forms() -> None:
    """``7x`` is neither an offset nor a time: the message gives the offset form and
    ``none`` first (it gave the time forms only)."""
    with pytest.raises(ConfigError) as info:
        parse_baseline("7x", Span(NOW - 3600, NOW), NOW)
    assert str(info.value).startswith("--baseline: '7x' is no baseline: use an offset like 7d")
    assert str(info.value).endswith("or none")
