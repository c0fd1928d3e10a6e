"""Kind ``latency``: events of a histogram slower than a threshold over all its events.

Spec fields: ``objective``, ``histogram`` (base name and matchers: every event counted),
``good`` (optional: the part of ``histogram`` whose fast events are good, e.g.
``outcome="ok"``; a fast event outside it is bad), ``threshold_seconds`` (a bucket
boundary), ``tiers``, ``min_rate``, ``quantile_alert: {for, severity}``. Alerts:
``<Slo>ErrorBudgetBurn`` per enabled tier, ``<Slo>P95High`` (the objective's quantile).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from limone_obs import conventions as c
from limone_obs.alerts import _parse, alerting, runbooks, samples, unittests
from limone_obs.alerts._reader import Reader
from limone_obs.alerts.kinds._rated import BudgetSli
from limone_obs.alerts.model import KIND_LATENCY, QuantileAlert, Rule, ServiceSpec, Slo, job_matcher
from limone_obs.alerts.rules import le_matcher, number
from limone_obs.alerts.selectors import Selector
from limone_obs.alerts.unittests import Pairs, Traffic

KEYS: Final = (
    "objective", "histogram", "good", "threshold_seconds", "tiers", "min_rate", "quantile_alert",
)  # fmt: skip
#: Window of the quantile alert's rate (the quantile of the last 5 minutes).
QUANTILE_WINDOW: Final = "5m"


@dataclass(frozen=True, kw_only=True)
class LatencySli(BudgetSli):
    """Good events of ``good`` within ``threshold_seconds`` over every event of ``histogram``.

    Both selectors carry the job matcher; ``good`` is ``histogram`` unless the spec
    narrows it.
    """

    kind = KIND_LATENCY
    histogram: Selector
    good: Selector
    threshold_seconds: float
    quantile_alert: QuantileAlert | None = None

    def selectors(self) -> Mapping[str, Selector]:
        """``histogram`` and ``good``."""
        return {"histogram": self.histogram, "good": self.good}

    def rates(self, window: str) -> tuple[str, str]:
        """All events minus the fast good ones, and all events, per second."""
        count = self.histogram.with_metric(f"{self.histogram.metric}_count").promql()
        # Only good events count as fast: a call failing within the threshold is bad.
        fast = self.good.with_metric(f"{self.good.metric}_bucket")
        fast_sel = fast.promql(le_matcher(self.threshold_seconds))
        total = f"sum(rate({count}[{window}]))"
        return f"({total} - sum(rate({fast_sel}[{window}])))", total

    def sample_series(self, spec: ServiceSpec, load: Traffic, length: int) -> list[dict[str, str]]:
        """A histogram of good events where ``load.ratio`` of them fall just above the
        threshold."""
        labels = {**unittests.base_labels(spec), **(samples.solve(self.good.matchers) or {})}
        labels.pop(c.LABEL_LE, None)
        metric, per_minute = self.histogram.metric, load.rps * 60
        fast = per_minute * (1 - load.ratio)
        above = repr(_next_bucket(self.threshold_seconds))
        buckets = ((repr(self.threshold_seconds), fast), (above, per_minute), ("+Inf", per_minute))
        found = [
            unittests.counter({**labels, c.LABEL_LE: le}, f"{metric}_bucket", rate, length)
            for le, rate in buckets
        ]
        found.append(unittests.counter(labels, f"{metric}_count", per_minute, length))
        return found

    def quantile_rule(self, spec: ServiceSpec, slo: Slo, quantile: QuantileAlert) -> Rule:
        """The objective's quantile (p95 for 95 %) over 5m above the threshold, enough
        traffic."""
        name = c.slo_alert_name(slo.name, c.quantile_suffix(self.objective))
        buckets = self.histogram.with_metric(f"{self.histogram.metric}_bucket").promql()
        head = f"histogram_quantile({number(slo.target)}, sum by ({c.LABEL_LE}) "
        expr = (
            f"{head}(rate({buckets}[{QUANTILE_WINDOW}])))\n> {number(self.threshold_seconds)}"
            f"{self.guard(spec, slo, QUANTILE_WINDOW)}"
        )
        rank = c.quantile_suffix(self.objective).removesuffix(c.ALERT_SUFFIX_THRESHOLD).lower()
        summary = f"{spec.service} {slo.name}: {rank} above {self.threshold_seconds:g} s"
        description = (
            f"{slo.description} The {rank} over the last {QUANTILE_WINDOW} has been above "
            f"{self.threshold_seconds:g} s for {quantile.for_}."
        )
        notes = alerting.alert_annotations(slo, name, summary, description)
        labels = alerting.alert_labels(spec, slo, quantile.severity)
        return alerting.make_alert(name, expr, quantile.for_, labels, notes)

    def alerts(self, spec: ServiceSpec, slo: Slo) -> list[Rule]:
        """The burn alerts, then the quantile alert when configured."""
        found = self.burn_alerts(spec, slo)
        if self.quantile_alert is not None:
            found.append(self.quantile_rule(spec, slo, self.quantile_alert))
        return found

    def scenarios(self, spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
        """The burn scenarios, then those of the quantile alert."""
        found = super().scenarios(spec, slo)
        if self.quantile_alert is not None:
            rule = self.quantile_rule(spec, slo, self.quantile_alert)
            pairs: Pairs = [(rule, slo.error_budget)]
            found.extend(unittests.rate_scenarios(spec, slo, pairs, self._series_fn(spec)))
        return found

    def runbook(self, spec: ServiceSpec, slo: Slo) -> str:
        """Burn sections and the quantile section, with the latency diagnosis."""
        body = self.diagnosis(spec) + "\n### Mitigate\n\n" + _MITIGATE
        out = runbooks.burn_sections(spec, slo, body)
        if self.quantile_alert is not None:
            name = c.slo_alert_name(slo.name, c.quantile_suffix(self.objective))
            meaning = f"The latency quantile of {slo.name} is above {self.threshold_seconds:g} s."
            out += runbooks.section(spec, slo, name, meaning, body)
        return out

    def diagnosis(self, spec: ServiceSpec) -> str:
        """Where the slow events are: by endpoint (or operation), p95, dependencies,
        saturation."""
        bucket = self.histogram.with_metric(f"{self.histogram.metric}_bucket")
        fast = bucket.promql(le_matcher(self.threshold_seconds))
        count = self.histogram.with_metric(f"{self.histogram.metric}_count").promql()
        job = job_matcher(spec.job).promql()
        by = (
            c.LABEL_ENDPOINT
            if self.histogram.metric == spec.names.request_duration
            else "operation"
        )
        code = runbooks.code
        return (
            f"1. Share of events slower than {self.threshold_seconds:g} s, by {by}:\n\n"
            + code(f"1 - sum by ({by}) (rate({fast}[5m])) / sum by ({by}) (rate({count}[5m]))")
            + "\n2. The p95 by the same label:\n\n"
            + code(f"histogram_quantile(0.95, sum by (le, {by}) (rate({bucket.promql()}[5m])))")
            + "\n3. Where the time goes: p95 of each dependency (AI API, database, templates):\n\n"
            + code(
                f"histogram_quantile(0.95, sum by (le, {c.LABEL_DEPENDENCY}) "
                f"(rate({spec.names.dependency_duration_bucket}{{{job}}}[5m])))"
            )
            + "\n4. Saturation: requests in flight (a queue in front of too few workers):\n\n"
            + code(f"sum({spec.names.requests_in_progress}{{{job}}})")
        )


_MITIGATE: Final = (
    "- A deploy in the last hours? Roll it back.\n"
    "- The AI API slow: lower its timeout, stream the answer, or serve a cached one.\n"
    "- All endpoints slow with many requests in flight: add gunicorn workers or replicas.\n"
)


def _next_bucket(threshold: float) -> float:
    return min(b for b in c.DEFAULT_BUCKETS if b > threshold)


def parse(ctx: _parse.Context, item: Reader) -> LatencySli:
    """Read the ``latency`` fields of the SLO at ``item``."""
    objective = _parse.objective(item)
    histogram = _parse.selector(ctx, item, "histogram")
    return LatencySli(
        objective=objective,
        histogram=histogram,
        good=_parse.good(ctx, item, histogram),
        threshold_seconds=_parse.threshold(item),
        tiers=_parse.slo_tiers(ctx, item, objective),
        quantile_alert=_parse.quantile_alert(item),
    )
