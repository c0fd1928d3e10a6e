"""Run the report's queries against Prometheus and fill the :class:`~.model.Report`."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from limone_obs import conventions as c
from limone_obs.alerts import _durations, alertmanager
from limone_obs.alerts.model import ServiceSpec
from limone_obs.conventions import MetricNames
from limone_obs.errors import ReportError
from limone_obs.report import queries as q
from limone_obs.report import slos
from limone_obs.report.model import (
    CARRIED,
    Component,
    LatencyStep,
    Report,
    Row,
    SloRow,
    Stats,
    Throughput,
    Timeline,
    judge,
    not_compared,
)
from limone_obs.report.prometheus import Prometheus
from limone_obs.report.window import Span

#: Points per chart line; the step of range queries follows from it.
CHART_POINTS: Final = 120
#: Scrape interval assumed when Prometheus does not say (its own default).
DEFAULT_SCRAPE_SECONDS: Final = 15.0
#: Longest sampling step of the peaks: the 1-minute rate must be seen at least every minute.
PEAK_STEP_MAX: Final = 60
#: Peaks are of this rate window (seconds): shorter in a shorter report window, and never
#: under four scrapes (see :func:`peak_rate_window`).
PEAK_RATE_WINDOW: Final = 60
#: Name of the time not spent in any tracked dependency.
OTHER: Final = "other"
#: The mark of an alert of the SLO table that Alertmanager held back (see :func:`_fired`).
INHIBITED: Final = "inhibited"
#: How a dependency named ``other`` is shown beside the time outside every dependency.
_DEPENDENCY_OTHER: Final = f"dependency {OTHER}"


class _Source:
    """The queries of one report, bound to Prometheus, the names and the job."""

    def __init__(self, prom: Prometheus, namespace: str, job: str, service: str) -> None:
        self.prom, self.names, self.job, self.service = prom, MetricNames(namespace), job, service
        self.scrape_seconds = prom.scrape_interval(job) or DEFAULT_SCRAPE_SECONDS

    def total(self, span: Span) -> float:
        expr = f"sum({q.counts(self.names, self.job, c.LABEL_JOB, span.seconds, dependency=False)})"
        return self.prom.scalar(expr, span.end) or 0.0

    def stats(self, span: Span, by: str, *, dependency: bool) -> dict[str, Stats]:
        n, job, secs = self.names, self.job, span.seconds
        counts = self.prom.by_label(q.counts(n, job, by, secs, dependency=dependency), by, span.end)
        bad = self.prom.by_label(q.failures(n, job, by, secs, dependency=dependency), by, span.end)
        qs = {
            level: self.prom.by_label(
                q.quantile(n, job, by, level, secs, dependency=dependency), by, span.end
            )
            for level in (0.5, 0.95, 0.99)
        }
        mean = self.prom.by_label(q.mean(n, job, by, secs, dependency=dependency), by, span.end)
        buckets = self.buckets(span, by, dependency=dependency)
        return {
            name: Stats(count, bad.get(name, 0.0), qs[0.5].get(name), qs[0.95].get(name),
                        qs[0.99].get(name), mean.get(name), buckets.get(name, ()))
            for name, count in counts.items()
            if count > 0
        }  # fmt: skip

    def buckets(
        self, span: Span, by: str, *, dependency: bool
    ) -> dict[str, tuple[tuple[float, float], ...]]:
        """Per ``by`` value: the histogram's ``(le, cumulative count)`` in ``span``, ascending."""
        expr = q.buckets(self.names, self.job, by, span.seconds, dependency=dependency)
        found: dict[str, list[tuple[float, float]]] = {}
        for sample in self.prom.instant(expr, span.end):
            le = sample.labels.get(c.LABEL_LE)
            if le is not None and not math.isnan(sample.value):
                found.setdefault(sample.labels.get(by, ""), []).append((float(le), sample.value))
        return {name: tuple(sorted(pairs)) for name, pairs in found.items()}


def _rows(
    src: _Source, window: Span, baseline: Span | None, by: str, *, dependency: bool
) -> tuple[Row, ...]:
    now = src.stats(window, by, dependency=dependency)
    then = src.stats(baseline, by, dependency=dependency) if baseline else {}
    # Endpoints: share of the requests; dependencies: of the time in calls (count x the
    # exact mean), what "where the time goes" asks: one AI call outweighs many queries.
    weight = {n: s.count * (s.mean or 0.0) if dependency else s.count for n, s in now.items()}
    total = sum(weight.values()) or 1.0
    ordered = sorted(now.items(), key=lambda item: (-weight[item[0]], item[0]))
    # A name without requests in a baseline window has a baseline: with none in it.
    before = {name: then.get(name, Stats.none()) if baseline else None for name in now}
    return tuple(
        Row(name, stats, before[name], weight[name] / total, judge(stats, before[name]))
        for name, stats in ordered
    )


