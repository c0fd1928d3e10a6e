"""Kind ``ratio``: bad events over all events from two counters (availability).

Spec fields: ``objective``, ``total``, ``errors`` (selectors on the same or another
counter; errors a subset of total), ``tiers``, ``min_rate``, ``all_failing: {window, for,
severity}`` (or ``"off"``). Alerts: ``<Slo>ErrorBudgetBurn`` per enabled burn tier;
``<Slo>AllFailing`` when events arrive and every one fails over ``window`` for ``for``,
whatever the traffic (the burn alerts stay quiet below ``min_rate``: a total outage of a
quiet hour must still page), inhibited while the SLO's burn page fires; ``<Slo>SliAbsent``
(ticket) when the total series is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from limone_obs import conventions as c
from limone_obs.alerts import _parse, alerting, runbooks, unittests
from limone_obs.alerts._reader import Reader
from limone_obs.alerts.kinds._rated import (
    BudgetSli,
    CounterPair,
    two_instances_scenario,
)
from limone_obs.alerts.model import KIND_RATIO, SEVERITIES, TIER_OFF, Rule, ServiceSpec, Slo
from limone_obs.alerts.selectors import Selector
from limone_obs.alerts.unittests import Traffic

KEYS: Final = ("objective", "errors", "total", "tiers", "min_rate", "all_failing")


@dataclass(frozen=True)
class AllFailing:
    """Every event failing over ``window``, for ``for_``: the low-traffic outage alert."""

    window: str
    for_: str
    severity: str


@dataclass(frozen=True, kw_only=True)
class RatioSli(CounterPair, BudgetSli):
    """``errors`` over ``total`` (both carry the job matcher), with burn tiers."""

    kind = KIND_RATIO
    errors: Selector
    total: Selector
    all_failing: AllFailing | None = None

    def all_failing_alert(self, spec: ServiceSpec, slo: Slo, rule: AllFailing) -> Rule:
        """Events arrive over ``window`` and none is good (bad / all >= 1), for ``for``;
        no minimum rate: this is the alert of the outage below it."""
        name = c.slo_alert_name(slo.name, c.ALERT_SUFFIX_ALL_FAILING)
        expr = f"{self.error_ratio_expr(rule.window)}\n>= 1"
        summary = f"{spec.service} {slo.name}: every request fails"
        description = (
            f"{slo.description} Every event of the last {rule.window} failed, for "
            f"{rule.for_}, at whatever traffic (also below the minimum rate that keeps the "
            "burn-rate alerts quiet): an outage."
        )
        notes = alerting.alert_annotations(slo, name, summary, description)
        labels = alerting.alert_labels(spec, slo, rule.severity)
        return alerting.make_alert(name, expr, rule.for_, labels, notes)

    def alerts(self, spec: ServiceSpec, slo: Slo) -> list[Rule]:
        """One burn alert per tier, AllFailing (unless off), SliAbsent."""
        found = self.burn_alerts(spec, slo)
        if self.all_failing is not None:
            found.append(self.all_failing_alert(spec, slo, self.all_failing))
        return [*found, self.absent_alert(spec, slo)]

    def scenarios(self, spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
        """The rated scenarios, two instances with one failing, the low-traffic outage."""
        found = super().scenarios(spec, slo)
        if self.tiers:
            found.append(two_instances_scenario(spec, slo, self, self.errors, self.total))
        if self.all_failing is not None:
            found.extend(self.outage_scenarios(spec, slo, self.all_failing))
        return found

    def outage_scenarios(
        self, spec: ServiceSpec, slo: Slo, rule: AllFailing
    ) -> list[dict[str, Any]]:
        """Below the minimum rate (a quarter of it, or 1 event a minute without a guard):
        every request failing fires AllFailing one minute after its ``for`` (quiet one
        minute before) while the burn alerts stay quiet; half of them failing fires
        nothing."""
        alert = self.all_failing_alert(spec, slo, rule)
        rps = slo.min_rate / 4 if slo.min_rate > 0 else 1 / 60
        fires_at = unittests.FIRST_RATE + unittests.minutes(rule.for_)
        quiet = self.burn_alerts(spec, slo) if slo.min_rate > 0 else []
        outage = [
            unittests.alert_check(alert, fires_at - 1, None),
            unittests.alert_check(alert, fires_at + 1, {}),
            *(unittests.alert_check(burn, fires_at + 1, None) for burn in quiet),
        ]
        series = self.sample_series
        return [
            unittests.plain_test(
                f"{slo.name}: every request failing at low traffic fires {alert['alert']}",
                series(spec, Traffic(rps, 1.0), fires_at + 2),
                outage,
            ),
            unittests.plain_test(
                f"{slo.name}: half the requests failing at low traffic fire no {alert['alert']}",
                series(spec, Traffic(rps, 0.5), fires_at + 2),
                [unittests.alert_check(alert, fires_at + 1, None)],
            ),
        ]

    def inhibit_rules(self, spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
        """The SLO's burn page silences its AllFailing page: one page per outage."""
        if self.all_failing is None or not any(t.severity == c.SEVERITY_PAGE for t in self.tiers):
            return []
        scope = [f'{c.LABEL_SLO_SERVICE}="{spec.service}"', f'{c.LABEL_SLO}="{slo.name}"']
        burn = c.slo_alert_name(slo.name, c.ALERT_SUFFIX_BURN)
        failing = c.slo_alert_name(slo.name, c.ALERT_SUFFIX_ALL_FAILING)
        return [
            {
                "source_matchers": [
                    f'alertname="{burn}"', f'{c.LABEL_SEVERITY}="{c.SEVERITY_PAGE}"', *scope,
                ],
                "target_matchers": [f'alertname="{failing}"', *scope],
                "equal": [c.LABEL_SLO_SERVICE, c.LABEL_SLO],
            }
        ]  # fmt: skip

    def runbook(self, spec: ServiceSpec, slo: Slo) -> str:
        """A burn section, the AllFailing section, the SliAbsent section."""
        body = runbooks.errors_diagnosis(spec, self.errors)
        out = runbooks.burn_sections(spec, slo, body)
        if self.all_failing is not None:
            name = c.slo_alert_name(slo.name, c.ALERT_SUFFIX_ALL_FAILING)
            meaning = (
                f"Every event of the {slo.name} SLO failed over {self.all_failing.window}, "
                f"for {self.all_failing.for_}: an outage, possibly at night traffic too low "
                "for the burn-rate alerts."
            )
            out += runbooks.section(spec, slo, name, meaning, body)
        return out + self.absent_runbook(spec, slo)


def parse(ctx: _parse.Context, item: Reader) -> RatioSli:
    """Read the ``ratio`` fields of the SLO at ``item``."""
    found = _parse.Found()  # every field's first error, not only the SLO's first
    objective = found.get(lambda: _parse.objective(item), None)
    counters = found.get(lambda: _parse.counters(ctx, item), None)
    tiers = _parse.tiers_of(found, ctx, item, objective)
    all_failing = found.get(lambda: _all_failing(item), None)
    found.raise_any()
    assert objective is not None  # else raise_any raised
    assert counters is not None
    return RatioSli(
        objective=objective,
        errors=counters[0],
        total=counters[1],
        tiers=tiers,
        all_failing=all_failing,
    )


def _all_failing(item: Reader) -> AllFailing | None:
    """``all_failing``: on by default (5m window, for 5m, page); ``"off"`` switches it off."""
    raw = item.raw("all_failing", {})
    if raw is False or raw == TIER_OFF:
        return None
    block = item.child("all_failing", {})
    block.only(("window", "for", "severity"), "all_failing")
    return AllFailing(
        window=block.window("window", "5m"),
        for_=block.wait("for", "5m"),
        severity=block.choice("severity", SEVERITIES, c.SEVERITY_PAGE),
    )
