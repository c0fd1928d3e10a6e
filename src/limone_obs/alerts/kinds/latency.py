"""Kind ``latency``: events of a histogram slower than a threshold over all its events.

Spec fields: ``objective``, ``histogram`` (base name and matchers: every event counted),
``good`` (optional: the part of ``histogram`` whose fast events are good, e.g.
``outcome="ok"``; a fast event outside it is bad), ``threshold_seconds`` (a bucket
boundary), ``stages`` (the roadmap's next thresholds, e.g. ``[1.0, 0.6]``), ``tiers``,
``min_rate``, ``quantile_alert: {for, severity}``. Alerts: ``<Slo>ErrorBudgetBurn`` per
enabled tier, ``<Slo>P<objective>High`` (the objective's quantile: ``P95High`` for 95,
``P99High`` for 99). Only ``threshold_seconds``, the committed step, alerts; each stage
records the share of events within it (``slo:stage_sli:ratio_rate<w>{stage_seconds}``),
shown on the SLO dashboard and by ``limone-obs status`` as progress.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from limone_obs import conventions as c
from limone_obs.alerts import _durations, _parse, alerting, runbooks, samples, unittests
from limone_obs.alerts._reader import Reader
from limone_obs.alerts.kinds._rated import BudgetSli
from limone_obs.alerts.model import (
    KIND_LATENCY,
    Group,
    Panel,
    PanelName,
    QuantileAlert,
    Rule,
    ServiceSpec,
    Slo,
    job_matcher,
)
from limone_obs.alerts.rules import le_matcher, number, record, slo_labels
from limone_obs.alerts.selectors import Selector
from limone_obs.alerts.unittests import Pairs, Traffic

KEYS: Final = (
    "objective", "histogram", "good", "threshold_seconds", "stages", "tiers", "min_rate",
    "quantile_alert",
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
    #: The roadmap's next thresholds, below ``threshold_seconds``, descending.
    stages: tuple[float, ...] = ()

    def selectors(self) -> Mapping[str, Selector]:
        """``histogram`` and ``good``."""
        return {"histogram": self.histogram, "good": self.good}

    def bad_share_words(self) -> str:
        """ "The share of events slower than 1 s" (", or without outcome="ok"" when
        ``good`` narrows ``histogram``): a trial read "the error ratio is above 30 %" of a
        latency SLO as errors."""
        words = f"The share of events slower than {self.threshold_seconds:g} s"
        return f"{words}, or without {self.narrowing()}," if self.narrowing() else words

    def narrowing(self) -> str:
        """The matchers ``good`` adds to ``histogram`` (``outcome="ok"``), or ""."""
        return ", ".join(m.promql() for m in self.good.matchers if m not in self.histogram.matchers)

    def good_within_seconds(self) -> float | None:
        """``threshold_seconds``."""
        return self.threshold_seconds

    def next_stages(self) -> tuple[float, ...]:
        """``stages``."""
        return self.stages

    def roadmap(self, histogram: str) -> tuple[float, ...]:
        """``threshold_seconds`` then ``stages`` when this SLI counts ``histogram``."""
        return (self.threshold_seconds, *self.stages) if self.histogram.metric == histogram else ()

    def roadmap_events(self, histogram: str) -> tuple[Selector, Selector] | None:
        """``(good, histogram)`` when this SLI counts ``histogram``."""
        return (self.good, self.histogram) if self.histogram.metric == histogram else None

    def progress_panels(self) -> tuple[Panel, ...]:
        """The stages' progress, when the SLO has stages."""
        return (Panel(PanelName.PROGRESS, 24),) if self.stages else ()

    def live_queries(self, spec: ServiceSpec) -> list[tuple[str, str]]:
        """``_count`` and the threshold's ``_bucket`` of ``histogram``, then of ``good``
        when the spec narrows it (else it is ``histogram``, queried already)."""
        del spec
        found = []
        for key, selector in (("histogram", self.histogram), ("good", self.good)):
            if key == "good" and selector == self.histogram:
                continue
            bucket = selector.with_metric(f"{selector.metric}_bucket")
            found.append((key, selector.with_metric(f"{selector.metric}_count").promql()))
            found.append((key, bucket.promql(le_matcher(self.threshold_seconds))))
        return found

    def events(self) -> Selector:
        """The histogram's ``_count``."""
        return self.histogram.with_metric(f"{self.histogram.metric}_count")

    def rates(self, window: str) -> tuple[str, str]:
        """All events minus the fast good ones, and all events, per second."""
        count = self.histogram.with_metric(f"{self.histogram.metric}_count").promql()
        # Only good events count as fast: a call failing within the threshold is bad.
        fast = self.good.with_metric(f"{self.good.metric}_bucket")
        fast_sel = fast.promql(le_matcher(self.threshold_seconds))
        total = f"sum(rate({count}[{window}]))"
        # No good series at all (every AI call failed since a restart) is no good event,
        # not no SLI: without `or vector(0)` the difference is empty and nothing fires.
        return f"({total} - (sum(rate({fast_sel}[{window}])) or vector(0)))", total

    def recording_groups(self, spec: ServiceSpec, slo: Slo) -> list[Group]:
        """The budget groups; the fast one also records each stage's progress."""
        groups = super().recording_groups(spec, slo)
        groups[0]["rules"].extend(self.stage_records(spec, slo))
        return groups

    def stage_records(self, spec: ServiceSpec, slo: Slo) -> list[Rule]:
        """Per stage and window of :data:`~limone_obs.conventions.STAGE_WINDOWS`: good
        events within the stage's threshold over all events (the same good and all events
        as the SLI)."""
        return [
            record(
                c.stage_sli_rule(window),
                self.within_expr(stage, window),
                {**slo_labels(spec, slo), c.LABEL_STAGE: number(stage)},
            )
            for stage in self.stages
            for window in c.STAGE_WINDOWS
        ]

    def within_expr(self, seconds: float, window: str) -> str:
        """PromQL: the share of events over ``window`` that are good within ``seconds``."""
        fast = self.good.with_metric(f"{self.good.metric}_bucket").promql(le_matcher(seconds))
        count = self.histogram.with_metric(f"{self.histogram.metric}_count").promql()
        return f"(sum(rate({fast}[{window}])) or vector(0))\n/\nsum(rate({count}[{window}]))"

    def status_progress(self, spec: ServiceSpec, slo: Slo) -> dict[str, str]:
        """Each stage's recorded share of events within it over 1h, by ``<= 1 s``."""
        scope = f'{c.LABEL_SLO}="{slo.name}",{c.LABEL_SLO_SERVICE}="{spec.service}"'
        rule = c.stage_sli_rule(c.STAGE_WINDOWS[-1])
        return {
            f"<={stage:g}s": f'{rule}{{{scope},{c.LABEL_STAGE}="{number(stage)}"}}'
            for stage in self.stages
        }

    def sample_series(self, spec: ServiceSpec, load: Traffic, length: int) -> list[dict[str, str]]:
        """A histogram of good events where ``load.ratio`` of them fall just above the
        threshold."""
        labels = {**unittests.base_labels(spec), **(samples.solve(self.good.matchers) or {})}
        labels.pop(c.LABEL_LE, None)
        metric, per_minute = self.histogram.metric, load.rps * 60
        fast = per_minute * (1 - load.ratio)
        above = repr(_next_bucket(spec, self.histogram, self.threshold_seconds))
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
        rank = f"p{self.objective:.10g}"  # p99.95, not the alert name's P9995
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
        return [*found, self.absent_alert(spec, slo)]

    def scenarios(self, spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
        """The burn and absent scenarios, those of the quantile alert, then (with stages) the staged
        objective's: every event within the committed threshold pages nobody, and each
        stage's share is recorded."""
        found = super().scenarios(spec, slo)
        if self.quantile_alert is not None:
            rule = self.quantile_rule(spec, slo, self.quantile_alert)
            pairs: Pairs = [(rule, slo.error_budget)]
            found.extend(unittests.rate_scenarios(spec, slo, pairs, self._series_fn(spec)))
        if self.stages:
            found.append(self.stage_scenario(spec, slo))
        failing = self.outside_good_scenario(spec, slo)
        return found if failing is None else [*found, failing]

    def outside_good_scenario(self, spec: ServiceSpec, slo: Slo) -> dict[str, Any] | None:
        """With ``good`` narrower than ``histogram``: every event outside it (fast, but
        failed) and no good series at all burns every tier. None without tiers, or when
        ``good`` is ``histogram``."""
        outside = samples.good_labels(self.good, self.histogram)
        pairs = self.rate_pairs(spec, slo)
        if self.good == self.histogram or outside is None or not pairs:
            return None
        labels = {**unittests.base_labels(spec), **outside}
        labels.pop(c.LABEL_LE, None)
        metric = self.histogram.metric

        def series(load: Traffic, length: int) -> list[dict[str, str]]:
            rate, bucket = load.rps * 60, f"{metric}_bucket"
            found = [
                unittests.counter({**labels, c.LABEL_LE: le}, bucket, rate, length)
                for le in (repr(self.threshold_seconds), "+Inf")
            ]
            return [*found, unittests.counter(labels, f"{metric}_count", rate, length)]

        load = Traffic(unittests.busy_rps(slo, pairs), 1.0)
        end = max(unittests.FIRST_RATE + unittests.minutes(r["for"]) for r, _ in pairs) + 2
        title = "every event outside good, none good at all, burns every tier"
        times = unittests.around_for(pairs, load, end)
        return unittests.scenario(spec, slo, pairs, title, load=load, times=times, series=series)

    def stage_scenario(self, spec: ServiceSpec, slo: Slo) -> dict[str, Any]:
        """Events averaging 0.8 x the committed threshold (2 s for 2.5 s), all within it; a
        quarter within the first stage, an eighth within the next, and so on (powers of
        two keep promtool's exact comparisons true). Checked after every alert's ``for``:
        nothing fires; the recorded stage shares and the average are as fed."""
        rules = self.alerts(spec, slo)
        end = max(unittests.FIRST_RATE + unittests.minutes(r["for"]) for r in rules) + 2
        shares = [0.5 ** (index + 2) for index in range(len(self.stages))]
        per_minute = _staged_rate(slo, self.rate_pairs(spec, slo), len(self.stages))
        average = round(0.8 * self.threshold_seconds, 6)
        when = _durations.format_duration(end * 60)
        return {
            "name": (
                f"{slo.name}: staged objective at a {average:g} s average pages nobody and "
                "records the progress of each stage"
            ),
            "interval": f"{unittests.STEP}m",
            "input_series": self._staged_series(spec, per_minute, shares, end + 1, average),
            "alert_rule_test": [
                {"eval_time": when, "alertname": name, "exp_alerts": []}
                for name in dict.fromkeys(r["alert"] for r in rules)
            ],
            "promql_expr_test": [
                *self._stage_checks(spec, slo, shares, when),
                self._average_check(when, average),
            ],
        }

    def _staged_series(
        self, spec: ServiceSpec, per_minute: int, shares: list[float], length: int, average: float
    ) -> list[dict[str, str]]:
        labels = {**unittests.base_labels(spec), **(samples.solve(self.good.matchers) or {})}
        labels.pop(c.LABEL_LE, None)
        metric = self.histogram.metric
        above = repr(_next_bucket(spec, self.histogram, self.threshold_seconds))
        buckets = [
            (repr(s), per_minute * share) for s, share in zip(self.stages, shares, strict=True)
        ]
        buckets += [(repr(self.threshold_seconds), per_minute), (above, per_minute)]
        buckets.append(("+Inf", per_minute))
        found = [
            unittests.counter({**labels, c.LABEL_LE: le}, f"{metric}_bucket", rate, length)
            for le, rate in buckets
        ]
        found.append(unittests.counter(labels, f"{metric}_count", per_minute, length))
        found.append(unittests.counter(labels, f"{metric}_sum", per_minute * average, length))
        return found

    def _stage_checks(
        self, spec: ServiceSpec, slo: Slo, shares: list[float], when: str
    ) -> list[dict[str, Any]]:
        checks = []
        for stage, share in zip(self.stages, shares, strict=True):
            for window in c.STAGE_WINDOWS:
                labels = {**slo_labels(spec, slo), c.LABEL_STAGE: number(stage)}
                series = unittests.series_text(c.stage_sli_rule(window), labels)
                checks.append(
                    {
                        "expr": series,
                        "eval_time": when,
                        "exp_samples": [{"labels": series, "value": share}],
                    }
                )
        return checks

    def _average_check(self, when: str, average: float) -> dict[str, Any]:
        """The fed average, in milliseconds (rounded: the ratio of two rates is inexact)."""
        hist = self.histogram
        total = hist.with_metric(f"{hist.metric}_sum").promql()
        count = hist.with_metric(f"{hist.metric}_count").promql()
        expr = f"round(1000 * sum(rate({total}[5m])) / sum(rate({count}[5m])))"
        return {
            "expr": expr,
            "eval_time": when,
            "exp_samples": [{"labels": "{}", "value": round(average * 1000)}],
        }

    def runbook(self, spec: ServiceSpec, slo: Slo) -> str:
        """Burn sections and the quantile section, with the latency diagnosis."""
        body = self.diagnosis(spec) + "\n### Mitigate\n\n" + _MITIGATE
        out = runbooks.burn_sections(spec, slo, body)
        if self.quantile_alert is not None:
            name = c.slo_alert_name(slo.name, c.quantile_suffix(self.objective))
            meaning = (
                f"The p{self.objective:.10g} latency of the requests of SLO {slo.name} is above "
                f"{self.threshold_seconds:g} s."
            )
            out += runbooks.section(spec, slo, name, meaning, body)
        return out + self.absent_runbook(spec, slo)

    def diagnosis(self, spec: ServiceSpec) -> str:
        """Where the slow events are: by endpoint (or operation), the objective's quantile
        (the p99 of a 99 % SLO, what its quantile alert reads), dependencies, saturation."""
        bucket = self.histogram.with_metric(f"{self.histogram.metric}_bucket")
        # The SLI's good events: within the threshold and in ``good`` (a failed call is
        # bad however fast: the share must be the one the alert reads).
        fast = self.good.with_metric(f"{self.good.metric}_bucket")
        fast_sel = fast.promql(le_matcher(self.threshold_seconds))
        count = self.histogram.with_metric(f"{self.histogram.metric}_count").promql()
        job = job_matcher(spec.job).promql()
        by = _breakdown_label(spec, self.histogram.metric)
        code = runbooks.code
        rank, quantile = f"p{self.objective:.10g}", number(round(self.objective / 100, 12))
        every = f"sum by ({by}) (rate({count}[5m]))"
        good = f"sum by ({by}) (rate({fast_sel}[5m]))"
        bad = f"slower than {self.threshold_seconds:g} s"
        if self.good != self.histogram:
            # A group whose every event is outside ``good`` has no good series: 0 good.
            good = f"({good} or {every} * 0)"
            bad += f", or without {self.narrowing()}"
        return (
            f"1. Share of bad events ({bad}), by {by}:\n\n"
            + code(f"1 - {good} / {every}")
            + f"\n2. The {rank} by the same label:\n\n"
            + code(
                f"histogram_quantile({quantile}, sum by (le, {by}) (rate({bucket.promql()}[5m])))"
            )
            + f"\n3. Where the time goes: the {rank} of each dependency the service "
            "tracks:\n\n"
            + code(
                f"histogram_quantile({quantile}, sum by (le, {c.LABEL_DEPENDENCY}) "
                f"(rate({spec.names.dependency_duration_bucket}{{{job}}}[5m])))"
            )
            + "\n4. Saturation: requests in flight (a queue in front of too few workers):\n\n"
            + code(f"sum({spec.names.requests_in_progress}{{{job}}})")
        )


_MITIGATE: Final = (
    "- A deploy in the last hours? Roll it back.\n"
    "- A dependency slow: lower its timeout, stream the answer, or serve a cached one.\n"
    "- All endpoints slow with many requests in flight: add gunicorn workers or replicas.\n"
)


def _breakdown_label(spec: ServiceSpec, metric: str) -> str:
    """The label the diagnosis breaks slow events down by: the request's endpoint, a
    page load's page, a dependency call's operation."""
    if metric == spec.names.request_duration:
        return c.LABEL_ENDPOINT
    if runbooks.reads_browser_timing(spec, metric):
        return c.LABEL_PAGE
    return c.LABEL_OPERATION


def _staged_rate(slo: Slo, pairs: Pairs, stages: int) -> int:
    """Events per minute above every guard, a multiple of 2 ** (stages + 1)."""
    unit = 1 << (stages + 1)
    rps = unittests.busy_rps(slo, pairs) if pairs else 1.0
    return unit * math.ceil(rps * 60 / unit)


def _next_bucket(spec: ServiceSpec, histogram: Selector, threshold: float) -> float:
    """The histogram's bucket boundary after ``threshold`` (+Inf stands after the last)."""
    buckets = spec.histogram_buckets(histogram.metric)
    return min((b for b in buckets if b > threshold), default=math.inf)


def parse(ctx: _parse.Context, item: Reader) -> LatencySli:
    """Read the ``latency`` fields of the SLO at ``item``."""
    found = _parse.Found()  # every field's first error, not only the SLO's first
    objective = found.get(lambda: _parse.objective(item), None)
    histogram = found.get(lambda: _parse.selector(ctx, item, "histogram"), None)
    good, committed = None, None
    stages: tuple[float, ...] = ()
    if histogram is not None:  # good, threshold_seconds and stages depend on it
        good = found.get(lambda: _parse.good(ctx, item, histogram), None)
        committed = found.get(lambda: _parse.threshold(ctx, item, histogram), None)
    if histogram is not None and committed is not None:
        stages = found.get(lambda: _parse.stages(ctx, item, histogram, committed), stages)
    tiers = _parse.tiers_of(found, ctx, item, objective)
    quantile = found.get(lambda: _parse.quantile_alert(item), None)
    found.raise_any()
    assert objective is not None  # else raise_any raised
    assert histogram is not None
    assert good is not None
    assert committed is not None
    return LatencySli(
        objective=objective,
        histogram=histogram,
        good=good,
        threshold_seconds=committed,
        stages=stages,
        tiers=tiers,
        quantile_alert=quantile,
    )
