"""What the report reads from the SLO spec (pure, no I/O).

- :func:`roadmap`: the latency thresholds whose share of requests the report shows and
  the p95 chart draws: the committed threshold of the SLO on the request histogram, then
  its next stages.
- :func:`error_limits`: the lines of the 5xx chart: the error budget of every SLO whose
  SLI is the share of 5xx answers among the requests.
- :func:`plans` and :func:`row`: the SLO table. Every SLO of the spec gets a row with
  the numbers its recording rules allow, decided from the names those rules record (the
  kinds are never named here): the request-weighted SLI counted from the raw series over
  the window (the spec's selectors; from the recorded event rates for an SLO found only
  in Prometheus); else the lowest value of the one recorded error ratio (what a plain
  threshold alert compares with its objective); else, for an SLO without recording
  rules, the window's mean of the SLI ``limone-obs status`` shows. A number that cannot
  be read says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from limone_obs import conventions as c
from limone_obs.alerts.model import ServiceSpec, Slo, job_matcher
from limone_obs.alerts.selectors import Selector
from limone_obs.report.model import DEFAULT_ERROR_LIMITS, SloRow

#: The seed's latency roadmap (2 s -> 1 s -> 0.6 s), for a spec without a request latency SLO.
ROADMAP_THRESHOLDS: Final = (2.0, 1.0, 0.6)
#: The window of the recorded error ratio tried for an SLO not in a spec.
DEFAULT_RATIO_WINDOW: Final = c.SLI_WINDOWS[0]
#: How the SLI was read, shown beside it: the lowest recorded ratio, a raw series' mean,
#: the recorded 5-minute rates.
BASIS_RAW: Final = "mean over time"
BASIS_RECORDED: Final = "recorded 5m rates"
#: A threshold SLO's SLI in a window no longer than its alert's ratio window.
BASIS_COUNTED: Final = "the window's own"
#: The usual SLI, under the SLO table.
WEIGHTED_NOTE: Final = (
    "SLI: good events over all events in the window; of an SLO of the spec with an error "
    "budget, counted from the raw series over the window itself (the selectors of its "
    "rules)."
)


def basis_lowest(window: str) -> str:
    """The basis of an SLI that is the lowest recorded ``window`` ratio: ``lowest 5m``."""
    return f"lowest {window}"


@dataclass(frozen=True)
class Roadmap:
    """Latency thresholds in seconds, the committed one first, then the next stages; ``slo``
    names the spec's SLO they come from (None: the seed's roadmap, no such SLO).

    ``good`` and ``scope`` are the label matchers (PromQL, the job's left out: the report
    adds it) of the requests the SLO counts within a threshold and of all it counts: a
    share within a threshold is the SLO's own (``endpoint=~"/invoices/.*"``), not every
    request's. Empty: every request of the job.
    """

    thresholds: tuple[float, ...]
    slo: str | None
    good: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()


def roadmap(spec: ServiceSpec | None, namespace: str) -> Roadmap:
    """The roadmap of the spec's first SLO on the request histogram of ``namespace``
    (the seed's 2 s -> 1 s -> 0.6 s without a spec or without such an SLO)."""
    histogram = c.MetricNames(namespace).request_duration
    for slo in spec.slos if spec is not None else ():
        steps = slo.sli.roadmap(histogram)
        events = slo.sli.roadmap_events(histogram)
        if steps and events is not None:
            good, every = events
            return Roadmap(steps, slo.name, _matchers(good), _matchers(every))
    return Roadmap(ROADMAP_THRESHOLDS, None)


def _matchers(selector: Selector) -> tuple[str, ...]:
    """The selector's matchers as PromQL, without the job's (``endpoint=~"/a/.*"``)."""
    return tuple(m.promql() for m in selector.matchers if m.name != c.LABEL_JOB)


def error_limits(spec: ServiceSpec | None, namespace: str) -> tuple[tuple[float, str], ...]:
    """The 5xx chart's lines, ``(ratio, label)``: the error budget (``1 - objective``) of
    each SLO of the spec that counts 5xx answers (``status=~"5.."``) among all requests of
    ``namespace``'s request counter, as the chart does (the ``ratio`` and ``threshold``
    kinds); the seed's 1 % without a spec or without such an SLO."""
    counter = c.MetricNames(namespace).requests_total
    found = [
        (slo.error_budget, f"{_percent(slo.error_budget)}: {slo.name} SLO")
        for slo in (spec.slos if spec is not None else ())
        if _counts_5xx(slo, counter)
    ]
    return tuple(sorted(set(found), reverse=True)) or DEFAULT_ERROR_LIMITS


def _counts_5xx(slo: Slo, counter: str) -> bool:
    """True if ``slo``'s SLI is 5xx answers (``errors``) over all requests (``total``) of
    ``counter``: no label narrows either beyond the job and, for errors, the status."""
    errors, total = getattr(slo.sli, "errors", None), getattr(slo.sli, "total", None)
    if not isinstance(errors, Selector) or not isinstance(total, Selector):
        return False
    if slo.objective is None or errors.metric != counter or total.metric != counter:
        return False
    narrowing = {(m.name, m.op, m.value) for m in errors.matchers if m.name != c.LABEL_JOB}
    return narrowing == {(c.LABEL_STATUS, "=~", "5..")} and all(
        m.name == c.LABEL_JOB for m in total.matchers
    )


def _percent(ratio: float) -> str:
    """``0.001`` -> ``0.1 %``, ``0.01`` -> ``1 %`` (the spec's own digits, no padding)."""
    return f"{ratio * 100:g} %"


@dataclass(frozen=True)
class SloPlan:
    """How the report reads one SLO.

    - ``kind``: the spec's kind, for the reasons' wording ("" for an SLO found only in
      Prometheus);
    - ``objective``: the spec's objective as a ratio (None: none, or not in a spec);
    - ``recorded``: the names its recording rules record (None: unknown, try each);
    - ``ratio_window``: the window of the one error ratio it records without event rates;
    - ``raw_sli``: for an SLO without recording rules, PromQL of its SLI now (0..1);
    - ``window_sli``: for an SLO of the spec with an error budget, PromQL of its SLI over a
      window (``"360s"``) counted from the raw series (None: another kind, or not in the
      spec);
    - ``counted_sli``: the same for an SLO of the spec with a ``ratio_window`` (a
      threshold SLO), read for a report window no longer than that one (its recorded
      ratio at the window's end would reach back before the window).
    """

    name: str
    kind: str = ""
    objective: float | None = None
    recorded: frozenset[str] | None = None
    ratio_window: str | None = None
    raw_sli: str | None = None
    window_sli: Callable[[str], str] | None = field(default=None, compare=False)
    counted_sli: Callable[[str], str] | None = field(default=None, compare=False)

    def records(self, rule: str) -> bool:
        """True when its recording rules record ``rule`` (or when that is unknown)."""
        return self.recorded is None or rule in self.recorded

    @property
    def weighted(self) -> bool:
        """True when the request-weighted SLI can be read (the event rates are recorded)."""
        return self.records(c.RULE_BAD_EVENTS_RATE5M) and self.records(c.RULE_EVENTS_RATE5M)


def _plan(spec: ServiceSpec, slo: Slo, job: str | None) -> SloPlan:
    recorded = frozenset(
        rule["record"]
        for group in slo.sli.recording_groups(spec, slo)
        for rule in group["rules"]
        if "record" in rule
    )
    window = slo.sli.ratio_window()
    return SloPlan(
        name=slo.name,
        kind=slo.kind,
        objective=slo.target if slo.objective is not None else None,
        recorded=recorded,
        ratio_window=window if window and c.sli_error_ratio_rule(window) in recorded else None,
        raw_sli=slo.sli.unrecorded_sli(spec, slo),
        window_sli=_for_job(spec, job, lambda w: slo.sli.window_sli(spec, slo, w)),
        counted_sli=_for_job(spec, job, slo.sli.counted_sli),
    )


def _for_job(
    spec: ServiceSpec, job: str | None, sli: Callable[[str], str | None]
) -> Callable[[str], str] | None:
    """``sli`` (PromQL of an SLI over a window, from the spec's selectors) reading ``job``
    where its selectors read the spec's job (``--job`` names another); None for a kind
    without it (``sli`` gives None)."""
    if sli("5m") is None:
        return None
    own = job_matcher(spec.job).promql()
    mine = job_matcher(job).promql() if job else own

    def read(window: str) -> str:
        return str(sli(window)).replace(own, mine)

    return read


def plans(
    spec: ServiceSpec | None, found: Sequence[str] = (), job: str | None = None
) -> tuple[SloPlan, ...]:
    """The spec's SLOs in its order, then SLOs ``found`` in Prometheus (names of its
    objectives and alerts) that the spec does not have, read as best they can be.
    ``job``: the scrape job the report reads (the spec's when None)."""
    known = tuple(_plan(spec, slo, job) for slo in spec.slos) if spec is not None else ()
    names = {plan.name for plan in known}
    extra = sorted({name for name in found if name and name not in names})
    return (*known, *(SloPlan(name, ratio_window=DEFAULT_RATIO_WINDOW) for name in extra))


@dataclass(frozen=True)
class Read:
    """What Prometheus answered for one SLO: objective, SLI now and then (value, basis),
    budget left at the window's end, alerts fired; None where it had nothing."""

    objective: float | None
    now: tuple[float, str] | None
    then: tuple[float, str] | None
    budget_left: float | None
    fired: tuple[str, ...]


def row(plan: SloPlan, read: Read, *, baseline: bool) -> SloRow:
    """The SLO table's row of ``plan``: the numbers read, and why each missing one is."""
    objective = read.objective if read.objective is not None else plan.objective
    basis = _basis(read)
    note = _unloaded_note(plan) if _unloaded(plan, read) else _note(plan, basis)
    return SloRow(
        plan.name, objective, read.now[0] if read.now else None,
        read.then[0] if read.then else None, read.budget_left, read.fired, basis,
        _why(plan, read, objective, baseline=baseline), note,
    )  # fmt: skip


def _unloaded(plan: SloPlan, read: Read) -> bool:
    """True when the spec's rules of ``plan`` record its objective but Prometheus has no
    such series: the rules built from the spec are not loaded there."""
    return plan.records(c.RULE_OBJECTIVE) and plan.recorded is not None and read.objective is None


def _unloaded_note(plan: SloPlan) -> str:
    """The sentence under the table for an SLO of the spec whose rules are not loaded."""
    return (
        f"{plan.name}: Prometheus has none of its rules (its objective is not recorded): "
        'none of its alerts could fire, so its "alerts fired" says nothing. Load the rules '
        "built from this spec (limone-obs build, then reload Prometheus)."
    )


def _why(
    plan: SloPlan, read: Read, objective: float | None, *, baseline: bool
) -> Mapping[str, str]:
    kind = f"{plan.kind} SLO" if plan.kind else "no such rule"
    # Rules that record the objective but left no series: Prometheus lacks the rules.
    unloaded = _unloaded(plan, read)
    reasons: dict[str, str] = {}
    if objective is None:
        reasons["objective"] = f"none ({kind})" if plan.kind else "not recorded"
    sli = _why_sli(plan, unloaded)
    if read.now is None:
        reasons["sli_now"] = sli
    if read.then is None:
        # The baseline's own window, not the one the row is about.
        then = sli.replace("in the window", "in the baseline window")
        reasons["sli_then"] = then if baseline else "no baseline"
    if read.budget_left is None:
        budget = "not recorded at the window's end"
        if not plan.records(c.RULE_PERIOD_BUDGET_REMAINING):
            budget = f"no budget ({kind})"
        elif not plan.kind and _read_from_ratio(plan, read):
            # Not in a spec, and Prometheus records its error ratio but no event rates:
            # the rules of an SLO without a budget (a threshold SLO's).
            budget = "no budget (only its error ratio is recorded: a threshold SLO)"
        reasons["budget_left"] = "rules not loaded in Prometheus" if unloaded else budget
    return reasons


def _read_from_ratio(plan: SloPlan, read: Read) -> bool:
    """True when the SLI of ``read`` is the lowest recorded error ratio (no event rates)."""
    return plan.ratio_window is not None and _basis(read) == basis_lowest(plan.ratio_window)


def _basis(read: Read) -> str:
    """How the SLI of ``read`` was read (its basis), "" when it was not."""
    return (read.now or read.then or (0.0, ""))[1]


def _why_sli(plan: SloPlan, unloaded: bool) -> str:
    if unloaded and plan.window_sli is None:  # counted from the raw series, not the rules
        return "rules not loaded in Prometheus"
    if plan.window_sli or plan.weighted or plan.ratio_window or plan.raw_sli:
        return "no events in the window"
    return f"not recorded ({plan.kind} SLO)" if plan.kind else "not recorded"


def _note(plan: SloPlan, basis: str) -> str:
    """A sentence under the table for an SLI that is not the request-weighted one."""
    if plan.ratio_window and basis == basis_lowest(plan.ratio_window):
        window = plan.ratio_window
        return (
            f"{plan.name}: its rules record only the error ratio over {window}, no event "
            f"counts: the SLI shown is the lowest {window} value in the window, the one its "
            f"alert compares with the objective, from {window} into the window on (each "
            f"value is over the {window} before it). In a window no longer than {window} "
            f"it is the value at the window's end, over the {window} before it: it reaches "
            "back before the window (pass --spec to count the window's own events)."
        )
    if plan.ratio_window and basis == BASIS_COUNTED:
        return (
            f"{plan.name}: the window is no longer than the {plan.ratio_window} its alert "
            "reads: the SLI shown is the window's own good share, counted from the raw "
            f"series (the {plan.ratio_window} ratio at its end would reach back before it)."
        )
    if basis == BASIS_RECORDED:
        return (
            f"{plan.name}: no spec gives its selectors: the SLI shown is read from its "
            "recorded 5-minute rates, which also weigh in the 5 minutes before the window "
            "(in a window of a few minutes they lag the raw counts; pass --spec)."
        )
    if plan.raw_sli and basis == BASIS_RAW:
        return (
            f"{plan.name}: no recording rules: the SLI shown is the window's mean of "
            f"{plan.raw_sli}, which limone-obs status shows now."
        )
    return ""
