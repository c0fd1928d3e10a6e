"""The one place that corrects grafanalib 0.7.1's outdated JSON into current Grafana JSON.

grafanalib's last release (January 2024) writes several shapes Grafana has since
replaced. :func:`modernise` takes ``Dashboard.to_json_data()`` (rendered to plain JSON)
and fixes, in order:

1. ``schemaVersion`` 12 -> :data:`SCHEMA_VERSION` (Grafana 11.6), else Grafana runs its
   old-schema migrations on load; the legacy dashboard keys ``rows``, ``style``,
   ``sharedCrosshair``, ``hideControls``, ``__inputs``, ``gnetId``, ``id``, ``version``
   and the timepicker's ``time_options`` are removed.
2. ``maxDataPoints: 100`` on every panel is removed, so Grafana derives it from the
   panel width instead of drawing coarse graphs.
3. Heatmap: the pre-9.1 keys (``cards``, ``color``, ``dataFormat``, ``xAxis``, ``yAxis``,
   ``yBucket*``...) become the current ``options`` (``calculate: false``, y axis in
   seconds, ``rowsFrame``) with ``format: heatmap`` targets.
4. Stat: ``noValue: "none"`` (printed literally) and ``color: null`` are replaced by
   Grafana's own defaults (``No data``, colour by thresholds).
5. Table: the Grafana 7 keys (``columns``, ``fontSize``, ``styles``, top-level ``color``
   and ``mappings``) go; ``custom.displayMode`` becomes ``custom.cellOptions``.
6. Targets lose the Graphite/legacy keys (``query``, ``target``, ``metric``, ``step``,
   ``intervalFactor``) and say ``range``/``instant`` and ``editorMode: code``.
7. Variables lose keys of other variable types (``tagsQuery``, ``auto_count``...); a
   ``current`` of nulls becomes empty (Grafana picks the first value), "All" for multi.
8. Options added to the panels since grafanalib's release are set explicitly (stat
   ``wideLayout``/``showPercentChange``, table ``frameIndex``/``inspect``, heatmap
   ``showValue``, logs ``showLogContextToggle``, timeseries legend ``showLegend``).
9. ``null`` values are dropped everywhere except threshold steps, where ``null`` means
   "from minus infinity".

Decimal ``min``/``max`` (grafanalib accepts integers only) are set by the builders in
``_grafana`` through grafanalib's own ``extraJson`` escape hatch.
"""

from __future__ import annotations

import json
from typing import Any

from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard

#: Grafana 11.6's dashboard schema version.
SCHEMA_VERSION = 41

_LEGACY_DASHBOARD_KEYS = (
    "rows",
    "style",
    "sharedCrosshair",
    "hideControls",
    "__inputs",
    "gnetId",
    "id",
    "version",
)
_LEGACY_PANEL_KEYS = (
    "maxDataPoints",
    "span",
    "minSpan",
    "height",
    "error",
    "editable",
    "cacheTimeout",
    "hideTimeOverride",
    "transparent",
    "repeatDirection",
    "maxPerRow",
)
_LEGACY_TABLE_KEYS = ("columns", "fontSize", "styles", "color", "mappings")
_LEGACY_HEATMAP_KEYS = (
    "cards",
    "color",
    "dataFormat",
    "heatmap",
    "hideZeroBuckets",
    "highlightCards",
    "legend",
    "reverseYBuckets",
    "tooltip",
    "xAxis",
    "xBucketNumber",
    "xBucketSize",
    "yAxis",
    "yBucketBound",
    "yBucketNumber",
    "yBucketSize",
)
_LEGACY_TARGET_KEYS = ("query", "target", "metric", "step", "intervalFactor", "hide", "interval")
_OTHER_VARIABLE_KEYS = ("useTags", "tagsQuery", "tagValuesQuery", "auto", "auto_min", "auto_count")
_BUILTIN_ANNOTATION = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}


def to_plain(dashboard: Dashboard) -> dict[str, Any]:
    """grafanalib's JSON of ``dashboard`` as plain dicts and lists."""
    plain: dict[str, Any] = json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))
    return plain


def modernise(dashboard: Dashboard) -> dict[str, Any]:
    """Return ``dashboard`` as current Grafana JSON (see the module docstring)."""
    data = to_plain(dashboard)
    for key in _LEGACY_DASHBOARD_KEYS:
        data.pop(key, None)
    data["schemaVersion"] = SCHEMA_VERSION
    data["timepicker"] = {"refresh_intervals": data["timepicker"]["refresh_intervals"]}
    data["annotations"] = {"list": [_BUILTIN_ANNOTATION, *data["annotations"]["list"]]}
    data["panels"] = [_panel(p) for p in data["panels"]]
    data["templating"]["list"] = [_variable(v) for v in data["templating"]["list"]]
    cleaned: dict[str, Any] = _drop_nulls(data)
    return cleaned


