"""``limone-obs dashboards lint``: the mistakes a Grafana dashboard review looks for.

Each rule returns :class:`Finding` objects naming the dashboard, the panel and what to
change. Rules: legacy panel types and heatmap options, old ``schemaVersion``, missing
description / unit / thresholds, datasources given as strings, duplicate or missing
panel ids, overlapping or out-of-grid ``gridPos``, undefined variables, rows repeated over
a variable that is undefined, single-valued or unused by their panels, and, reading each
Prometheus query with a real PromQL parser (:mod:`~limone_obs.dashboards.promql`): syntax
errors, ``rate()`` on a series that is not a counter, exporter series queried without
``$job``, and ranges that are not ``$__rate_interval`` (or ``$__range``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limone_obs import conventions as c
from limone_obs.dashboards import promql
from limone_obs.errors import DashboardError

MIN_SCHEMA_VERSION = 39
LEGACY_TYPES = frozenset(
    {"graph", "singlestat", "table-old", "grafana-piechart-panel", "grafana-worldmap-panel"}
)
LEGACY_HEATMAP_KEYS = ("dataFormat", "cards", "xAxis", "yAxis", "yBucketBound")
#: Panel types that draw numbers and so need a unit and thresholds.
NUMERIC_TYPES = frozenset({"timeseries", "stat", "gauge", "bargauge", "table", "heatmap"})
ALLOWED_RANGES = frozenset({"$__rate_interval", "$__range"})
GRID_WIDTH = 24


@dataclass(frozen=True)
class Finding:
    """One problem: where (dashboard, panel) and what to do."""

    dashboard: str
    panel: str
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"{self.dashboard}: {self.panel}" if self.panel else self.dashboard
        return f"{where}: {self.message} [{self.rule}]"


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including the panels nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def repeated_by(dashboard: Mapping[str, Any]) -> dict[int, str]:
    """``{panel id: variable}`` of every panel in a row Grafana repeats over ``$variable``.

    An open row owns the panels after it up to the next row; a collapsed one, its own
    ``panels``. Each copy of such a panel sees one value of the variable.
    """
    out: dict[int, str] = {}
    repeat: str | None = None
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            repeat = panel.get("repeat") or None
            if repeat is not None and panel.get("collapsed"):
                out.update((inner.get("id"), repeat) for inner in panel.get("panels", []))
                repeat = None  # what follows a collapsed row is not in it
        elif repeat is not None:
            out[panel.get("id")] = repeat
    return out


def panel_label(panel: Mapping[str, Any]) -> str:
    """``panel 3 "Request rate"``, for messages."""
    return f'panel {panel.get("id", "?")} "{panel.get("title", "")}"'


def lint(name: str, dashboard: Mapping[str, Any]) -> list[Finding]:
    """Every finding of every rule on ``dashboard`` (``name`` labels the findings)."""
    found: list[Finding] = []
    for rule in (_dashboard_rules, _id_rules, _grid_rules, _variable_rules, _repeat_rules):
        found.extend(rule(name, dashboard))
    for panel in panels(dashboard):
        found.extend(_panel_rules(name, panel))
        found.extend(_query_rules(name, panel))
    found.extend(_annotation_rules(name, dashboard))
    return found


def _annotation_rules(name: str, dashboard: Mapping[str, Any]) -> Iterator[Finding]:
    """The PromQL rules on every Prometheus annotation query (deploys, alerts)."""
    for annotation in dashboard.get("annotations", {}).get("list", []):
        ds = annotation.get("datasource")
        if isinstance(ds, dict) and ds.get("type") == c.DATASOURCE_TYPE_PROMETHEUS:
            label = f'annotation "{annotation.get("name", "")}"'
            for rule, msg in check_expr(str(annotation.get("expr", ""))):
                yield Finding(name, label, rule, msg)


def lint_file(path: Path) -> list[Finding]:
    """Lint one dashboard JSON file; raise DashboardError if it is not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DashboardError(f"{path}: cannot read a dashboard: {exc}") from None
    if not isinstance(data, dict):
        raise DashboardError(f"{path}: a dashboard is a JSON object, got {type(data).__name__}")
    return lint(str(path), data)


