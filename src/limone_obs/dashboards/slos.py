"""SLOs and error budgets: one row per SLO of ``alerts/slo.yaml``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from grafanalib.core import Dashboard

from limone_obs import conventions as c
from limone_obs.alerts import model
from limone_obs.dashboards import _grafana as gf
from limone_obs.dashboards import common
from limone_obs.dashboards._grafana import Look, Query
from limone_obs.dashboards.queries import (
    Queries,
    known,
    le_matcher,
    matchers,
    slo_matchers,
    sum_rate,
)
from limone_obs.dashboards.slo_inputs import Series, ServiceView, SloView
from limone_obs.errors import DashboardError


def build(queries: Queries, service: ServiceView) -> Dashboard:
    """The SLO dashboard of ``service`` (uid ``dashboard_uid(service, "slos")``)."""
    grid = gf.Grid()
    for slo in service.slos:
        _slo_row(grid, service, slo)
    return common.board(
        service,
        common.SLOS,
        "SLOs and error budgets",
        f"Every SLO of {service.service}: objective, SLI, budget, burn rates and alerts. "
        "The instance picker narrows the Good and bad events and Up panels only: the SLI, "
        "budget and burn panels read the recording rules, which cover the whole service.",
        grid,
        variables=common.variables(queries, service=service, spec_job_only=True),
        annotations=common.timeline(queries, service),
    )


def title(service: str) -> str:
    """The service as dashboard titles name it (``LimoneIDE`` for the default service)."""
    return c.DASHBOARD_FOLDER_TITLE if service == c.DEFAULT_NAMESPACE else service


def _slo_row(grid: gf.Grid, service: ServiceView, slo: SloView) -> None:
    """The SLO's row: its title, then each panel its kind lays out (:data:`PANELS`)."""
    objective = f": {slo.objective:.10g} %" if slo.objective is not None else ""
    grid.row(f"SLO {slo.name}{objective}")
    for panel in slo.panels:
        grid.add(_builder(slo, panel.name)(service, slo), panel.width, panel.height)


def _builder(slo: SloView, name: str) -> PanelBuilder:
    """The builder of the panel called ``name``; DashboardError naming the SLO, its kind
    and the panel when the dashboards do not know it or the SLO lacks what it draws."""
    if name not in PANELS:
        raise DashboardError(
            f"SLO {slo.name!r} (kind {slo.kind!r}) lays out an unknown dashboard panel "
            f"{name!r}; known panels: {', '.join(sorted(PANELS))}"
        )
    builder, needs = PANELS[name]
    if not _HAS[needs](slo):
        raise DashboardError(
            f"SLO {slo.name!r} (kind {slo.kind!r}) lays out the dashboard panel {name!r}, "
            f"which needs {needs}; the SLO has none: remove the panel from its kind's row"
        )
    return builder


def _objective_text(service: ServiceView, slo: SloView) -> str:
    if slo.objective is None:
        return ""
    over = f" over {service.period}" if slo.tiers else ""
    return f"Objective **{slo.objective:.10g} %**{over}."


def _definition(service: ServiceView, slo: SloView) -> object:
    tiers = "\n".join(
        f"| {t.severity} | {t.factor:g}x | {t.long_window} and {t.short_window} |"
        for t in slo.tiers
    )
    table = f"\n\n| alert | burn rate | windows |\n|---|---|---|\n{tiers}" if tiers else ""
    content = (
        f"**{slo.name}** ({slo.kind}): {slo.description}\n\n"
        f"{_objective_text(service, slo)}{table}\n\n[Runbook]({slo.runbook_url})"
    )
    return gf.text("Definition", content, f"What the {slo.name} SLO counts, its alert tiers.")