def _panel(panel: dict[str, Any]) -> dict[str, Any]:
    for key in _LEGACY_PANEL_KEYS:
        panel.pop(key, None)
    if not panel.get("repeat"):
        panel.pop("repeat", None)
    kind = panel["type"]
    if kind == "row":
        return _row(panel)
    fixer = _FIXERS.get(kind)
    if fixer is not None:
        fixer(panel)
    panel["targets"] = [_target(t) for t in panel.get("targets", [])]
    return panel


def _row(panel: dict[str, Any]) -> dict[str, Any]:
    keep = ("collapsed", "gridPos", "id", "panels", "repeat", "title", "type")
    row = {key: panel[key] for key in keep if key in panel}
    row["panels"] = [_panel(p) for p in row.get("panels", [])]
    return row


def _heatmap(panel: dict[str, Any]) -> None:
    for key in _LEGACY_HEATMAP_KEYS:
        panel.pop(key, None)
    given = panel.get("options")
    unit = given.get("yAxis", {}).get("unit", "s") if isinstance(given, dict) else "s"
    panel["options"] = {
        "calculate": False,  # the histogram is already bucketed by Prometheus
        "cellGap": 1,
        "color": {
            "mode": "scheme",
            "scheme": "Oranges",
            "scale": "exponential",
            "exponent": 0.5,
            "fill": "dark-orange",
            "reverse": False,
            "steps": 64,
        },
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
        "filterValues": {"le": 1e-9},
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "showValue": "auto",
        "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
        "yAxis": {"axisPlacement": "left", "reverse": False, "unit": unit},
    }
    panel["fieldConfig"].setdefault("overrides", [])
    panel["fieldConfig"]["defaults"]["custom"] = {
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "scaleDistribution": {"type": "linear"},
    }


def _stat(panel: dict[str, Any]) -> None:
    defaults = panel["fieldConfig"]["defaults"]
    if defaults.get("noValue") == "none":
        del defaults["noValue"]
    if not defaults.get("color"):
        defaults["color"] = {"mode": "thresholds"}
    # Options added since grafanalib's release; Grafana fills them in on save otherwise.
    panel["options"].update(
        {"wideLayout": True, "showPercentChange": False, "percentChangeColorMode": "standard"}
    )


def _table(panel: dict[str, Any]) -> None:
    for key in _LEGACY_TABLE_KEYS:
        panel.pop(key, None)
    custom = panel["fieldConfig"]["defaults"]["custom"]
    custom["cellOptions"] = {"type": custom.pop("displayMode", "auto")}
    custom["inspect"] = False
    panel["options"]["footer"] = {"show": False, "reducer": ["sum"], "fields": []}
    panel["options"]["frameIndex"] = 0


def _timeseries(panel: dict[str, Any]) -> None:
    panel["options"]["legend"]["showLegend"] = True


def _logs(panel: dict[str, Any]) -> None:
    panel["options"]["showLogContextToggle"] = False


def _text(panel: dict[str, Any]) -> None:
    # A text panel queries nothing: no datasource, no field config.
    for key in ("datasource", "fieldConfig", "targets", "transformations", "links"):
        panel.pop(key, None)


_FIXERS = {
    "heatmap": _heatmap,
    "logs": _logs,
    "stat": _stat,
    "table": _table,
    "text": _text,
    "timeseries": _timeseries,
}


def _target(target: dict[str, Any]) -> dict[str, Any]:
    for key in _LEGACY_TARGET_KEYS:
        target.pop(key, None)
    instant = bool(target.get("instant"))
    target["instant"] = instant
    target["range"] = not instant
    if target["datasource"]["type"] == "prometheus":
        target["editorMode"] = "code"
    else:
        target.pop("format", None)
        target["queryType"] = "instant" if instant else "range"
    return target


def _variable(variable: dict[str, Any]) -> dict[str, Any]:
    for key in _OTHER_VARIABLE_KEYS:
        variable.pop(key, None)
    current = variable.get("current") or {}
    current.pop("tags", None)
    if current.get("value") is None:  # grafanalib writes nulls: Grafana picks the first
        variable["current"] = {"text": "", "value": ""}
    if variable.get("includeAll"):
        variable["current"] = {"text": ["All"], "value": ["$__all"]}
    if variable["type"] == "textbox":
        variable["options"] = []
    return variable


def _drop_nulls(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v, k) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        if key == "steps":  # {"value": null} is the base step; keep it
            return value
        return [_drop_nulls(v) for v in value]
    return value