def _breakdown(
    src: _Source,
    window: Span,
    baseline: Span | None,
    requests: tuple[float, float | None],
    dependencies: tuple[Row, ...],
) -> tuple[Component, ...]:
    """Seconds per request in each dependency and in none (``other``), now and then.

    Compared under the verdicts' rule (:func:`~.model.not_compared`): ``other`` on the
    ``requests`` of each window, a dependency on its calls as well (its row in
    ``dependencies``).
    """
    calls = {r.name: (r.now.count, r.then.count if r.then else 0.0) for r in dependencies}

    def why(name: str) -> str | None:
        now, then = requests
        if name != OTHER:
            dependency = OTHER if name == _DEPENDENCY_OTHER else name
            now = min(now, calls.get(dependency, (0.0, 0.0))[0])
            then = None if then is None else min(then, calls.get(dependency, (0.0, 0.0))[1])
        return not_compared(now, then)

    def parts(span: Span | None) -> dict[str, float]:
        if span is None:
            return {}
        spent = src.prom.by_label(
            q.time_per_request(src.names, src.job, span.seconds), c.LABEL_DEPENDENCY, span.end
        )
        if OTHER in spent:  # a dependency named so: kept beside the time outside them all
            spent[_DEPENDENCY_OTHER] = spent.pop(OTHER)
        other = q.outside_dependencies(src.names, src.job, span.seconds)
        outside = src.prom.scalar(other, span.end)
        if outside is not None:
            spent[OTHER] = outside
        return spent

    now, then = parts(window), parts(baseline)
    # A dependency of the baseline only keeps its row (its time went somewhere: a cache
    # that stopped being used, an AI call that now fails at once), as in the per-endpoint
    # table.
    gone = sorted(set(then) - set(now) - {OTHER}, key=lambda name: -then[name])
    names = [*sorted(set(now) - {OTHER}, key=lambda name: -now[name]), *gone, OTHER]
    return tuple(
        Component(name, now.get(name), then.get(name), why(name))
        for name in names
        if name in now or name in then
    )


#: Calls of no request worth a note: at least this share of a dependency's time in the
#: window and OUTSIDE_MIN_SECONDS (calls of requests still running at the window's end
#: are charged only when those end: up to the longest request's duration).
OUTSIDE_MIN_SHARE: Final = 0.1
OUTSIDE_MIN_SECONDS: Final = 5.0


def _outside_notes(src: _Source, window: Span) -> list[str]:
    """A note per dependency whose calls in ``window`` were largely of no request."""
    spent = src.prom.by_label(
        q.dependency_seconds(src.names, src.job, window.seconds), c.LABEL_DEPENDENCY, window.end
    )
    outside = src.prom.by_label(
        q.outside_requests(src.names, src.job, window.seconds), c.LABEL_DEPENDENCY, window.end
    )
    return outside_notes(spent, outside, window.label())


def outside_notes(spent: Mapping[str, float], outside: Mapping[str, float], when: str) -> list[str]:
    """Notes on the dependencies whose call time ``spent`` in the window ``when`` was, for
    ``outside`` seconds of it, of no request: the breakdown leaves that time out."""
    notes = []
    for name in sorted(outside):
        seconds, total = outside[name], spent.get(name, 0.0)
        if seconds < OUTSIDE_MIN_SECONDS or seconds < OUTSIDE_MIN_SHARE * total:
            continue
        notes.append(
            f"{name}: {seconds:.0f} s of its {total:.0f} s of calls in {when} were made "
            "outside any request (background work, thread-pool work submitted without "
            "the request's context: limone_obs.context.submit carries it, requests to "
            "excluded paths, or long requests still running at the window's end); the "
            "time per request leaves them out."
        )
    return notes


#: Endpoints a "began within the window" note names; the others are only counted.
BEGAN_NAMED: Final = 5


