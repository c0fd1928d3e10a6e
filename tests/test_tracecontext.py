"""The shared W3C traceparent parser."""

from __future__ import annotations

import pytest

from limone_obs._tracecontext import parse_traceparent

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_valid_header_gives_trace_and_span() -> None:
    """A well-formed header yields its ids, lower-cased and stripped."""
    assert parse_traceparent(f" 00-{TRACE.upper()}-{SPAN}-01 ") == (TRACE, SPAN)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"00-{'0' * 32}-{SPAN}-01",
        f"00-{TRACE}-{'0' * 16}-01",
        f"00-{TRACE[:-1]}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-01" + "x" * 200,
    ],
)
def test_invalid_headers_are_rejected(value: str | None) -> None:
    """Malformed, all-zero or oversized values give None."""
    assert parse_traceparent(value) is None