def _objective_sli(service: ServiceView, slo: SloView) -> object:
    objective = f"{c.RULE_OBJECTIVE}{slo_matchers(service.service, slo.name)}"
    sli = Query(common.period_availability(service, slo), f"SLI {service.period}")
    window = c.SLI_WINDOWS[0]
    now = Query(
        known(f"1 - {c.sli_error_ratio_rule(window)}{slo_matchers(service.service, slo.name)}"),
        f"SLI {window}",
    )
    # The objective is a reference, not a reading: it would sit in its own orange band.
    neutral = {
        "matcher": {"id": "byName", "options": "objective"},
        "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": "text"}}],
    }
    both = Look(
        f"The objective, the SLI over the last {service.period} (request-weighted) and "
        f"over the last {window}; an SLI turns red below the objective.",
        "percentunit",
        gf.lower_is_worse(slo.target, slo.target + slo.budget / 2),
        extra={"fieldConfig": {"overrides": [neutral]}},
    )
    return gf.stat("Objective and SLI", [Query(objective, "objective"), sli, now], both)


def _budget_left(service: ServiceView, slo: SloView) -> object:
    left = Look(
        f"Share of the {service.period} error budget ({slo.budget:.2%} of events) not "
        "yet spent; below 0 the SLO is missed.",
        "percentunit",
        gf.lower_is_worse(0.0, 0.25),
    )
    return gf.stat("Budget left", [Query(common.budget_remaining(service, slo))], left)


def _burn_rates(service: ServiceView, slo: SloView) -> object:
    return gf.stat(
        "Burn rate by window",
        [Query(common.burn_rate(service, slo, w), w) for w in slo.windows],
        Look(
            "Error-budget burn rate over each alert window (1 = spending exactly the "
            "budget over the period); each window turns red at the factor of the tier "
            "that reads it (a page tier), orange at a ticket tier's.",
            "x",
            common.burn_steps(slo),
            extra={"fieldConfig": {"overrides": window_overrides(slo)}},
        ),
    )


def window_steps(slo: SloView, window: str) -> gf.Steps:
    """Green below 1x, then the factor of each tier with ``window`` as its long or short
    window (red for a page, orange for a ticket)."""
    out: list[tuple[str, float | None]] = [("green", None), ("yellow", 1.0)]
    tiers = [t for t in slo.tiers if window in (t.long_window, t.short_window)]
    for tier in sorted(tiers, key=lambda t: t.factor):
        out.append(("red" if tier.severity == c.SEVERITY_PAGE else "orange", tier.factor))
    return tuple(out)


def window_overrides(slo: SloView) -> list[dict[str, object]]:
    """Per-window thresholds (field overrides by the series' name, the window)."""
    return [
        {
            "matcher": {"id": "byName", "options": window},
            "properties": [
                {
                    "id": "thresholds",
                    "value": {"mode": "absolute", "steps": gf.steps(*window_steps(slo, window))},
                }
            ],
        }
        for window in slo.windows
    ]


def _sli_series(service: ServiceView, slo: SloView) -> object:
    """The SLI over 5m, 1h and 6h, the objective drawn. A budget SLO records its SLI over
    every window of :data:`~limone_obs.conventions.SLI_WINDOWS`, whatever its tiers: an
    SLO with ticket tiers only (1d/2h, 3d/6h) plotted the 6h SLI alone, which hid an
    hour-long incident."""
    scope = slo_matchers(service.service, slo.name)
    windows = [w for w in ("5m", "1h", "6h") if w in c.SLI_WINDOWS]
    queries = [Query(known(f"1 - {c.sli_error_ratio_rule(w)}{scope}"), f"SLI {w}") for w in windows]
    look = Look(
        f"Share of good events over the last {', '.join(windows)} (recorded rules; the "
        f"whole service: the rules aggregate every job instance). Dashed: the objective "
        f"{slo.objective:.10g} %.",
        "percentunit",
        gf.lower_is_worse(slo.target, slo.target),
    )
    return gf.timeseries("SLI over time", queries, look, lines=True)