def _began_notes(src: _Source, span: Span | None) -> list[str]:
    """A note on the endpoints whose request series began within ``span``, or started
    again at its start (:func:`~.queries.began`: a deploy, a restart, a first request or
    a first answer of a status, which it names): their counts may lack the requests
    before the series' first scrape."""
    if span is None:
        return []
    statuses: dict[str, list[str]] = {}
    for sample in src.prom.instant(q.began(src.names, src.job, span.seconds), span.end):
        labels = sample.labels
        statuses.setdefault(labels.get(c.LABEL_ENDPOINT, ""), []).append(
            labels.get(c.LABEL_STATUS, "?")
        )
    if not statuses:
        return []
    found = [f"{name} ({', '.join(sorted(codes))})" for name, codes in sorted(statuses.items())]
    named = ", ".join(found[:BEGAN_NAMED]) + (
        f" and {len(found) - BEGAN_NAMED} more" if len(found) > BEGAN_NAMED else ""
    )
    return [
        f"Request series of {len(found)} endpoint(s) began within {span.label()}, or "
        f"started again at its start ({named}, by status): at a deploy or a restart, at an "
        "endpoint's first request, or at its first answer of a status (a first 500). "
        "Prometheus cannot count what such a series served before its first scrape (a "
        f"scrape interval of traffic, {src.scrape_seconds:.0f} s, or more: a scrape during "
        "a boot may fail), so their request counts may read low, and calls they made may "
        "show as made outside any request. A window starting 10 s before a deploy counts "
        "the series that existed before it whole."
    ]


#: Restarts named per instance, and instances named, in the restart note.
RESTARTS_NAMED: Final = 5


def restart_times(
    points: tuple[tuple[float, float], ...], step: float, reach: float
) -> list[tuple[float, float]]:
    """The spans ``(from, to)`` holding one restart each, from a range query of
    :func:`~.queries.restarts` over ``reach`` seconds every ``step`` seconds (``reach`` at
    least a step and two scrapes: a range holds the sample before its step).

    A point above 0 whose step before read 0 starts a restart: its first sample after
    the restart lies in the point's last step (the earlier range did not hold it), the
    restart itself at most ``reach - step`` before that. Later points still holding it
    (their ranges overlap) are the same restart.
    """
    found: list[tuple[float, float]] = []
    previous_t, previous_v = -math.inf, 0.0
    for t, v in points:
        if v > 0 and (previous_v <= 0 or t - previous_t > 1.5 * step):
            found.append((t - reach, t))
        previous_t, previous_v = t, v
    return found


def _restart_notes(src: _Source, span: Span | None) -> list[str]:
    """A note naming the instances that restarted within ``span`` (their request counters
    started again from 0) and about when: ``increase()`` counts across a restart, but not
    what a process served after its last scrape before it."""
    if span is None:
        return []
    counted = src.prom.by_label(
        q.restarts(src.names, src.job, span.seconds), c.LABEL_INSTANCE, span.end
    )
    restarted = sorted(name for name, n in counted.items() if n > 0)
    if not restarted:
        return []
    step = max(src.scrape_seconds, span.seconds / CHART_POINTS)
    reach = math.ceil(step + 2 * src.scrape_seconds)
    # Every range inside the window, as the instant query's: a restart between the
    # window's first sample and the one before it is the "started again" note's.
    first = span.start + reach
    matrix = (
        src.prom.range(q.restarts(src.names, src.job, reach), first, span.end, step)
        if first <= span.end
        else []
    )
    times = {s.labels.get(c.LABEL_INSTANCE, ""): restart_times(s.points, step, reach)
             for s in matrix}  # fmt: skip
    named = [_restarts_of(name, times.get(name, []), span) for name in restarted]
    more = len(named) - RESTARTS_NAMED
    listed = "; ".join(named[:RESTARTS_NAMED]) + (f"; and {more} more" if more > 0 else "")
    return [
        f"Restarted within {span.label()} (request counters started again from 0): "
        f"{listed}. increase() counts across a restart, but not the requests a process "
        f"served after its last scrape before it (up to a scrape interval of traffic, "
        f"{src.scrape_seconds:.0f} s). A worker that exits or is recycled is no restart "
        "here: the multiprocess storage keeps its counts."
    ]


def _restarts_of(instance: str, spans: list[tuple[float, float]], window: Span) -> str:
    """``instance a:1 between 08:41:10 and 08:41:40`` for each restart found (UTC)."""
    clock = "%H:%M:%S" if window.seconds <= 2 * 86400 else "%d %b %H:%M:%S"
    shown = [
        f"between {time.strftime(clock, time.gmtime(max(lo, window.start)))} and "
        f"{time.strftime(clock, time.gmtime(hi))}"
        for lo, hi in spans[:RESTARTS_NAMED]
    ]
    if len(spans) > RESTARTS_NAMED:
        shown.append(f"{len(spans) - RESTARTS_NAMED} more")
    return f"instance {instance}" + (f" {', '.join(shown)} UTC" if shown else "")


#: The key of an endpoint's time outside every dependency (no dependency label is empty:
#: track() records an empty name as ``<other>``), shown as :data:`OTHER`.
_OUTSIDE: Final = ""


