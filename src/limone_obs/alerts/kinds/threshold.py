"""Kind ``threshold``: a plain alert when the error ratio over a window is too high.

Spec fields: ``objective`` (fires above ``100 - objective`` percent errors), ``total``,
``errors``, ``window``, ``for``, ``severity``, ``min_rate``. Alert: ``<Slo>High`` (e.g.
more than 1 % 5xx over 5 minutes, for 5 minutes). No error budget, no burn tiers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from limone_obs import conventions as c
from limone_obs.alerts import _parse, alerting, runbooks
from limone_obs.alerts._reader import Reader
from limone_obs.alerts.kinds._rated import (
    CounterPair,
    RatedSli,
    two_instances_scenario,
)
from limone_obs.alerts.model import KIND_THRESHOLD, SEVERITIES, Rule, ServiceSpec, Slo
from limone_obs.alerts.rules import number, slo_selector
from limone_obs.alerts.selectors import Selector
from limone_obs.alerts.unittests import Pairs

KEYS: Final = ("objective", "errors", "total", "window", "for", "severity", "min_rate")


@dataclass(frozen=True, kw_only=True)
class ThresholdSli(CounterPair, RatedSli):
    """``errors`` over ``total`` over ``window``; alerts above ``100 - objective`` %."""

    kind = KIND_THRESHOLD
    has_budget = False
    objective: float
    errors: Selector
    total: Selector
    window: str
    for_: str
    severity: str

    def windows(self) -> list[str]:
        """Only the alert's window is recorded."""
        return [self.window]

    def ratio_window(self) -> str | None:
        """The alert's window."""
        return self.window

    def alert(self, spec: ServiceSpec, slo: Slo) -> Rule:
        """The error ratio over ``window`` above ``100 - objective`` percent, enough traffic."""
        name = c.slo_alert_name(slo.name, c.ALERT_SUFFIX_THRESHOLD)
        limit = slo.error_budget
        expr = (
            f"{c.sli_error_ratio_rule(self.window)}{slo_selector(spec, slo)} > {number(limit)}"
            f"{self.guard(spec, slo, self.window)}"
        )
        summary = f"{spec.service} {slo.name}: error ratio above {alerting.percent(limit)}"
        description = (
            f"{slo.description} More than {alerting.percent(limit)} of events failed over the "
            f"last {self.window}, for {self.for_} (objective {self.objective:.10g} %)."
        )
        notes = alerting.alert_annotations(slo, name, summary, description)
        labels = alerting.alert_labels(spec, slo, self.severity)
        return alerting.make_alert(name, expr, self.for_, labels, notes)

    def alerts(self, spec: ServiceSpec, slo: Slo) -> list[Rule]:
        """The threshold alert and SliAbsent."""
        return [self.alert(spec, slo), self.absent_alert(spec, slo)]

    def scenarios(self, spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
        """The rated scenarios and two instances with one failing."""
        found = super().scenarios(spec, slo)
        return [*found, two_instances_scenario(spec, slo, self, self.errors, self.total)]

    def inhibit_rules(self, spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
        """While a budget SLO counting the same events (same ``errors`` and ``total``)
        pages for its burn rate, this alert stays silent: one burst of errors, one page.
        Below that burn rate this alert is the only page."""
        own = c.slo_alert_name(slo.name, c.ALERT_SUFFIX_THRESHOLD)
        service = f'{c.LABEL_SLO_SERVICE}="{spec.service}"'
        return [
            {
                "source_matchers": [
                    f'alertname="{c.slo_alert_name(other.name, c.ALERT_SUFFIX_BURN)}"',
                    f'{c.LABEL_SEVERITY}="{c.SEVERITY_PAGE}"', service,
                    f'{c.LABEL_SLO}="{other.name}"',
                ],
                "target_matchers": [f'alertname="{own}"', service, f'{c.LABEL_SLO}="{slo.name}"'],
                "equal": [c.LABEL_SLO_SERVICE],
            }
            for other in spec.slos
            if other.tiers
            and any(t.severity == c.SEVERITY_PAGE for t in other.tiers)
            and other.sli.selectors() == self.selectors()
        ]  # fmt: skip

    def rate_pairs(self, spec: ServiceSpec, slo: Slo) -> Pairs:
        """The alert fires above the error budget."""
        return [(self.alert(spec, slo), slo.error_budget)]

    def runbook(self, spec: ServiceSpec, slo: Slo) -> str:
        """One section, with the errors diagnosis."""
        meaning = (
            f"More than {alerting.percent(slo.error_budget)} of events failed over "
            f"{self.window} for {self.for_}: users see errors now."
        )
        body = runbooks.errors_diagnosis(spec, self.errors)
        name = c.slo_alert_name(slo.name, c.ALERT_SUFFIX_THRESHOLD)
        return runbooks.section(spec, slo, name, meaning, body) + self.absent_runbook(spec, slo)

    def status_sli(self, spec: ServiceSpec, slo: Slo) -> str | None:
        """Good share over the window; 1 when there were requests but no error series."""
        del spec, slo
        bad, total = self.rates(self.window)
        return f"1 - {bad} / {total}"


def parse(ctx: _parse.Context, item: Reader) -> ThresholdSli:
    """Read the ``threshold`` fields of the SLO at ``item``."""
    found = _parse.Found()  # every field's first error, not only the SLO's first
    objective = found.get(lambda: _parse.objective(item), None)
    counters = found.get(lambda: _parse.counters(ctx, item), None)
    window = found.get(lambda: item.window("window", "5m"), "")
    for_ = found.get(lambda: item.wait("for", "5m"), "")
    severity = found.get(lambda: item.choice("severity", SEVERITIES, c.SEVERITY_PAGE), "")
    found.raise_any()
    assert objective is not None  # else raise_any raised
    assert counters is not None
    return ThresholdSli(
        objective=objective,
        errors=counters[0],
        total=counters[1],
        window=window,
        for_=for_,
        severity=severity,
    )
