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
from dataclasses import dataclass
from typing import Any, Final

from limone_obs import conventions as c
from limone_obs.alerts import _durations, alerting, rules, samples
from limone_obs.alerts.model import KIND_LATENCY, KIND_THRESHOLD, KIND_UP, ServiceSpec, Slo
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


def minutes(duration: str) -> int:
    """Whole minutes of ``duration`` (rounded up: a 30s ``for`` needs a 1m step)."""
    return -(-_durations.seconds(duration) // 60)


def _series(labels: dict[str, str], metric: str, per_minute: float, length: int) -> dict[str, str]:
    body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{metric}{{{body}}}", "values": f"0+{number(per_minute)}x{length}"}


def _base(spec: ServiceSpec) -> dict[str, str]:
    return {c.LABEL_JOB: spec.job, c.LABEL_INSTANCE: INSTANCE}


def ratio_series(spec: ServiceSpec, slo: Slo, load: Traffic, length: int) -> list[dict[str, str]]:
    """Counters of a ratio/threshold SLO: good and bad series its selectors pick."""
    assert slo.errors is not None
    assert slo.total is not None
    bad = samples.bad_labels(slo.errors, slo.total) or {}
    good = samples.good_labels(slo.errors, slo.total) or {}
    per_minute = load.rps * 60
    if slo.errors.metric == slo.total.metric:
        good_rate = per_minute * (1 - load.ratio)
    else:
        good_rate = per_minute
    found = [_series({**_base(spec), **good}, slo.total.metric, good_rate, length)]
    if load.ratio > 0:
        bad_rate = per_minute * load.ratio
        found.append(_series({**_base(spec), **bad}, slo.errors.metric, bad_rate, length))
    return found


def _next_bucket(threshold: float) -> float:
    return min(b for b in c.DEFAULT_BUCKETS if b > threshold)


def latency_series(spec: ServiceSpec, slo: Slo, load: Traffic, length: int) -> list[dict[str, str]]:
    """A histogram of good events (``slo.good``) where ``ratio`` of them fall just above
    the threshold."""
    assert slo.histogram is not None
    assert slo.good is not None
    assert slo.threshold_seconds is not None
    labels = {**_base(spec), **(samples.solve(slo.good.matchers) or {})}
    labels.pop(c.LABEL_LE, None)
    metric, per_minute = slo.histogram.metric, load.rps * 60
    fast = per_minute * (1 - load.ratio)
    above = repr(_next_bucket(slo.threshold_seconds))
    buckets = ((repr(slo.threshold_seconds), fast), (above, per_minute), ("+Inf", per_minute))
    found = [
        _series({**labels, c.LABEL_LE: le}, f"{metric}_bucket", rate, length)
        for le, rate in buckets
    ]
    found.append(_series(labels, f"{metric}_count", per_minute, length))
    return found


def series(spec: ServiceSpec, slo: Slo, load: Traffic, length: int) -> list[dict[str, str]]:
    """Input series for ``slo`` under ``load``, ``length`` minutes long."""
    if slo.kind == KIND_LATENCY:
        return latency_series(spec, slo, load, length)
    return ratio_series(spec, slo, load, length)


def _expected(rule: dict[str, Any], extra: dict[str, str]) -> dict[str, Any]:
    return {"exp_labels": {**rule["labels"], **extra}, "exp_annotations": rule["annotations"]}


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
    return float(max(1, math.ceil(2 * slo.min_rate * longest / 60)))


def _guard_window(rule: dict[str, Any]) -> str:
    windows = re.findall(r"\[([0-9]+[smhdw])\]\)\) >= ", rule["expr"])
    return windows[-1] if windows else "1m"


def _checks(
    spec: ServiceSpec, slo: Slo, pairs: list[tuple[dict[str, Any], float]], load: Traffic, at: int
) -> list[dict[str, Any]]:
    """One alert_rule_test per alert name: the alerts expected firing at minute ``at``."""
    labels = rules.slo_labels(spec, slo)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for rule, limit in pairs:
        by_name.setdefault(rule["alert"], [])
        if _fires(rule, limit, slo, load, at):
            by_name[rule["alert"]].append(_expected(rule, labels))
    when = _durations.format_duration(at * 60)
    return [{"eval_time": when, "alertname": n, "exp_alerts": e} for n, e in by_name.items()]


def _rate_pairs(spec: ServiceSpec, slo: Slo) -> list[tuple[dict[str, Any], float]]:
    """(alert rule, error ratio above which it fires) for the rate-based alerts of ``slo``."""
    if slo.kind == KIND_THRESHOLD:
        return [(alerting.threshold_alert(spec, slo), slo.error_budget)]
    return [(alerting.burn_alert(spec, slo, t), rules.burn_threshold(slo, t)) for t in slo.tiers]


def _scenario(
    spec: ServiceSpec, slo: Slo, pairs: Pairs, title: str, *, load: Traffic, times: list[int]
) -> dict[str, Any]:
    """A test of ``pairs``' alerts under ``load``, checked at each minute of ``times``."""
    checks = [check for at in times for check in _checks(spec, slo, pairs, load, at)]
    return {
        "name": f"{slo.name}: {title} ({', '.join(dict.fromkeys(r['alert'] for r, _ in pairs))})",
        "interval": f"{STEP}m",
        "input_series": series(spec, slo, load, max(times) + 1),
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


def rate_scenarios(spec: ServiceSpec, slo: Slo, pairs: Pairs) -> list[dict[str, Any]]:
    """Fast burn, slow burn, healthy and low-traffic scenarios of rate-based alerts.

    Burning scenarios are checked one minute before and after each firing alert's ``for``.
    """
    pages, tickets = _limits(pairs, c.SEVERITY_PAGE), _limits(pairs, c.SEVERITY_TICKET)
    rps = busy_rps(slo, pairs)
    end = max(FIRST_RATE + minutes(r["for"]) for r, _ in pairs) + 2
    burn = all(rule["alert"].endswith(c.ALERT_SUFFIX_BURN) for rule, _ in pairs)
    loads: list[tuple[str, Traffic]] = []
    worst = Traffic(rps, _above(max(limit for _, limit in pairs)))
    if pages:
        title = "fast burn pages right after for, then every tier"
        loads.append((title if burn else "above the limit pages after for", worst))
    if tickets and (not pages or max(tickets) < min(pages)):
        ratio = (max(tickets) + min(pages)) / 2 if pages else _above(max(tickets))
        title = "slow burn opens only tickets" if burn else "above the limit opens a ticket"
        loads.append((title, Traffic(rps, round(ratio, 10))))
    healthy = round(min(limit for _, limit in pairs) / 2, 10)
    title = "healthy traffic fires nothing" if burn else "below the limit fires nothing"
    loads.append((title, Traffic(rps, healthy)))
    if slo.min_rate > 0:
        low = Traffic(slo.min_rate / 4, worst.ratio)
        loads.append(("errors below the minimum rate fire nothing", low))
    return [
        _scenario(spec, slo, pairs, title, load=load, times=around_for(pairs, load, end))
        for title, load in loads
    ]


def _subst_instance(rule: dict[str, Any], instance: str) -> dict[str, Any]:
    """The rule with ``$labels.instance`` in its annotations expanded as promtool will."""
    notes = {
        k: v.replace("{{ $labels.instance }}", instance) for k, v in rule["annotations"].items()
    }
    return {**rule, "annotations": notes}


def _up_check(rule: dict[str, Any], at: int, extra: dict[str, str] | None) -> dict[str, Any]:
    """Expect ``rule`` at minute ``at``: firing with labels ``extra``, or quiet for None."""
    instance = (extra or {}).get(c.LABEL_INSTANCE, INSTANCE)
    alerts = [] if extra is None else [_expected(_subst_instance(rule, instance), extra)]
    when = _durations.format_duration(at * 60)
    return {"eval_time": when, "alertname": rule["alert"], "exp_alerts": alerts}


def _series_line(metric: str, labels: dict[str, str], value: str, length: int) -> dict[str, str]:
    body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{metric}{{{body}}}", "values": f"{value}x{length}"}


def _up_test(
    title: str, series_: list[dict[str, str]], checks: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": title,
        "interval": f"{STEP}m",
        "input_series": series_,
        "alert_rule_test": checks,
    }


def up_scenarios(spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
    """Target down, up, gone, and up without metrics; raw-series alerts are active at t = 0.

    Each alert is checked one minute before and after its ``for``; the others of the SLO
    must stay quiet in the same scenario.
    """
    down, absent, no_metrics = alerting.target_alerts(spec, slo)
    wait_down, wait_absent = minutes(down["for"]), minutes(absent["for"])
    end = max(wait_down, wait_absent) + 1
    own = {c.LABEL_JOB: spec.job, c.LABEL_INSTANCE: INSTANCE}
    other = {c.LABEL_JOB: f"{spec.job}-other", c.LABEL_INSTANCE: INSTANCE}
    second = {**own, c.LABEL_INSTANCE: SECOND_INSTANCE}
    info = {**own, "version": "1.0.0", "revision": "abc", "python": "3.11.7"}
    up_ok, job = _series_line(c.SERIES_UP, own, "1", end + 1), {c.LABEL_JOB: spec.job}

    def fires(rule: dict[str, Any], wait: int, labels: dict[str, str]) -> list[dict[str, Any]]:
        return [_up_check(rule, wait - 1, None), _up_check(rule, wait + 1, labels)]

    cases = [
        ("target down fires TargetDown after for", [_series_line(c.SERIES_UP, own, "0", end + 1)],
         [*fires(down, wait_down, own), _up_check(no_metrics, end, None)]),
        ("target up with its metrics fires nothing",
         [up_ok, _series_line(spec.names.build_info, info, "1", end + 1)],
         [_up_check(rule, end, None) for rule in (down, absent, no_metrics)]),
        ("no up series of the job fires TargetAbsent after for",
         [_series_line(c.SERIES_UP, other, "1", end + 1)],
         [*fires(absent, wait_absent, job), _up_check(no_metrics, end, None)]),
        ("target up without limone-obs metrics fires MetricsAbsent after for", [up_ok],
         fires(no_metrics, wait_absent, own)),
        ("one of two instances without limone-obs metrics fires MetricsAbsent for it",
         [up_ok, _series_line(spec.names.build_info, info, "1", end + 1),
          _series_line(c.SERIES_UP, second, "1", end + 1)],
         fires(no_metrics, wait_absent, second)),
    ]  # fmt: skip
    return [_up_test(f"{slo.name}: {title}", lines, checks) for title, lines, checks in cases]


def scenarios(spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
    """Every generated test of ``slo``."""
    if slo.kind == KIND_UP:
        return up_scenarios(spec, slo)
    found = rate_scenarios(spec, slo, _rate_pairs(spec, slo)) if _rate_pairs(spec, slo) else []
    if slo.kind == KIND_LATENCY and slo.quantile_alert is not None:
        pairs: Pairs = [(alerting.quantile_alert(spec, slo), slo.error_budget)]
        found.extend(rate_scenarios(spec, slo, pairs))
    return found


def eval_order(spec: ServiceSpec) -> list[str]:
    """Every rule group name, recording groups first, for promtool's ``group_eval_order``."""
    groups = rules.recording_groups(spec) + alerting.alert_groups(spec)
    return [group["name"] for group in groups]


def document(spec: ServiceSpec, slo: Slo, rule_files: list[str]) -> dict[str, Any]:
    """The promtool test file of ``slo``; ``rule_files`` relative to the test file."""
    order = eval_order(spec)
    return {
        "rule_files": rule_files,
        "evaluation_interval": f"{STEP}m",
        "group_eval_order": order,
        "tests": scenarios(spec, slo),
    }