def _calls(
    src: _Source, window: Span, baseline: Span | None, endpoints: tuple[Row, ...]
) -> tuple[Component, ...]:
    """Calls per request of each endpoint to each dependency, now and then, compared on
    the endpoint's requests of each window (:func:`~.model.not_compared`)."""

    def per_pair(span: Span | None) -> dict[tuple[str, str], float]:
        if span is None:
            return {}
        return _by_endpoint(src, q.calls_per_request(src.names, src.job, span.seconds), span)

    now, then = per_pair(window), per_pair(baseline)
    return _endpoint_rows(sorted(set(now) | set(then)), now, then, endpoints, baseline)


def _endpoint_breakdown(
    src: _Source, window: Span, baseline: Span | None, endpoints: tuple[Row, ...]
) -> tuple[Component, ...]:
    """Seconds per request of each endpoint in each dependency and in none (``other``),
    now and then, compared on the endpoint's requests of each window
    (:func:`~.model.not_compared`); each endpoint's parts by time, ``other`` last."""

    def per_part(span: Span | None) -> dict[tuple[str, str], float]:
        if span is None:
            return {}
        spent = q.endpoint_time_per_request(src.names, src.job, span.seconds)
        other = q.endpoint_outside_dependencies(src.names, src.job, span.seconds)
        return {
            **_by_endpoint(src, spent, span),
            **_by_endpoint(src, other, span, part=_OUTSIDE),
        }

    now, then = per_part(window), per_part(baseline)

    def order(pair: tuple[str, str]) -> tuple[str, bool, float]:
        endpoint, part = pair
        return endpoint, part == _OUTSIDE, -now.get(pair, 0.0)

    pairs = sorted(set(now) | set(then), key=order)
    return _endpoint_rows(pairs, now, then, endpoints, baseline)


def _by_endpoint(
    src: _Source, expr: str, span: Span, part: str | None = None
) -> dict[tuple[str, str], float]:
    """``expr``'s samples at the end of ``span`` by (endpoint, dependency), or by
    (endpoint, ``part``) when given; NaN (0 / 0) left out."""
    return {
        (
            s.labels.get(c.LABEL_ENDPOINT, ""),
            s.labels.get(c.LABEL_DEPENDENCY, "") if part is None else part,
        ): s.value
        for s in src.prom.instant(expr, span.end)
        if not math.isnan(s.value)
    }


def _endpoint_rows(
    pairs: list[tuple[str, str]],
    now: Mapping[tuple[str, str], float],
    then: Mapping[tuple[str, str], float],
    endpoints: tuple[Row, ...],
    baseline: Span | None,
) -> tuple[Component, ...]:
    """One row per (endpoint, part), in the order of ``pairs``, compared on the
    endpoint's requests of each window; the outside part is shown as ``other``, a
    dependency named so as ``dependency other``."""
    counts = {r.name: (r.now.count, r.then.count if r.then else 0.0) for r in endpoints}
    rows = []
    for endpoint, part in pairs:
        requests = counts.get(endpoint, (0.0, 0.0))
        why = not_compared(requests[0], None if baseline is None else requests[1])
        shown = OTHER if part == _OUTSIDE else _DEPENDENCY_OTHER if part == OTHER else part
        pair = (endpoint, part)
        rows.append(Component(f"{endpoint} {shown}", now.get(pair), then.get(pair), why))
    return tuple(rows)


def _unfinished_note(window: Span, now: float) -> list[str]:
    """A note when ``window`` ends after ``now`` (``--to`` a little ahead, accepted for
    clocks that differ): its last seconds' requests are not in Prometheus yet, so its
    counts read low and its verdicts may change."""
    if window.end <= now:
        return []
    return [
        f"The window {window.label()} ends {window.end - now:.0f} s after this report was "
        "made: its last requests are not counted yet (counts read low, verdicts may "
        "change). Make the report again once it has ended and Prometheus has scraped."
    ]


def _fired(src: _Source, window: Span, spec: ServiceSpec | None) -> dict[str, tuple[str, ...]]:
    """``alertname (severity)`` of the alerts firing in the window, by their SLO; with a
    spec, ``alertname (severity, inhibited)`` for one seen firing only while an alert
    inhibiting it in the kit's Alertmanager config (built from the spec, for the report's
    service) fired (:func:`~limone_obs.report.queries.alerts_inhibited`); ``..., firing
    at the window's start)`` for one that began before the window (not new in it)."""
    fired: dict[str, list[str]] = {}
    found = src.prom.instant(q.alerts_fired(src.service, window.seconds), window.end)
    held: set[tuple[str, str, str]] = set()
    carried: set[tuple[str, str, str]] = set()
    # Every rule evaluation, where known: ALERTS gets a sample at each.
    step = src.prom.rule_interval(src.service) or src.scrape_seconds if found else 0.0
    rules = _inhibit_rules(spec, src.service) if found and spec is not None else []
    if rules:
        expr = q.alerts_inhibited(src.service, window.seconds, step, rules)
        held = {_alert_key(s.labels) for s in src.prom.instant(expr, window.end)}
    if found:
        expr = q.alerts_firing_at(src.service, math.ceil(1.5 * step))
        carried = {_alert_key(s.labels) for s in src.prom.instant(expr, window.start)}
    for sample in found:
        labels = sample.labels
        key = _alert_key(labels)
        mark = (f", {INHIBITED}" if key in held else "") + (
            f", {CARRIED}" if key in carried else ""
        )
        text = f"{labels.get('alertname', '?')} ({labels.get(c.LABEL_SEVERITY, '?')}{mark})"
        fired.setdefault(labels.get(c.LABEL_SLO, ""), []).append(text)
    return {name: tuple(sorted(texts)) for name, texts in fired.items()}


