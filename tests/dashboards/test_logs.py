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