def _dashboard_rules(name: str, dashboard: Mapping[str, Any]) -> Iterator[Finding]:
    version = dashboard.get("schemaVersion")
    if not isinstance(version, int) or version < MIN_SCHEMA_VERSION:
        yield Finding(
            name,
            "",
            "schema-version",
            f"schemaVersion is {version!r}: set "
            f"{MIN_SCHEMA_VERSION} or newer explicitly (grafanalib writes 12)",
        )
    if not dashboard.get("uid"):
        yield Finding(name, "", "missing-uid", "no uid: set a stable uid so links survive")


def _panel_rules(name: str, panel: Mapping[str, Any]) -> Iterator[Finding]:
    kind, label = panel.get("type", ""), panel_label(panel)
    if kind in LEGACY_TYPES:
        yield Finding(
            name,
            label,
            "legacy-panel",
            f"type {kind!r} is a legacy panel: use timeseries, stat, table, heatmap, logs or text",
        )
    if kind == "heatmap" and any(k in panel for k in LEGACY_HEATMAP_KEYS):
        yield Finding(
            name,
            label,
            "legacy-panel",
            "heatmap uses pre-9.1 options (dataFormat, "
            "cards, yAxis): use options.calculate/yAxis/rowsFrame",
        )
    if kind != "row" and not str(panel.get("description", "")).strip():
        yield Finding(name, label, "missing-description", "no description: say what it shows")
    if kind in NUMERIC_TYPES:
        yield from _field_rules(name, label, panel)
    yield from _datasource_rules(name, label, panel)


def _field_rules(name: str, label: str, panel: Mapping[str, Any]) -> Iterator[Finding]:
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    if not defaults.get("unit"):
        yield Finding(
            name,
            label,
            "missing-unit",
            "no fieldConfig.defaults.unit: set one (s, reqps, percentunit, bytes, short...)",
        )
    if not defaults.get("thresholds", {}).get("steps"):
        yield Finding(
            name, label, "missing-thresholds", "no threshold steps: add at least the base colour"
        )


def _datasource_rules(name: str, label: str, panel: Mapping[str, Any]) -> Iterator[Finding]:
    refs = [panel.get("datasource")] + [t.get("datasource") for t in panel.get("targets", [])]
    for ref in refs:
        if isinstance(ref, str):
            yield Finding(
                name,
                label,
                "datasource-string",
                f'datasource {ref!r} is a plain string: use {{"type": ..., "uid": ...}}',
            )


def _id_rules(name: str, dashboard: Mapping[str, Any]) -> Iterator[Finding]:
    seen: dict[int, str] = {}
    for panel in panels(dashboard):
        pid, label = panel.get("id"), panel_label(panel)
        if not isinstance(pid, int):
            yield Finding(name, label, "missing-id", "no integer id: give every panel one")
        elif pid in seen:
            yield Finding(name, label, "duplicate-id", f"id {pid} is also used by {seen[pid]}")
        else:
            seen[pid] = label


def _rect(panel: Mapping[str, Any]) -> tuple[int, int, int, int] | None:
    pos = panel.get("gridPos")
    if not isinstance(pos, dict):
        return None
    try:
        return int(pos["x"]), int(pos["y"]), int(pos["w"]), int(pos["h"])
    except (KeyError, TypeError, ValueError):
        return None


def _grid_rules(name: str, dashboard: Mapping[str, Any]) -> Iterator[Finding]:
    placed: list[tuple[tuple[int, int, int, int], str]] = []
    for panel in dashboard.get("panels", []):  # nested row panels have their own layout
        rect, label = _rect(panel), panel_label(panel)
        if rect is None:
            yield Finding(name, label, "gridpos", "no gridPos {x, y, w, h}: place the panel")
            continue
        x, _, w, h = rect
        if x < 0 or w <= 0 or h <= 0 or x + w > GRID_WIDTH:
            yield Finding(name, label, "gridpos", f"gridPos {rect} leaves the 24-column grid")
        for other, other_label in placed:
            if _overlap(rect, other):
                yield Finding(name, label, "overlapping-gridpos", f"overlaps {other_label}")
        placed.append((rect, label))


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _variable_rules(name: str, dashboard: Mapping[str, Any]) -> Iterator[Finding]:
    variables = dashboard.get("templating", {}).get("list", [])
    defined = {v.get("name") for v in variables}
    places: list[tuple[str, Any]] = [(panel_label(p), p) for p in panels(dashboard)]
    places += [(f'variable "{v.get("name")}"', v) for v in variables]
    for label, value in places:
        used: set[str] = set()
        for text in _strings(value):
            used |= promql.variables(text)
        for var in sorted(used - defined):
            if not var.startswith("__"):  # Grafana's builtins: $__rate_interval, ...
                yield Finding(
                    name,
                    label,
                    "undefined-variable",
                    f"${var} is not defined in templating.list: add the variable or fix the name",
                )