def _inhibit_rules(spec: ServiceSpec, service: str) -> list[dict[str, Any]]:
    """The spec's inhibit rules for ``service`` (``--service`` may name another than the
    spec's: its alerts are those read)."""
    own = f'{c.LABEL_SLO_SERVICE}="{spec.service}"'
    mine = f'{c.LABEL_SLO_SERVICE}="{service}"'
    return [
        {**rule, **{side: [m.replace(own, mine) for m in rule[side]]
                    for side in ("source_matchers", "target_matchers")}}
        for rule in alertmanager.inhibit_rules(spec)
    ]  # fmt: skip


def _alert_key(labels: Mapping[str, str]) -> tuple[str, str, str]:
    return (labels.get("alertname", ""), labels.get(c.LABEL_SLO, ""),
            labels.get(c.LABEL_SEVERITY, ""))  # fmt: skip


def _inhibited_note(fired: Mapping[str, tuple[str, ...]]) -> list[str]:
    """A note when an alert of the window is marked inhibited, and one when an alert is
    marked as firing at the window's start (:func:`_fired`)."""
    texts = [text for texts in fired.values() for text in texts]
    notes = (
        [
            f"Alerts marked '{CARRIED}' began before the window and were still firing when "
            "it began: they are not new in it (the summary's pages are those that began in "
            "the window)."
        ]
        if any(f", {CARRIED}" in text for text in texts)
        else []
    )
    if not any(f", {INHIBITED}" in text for text in texts):
        return notes
    return [
        *notes,
        f"Alerts marked '{INHIBITED}' fired only while an alert that silences them in the "
        "kit's Alertmanager config (alerts/alertmanager.yml, built from the spec: e.g. an SLO's "
        "page silences its ticket) fired too: an Alertmanager with that config held them "
        "back in the window (it sends one once the alert silencing it resolves, if it "
        "still fires then). An unmarked alert may have been held back too: one that fired "
        "alone for less than the route's group_wait before its page.",
    ]


def _slis(
    src: _Source, span: Span | None, plans: tuple[slos.SloPlan, ...]
) -> dict[str, tuple[float, str]]:
    """Each SLO's SLI over ``span`` and how it was read (:mod:`.slos`); absent if unknown.

    An SLO of the spec with an error budget is counted from the raw series over ``span``
    itself; another with event rates recorded (one found only in Prometheus) from those
    (read once for all); else from its lowest recorded error ratio, else from the mean of
    its raw SLI."""
    if span is None:
        return {}
    weighted: dict[str, float] = {}
    if any(plan.weighted and plan.window_sli is None for plan in plans):
        weighted = src.prom.by_label(q.slo_sli(src.service, span.seconds), c.LABEL_SLO, span.end)
    step = max(1, round(src.scrape_seconds))
    found: dict[str, tuple[float, str]] = {}
    for plan in plans:
        value, basis = None, ""
        if plan.window_sli is not None:
            value = src.prom.scalar(plan.window_sli(f"{span.seconds}s"), span.end)
        elif plan.weighted and plan.name in weighted:
            value, basis = weighted[plan.name], slos.BASIS_RECORDED
        elif (
            plan.counted_sli is not None
            and plan.ratio_window
            and span.seconds <= (_durations.seconds(plan.ratio_window))
        ):
            # Its recorded ratio at the window's end would reach back before the window.
            value = src.prom.scalar(plan.counted_sli(f"{span.seconds}s"), span.end)
            basis = slos.BASIS_COUNTED
        elif plan.ratio_window:
            expr = q.slo_lowest(src.service, plan.name, plan.ratio_window, span.seconds)
            value, basis = src.prom.scalar(expr, span.end), slos.basis_lowest(plan.ratio_window)
        elif plan.raw_sli:
            expr = q.mean_over_time(plan.raw_sli, span.seconds, step)
            value, basis = src.prom.scalar(expr, span.end), slos.BASIS_RAW
        if value is not None:
            found[plan.name] = (value, basis)
    return found


