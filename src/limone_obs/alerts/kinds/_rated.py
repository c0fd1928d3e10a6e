"""What the kinds counting bad and all events share: recording groups, guards, burn alerts.

A rated kind (``ratio``, ``latency``, ``threshold``) says how to count its bad and all
events per second over a window (:meth:`RatedSli.rates`) and how to fake them for promtool
(:meth:`RatedSli.sample_series`); the rest follows here. A budget kind
(:class:`BudgetSli`) also records the 5m event rates, the long windows and the period SLI,
and alerts per burn tier.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from limone_obs import conventions as c
from limone_obs.alerts import _durations, alerting, runbooks, samples, unittests
from limone_obs.alerts.model import BurnTier, Group, Panel, PanelName, Rule, ServiceSpec, Sli, Slo
from limone_obs.alerts.rules import (
    LONG_GROUP_INTERVAL,
    LONG_WINDOW,
    RATE_WINDOW,
    burn_threshold,
    number,
    record,
    slo_labels,
    slo_selector,
)
from limone_obs.alerts.selectors import Catalogue, Selector
from limone_obs.alerts.unittests import Pairs, Traffic

#: How long an SLI's event series may be missing before ``<Slo>SliAbsent`` opens a ticket.
SLI_ABSENT_FOR: Final = "30m"


@dataclass(frozen=True, kw_only=True)
class RatedSli(Sli):
    """A kind whose SLI is bad events over all events, recorded per window."""

    #: True for kinds with an error budget: 5m event rates, long windows, period SLI.
    has_budget: ClassVar[bool] = True

    @abstractmethod
    def rates(self, window: str) -> tuple[str, str]:
        """PromQL (bad events, all events) per second over ``window``, from raw series."""

    @abstractmethod
    def sample_series(self, spec: ServiceSpec, load: Traffic, length: int) -> list[dict[str, str]]:
        """promtool input series under ``load`` that this SLI's selectors pick up."""

    @abstractmethod
    def rate_pairs(self, spec: ServiceSpec, slo: Slo) -> Pairs:
        """(alert rule, error ratio above which it fires) of the rate-based alerts."""

    @abstractmethod
    def events(self) -> Selector:
        """The series counting every event of the SLI (a counter or a histogram's
        ``_count``): when it is absent, the SLI measures nothing."""

    def absent_alert(self, spec: ServiceSpec, slo: Slo) -> Rule:
        """``<Slo>SliAbsent`` (ticket): no series of :meth:`events` for
        :data:`SLI_ABSENT_FOR`. The selectors may be the user's own, which no catalogue
        knows: a typo, a renamed label or a missing exporter leaves an SLO that never
        alerts, and this says so.

        A browser SLO on a phase every page view reports (:data:`_EVERY_VIEW_PHASES`) also
        fires while its series, which appear at 0 when a page first renders the RUM tag,
        have never counted a beacon though pages rendered the tag in the window: blocked
        beacons (a trial: the ticket never came once a page rendered). Other series at 0
        mean nothing here: an idle SLI (a mark no user triggered since the restart, a
        counter of the app's own made at 0) is no fault. Both cases carry the same labels
        (the selector's equality matchers, as ``absent()`` gives)."""
        name = c.slo_alert_name(slo.name, c.ALERT_SUFFIX_SLI_ABSENT)
        events = self.events().promql()
        unbeaconed = _unbeaconed(spec, self.events())
        summary = f"{spec.service} {slo.name}: no series for its SLI"
        description = (
            f"{slo.description} Prometheus has had no {events} series for {SLI_ABSENT_FOR}"
            + (
                ", or only ones that never counted a beacon while pages rendered the RUM tag"
                if unbeaconed
                else ""
            )
            + ": the SLO measures nothing and none of its alerts can fire. A selector in the "
            "spec may not match what the service exposes, "
            + (
                "no page rendered the tag, or the pages render it but no beacon arrives (the "
                "script or the beacon path blocked: a Content-Security-Policy, a proxy)."
                if unbeaconed
                else "or the service sends no traffic."
            )
        )
        notes = alerting.alert_annotations(slo, name, summary, description)
        labels = alerting.alert_labels(spec, slo, c.SEVERITY_TICKET)
        expr = f"absent({events})" + (f"\nor\n{unbeaconed}" if unbeaconed else "")
        return alerting.make_alert(name, expr, SLI_ABSENT_FOR, labels, notes)

    def bad_share_words(self) -> str:
        """What the SLI counts bad, as the subject of an alert's sentence: "The error
        ratio" here; a latency kind names its threshold."""
        return "The error ratio"

    def windows(self) -> list[str]:
        """Windows recorded: the SLI windows plus every tier window, shortest first."""
        found = set(c.SLI_WINDOWS)
        found.update(w for t in self.tiers for w in (t.long_window, t.short_window))
        return sorted(found, key=_durations.seconds)

    def is_long(self, window: str) -> bool:
        """True if the SLI over ``window`` comes from the recorded 5m rates (slow group)."""
        long = _durations.seconds(window) >= _durations.seconds(LONG_WINDOW)
        return self.has_budget and long

    def error_ratio_expr(self, window: str) -> str:
        """PromQL for the error ratio over ``window``."""
        bad, total = self.rates(window)
        return f"{bad}\n/\n{total}"

    def total_rate(self, spec: ServiceSpec, slo: Slo, window: str) -> str:
        """Events per second over ``window`` (the minimum-rate guard).

        With a budget (the recorded 5m rate exists) it is the mean of that rate over the
        window, for every window of 5m and more: ``rate()`` over a window longer than
        Prometheus' history (a new Prometheus or service) divides the events of the few
        minutes it holds by the whole window, so the 1h page tier stayed below
        ``min_rate`` for its first hour at low traffic while the 1d ticket tier, reading
        the mean, fired: tickets before pages. The mean also spares reading every raw
        series over a long window. Otherwise the raw rate.
        """
        if self.has_budget and _durations.seconds(window) >= _durations.seconds("5m"):
            return f"avg_over_time({c.RULE_EVENTS_RATE5M}{slo_selector(spec, slo)}[{window}])"
        return self.rates(window)[1]

    def window_sli(self, spec: ServiceSpec, slo: Slo, window: str) -> str | None:
        """With a budget: 1 - :meth:`rates` bad / all over ``window`` (empty or NaN without
        events); without one (``threshold``), None."""
        del spec, slo
        return self.counted_sli(window) if self.has_budget else None

    def counted_sli(self, window: str) -> str:
        """1 - :meth:`rates` bad / all over ``window`` (empty or NaN without events)."""
        bad, total = self.rates(window)
        return f"1 - ({bad}) / ({total})"

    def guard(self, spec: ServiceSpec, slo: Slo, window: str) -> str:
        """``and`` clause keeping an alert quiet below the SLO's minimum request rate."""
        if slo.min_rate <= 0:
            return ""
        return f"\nand on ()\n{self.total_rate(spec, slo, window)} >= {number(slo.min_rate)}"

    def recording_groups(self, spec: ServiceSpec, slo: Slo) -> list[Group]:
        """The fast group (raw series), then for budget kinds the long group."""
        labels = slo_labels(spec, slo)
        rules = [
            record(c.sli_error_ratio_rule(w), self.error_ratio_expr(w), labels)
            for w in self.windows()
            if not self.is_long(w)
        ]
        rules.append(record(c.RULE_OBJECTIVE, f"vector({number(slo.target)})", labels))
        if not self.has_budget:
            return [{"name": f"slo-sli-{slo.name}", "rules": rules}]
        rules.extend(_fast_budget_records(spec, slo, self))
        return [{"name": f"slo-sli-{slo.name}", "rules": rules}, _long_group(spec, slo, self)]

    def scenarios(self, spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
        """Burn (or above-the-limit), healthy and low-traffic scenarios of the rate alerts,
        then the SLI-absent ones."""
        pairs = self.rate_pairs(spec, slo)
        found = unittests.rate_scenarios(spec, slo, pairs, self._series_fn(spec)) if pairs else []
        return found + self.absent_scenarios(spec, slo)

    def absent_runbook(self, spec: ServiceSpec, slo: Slo) -> str:
        """The ``<Slo>SliAbsent`` section: the series to look for, by the metric names of
        the SLO's selectors (:func:`~limone_obs.alerts.runbooks.absent_diagnosis`)."""
        name = c.slo_alert_name(slo.name, c.ALERT_SUFFIX_SLI_ABSENT)
        body = runbooks.absent_diagnosis(spec, self.events(), self.selectors().values())
        meaning = f"The series the {slo.name} SLI counts are missing."
        return runbooks.section(spec, slo, name, meaning, body)

    def absent_scenarios(self, spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
        """No series of the SLI fires ``<Slo>SliAbsent`` after its ``for`` (a minute
        before: quiet); with the series present it stays quiet."""
        rule = self.absent_alert(spec, slo)
        wait = unittests.minutes(rule["for"])
        # absent() keeps the selector's equality matchers as labels.
        own = {m.name: m.value for m in self.events().matchers if m.op == "="}
        up = unittests.constant(c.SERIES_UP, unittests.base_labels(spec), "1", wait + 2)
        present = self.sample_series(spec, Traffic(1.0, 0.0), wait + 2)
        at_zero = self.sample_series(spec, Traffic(0.0, 0.0), wait + 2)
        checks = [
            unittests.alert_check(rule, wait - 1, None),
            unittests.alert_check(rule, wait + 1, own),
        ]
        quiet = [unittests.alert_check(rule, wait + 1, None)]
        if _unbeaconed(spec, self.events()):
            pages = unittests.counter(
                unittests.base_labels(spec), spec.names.rum_pages_total, 2.0, wait + 2
            )
            idle = [
                unittests.plain_test(
                    f"{slo.name}: SLI series at 0 while pages render the tag fire {rule['alert']}",
                    [up, pages, *at_zero],
                    checks,
                ),
                unittests.plain_test(
                    f"{slo.name}: SLI series at 0 while no page renders fire no {rule['alert']}",
                    [up, *at_zero],
                    quiet,
                ),
            ]
        else:
            idle = [
                unittests.plain_test(
                    f"{slo.name}: SLI series at 0 (an idle SLI) fire no {rule['alert']}",
                    [up, *at_zero],
                    quiet,
                )
            ]
        return [
            unittests.plain_test(f"{slo.name}: no SLI series fires {rule['alert']}", [up], checks),
            *idle,
            unittests.plain_test(
                f"{slo.name}: SLI series present fire no {rule['alert']}",
                present,
                [unittests.alert_check(rule, wait + 1, None)],
            ),
        ]

    def _series_fn(self, spec: ServiceSpec) -> unittests.SeriesFn:
        def make(load: Traffic, length: int) -> list[dict[str, str]]:
            return self.sample_series(spec, load, length)

        return make

    def status_sli(self, spec: ServiceSpec, slo: Slo) -> str | None:
        """Budget kinds show the recorded period SLI (None here)."""
        del spec, slo
        return None

    def dashboard_row(self) -> tuple[Panel, ...]:
        """With burn tiers: objective and SLI, budget left, burn rates now and over time,
        the SLI over time and the budget burndown; without: the bad-event ratio now. Then
        the firing alerts, :meth:`progress_panels` and the good and bad events."""
        name = PanelName
        if not self.tiers:
            return (
                Panel(name.DEFINITION, 6), Panel(name.CURRENT_SLI, 6), Panel(name.FIRING, 6),
                *self.progress_panels(), Panel(name.EVENTS, 18),
            )  # fmt: skip
        return (
            Panel(name.DEFINITION, 6), Panel(name.OBJECTIVE_SLI, 4), Panel(name.BUDGET_LEFT, 3),
            Panel(name.BURN_RATES, 5), Panel(name.FIRING, 6), Panel(name.SLI_SERIES, 12),
            Panel(name.BURN_SERIES, 12), *self.progress_panels(), Panel(name.BURNDOWN, 12),
            Panel(name.EVENTS, 12),
        )  # fmt: skip

    def progress_panels(self) -> tuple[Panel, ...]:
        """Panels of the roadmap's progress in the dashboard row; none by default."""
        return ()


def long_ratio_expr(spec: ServiceSpec, slo: Slo, window: str) -> str:
    """The error ratio over ``window`` from the recorded 5m rates, weighted by requests:
    the sum of bad rates over the sum of all rates (equal sample spacing)."""
    sel = slo_selector(spec, slo)
    return (
        f"sum_over_time({c.RULE_BAD_EVENTS_RATE5M}{sel}[{window}])\n/\n"
        f"sum_over_time({c.RULE_EVENTS_RATE5M}{sel}[{window}])"
    )


def _fast_budget_records(spec: ServiceSpec, slo: Slo, sli: RatedSli) -> list[Rule]:
    labels, sel = slo_labels(spec, slo), slo_selector(spec, slo)
    bad, total = sli.rates(RATE_WINDOW)
    on = f"on ({c.LABEL_SLO}, {c.LABEL_SLO_SERVICE})"
    return [
        record(c.RULE_BAD_EVENTS_RATE5M, bad, labels),
        record(c.RULE_EVENTS_RATE5M, total, labels),
        record(c.RULE_ERROR_BUDGET, f"vector({number(slo.error_budget)})", labels),
        record(
            c.RULE_CURRENT_BURN_RATE,
            f"{c.sli_error_ratio_rule(RATE_WINDOW)}{sel}\n/ {on}\n{c.RULE_ERROR_BUDGET}{sel}",
            labels,
        ),
    ]


def _long_group(spec: ServiceSpec, slo: Slo, sli: RatedSli) -> Group:
    """The slow group of a budget SLO: long-window SLIs, the period SLI and budget."""
    labels, sel = slo_labels(spec, slo), slo_selector(spec, slo)
    on = f"on ({c.LABEL_SLO}, {c.LABEL_SLO_SERVICE})"
    windows = [w for w in sli.windows() if sli.is_long(w)]
    rules = [
        record(c.sli_error_ratio_rule(w), long_ratio_expr(spec, slo, w), labels) for w in windows
    ]
    rules += [
        record(c.RULE_PERIOD_SLI_ERROR, long_ratio_expr(spec, slo, spec.period), labels),
        record(
            c.RULE_PERIOD_BURN_RATE,
            f"{c.RULE_PERIOD_SLI_ERROR}{sel}\n/ {on}\n{c.RULE_ERROR_BUDGET}{sel}",
            labels,
        ),
        record(c.RULE_PERIOD_BUDGET_REMAINING, f"1 - {c.RULE_PERIOD_BURN_RATE}{sel}", labels),
    ]
    return {"name": f"slo-sli-{slo.name}-long", "interval": LONG_GROUP_INTERVAL, "rules": rules}


@dataclass(frozen=True, kw_only=True)
class BudgetSli(RatedSli):
    """A rated kind with an error budget and one burn-rate alert per enabled tier."""

    objective: float

    def burn_alert(self, spec: ServiceSpec, slo: Slo, tier: BurnTier) -> Rule:
        """The alert of one burn tier: both windows above factor x budget, enough traffic."""
        name = c.slo_alert_name(slo.name, c.ALERT_SUFFIX_BURN)
        factor, budget = number(tier.factor), number(slo.error_budget)
        sel = slo_selector(spec, slo)
        # Burn rates (error ratio over budget), the long window's first: the alert's
        # value, which its summary states (the factor is only the least that fires it).
        expr = (
            f"{c.sli_error_ratio_rule(tier.long_window)}{sel} / {budget} > {factor}\n"
            f"and\n{c.sli_error_ratio_rule(tier.short_window)}{sel} / {budget} > {factor}"
            f"{self.guard(spec, slo, tier.long_window)}"
        )
        windows = {c.LABEL_LONG_WINDOW: tier.long_window, c.LABEL_SHORT_WINDOW: tier.short_window}
        labels = alerting.alert_labels(spec, slo, tier.severity, **windows)
        notes = _burn_notes(spec, slo, tier, name, self.bad_share_words())
        return alerting.make_alert(name, expr, tier.for_, labels, notes)

    def burn_alerts(self, spec: ServiceSpec, slo: Slo) -> list[Rule]:
        """One burn alert per enabled tier, in spec order."""
        return [self.burn_alert(spec, slo, tier) for tier in self.tiers]

    def rate_pairs(self, spec: ServiceSpec, slo: Slo) -> Pairs:
        """The burn alerts and the error ratio above which each fires."""
        return [(self.burn_alert(spec, slo, t), burn_threshold(slo, t)) for t in self.tiers]


def _burn_notes(spec: ServiceSpec, slo: Slo, tier: BurnTier, name: str, bad: str) -> dict[str, str]:
    """Summary and description of a burn alert; ``bad`` names the share that burns
    (:meth:`RatedSli.bad_share_words`)."""
    exhaustion = _durations.humanize(spec.period_seconds / tier.factor)
    description = (
        f"{slo.description} {bad} is above "
        f"{alerting.percent(burn_threshold(slo, tier))} over both the last {tier.long_window} "
        f"and {tier.short_window}: {tier.factor:g} times the "
        f"{alerting.percent(slo.error_budget)} that the {slo.objective:.10g} % objective allows. "
        f"At that rate, the least that fires this alert, the {spec.period} error budget is "
        f"spent in {exhaustion}; a faster burn spends it sooner (the SLO dashboard and "
        "limone-obs status show the current rate)."
    )
    summary = (
        f"{spec.service} {slo.name}: error budget burning {unittests.BURN_VALUE}x too fast over "
        f"{tier.long_window} (fires from {tier.factor:g}x)"
    )
    return alerting.alert_annotations(slo, name, summary, description)


class CounterPair:
    """The SLI methods of a kind counting ``errors`` over ``total`` (two counters): put it
    before the kind's base class; the kind declares both fields."""

    errors: Selector
    total: Selector

    def selectors(self) -> Mapping[str, Selector]:
        """``errors`` and ``total``."""
        return {"errors": self.errors, "total": self.total}

    def events(self) -> Selector:
        """``total``."""
        return self.total

    def rates(self, window: str) -> tuple[str, str]:
        """Error counter rate (0 when missing) and total counter rate."""
        return counter_rates(self.errors, self.total, window)

    def live_queries(self, spec: ServiceSpec) -> list[tuple[str, str]]:
        """``total`` and ``errors``."""
        del spec
        return counter_queries(self.errors, self.total)

    def sample_series(self, spec: ServiceSpec, load: Traffic, length: int) -> list[dict[str, str]]:
        """A good and (when ``load`` has errors) a bad counter series."""
        return counter_series(spec, self.errors, self.total, load, length)


def counter_rates(errors: Selector, total: Selector, window: str) -> tuple[str, str]:
    """(bad, all) events per second of two counters; a missing error series counts as 0."""
    bad = f"(sum(rate({errors.promql()}[{window}])) or vector(0))"
    return bad, f"sum(rate({total.promql()}[{window}]))"


def counter_queries(errors: Selector, total: Selector) -> list[tuple[str, str]]:
    """The ``total`` and ``errors`` counters' selections, for ``check --prometheus``."""
    return [("total", total.promql()), ("errors", errors.promql())]


def counter_series(
    spec: ServiceSpec,
    errors: Selector,
    total: Selector,
    load: Traffic,
    length: int,
    *,
    instance: str = unittests.INSTANCE,
) -> list[dict[str, str]]:
    """Counters of a ratio/threshold SLO on one instance: good and bad series its
    selectors pick."""
    domains = Catalogue.of(spec.namespace).domain
    bad = samples.bad_labels(errors, total, domains) or {}
    good = samples.good_labels(errors, total, domains) or {}
    per_minute = load.rps * 60
    good_rate = per_minute * (1 - load.ratio) if errors.metric == total.metric else per_minute
    base = unittests.base_labels(spec, instance)
    found = [unittests.counter({**base, **good}, total.metric, good_rate, length)]
    if load.ratio > 0:
        found.append(
            unittests.counter({**base, **bad}, errors.metric, per_minute * load.ratio, length)
        )
    return found


def two_instances_scenario(
    spec: ServiceSpec, slo: Slo, sli: RatedSli, errors: Selector, total: Selector
) -> dict[str, Any]:
    """Two instances of the job, one answering only errors, the other only successes:
    the SLO's alerts fire once for the service (no ``instance`` label), as for one
    instance failing half of the requests."""
    pairs = sli.rate_pairs(spec, slo)
    rps = unittests.busy_rps(slo, pairs)
    load = Traffic(rps, 0.5)
    end = max(unittests.FIRST_RATE + unittests.minutes(r["for"]) for r, _ in pairs) + 2

    def series(load: Traffic, length: int) -> list[dict[str, str]]:
        half = load.rps / 2
        return [
            *counter_series(spec, errors, total, Traffic(half, 0.0), length),
            *counter_series(
                spec, errors, total, Traffic(half, 1.0), length, instance=unittests.SECOND_INSTANCE
            ),
        ]

    title = "two instances, one failing every request, alert once for the service"
    times = unittests.around_for(pairs, load, end)
    return unittests.scenario(spec, slo, pairs, title, load=load, times=times, series=series)


#: The phases every page view reports (the Core Web Vitals' fcp and lcp are not sent by
#: every browser, and a mark only by pages whose users do what it marks).
_EVERY_VIEW_PHASES: Final = (c.PHASE_TTFB, c.PHASE_DOM_CONTENT_LOADED, c.PHASE_LOAD)


def _unbeaconed(spec: ServiceSpec, events: Selector) -> str:
    """For a browser SLO on one phase every page view reports (the kit's
    ``<ns>_page_load_seconds_count`` with ``phase`` equal to one of
    :data:`_EVERY_VIEW_PHASES`): PromQL true (labelled as ``absent()`` would be) while its
    series have never counted a beacon though pages rendered the RUM tag over
    :data:`SLI_ABSENT_FOR`. Empty for any other SLI."""
    phase = next(
        (m.value for m in events.matchers if m.name == c.LABEL_PHASE and m.op == "="), None
    )
    if events.metric != spec.names.page_load_count or phase not in _EVERY_VIEW_PHASES:
        return ""
    # The labels absent() gives (its equality matchers'), and job, which the pages join on.
    own = ", ".join(dict.fromkeys([*(m.name for m in events.matchers if m.op == "="), c.LABEL_JOB]))
    # The SLI's own job matcher (the spec's job, or the one its selector names).
    job = ",".join(m.promql() for m in events.matchers if m.name == c.LABEL_JOB)
    pages = f"{spec.names.rum_pages_total}{{{job}}}"
    rendered = f"sum by ({c.LABEL_JOB}) (increase({pages}[{SLI_ABSENT_FOR}]))"
    return f"(sum by ({own}) ({events.promql()}) == 0\nand on ({c.LABEL_JOB})\n{rendered} > 0)"
