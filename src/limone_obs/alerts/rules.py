"""Prometheus recording and alerting rules generated from a :class:`ServiceSpec` (pure).

Every function returns plain data (lists and dicts) in the shape of a Prometheus rule file;
:mod:`limone_obs.alerts.render` writes it. Recording rules of a budget SLO (``ratio``,
``latency``) come in two groups, so the page tiers never wait for the long windows:

- ``slo-sli-<slo>`` (the global evaluation interval), from the raw series:
  ``slo:sli_error:ratio_rate<w>{slo_service, slo}`` for every window shorter than
  :data:`LONG_WINDOW` (a missing error series counts as 0, a missing total gives no sample:
  no traffic, no SLI); ``slo:sli_bad_events:rate5m`` and ``slo:sli_events:rate5m`` (bad
  and all events per second over 5m, bad 0 when its series is missing);
  ``slo:objective:ratio``, ``slo:error_budget:ratio``, ``slo:current_burn_rate:ratio``
  (5m ratio / budget);
- ``slo-sli-<slo>-long`` (``interval:`` :data:`LONG_GROUP_INTERVAL`), from the recorded
  5m rates only: ``slo:sli_error:ratio_rate<w>`` for the windows from :data:`LONG_WINDOW`
  on (1d, 3d), ``slo:period_sli_error:ratio``, ``slo:period_burn_rate:ratio``,
  ``slo:period_error_budget_remaining:ratio`` (1 = untouched, 0 = spent, < 0 =
  overspent). Each is ``sum_over_time(bad[w]) / sum_over_time(all[w])``: request-weighted
  (every request counts the same, never an average of short ratios) and reading one
  recorded series per SLO instead of every raw series over 30 days.

A threshold SLO records its one window's ratio; an ``up`` SLO records nothing. Each kind
builds its own groups (:meth:`~limone_obs.alerts.model.Sli.recording_groups`, shared
pieces in :mod:`limone_obs.alerts.kinds._rated`); this module holds what every kind uses.
"""

from __future__ import annotations

from typing import Final

from limone_obs import conventions as c
from limone_obs.alerts.model import BurnTier, Group, Rule, ServiceSpec, Slo
from limone_obs.alerts.selectors import Matcher

__all__ = [
    "LONG_GROUP_INTERVAL",
    "LONG_WINDOW",
    "RATE_WINDOW",
    "Group",
    "Rule",
    "burn_threshold",
    "le_matcher",
    "number",
    "record",
    "recording_groups",
    "slo_labels",
    "slo_recording_groups",
    "slo_selector",
]

#: Windows at least this long are computed from the recorded 5m rates, in the slow group.
LONG_WINDOW: Final = "1d"
#: Evaluation interval of the long-window groups (their SLIs move slowly anyway).
LONG_GROUP_INTERVAL: Final = "1m"
#: The window of the recorded event rates the long windows are summed from.
RATE_WINDOW: Final = "5m"


def number(value: float) -> str:
    """A float as PromQL text, rounded so promtool's exact comparisons hold (0.0144)."""
    return f"{round(value, 10):.10g}"


def le_matcher(threshold: float) -> Matcher:
    """The ``le`` matcher of a bucket boundary, for every notation of it.

    prometheus-client writes ``le="1.0"``; other clients write ``le="1"``, which
    Prometheus 3 normalises to ``"1.0"`` on ingestion (Prometheus 2 keeps it as written):
    a whole-number boundary matches both (the rule is ``conventions.le_match``).
    """
    op, value = c.le_match(threshold)
    return Matcher(c.LABEL_LE, op, value)


def slo_selector(spec: ServiceSpec, slo: Slo) -> str:
    """Matchers selecting one SLO's recorded series: ``{slo="x",slo_service="y"}``."""
    return f'{{{c.LABEL_SLO}="{slo.name}",{c.LABEL_SLO_SERVICE}="{spec.service}"}}'


def slo_labels(spec: ServiceSpec, slo: Slo) -> dict[str, str]:
    """The labels every recorded series of ``slo`` carries."""
    return {c.LABEL_SLO: slo.name, c.LABEL_SLO_SERVICE: spec.service}


def record(name: str, expr: str, labels: dict[str, str]) -> Rule:
    """One recording rule."""
    return {"record": name, "expr": expr, "labels": labels}


def slo_recording_groups(spec: ServiceSpec, slo: Slo) -> list[Group]:
    """The recording groups of ``slo``, as its kind builds them."""
    return slo.sli.recording_groups(spec, slo)


def recording_groups(spec: ServiceSpec) -> list[Group]:
    """Every recording group of the spec, in SLO order."""
    return [group for slo in spec.slos for group in slo_recording_groups(spec, slo)]


def burn_threshold(slo: Slo, tier: BurnTier) -> float:
    """The error ratio above which ``tier`` fires: factor x error budget."""
    return round(tier.factor * slo.error_budget, 12)