def _slos(
    src: _Source,
    window: Span,
    baseline: Span | None,
    spec: ServiceSpec | None,
    fired: Mapping[str, tuple[str, ...]],
) -> tuple[SloRow, ...]:
    """Every SLO of the spec (then any other Prometheus knows) with what can be read;
    ``fired`` is :func:`_fired`'s answer for the window."""
    prom, service = src.prom, src.service
    objectives = prom.by_label(q.slo_objectives(service), c.LABEL_SLO, window.end)
    plans = slos.plans(spec, [*objectives, *fired], src.job)
    budget = _budgets(src, window, plans, spec)
    now, then = _slis(src, window, plans), _slis(src, baseline, plans)
    return tuple(
        slos.row(plan, slos.Read(objectives.get(plan.name), now.get(plan.name),
                                 then.get(plan.name), budget.get(plan.name),
                                 fired.get(plan.name, ())), baseline=baseline is not None)
        for plan in plans
    )  # fmt: skip


#: What the note of an SLO whose rules Prometheus lacks says (:func:`.slos.row`).
_UNLOADED: Final = "Prometheus has none of its rules"


def _other_services_note(
    src: _Source, window: Span, spec: ServiceSpec | None, rows: tuple[SloRow, ...]
) -> list[str]:
    """With a spec none of whose SLOs Prometheus records for the report's service while it
    records SLOs of other services (``--service`` naming another than the rules'): a note
    naming those, instead of each row's advice to load rules that are loaded."""
    if spec is None or not any(_UNLOADED in row.note for row in rows):
        return []
    if src.prom.instant(q.slo_objectives(src.service), window.end):
        return []  # some of the service's rules are loaded: the rows say which are not
    services = src.prom.by_label(q.slo_services(), c.LABEL_SLO_SERVICE, window.end)
    others = sorted(name for name in services if name and name != src.service)
    if not others:
        return []
    return [
        f"Prometheus has no SLO rules of service {src.service!r}, but rules of "
        f"{', '.join(map(repr, others))} ({c.LABEL_SLO_SERVICE} label): pass --service with "
        f"one of them, or leave --service out to read the spec's ({spec.service!r}). The "
        "SLO table's alerts fired (none) and what it reads from the rules are of that "
        "service."
    ]


def _budgets(
    src: _Source, window: Span, plans: tuple[slos.SloPlan, ...], spec: ServiceSpec | None
) -> dict[str, float]:
    """Each SLO's error budget left at the window's end: of an SLO of the spec with a
    budget, from its SLI over the period counted from the raw series up to that moment
    (the recorded budget, from 5-minute rates, lags the last minutes' events: an
    incident's budget read a third too high at its end); else the recorded one."""
    recorded = src.prom.by_label(q.slo_budget_left(src.service), c.LABEL_SLO, window.end)
    if spec is None:
        return recorded
    found = dict(recorded)
    for plan in plans:
        if plan.window_sli is None or plan.objective is None or plan.objective >= 1:
            continue
        try:
            sli = src.prom.scalar(plan.window_sli(f"{spec.period_seconds}s"), window.end)
        except ReportError:  # a Prometheus refusing a period of raw series: the recorded one
            continue
        if sli is not None:
            found[plan.name] = 1 - (1 - sli) / (1 - plan.objective)
    return found


def _no_requests(src: _Source, window: Span) -> str:
    """Why the report of ``window`` has no request to show: the job's request series
    exist (the window saw too few scrapes of them to count one: ``increase()`` counts the
    rise between samples, not what the first sample already holds), or they do not."""
    job = f"{c.LABEL_JOB}={c.promql_string(src.job)}"
    series = src.prom.scalar(f"count({src.names.requests_total}{{{job}}})", window.end)
    where = f"Prometheus at {src.prom.url}"
    if series:
        return (
            f"{where} holds requests of job={src.job!r} but counted none in "
            f"{window.label()}: no request arrived then, or the window holds too few "
            f"scrapes of them (about {src.scrape_seconds:g} s apart; what the first one "
            "already holds is not counted). Widen the window (--from), or send traffic "
            "for longer"
        )
    return (
        f"{where} has no requests of job={src.job!r} in {window.label()}: check --job "
        "and --namespace, the time window, and that Prometheus scraped the app then"
    )


