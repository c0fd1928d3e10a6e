"""W3C Trace Context: the one ``traceparent`` parser the exporter and the logging share."""

from __future__ import annotations

import re

_TRACEPARENT_RE = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
#: Longest header value worth matching; anything longer is not a traceparent.
_MAX_LEN = 128


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """Return ``(trace_id, span_id)`` of a valid ``traceparent`` header value, else None.

    All-zero ids are invalid by the specification and rejected, as are malformed values.
    """
    if not value or len(value) > _MAX_LEN:
        return None
    match = _TRACEPARENT_RE.match(value.strip().lower())
    if match is None:
        return None
    trace_id, span_id = match.group(1), match.group(2)
    if not trace_id.strip("0") or not span_id.strip("0"):
        return None
    return trace_id, span_id
