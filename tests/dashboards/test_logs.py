"""The logs dashboard's LogQL names only what the log schema and the shipper provide.

Stream selectors may use only the Loki labels Alloy sets (``conventions.LOKI_LABELS``);
fields filtered after ``| json`` must be properties of ``logging/log-event.schema.json``;
level values must be levels of its ``level`` enum.
"""

from __future__ import annotations

import json
import re
from typing import Any

from limone_obs import conventions as c
from limone_obs.dashboards.generate import build_from
from limone_obs.dashboards.lint import panels
from tests.support import ROOT

_MATCHER = re.compile(r'(\w+)\s*(?:=~|!~|!=|=)\s*"([^"]*)"')
_SELECTOR = re.compile(r"\{([^{}]*)\}")


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((ROOT / "logging/log-event.schema.json").read_text())
    return schema


def _exprs() -> list[str]:
    board = build_from(ROOT)["logs.json"]
    return [t["expr"] for p in panels(board) for t in p.get("targets", [])]


def _stream_matchers(expr: str) -> list[tuple[str, str]]:
    """(label, value) of the stream selector ``{...}`` of ``expr``."""
    match = _SELECTOR.search(expr)
    return _MATCHER.findall(match.group(1)) if match else []


def _field_filters(expr: str) -> list[str]:
    """Names filtered after the ``| json`` parser of ``expr``."""
    _, parsed, rest = expr.partition("| json")
    return [name for name, _ in _MATCHER.findall(rest)] if parsed else []


def test_stream_selectors_use_only_loki_labels() -> None:
    """Every stream selector label is one Alloy sets (service, env, level)."""
    labels = {label for expr in _exprs() for label, _ in _stream_matchers(expr)}
    assert (True, set()) == (bool(labels), labels - set(c.LOKI_LABELS))


def test_json_field_filters_are_schema_properties() -> None:
    """Every field filtered after ``| json`` is a property of the log event schema."""
    fields = {field for expr in _exprs() for field in _field_filters(expr)}
    properties = set(_schema()["properties"])
    assert (True, set()) == (bool(fields), fields - properties)


def test_level_values_are_schema_levels() -> None:
    """Level regexes name only levels of the schema's enum, and cover error and critical."""
    values = {
        level
        for expr in _exprs()
        for label, value in _stream_matchers(expr)
        if label == c.LOG_LEVEL
        for level in value.split("|")
    }
    levels = set(_schema()["properties"][c.LOG_LEVEL]["enum"])
    assert ({"error", "critical"}, set()) == (values, values - levels)


def _panel_expr(title: str) -> str:
    board = build_from(ROOT)["logs.json"]
    (expr,) = [t["expr"] for p in panels(board) if p.get("title") == title for t in p["targets"]]
    return str(expr)


def test_one_request_uses_structured_metadata_and_needs_an_id() -> None:
    """ "Lines of one request" filters request_id without parsing, and an empty id matches
    nothing (``request_id!=""`` first) instead of every line."""
    expr = _panel_expr("Lines of one request")
    assert (False, True) == ("| json" in expr, f'| {c.LOG_REQUEST_ID}!="" |' in expr)


def test_volume_is_a_rate_whose_scale_does_not_change_with_zoom() -> None:
    """Lines per second (rate), not a count per $__auto step."""
    expr = _panel_expr("Lines per second by level")
    assert (True, False) == (expr.startswith("sum by (level) (rate("), "count_over_time" in expr)


def test_slow_or_5xx_requests_panel_reads_the_access_lines() -> None:
    """Access lines with a 5xx or slower than the latency SLO's committed threshold (2.5 s
    in the shipped spec), to get request ids."""
    expr = _panel_expr("Slow or 5xx requests")
    assert (True, True, True) == (
        f'logger="{c.ACCESS_LOGGER}"' in expr,
        "status_code >= 500" in expr,
        "duration > 2.5" in expr,
    )


def test_streams_filter_env_and_endpoint() -> None:
    """Every panel but "one request" honours $env and $endpoint."""
    board = build_from(ROOT)["logs.json"]
    found = {
        p["title"]: ('env=~"$env"' in t["expr"], 'endpoint=~"$endpoint"' in t["expr"])
        for p in panels(board)
        for t in p.get("targets", [])
        if p["title"] != "Lines of one request"
    }
    assert dict.fromkeys(found, (True, True)) == found