def _history_note(src: _Source, window: Span, spec: ServiceSpec | None) -> list[str]:
    """A note when Prometheus holds less of the job than the SLO period up to the
    window's end: the budgets left are over that time alone (a budget of -600 % after a
    6-minute incident on a fresh Prometheus is not six periods' budget)."""
    if spec is None:
        return []
    held = _held_seconds(src, spec.period_seconds, window.end)
    if held is None or held >= 0.95 * spec.period_seconds:
        return []
    return [
        f"Prometheus holds about {_durations.humanize(max(held, 60.0))} of job {src.job!r} "
        f"up to the window's end, less than the SLO period ({spec.period}): the budgets "
        "left are over that time alone, as if it were the whole period."
    ]


#: A window the job's scrapes cover less of than this share gets a note (:func:`coverage_note`).
COVERED_SHARE: Final = 0.9


def _coverage_note(src: _Source, window: Span, what: str = "window") -> list[str]:
    """A note when Prometheus has scrapes of the job over only part of ``window`` (the
    report's ``what``: window or baseline)."""
    held = _held_seconds(src, window.seconds, window.end)
    return coverage_note(held, window.seconds, src.job, what)


def _held_seconds(src: _Source, seconds: int, end: float) -> float | None:
    """Seconds of the ``seconds`` up to ``end`` in which Prometheus has a scrape of the
    job (any target: replaced pods count too), to a scrape interval; None when it has
    none or refuses the subquery (a period-long one: no note then, no failure)."""
    # A step a scrape interval: at whole minutes, a young Prometheus had none before its first.
    job, step = f"{c.LABEL_JOB}={c.promql_string(src.job)}", max(1, round(src.scrape_seconds))
    expr = f"count_over_time(count(up{{{job}}})[{seconds}s:{step}s]) * {step}"
    try:
        return src.prom.scalar(expr, end)
    except ReportError:
        return None


def coverage_note(held: float | None, seconds: int, job: str, what: str = "window") -> list[str]:
    """The note for a ``what`` (the report's window or baseline) of ``seconds`` of which
    Prometheus has scrapes of ``job`` over ``held`` seconds: none when it covers nearly
    all (or none: that window says so on its own)."""
    if not held or held >= COVERED_SHARE * seconds:
        return []
    compared = (
        " (a change against it, in rates or throughput, is partly the missing time)"
        if what == "baseline"
        else ""
    )
    return [
        f"Prometheus has scrapes of job {job!r} over about {_durations.humanize(held)} of "
        f"the {what}'s {_durations.humanize(seconds)} (before its data starts, or while the "
        f"job was not scraped): the {what}'s request rates count the rest as no "
        f"traffic{compared}, the share of scrapes up is of the scraped part alone, and what "
        "the job served then, if it ran, is in no count."
    ]


def _steps(
    src: _Source, window: Span, baseline: Span | None, roadmap: slos.Roadmap
) -> tuple[LatencyStep, ...]:
    def share(threshold: float, span: Span | None) -> float | None:
        if span is None:
            return None
        expr = q.within(
            src.names, src.job, threshold, span.seconds, good=roadmap.good, scope=roadmap.scope
        )
        return src.prom.scalar(expr, span.end)

    return tuple(LatencyStep(t, share(t, window), share(t, baseline)) for t in roadmap.thresholds)


def peak_rate_window(span_seconds: int, scrape_seconds: float) -> int:
    """Seconds of the rate window of the peak rate in a report window of ``span_seconds``.

    A minute, but never longer than the report window: a longer rate window reaches back
    before it and averages the window's traffic with what came before (in a 45 s run,
    with the idle time before the load: the "peak" came out below the average). Never
    under four scrapes, which a rate needs to see more than one increase.
    """
    return max(min(PEAK_RATE_WINDOW, span_seconds), round(4 * scrape_seconds))


