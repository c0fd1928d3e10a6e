"""promtool unit tests generated for every alert of the spec (pure).

Each SLO gets ``alerts/tests/generated/<slo>.yml`` with scenarios built from its own
selectors, objective, tiers and minimum rate:

- burn-rate SLOs: a fast burn fires the page tier(s), then every tier, a slow burn only
  the tickets, each checked one minute before and after its ``for``; healthy traffic and
  traffic below the minimum rate fire nothing;
- threshold SLOs and latency quantile alerts: above the limit fires after ``for``, below
  it or at low traffic nothing;
- ``up`` SLOs: ``up == 0`` fires TargetDown, no ``up`` series fires TargetAbsent, an
  instance with ``up`` but without the exporter's series fires MetricsAbsent for that
  instance, also when the job's other instances have it.

Errors start with the series (t = 0). A ``rate`` needs two samples, so it has a value
from t = 1m, and an alert over rates is first active at t = 1m and fires at t = 1m +
``for``. promtool evaluates the rule groups in an arbitrary order unless told otherwise,
so every test sets ``group_eval_order``: recording groups first, then the alerts, which
thus read the SLIs of the same step (a real Prometheus runs groups independently, so
there an alert may lag by up to one evaluation interval). Traffic is high enough that the
minimum-rate guard (a ``rate`` over the window up to 6h, which ramps up from the series'
start; the average of the recorded 5m rate from 1d on) holds from t = 1m. The expected
alerts at each evaluation time follow from this model, computed here independently of
Prometheus, and promtool checks them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from limone_obs import conventions as c
from limone_obs.alerts import _durations, alerting, rules
from limone_obs.alerts.model import ServiceSpec, Slo
from limone_obs.alerts.rules import number

#: Sample interval and evaluation interval of every generated test (minutes).
STEP: Final = 1
#: Minute at which an alert over rates is first active (two samples).
FIRST_RATE: Final = 1
#: Label value of the instance in generated series.
INSTANCE: Final = "app:8000"
#: A second instance of the job (a fleet where only one instance lacks the exporter).
SECOND_INSTANCE: Final = "app-2:8000"


#: (alert rule, error ratio above which it fires) pairs.
Pairs = list[tuple[dict[str, Any], float]]


@dataclass(frozen=True)
class Traffic:
    """A constant load: ``rps`` events per second of which ``ratio`` are bad."""

    rps: float
    ratio: float


#: Input series of an SLO under a load, for a number of minutes.
SeriesFn = Callable[[Traffic, int], list[dict[str, str]]]


def minutes(duration: str) -> int:
    """Whole minutes of ``duration`` (rounded up: a 30s ``for`` needs a 1m step)."""
    return -(-_durations.seconds(duration) // 60)


def counter(labels: dict[str, str], metric: str, per_minute: float, length: int) -> dict[str, str]:
    """A promtool input series growing by ``per_minute`` each minute, ``length`` minutes."""
    return {"series": series_text(metric, labels), "values": f"0+{number(per_minute)}x{length}"}


def base_labels(spec: ServiceSpec, instance: str = INSTANCE) -> dict[str, str]:
    """``job`` and ``instance`` of the generated series."""
    return {c.LABEL_JOB: spec.job, c.LABEL_INSTANCE: instance}


#: A burn-rate alert's value (its long window's burn rate) in its annotations, as
#: Prometheus prints it: ``45.3``.
BURN_VALUE: Final = '{{ printf "%.1f" $value }}'


def expected(
    rule: dict[str, Any], extra: dict[str, str], burn: float | None = None
) -> dict[str, Any]:
    """An ``exp_alerts`` entry: ``rule``'s labels plus ``extra``, its annotations (with
    :data:`BURN_VALUE` printed as ``burn``, the burn rate it fires at, when given)."""
    notes = rule["annotations"]
    if burn is not None:
        notes = {k: v.replace(BURN_VALUE, f"{burn:.1f}") for k, v in notes.items()}
    # The annotations' $labels are the labels of the sample that fires (``extra`` where
    # the kit's annotations use them), not the rule's own (added after rendering).
    return {
        "exp_labels": {**rule["labels"], **extra},
        "exp_annotations": render_labels(notes, extra),
    }


#: A label of the firing sample in the kit's own annotations (``{{ $labels.instance }}``:
#: a spec's own annotations hold no template, see ``_parse.annotation_text``).
LABEL_ACTION: Final = re.compile(r"\{\{\s*\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def render_labels(notes: dict[str, str], labels: dict[str, str]) -> dict[str, str]:
    """``notes`` with each ``{{ $labels.<name> }}`` as Prometheus renders it for a firing
    sample of ``labels``: the value, empty for a label the sample lacks."""

    def label(action: re.Match[str]) -> str:
        return labels.get(action[1], "")

    return {k: LABEL_ACTION.sub(label, v) if "{{" in v else v for k, v in notes.items()}


def steady(ratio: float, budget: float) -> float:
    """``ratio``, or one a little below it, whose burn rate (``ratio / budget``) prints
    the same to one decimal however the last bits of Prometheus' division fall: a
    generated test must not hang on a rounding (28.85 printed 28.8 or 28.9)."""
    for _ in range(8):
        burn = ratio / budget
        if f"{burn * (1 - 1e-9):.1f}" == f"{burn * (1 + 1e-9):.1f}":
            break
        ratio = round(ratio * 0.999, 12)
    return ratio


def _fires(rule: dict[str, Any], limit: float, slo: Slo, load: Traffic, at: int) -> bool:
    """True if an alert over rates with threshold ``limit`` is firing at minute ``at``."""
    return (
        load.ratio > limit and load.rps >= slo.min_rate and at >= FIRST_RATE + minutes(rule["for"])
    )


def busy_rps(slo: Slo, pairs: Pairs) -> float:
    """Events per second whose rate over any guard window passes ``min_rate`` from t = 1m.

    ``rate(x[w])`` divides by ``w`` even when the series is younger than ``w``.
    """
    longest = max(_durations.seconds(_guard_window(rule)) for rule, _ in pairs)
    # A guard on the mean of the recorded 5m rate reads a young service's first rates
    # low: 8x the minimum passes from the first one (see rate_scenarios).
    return float(max(1, math.ceil(2 * slo.min_rate * longest / 60), math.ceil(8 * slo.min_rate)))


def _guard_window(rule: dict[str, Any]) -> str:
    windows = re.findall(r"\[([0-9]+[smhdw])\]\)\) >= ", rule["expr"])
    return windows[-1] if windows else "1m"


def _checks(
    spec: ServiceSpec, slo: Slo, pairs: list[tuple[dict[str, Any], float]], load: Traffic, at: int
) -> list[dict[str, Any]]:
    """One alert_rule_test per alert name: the alerts expected firing at minute ``at``."""
    labels = rules.slo_labels(spec, slo)
    by_name: dict[str, list[dict[str, Any]]] = {}
    burn = load.ratio / slo.error_budget if slo.objective is not None else None
    for rule, limit in pairs:
        by_name.setdefault(rule["alert"], [])
        if _fires(rule, limit, slo, load, at):
            by_name[rule["alert"]].append(expected(rule, labels, burn))
    when = _durations.format_duration(at * 60)
    return [{"eval_time": when, "alertname": n, "exp_alerts": e} for n, e in by_name.items()]


def scenario(
    spec: ServiceSpec,
    slo: Slo,
    pairs: Pairs,
    title: str,
    *,
    load: Traffic,
    times: list[int],
    series: SeriesFn,
) -> dict[str, Any]:
    """A test of ``pairs``' alerts under ``load``, checked at each minute of ``times``."""
    checks = [check for at in times for check in _checks(spec, slo, pairs, load, at)]
    return {
        "name": f"{slo.name}: {title} ({', '.join(dict.fromkeys(r['alert'] for r, _ in pairs))})",
        "interval": f"{STEP}m",
        "input_series": series(load, max(times) + 1),
        "alert_rule_test": checks,
    }


