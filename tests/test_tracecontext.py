"""The shared W3C traceparent parser."""

from __future__ import annotations

import pytest

from limone_obs._tracecontext import parse_traceparent

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    "value",
    [
        f"00-{TRACE}-{SPAN}-01",
        f" 00-{TRACE}-{SPAN}-00\t",
        # A later version: its first four fields, then nothing or its own after a "-".
        f"01-{TRACE}-{SPAN}-01",
        f"cc-{TRACE}-{SPAN}-01-what-comes-next",
    ],
)
def test_valid_header_gives_trace_and_span(value: str) -> None:
    """A well-formed header yields its ids (surrounding white space ignored)."""
    assert parse_traceparent(value) == (TRACE, SPAN)


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
        # W3C Trace Context (two trials): lower-case hex only, version ff invalid,
        # version 00 exactly its four fields, a later one's next field after a "-".
        f"00-{TRACE.upper()}-{SPAN}-01",
        f"00-{TRACE}-{SPAN.upper()}-01",
        f"0A-{TRACE}-{SPAN}-01",
        f"ff-{TRACE}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-01-extra",
        f"00-{TRACE}-{SPAN}-01x",
        f"01-{TRACE}-{SPAN}-01x",
        f"00-{TRACE}-{SPAN}-1",
    ],
)
def test_invalid_headers_are_rejected(value: str | None) -> None:
    """Malformed, all-zero or oversized values give None."""
    assert parse_traceparent(value) is None