def _repeat_rules(name: str, dashboard: Mapping[str, Any]) -> Iterator[Finding]:
    """A repeated row needs a multi-value variable, and panels that each use it."""
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    for panel in dashboard.get("panels", []):
        var = panel.get("repeat")
        if panel.get("type") != "row" or not var:
            continue
        found = variables.get(var)
        if found is None:
            yield Finding(
                name,
                panel_label(panel),
                "undefined-variable",
                f"the row repeats over ${var}, which is not defined in templating.list: add "
                "the variable or fix the name",
            )
        elif not (found.get("multi") or found.get("includeAll")):
            yield Finding(
                name,
                panel_label(panel),
                "repeat-single-value",
                f"the row repeats over ${var}, which takes one value: make it multi-value "
                "with All, or drop the repeat",
            )
    repeats = repeated_by(dashboard)
    for panel in panels(dashboard):
        pid = panel.get("id")
        var = repeats.get(pid) if isinstance(pid, int) else None
        if var is None:
            continue
        used: set[str] = set()
        for target in prometheus_targets(panel):
            used |= promql.variables(target["expr"])
        if var not in used:
            yield Finding(
                name,
                panel_label(panel),
                "repeat-unused",
                f"the panel sits in a row repeated over ${var} but none of its queries use "
                f"${var}: every copy draws the same lines; filter on ${var} or move the panel",
            )


def prometheus_targets(panel: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The panel's targets that query Prometheus (by target or panel datasource type)."""
    panel_type = (
        (panel.get("datasource") or {}).get("type")
        if isinstance(panel.get("datasource"), dict)
        else None
    )
    out = []
    for target in panel.get("targets", []):
        ds = target.get("datasource")
        kind = ds.get("type") if isinstance(ds, dict) else panel_type
        if kind == c.DATASOURCE_TYPE_PROMETHEUS and target.get("expr"):
            out.append(target)
    return out


def _query_rules(name: str, panel: Mapping[str, Any]) -> Iterator[Finding]:
    for target in prometheus_targets(panel):
        label = f"{panel_label(panel)} query {target.get('refId', '?')}"
        yield from (Finding(name, label, rule, msg) for rule, msg in check_expr(target["expr"]))


def check_expr(expr: str) -> Iterator[tuple[str, str]]:
    """``(rule, message)`` for each problem of one PromQL expression of a dashboard."""
    try:
        reading = promql.read(expr)
    except promql.PromQLSyntaxError as exc:
        yield ("promql-syntax", f"not PromQL: {exc}: fix the query")
        return
    for func, series in reading.rate_arguments:
        if not promql.is_counter(series):
            yield (
                "rate-on-non-counter",
                f"{func}({series}) but {series} is not a counter "
                "(no _total/_count/_sum/_bucket): use the gauge directly or deriv()",
            )
    for window in reading.ranges:
        if window not in ALLOWED_RANGES:
            yield (
                "missing-rate-interval",
                f"range [{window}] is hard-coded: use "
                "[$__rate_interval] so the window follows the scrape interval",
            )
    for sel in reading.selectors:
        if sel.recording_rule or sel.name == c.SERIES_ALERTS:
            continue  # already scoped by slo_service / the alert's labels
        if f"${c.VAR_JOB}" not in (sel.value_of(c.LABEL_JOB) or ""):
            yield (
                "missing-job",
                f"{sel} does not filter "
                'job="$job": other services sharing Prometheus would be mixed in',
            )