def _above(limit: float) -> float:
    """An error ratio clearly above ``limit`` and at most 1."""
    return round(min(2 * limit, (1 + limit) / 2), 10)


def _limits(pairs: list[tuple[dict[str, Any], float]], severity: str) -> list[float]:
    return [limit for rule, limit in pairs if rule["labels"][c.LABEL_SEVERITY] == severity]


def around_for(pairs: Pairs, load: Traffic, end: int) -> list[int]:
    """Minutes just before and just after the ``for`` of each alert that ``load`` fires."""
    times = {end}
    for rule, limit in pairs:
        if load.ratio > limit:
            fires_at = FIRST_RATE + minutes(rule["for"])
            times.update((fires_at - 1, fires_at + 1))
    return sorted(times)


def rate_scenarios(
    spec: ServiceSpec, slo: Slo, pairs: Pairs, series: SeriesFn
) -> list[dict[str, Any]]:
    """Fast burn, slow burn, healthy and low-traffic scenarios of rate-based alerts.

    ``series(load, minutes)`` gives the input series of a load. Burning scenarios are
    checked one minute before and after each firing alert's ``for``.
    """
    pages, tickets = _limits(pairs, c.SEVERITY_PAGE), _limits(pairs, c.SEVERITY_TICKET)
    rps = busy_rps(slo, pairs)
    end = max(FIRST_RATE + minutes(r["for"]) for r, _ in pairs) + 2
    burn = all(rule["alert"].endswith(c.ALERT_SUFFIX_BURN) for rule, _ in pairs)
    loads: list[tuple[str, Traffic]] = []
    budget = slo.error_budget
    worst = Traffic(rps, steady(_above(max(limit for _, limit in pairs)), budget))
    if pages:
        title = "fast burn pages right after for, then every tier"
        loads.append((title if burn else "above the limit pages after for", worst))
    if tickets and (not pages or max(tickets) < min(pages)):
        ratio = (max(tickets) + min(pages)) / 2 if pages else _above(max(tickets))
        title = "slow burn opens only tickets" if burn else "above the limit opens a ticket"
        loads.append((title, Traffic(rps, steady(round(ratio, 10), budget))))
    healthy = round(min(limit for _, limit in pairs) / 2, 10)
    title = "healthy traffic fires nothing" if burn else "below the limit fires nothing"
    loads.append((title, Traffic(rps, healthy)))
    if slo.min_rate > 0:
        low = Traffic(slo.min_rate / 4, worst.ratio)
        loads.append(("errors below the minimum rate fire nothing", low))
    if burn and pages and slo.min_rate > 0:
        # Burn tiers guard with the mean of the recorded 5m rate: a service (or a
        # Prometheus) younger than the page's long window pages at low traffic too. Its
        # first 5m rates read low (the window is longer than the history): 8x the minimum
        # passes from the first one; the raw 1h rate would stay below it for 7.5 minutes.
        young = Traffic(8 * slo.min_rate, worst.ratio)
        loads.append(("low traffic pages a young service right after for", young))
    return [
        scenario(
            spec, slo, pairs, title, load=load, times=around_for(pairs, load, end), series=series
        )
        for title, load in loads
    ]


