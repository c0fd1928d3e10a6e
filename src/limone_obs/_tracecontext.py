"""W3C Trace Context: the one ``traceparent`` parser the exporter and the logging share."""

from __future__ import annotations

import re

_TRACEPARENT_RE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
#: Longest header value worth matching; anything longer is not a traceparent.
_MAX_LEN = 128
#: The length of a version 00 value, and of the part a later version starts with.
_LENGTH = 55


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """Return ``(trace_id, span_id)`` of a valid ``traceparent`` header value, else None.

    As W3C Trace Context (level 1) says: lower-case hex only, version ``ff`` and all-zero
    ids invalid; version ``00`` exactly its four fields; a later version parsed by its
    first four, which must be followed by nothing or a ``-`` (the fields it adds).
    Surrounding white space is ignored, as HTTP's.
    """
    if not value or len(value) > _MAX_LEN:
        return None
    value = value.strip(" \t")
    match = _TRACEPARENT_RE.match(value)
    if match is None:
        return None
    version, trace_id, span_id = match.groups()
    if version == "ff" or not trace_id.strip("0") or not span_id.strip("0"):
        return None
    if len(value) != _LENGTH and (version == "00" or value[_LENGTH] != "-"):
        return None
    return trace_id, span_id
