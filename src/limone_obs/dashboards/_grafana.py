"""Thin builders over grafanalib: panels with units, descriptions, thresholds and layout.

Every panel the dashboards draw goes through one of these functions, so each gets a
datasource reference as a ``{type, uid}`` object, a unit, a description and threshold
steps. Whatever grafanalib 0.7.1 writes in an outdated shape is corrected afterwards,
in :mod:`limone_obs.dashboards._fixups`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import attr
from grafanalib import core as g

from limone_obs import conventions as c

GRID_WIDTH = 24
PROMETHEUS: dict[str, str] = {
    "type": c.DATASOURCE_TYPE_PROMETHEUS,
    "uid": f"${{{c.VAR_DATASOURCE}}}",
}
LOKI: dict[str, str] = {"type": c.DATASOURCE_TYPE_LOKI, "uid": f"${{{c.VAR_LOKI}}}"}

#: Threshold steps as (colour, lower bound); the first bound is None (from -inf).
Steps = Sequence[tuple[str, float | None]]
NEUTRAL: Steps = (("green", None),)
#: Decimals of every ratio shown in percent: 99.896 % and 99.904 % must not both read 99.9 %.
PERCENT_DECIMALS = 3


def steps(*bounds: tuple[str, float | None]) -> list[dict[str, Any]]:
    """Grafana threshold steps ``[{"color", "value"}]`` (grafanalib's Threshold is legacy)."""
    return [{"color": colour, "value": value} for colour, value in bounds]


def higher_is_worse(warn: float, bad: float) -> Steps:
    """Green below ``warn``, orange from ``warn``, red from ``bad``; no orange band (and
    no step of it, which Grafana would list) when the two are equal."""
    if warn == bad:
        return (("green", None), ("red", bad))
    return (("green", None), ("orange", warn), ("red", bad))


def lower_is_worse(bad: float, ok: float) -> Steps:
    """Red below ``bad``, orange below ``ok``, green from ``ok``; no orange band (and no
    step of it) when the two are equal."""
    if bad == ok:
        return (("red", None), ("green", ok))
    return (("red", None), ("orange", bad), ("green", ok))


@dataclass(frozen=True)
class Query:
    """One panel query: PromQL (or LogQL) with its legend; ``instant`` for tables/stats."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False
    heatmap: bool = False


def _targets(queries: Sequence[Query], datasource: dict[str, str]) -> list[g.Target]:
    out = []
    for index, query in enumerate(queries):
        fmt = "table" if query.table else "heatmap" if query.heatmap else "time_series"
        out.append(
            g.Target(
                expr=query.expr,
                legendFormat=query.legend,
                refId=chr(ord("A") + index),
                instant=query.instant,
                format=fmt,
                datasource=datasource,
            )
        )
    return out


@dataclass(frozen=True)
class Look:
    """What every panel must state: what it shows, its unit and its thresholds."""

    description: str
    unit: str
    thresholds: Steps = NEUTRAL
    bounds: tuple[float | None, float | None] = (None, None)
    extra: dict[str, Any] = field(default_factory=dict)


def _common(title: str, queries: Sequence[Query], look: Look, ds: dict[str, str]) -> Any:
    extra: dict[str, Any] = {"fieldConfig": {"defaults": {}}}
    # grafanalib validates min/max as int; ratios need 0.99 etc., so they go in extraJson.
    low, high = look.bounds
    if low is not None:
        extra["fieldConfig"]["defaults"]["min"] = low
    if high is not None:
        extra["fieldConfig"]["defaults"]["max"] = high
    if look.unit == "percentunit":
        extra["fieldConfig"]["defaults"]["decimals"] = PERCENT_DECIMALS
    _merge(extra, look.extra)
    return {
        "title": title,
        "description": look.description,
        "dataSource": ds,
        "targets": _targets(queries, ds),
        "thresholds": steps(*look.thresholds),
        "extraJson": extra,
    }


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def timeseries(
    title: str, queries: Sequence[Query], look: Look, *, stacked: bool = False, lines: bool = False
) -> g.TimeSeries:
    """A time series panel; ``lines`` draws the thresholds as dashed lines (1 s, 1 %...)."""
    return g.TimeSeries(
        **_common(title, queries, look, PROMETHEUS),
        unit=look.unit,
        fillOpacity=30 if stacked else 10,
        stacking={"mode": "normal", "group": "A"} if stacked else {"mode": "none"},
        thresholdsStyleMode="dashed" if lines else "off",
        tooltipMode="multi",
        tooltipSort="desc",
        legendDisplayMode="table" if len(queries) > 1 else "list",
        legendCalcs=["mean", "max", "lastNotNull"] if len(queries) > 1 else [],
    )


def stat(
    title: str, queries: Sequence[Query], look: Look, *, reduce: str = "lastNotNull"
) -> g.Stat:
    """A stat panel showing the last value, coloured by the thresholds.

    ``reduce="last"`` shows "no value" once a series ends instead of its last value (a
    vanished scrape target must not stay green).
    """
    return g.Stat(
        **_common(title, queries, look, PROMETHEUS),
        format=look.unit,
        reduceCalc=reduce,
        colorMode="value",
        graphMode="area",
    )


def table(title: str, queries: Sequence[Query], look: Look) -> g.Table:
    """A table of instant queries, one column per query, joined on their labels."""
    return g.Table(
        **_common(title, queries, look, PROMETHEUS),
        unit=look.unit,
        filterable=True,
        displayMode="color-text",
    )


#: Colours of HTTP status (classes) on stacked panels: 5xx red whatever the palette says.
STATUS_COLOURS = (("2", "green"), ("3", "blue"), ("4", "orange"), ("5", "red"))


def status_colours() -> list[dict[str, Any]]:
    """Field overrides colouring series named ``2..``/``2xx`` green ... ``5..`` red."""
    return [
        {
            "matcher": {"id": "byRegexp", "options": f"/^{digit}/"},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": colour}}],
        }
        for digit, colour in STATUS_COLOURS
    ]


def override(field: str, prop: str, value: object) -> dict[str, Any]:
    """A field override setting ``prop`` to ``value`` on the field named ``field``."""
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [{"id": prop, "value": value}],
    }


def column(field: str, title: str, unit: str, **more: object) -> dict[str, Any]:
    """Override naming table column ``field`` (``Value #A``) ``title``, in ``unit``.

    The name is set by the override itself (``displayName``), not by a rename
    transformation, so the matcher still sees the query's field name. Percentages get
    :data:`PERCENT_DECIMALS`; ``more`` adds properties (``mappings``...).
    """
    props: dict[str, object] = {"displayName": title, "unit": unit}
    if unit == "percentunit":
        props["decimals"] = PERCENT_DECIMALS
    props.update(more)
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [{"id": key, "value": value} for key, value in props.items()],
    }


def heatmap(title: str, query: Query, look: Look) -> g.Heatmap:
    """A heatmap of histogram buckets: y axis in ``look.unit``, cells in requests/s.

    grafanalib writes the pre-9.1 heatmap; ``_fixups`` rebuilds its options around the
    y-axis unit given here.
    """
    cells = {
        "fieldConfig": {"defaults": {"unit": "reqps"}},
        "options": {"yAxis": {"unit": look.unit}},
    }
    look = Look(look.description, look.unit, look.thresholds, look.bounds, {**look.extra, **cells})
    return g.Heatmap(**_common(title, [query], look, PROMETHEUS), dataFormat="tsbuckets")


def logs(title: str, query: Query, description: str) -> g.Logs:
    """A Loki logs panel, newest first, with log details."""
    look = Look(description=description, unit="none")
    return g.Logs(
        **_common(title, [query], look, LOKI),
        showTime=True,
        wrapLogMessages=True,
        enableLogDetails=True,
        prettifyLogMessage=False,
    )


def loki_timeseries(title: str, queries: Sequence[Query], look: Look) -> g.TimeSeries:
    """A stacked time series of LogQL metric queries (e.g. lines per level)."""
    panel = timeseries(title, [], look, stacked=True)
    return attr.evolve(panel, dataSource=LOKI, targets=_targets(queries, LOKI))


def text(title: str, content: str, description: str) -> g.Text:
    """A markdown text panel (SLO definitions, runbook links)."""
    return g.Text(title=title, description=description, content=content, mode="markdown")


class Grid:
    """Places panels left to right in 24 columns, wrapping, with rows as section titles."""

    def __init__(self) -> None:
        self.panels: list[Any] = []
        self._x = 0
        self._y = 0
        self._line_height = 0

    def _newline(self) -> None:
        self._y += self._line_height
        self._x = 0
        self._line_height = 0

    def row(self, title: str, *, repeat: str | None = None) -> None:
        """Start a new section titled ``title`` on its own line.

        With ``repeat`` (a multi-value variable's name), Grafana draws the section once per
        selected value of ``$repeat``, each copy's panels seeing that one value.
        """
        self._newline()
        pos = g.GridPos(h=1, w=GRID_WIDTH, x=0, y=self._y)
        row = g.RowPanel(title=title, gridPos=pos, repeat=g.Repeat(variable=repeat))
        self.panels.append(row)
        self._y += 1

    def add(self, panel: Any, width: int, height: int) -> None:
        """Place ``panel`` at the next free spot that is ``width`` columns wide."""
        if self._x + width > GRID_WIDTH:
            self._newline()
        pos = g.GridPos(h=height, w=width, x=self._x, y=self._y)
        self.panels.append(attr.evolve(panel, gridPos=pos))
        self._x += width
        self._line_height = max(self._line_height, height)

    def add_all(self, cells: Sequence[tuple[Any, int, int]]) -> None:
        """Place each ``(panel, width, height)`` in turn."""
        for panel, width, height in cells:
            self.add(panel, width, height)

    def numbered(self) -> list[Any]:
        """The panels with ids 1, 2, ... in layout order (stable while the layout is)."""
        return [attr.evolve(p, id=i) for i, p in enumerate(self.panels, start=1)]


def datasource_variable(name: str, kind: str, label: str, default: str) -> g.Template:
    """A datasource picker (``$datasource`` / ``$loki``), preset to the provisioned uid."""
    return g.Template(
        name=name, query=kind, type="datasource", label=label, hide=0, default=default
    )


def query_variable(
    name: str,
    query: str,
    label: str,
    *,
    datasource: dict[str, str],
    multi: bool = False,
    default: str | None = None,
) -> g.Template:
    """A variable filled from ``label_values(...)``; ``multi`` adds "All" (regex ``.*``);
    ``default`` is selected when the dashboard opens (else Grafana picks the first)."""
    return g.Template(
        name=name,
        query=query,
        label=label,
        default=default,
        dataSource=datasource,
        refresh=2,  # on time range change: new jobs/endpoints appear without a reload
        includeAll=multi,
        multi=multi,
        allValue=".*" if multi else None,
        sort=1,
    )


def textbox_variable(name: str, label: str, default: str = "") -> g.Template:
    """A free-text variable (the request id to search logs for)."""
    return g.Template(name=name, query=default, type="textbox", label=label, default=default)


def dashboard(
    uid: str,
    title: str,
    description: str,
    grid: Grid,
    variables: Sequence[object],
    *,
    tag: str = c.DASHBOARD_TAG,
    link_title: str = c.DASHBOARD_FOLDER_TITLE,
    annotations: Sequence[dict[str, Any]] = (),
) -> g.Dashboard:
    """A dashboard tagged ``tag`` (its service) with links to the others of that tag."""
    link = g.DashboardLink(
        title=link_title,
        type="dashboards",
        tags=[tag],
        asDropdown=True,
        includeVars=True,
        keepTime=True,
    )
    return g.Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=[tag],
        panels=grid.numbered(),
        templating=g.Templating(list=list(variables)),
        annotations=g.Annotations(list=list(annotations)),
        links=[link],
        refresh="1m",
        timezone="browser",
        graphTooltip=1,
        time=g.Time("now-6h", "now"),
    )