def _throughput(src: _Source, window: Span, baseline: Span | None) -> Throughput:
    rate_window = peak_rate_window(window.seconds, src.scrape_seconds)

    def three(span: Span | None) -> tuple[float | None, float | None, float | None]:
        if span is None:
            return None, None, None
        n, job, secs = src.names, src.job, span.seconds
        # Sampled at least every minute: a one-minute peak between samples is not missed.
        step = max(1, min(PEAK_STEP_MAX, secs // CHART_POINTS))
        return (
            src.prom.scalar(q.average_rate(n, job, secs), span.end),
            src.prom.scalar(q.peak_rate(n, job, secs, step, rate_window), span.end),
            src.prom.scalar(q.peak_in_flight(n, job, secs, step), span.end),
        )

    now, then = three(window), three(baseline)
    return Throughput(now[0], then[0], now[1], then[1], now[2], then[2], rate_window)


def _series(src: _Source, expr: str, span: Span | None) -> tuple[tuple[float, float], ...]:
    if span is None:
        return ()
    step = max(1.0, (span.end - span.start) / CHART_POINTS)
    result = src.prom.range(expr, span.start, span.end, step)
    if not result:
        return ()
    return tuple((t - span.start, v) for t, v in result[0].points)


def _timeline(
    src: _Source, window: Span, baseline: Span | None, scope: tuple[str, ...]
) -> Timeline:
    """The charts' series; the p95 is of the requests the latency roadmap's SLO counts
    (``scope``), since the chart draws that SLO's thresholds."""
    # Four scrapes at least (a rate needs two samples), else as wide as two chart steps;
    # a fixed minute would draw a steady load of a short run as a ramp from zero.
    rate_window = max(round(4 * src.scrape_seconds), 2 * window.seconds // CHART_POINTS)
    n, job = src.names, src.job
    exprs = (q.rate_series(n, job, rate_window), q.p95_series(n, job, rate_window, scope),
             q.error_series(n, job, rate_window))  # fmt: skip
    rate, p95, errors = ((_series(src, e, window), _series(src, e, baseline)) for e in exprs)
    return Timeline(rate[0], rate[1], p95[0], p95[1], errors[0], errors[1])


def collect(
    prom: Prometheus,
    *,
    job: str,
    service: str,
    namespace: str,
    window: Span,
    baseline: Span | None,
    spec: ServiceSpec | None = None,
) -> Report:
    """Query Prometheus for ``window`` (and ``baseline``) and return the report's data.

    Raises ReportError when Prometheus cannot be reached or holds no request of ``job``
    in the window; a baseline window without data is said in a note (its rows are too
    few to compare). ``spec`` (optional) lists the SLOs of the table (every one gets a
    row; without a spec, those Prometheus has rules or alerts of) and gives the latency
    roadmap: the share of requests within its request latency SLO's committed threshold
    and stages (every one a bucket boundary), else within the seed's 2 s, 1 s and 0.6 s;
    and the 5xx chart's lines: the error budgets of its SLOs on the 5xx share, else 1 %.
    """
    plan = slos.roadmap(spec, namespace)
    src = _Source(prom, namespace, job, service)
    requests = src.total(window), src.total(baseline) if baseline else None
    if requests[0] <= 0:
        raise ReportError(_no_requests(src, window))
    notes = _unfinished_note(window, time.time())
    if baseline is not None and not requests[1]:
        # Kept as the baseline: its rows read "too few to compare", like any sparse one.
        notes.append(f"The baseline {baseline.label()} has no requests: nothing to compare.")
    dependencies = _rows(src, window, baseline, c.LABEL_DEPENDENCY, dependency=True)
    fired = _fired(src, window, spec)
    slo_rows = _slos(src, window, baseline, spec, fired)
    elsewhere = _other_services_note(src, window, spec, slo_rows)
    if elsewhere:  # the rows' "load the rules" advice would be wrong: they are loaded
        slo_rows = tuple(replace(r, note="") if _UNLOADED in r.note else r for r in slo_rows)
        notes += elsewhere
    # Kit-health alerts (TrafficStopped, WorkersSaturated...) have no SLO, so no row.
    if fired.get(""):
        notes.append(
            f"Kit-health alerts fired in {window.label()} (no SLO row of their own): "
            f"{', '.join(fired[''])}."
        )
    notes += _inhibited_note(fired)
    notes += _coverage_note(src, window)
    if baseline is not None and requests[1]:  # else a note says the baseline is empty
        notes += _coverage_note(src, baseline, "baseline")
    notes += _history_note(src, window, spec)
    notes += _outside_notes(src, window)
    notes += _began_notes(src, window) + _began_notes(src, baseline)
    notes += _restart_notes(src, window)
    if not slo_rows:  # only without a spec: a spec's SLOs always get rows
        notes.append(
            f"No SLO: Prometheus has no SLO rule or alert of service {service!r} (their "
            f"{c.LABEL_SLO_SERVICE} label). Pass --service with the service of your SLO "
            "spec, or --spec."
        )
    endpoints = _rows(src, window, baseline, c.LABEL_ENDPOINT, dependency=False)
    return Report(
        prometheus=prom.url, job=job, service=service, window=window, baseline=baseline,
        generated=time.time(),
        endpoints=endpoints, calls=_calls(src, window, baseline, endpoints),
        endpoint_breakdown=_endpoint_breakdown(src, window, baseline, endpoints),
        dependencies=dependencies,
        breakdown=_breakdown(src, window, baseline, requests, dependencies),
        slos=slo_rows,
        steps=_steps(src, window, baseline, plan), roadmap_slo=plan.slo,
        roadmap_scope=", ".join(plan.scope),
        error_limits=slos.error_limits(spec, namespace),
        throughput=_throughput(src, window, baseline),
        timeline=_timeline(src, window, baseline, plan.scope), notes=tuple(notes),
    )  # fmt: skip