def alert_check(rule: dict[str, Any], at: int, extra: dict[str, str] | None) -> dict[str, Any]:
    """Expect ``rule`` at minute ``at``: firing with labels ``extra``, or quiet for None."""
    alerts = [] if extra is None else [expected(rule, extra)]
    when = _durations.format_duration(at * 60)
    return {"eval_time": when, "alertname": rule["alert"], "exp_alerts": alerts}


def constant(metric: str, labels: dict[str, str], value: str, length: int) -> dict[str, str]:
    """A promtool input series holding ``value`` for ``length`` minutes."""
    return {"series": series_text(metric, labels), "values": f"{value}x{length}"}


def series_text(metric: str, labels: Mapping[str, str]) -> str:
    """``metric{a="1",b="2"}`` in promtool's series notation, each value escaped as a
    PromQL string (a job named ``billing"api`` broke the generated tests)."""
    body = ",".join(f"{k}={c.promql_string(v)}" for k, v in sorted(labels.items()))
    return f"{metric}{{{body}}}"


def plain_test(
    title: str, series_: list[dict[str, str]], checks: list[dict[str, Any]]
) -> dict[str, Any]:
    """A promtool test of raw-series alerts: ``series_`` in, ``checks`` expected."""
    return {
        "name": title,
        "interval": f"{STEP}m",
        "input_series": series_,
        "alert_rule_test": checks,
    }


def eval_order(spec: ServiceSpec) -> list[str]:
    """Every rule group name, recording groups first, for promtool's ``group_eval_order``."""
    groups = rules.recording_groups(spec) + alerting.alert_groups(spec)
    return [group["name"] for group in groups]


def document(
    spec: ServiceSpec, tests: list[dict[str, Any]], rule_files: list[str]
) -> dict[str, Any]:
    """A promtool test file of ``tests``; ``rule_files`` relative to the test file."""
    order = eval_order(spec)
    return {
        "rule_files": rule_files,
        "evaluation_interval": f"{STEP}m",
        "group_eval_order": order,
        "tests": tests,
    }