def _burn_series(service: ServiceView, slo: SloView) -> object:
    """Each window's burn rate over time, each tier's factor drawn (Sloth's detail view)."""
    queries = [Query(common.burn_rate(service, slo, w), w) for w in slo.windows]
    factors = ", ".join(
        f"{t.severity} x{t.factor:g} ({t.long_window}/{t.short_window})" for t in slo.tiers
    )
    look = Look(
        f"Burn rate over each alert window; a tier fires when both its windows stay above "
        f"its factor (dashed lines: {factors}).",
        "x",
        common.burn_steps(slo),
        extra={
            "fieldConfig": {
                "defaults": {"custom": {"scaleDistribution": {"type": "log", "log": 10}}}
            }
        },
    )
    return gf.timeseries("Burn rate over time", queries, look, lines=True)


def _progress(service: ServiceView, slo: SloView) -> object:
    """Share of events within the committed threshold and within each next stage (1h)."""
    scope = slo_matchers(service.service, slo.name)[1:-1]
    window = c.STAGE_WINDOWS[-1]
    committed = Query(
        known(f"1 - {c.sli_error_ratio_rule(window)}{{{scope}}}"),
        f"within {slo.threshold_seconds:g} s (committed)",
    )
    stages = [
        Query(
            known(f'{c.stage_sli_rule(window)}{{{scope},{c.LABEL_STAGE}="{stage:g}"}}'),
            f"within {stage:g} s (next)",
        )
        for stage in slo.stages
    ]
    # What the committed threshold's alerts do: a spec may make every tier a ticket.
    severities = {t.severity for t in slo.tiers}
    alerts = (
        "it pages" if c.SEVERITY_PAGE in severities
        else "it opens tickets" if severities else "no burn alert"
    )  # fmt: skip
    look = Look(
        f"Progress on the roadmap: the share of events over the last {window} within the "
        f"committed threshold ({alerts}) and within each next stage (recorded, never "
        f"alerting). Dashed: the {slo.objective:.10g} % objective each step must reach.",
        "percentunit",
        gf.lower_is_worse(slo.target, slo.target),
    )
    return gf.timeseries("Progress toward the next stages", [committed, *stages], look, lines=True)


def _current_sli(service: ServiceView, slo: SloView) -> object:
    limit = slo.budget
    window = slo.window or c.SLI_WINDOWS[0]
    expr = known(f"{c.sli_error_ratio_rule(window)}{slo_matchers(service.service, slo.name)}")
    return gf.stat(
        "Bad event ratio now",
        [Query(expr)],
        Look(
            f"Share of bad events over the last {window} (the recorded rule its alert "
            f"reads); the SLO allows {limit * 100:g} %.",
            "percentunit",
            gf.higher_is_worse(limit / 2, limit),
        ),
    )


def _up(service: ServiceView, slo: SloView) -> object:
    del service, slo  # every target of $job/$instance, whatever the SLO
    expr = f"{c.SERIES_UP}{matchers()}"
    return gf.stat(
        "Scrape target up",
        [Query(expr, "{{instance}}")],
        Look(
            "1 when Prometheus scraped the instance last time, 0 when it failed.",
            "none",
            (("red", None), ("green", 1.0)),
            extra={"fieldConfig": {"defaults": {"mappings": _up_mappings()}}},
        ),
        reduce="last",  # a vanished target must not stay green on its last value
    )


def _up_mappings() -> list[dict[str, object]]:
    texts = {"0": {"text": "down", "color": "red"}, "1": {"text": "up", "color": "green"}}
    return [{"type": "value", "options": texts}]


def _firing(service: ServiceView, slo: SloView) -> object:
    scope = slo_matchers(service.service, slo.name)[1:-1]
    expr = (
        f'sum by (alertname, {c.LABEL_SEVERITY}) ({c.SERIES_ALERTS}{{alertstate="firing", '
        f"{scope}}})"
    )
    return gf.table(
        "Firing alerts",
        [Query(expr, instant=True, table=True)],
        Look(
            f"Alerts of the {slo.name} SLO firing now (empty when all is well).",
            "short",
            higher_is_worse_count(),
            extra={"transformations": [_hide_time()]},
        ),
    )


def higher_is_worse_count() -> gf.Steps:
    """Any firing alert is red."""
    return (("green", None), ("red", 1.0))


def _hide_time() -> dict[str, object]:
    return {"id": "organize", "options": {"excludeByName": {"Time": True}}}


def _burndown(service: ServiceView, slo: SloView) -> object:
    look = Look(
        f"Error budget left over the last {service.period}: the line falls as bad events "
        "spend the budget; at 0 the SLO is missed.",
        "percentunit",
        gf.lower_is_worse(0.0, 0.25),
        extra={"timeFrom": service.period},
    )
    query = Query(common.budget_remaining(service, slo), "budget left")
    return gf.timeseries("Budget burndown", [query], look, lines=True)


def _events(service: ServiceView, slo: SloView) -> object:
    del service
    good, bad = good_bad(slo)
    return gf.timeseries(
        "Good and bad events",
        [Query(good, "good"), Query(bad, "bad")],
        Look(
            f"Events per second counted by the {slo.name} SLI, from the spec's series, of "
            "the instances picked (the SLI, budget and burn panels are the whole service's).",
            "ops",
        ),
        stacked=True,
    )


#: Draws one panel of an SLO row from the service and the SLO.
PanelBuilder = Callable[[ServiceView, SloView], object]

#: What a panel needs from its SLO, by the words error messages use.
_HAS: Final[Mapping[str, Callable[[SloView], bool]]] = MappingProxyType(
    {
        "nothing": lambda _: True,
        "an objective": lambda slo: slo.objective is not None,
        "burn tiers": lambda slo: bool(slo.tiers),
        "stages": lambda slo: bool(slo.stages) and slo.threshold_seconds is not None,
    }
)

#: The panels an SLO kind may lay out in its row (``Sli.dashboard_row``), by name: the
#: builder and what it needs from the SLO (a key of ``_HAS``).
PANELS: Final[Mapping[str, tuple[PanelBuilder, str]]] = MappingProxyType(
    {
        model.PanelName.DEFINITION: (_definition, "nothing"),
        model.PanelName.OBJECTIVE_SLI: (_objective_sli, "burn tiers"),
        model.PanelName.BUDGET_LEFT: (_budget_left, "burn tiers"),
        model.PanelName.BURN_RATES: (_burn_rates, "burn tiers"),
        model.PanelName.CURRENT_SLI: (_current_sli, "an objective"),
        model.PanelName.FIRING: (_firing, "nothing"),
        model.PanelName.SLI_SERIES: (_sli_series, "burn tiers"),
        model.PanelName.BURN_SERIES: (_burn_series, "burn tiers"),
        model.PanelName.PROGRESS: (_progress, "stages"),
        model.PanelName.BURNDOWN: (_burndown, "burn tiers"),
        model.PanelName.EVENTS: (_events, "nothing"),  # good_bad names missing series
        model.PanelName.UP: (_up, "nothing"),
    }
)


def _events_of(series: Series, *extra: str) -> str:
    return sum_rate(series.metric, *series.matchers, *extra)


def good_bad(slo: SloView) -> tuple[str, str]:
    """PromQL of the good and the bad events per second counted by ``slo``'s SLI.

    Bad events of ``ratio``/``threshold`` SLOs default to 0 when no error series exists
    yet (``or vector(0)``), as in the recording rules; so do the good events of a latency
    SLO whose ``good`` narrows its histogram (every AI call failed: no good series).
    """
    if slo.histogram is not None:
        # Good: fast AND in the good part (e.g. outcome="ok"); bad: every other event.
        le = le_matcher(slo.threshold_seconds or 1.0)
        good = _events_of((slo.good or slo.histogram).with_suffix("_bucket"), le)
        if slo.good is not None and slo.good != slo.histogram:
            good = f"({good} or vector(0))"
        return good, f"{_events_of(slo.histogram.with_suffix('_count'))}\n- {good}"
    if slo.errors is None or slo.total is None:
        raise DashboardError(f"SLO {slo.name!r} ({slo.kind}) counts no events to draw")
    bad = f"({_events_of(slo.errors)} or vector(0))"
    return f"{_events_of(slo.total)}\n- {bad}", bad
