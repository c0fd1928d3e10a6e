"""``limone-obs status``: every SLO of the spec as a terminal table, read from Prometheus.

Budget SLOs (``ratio``, ``latency``) come from the recording rules the alerts area
generates: the period SLI (request-weighted), the error budget left and burn rates over
several windows. Other kinds show the SLI their kind module gives
(:meth:`~limone_obs.alerts.model.Sli.status_sli`): ``threshold`` the good share over its
window (100 % with requests and no error series), ``up`` the share of targets up. Every
row lists the alerts firing for that SLO (``ALERTS``); the kit-health alerts firing
(:mod:`limone_obs.alerts.health`: no ``slo`` label, so no row of their own) follow the
table, with the labels that tell one firing from another. When no SLO has any value,
:func:`no_data_hint` says why, from the rule groups Prometheus has loaded; when only some
have values, :func:`rules_hint` says whether Prometheus lacks rules of the spec (a spec
changed since its rule files were loaded) or has not evaluated them yet.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests

from limone_obs import artifacts
from limone_obs import conventions as c
from limone_obs._prometheus_api import api_body, not_the_api
from limone_obs._prometheus_api import base_url as prometheus_base_url
from limone_obs.alerts import build, rules
from limone_obs.alerts.model import ServiceSpec
from limone_obs.alerts.selectors import Matcher, Selector
from limone_obs.alerts.spec import SPEC_PATH
from limone_obs.errors import ConfigError, StackError

#: Burn-rate windows shown in the table (a subset of conventions.SLI_WINDOWS).
BURN_WINDOWS = ("5m", "1h", "6h", "3d")


@dataclass(frozen=True)
class SloStatus:
    """One row of the table. Ratios are 0..1; None means Prometheus has no value yet."""

    name: str
    kind: str
    objective: float | None
    sli: float | None
    budget_left: float | None
    burn: Mapping[str, float | None] = field(default_factory=dict)
    firing: tuple[str, ...] = ()
    #: Share of events within each next stage of a staged latency SLO (``<=1s`` -> 0.25).
    progress: Mapping[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True, order=True)
class HealthAlert:
    """A kit-health alert firing: its name, severity and the labels that tell this firing
    from another of the same alert (``instance``, ``problem``, ``endpoint``: sorted pairs,
    none for a service-wide alert such as ``TrafficStopped``)."""

    name: str
    severity: str
    labels: tuple[tuple[str, str], ...] = ()


class Prometheus:
    """A minimal client of Prometheus' instant-query API."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        """``url`` without a scheme (``127.0.0.1:9090``) is taken as ``http://``; another
        scheme than http or https is a StackError naming it."""
        self.url = base_url(url)
        self.timeout = timeout

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector for ``expr``; raise StackError if nothing answers at the URL,
        something that is not Prometheus's HTTP API answers (its status and content type
        named), or Prometheus refuses the query."""
        path = "/api/v1/query"
        try:
            resp = requests.get(f"{self.url}{path}", params={"query": expr}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise StackError(
                f"cannot query Prometheus at {self.url} ({type(exc).__name__}): is it running? "
                "pass its URL with --prometheus"
            ) from None
        body = api_body(resp)
        if body is None:
            raise StackError(not_the_api(self.url, path, resp))
        if body.get("status") != "success":
            raise StackError(f"Prometheus refused {expr!r}: {body.get('error', resp.text)}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def rule_groups(self) -> list[dict[str, Any]] | None:
        """The recording rule groups Prometheus has loaded (``/api/v1/rules``), or None
        when it does not tell (no answer, or a server without that API)."""
        try:
            resp = requests.get(
                f"{self.url}/api/v1/rules", params={"type": "record"}, timeout=self.timeout
            )
        except requests.RequestException:
            return None
        body = api_body(resp)
        data = body.get("data") if body is not None else None
        groups = data.get("groups") if isinstance(data, dict) else None
        if not isinstance(groups, list):
            return None
        return [group for group in groups if isinstance(group, dict)]

    def by_slo(self, expr: str) -> dict[str, float]:
        """``expr``'s values keyed by their ``slo`` label (NaN when 0/0, i.e. no traffic)."""
        return {s["metric"].get(c.LABEL_SLO, ""): float(s["value"][1]) for s in self.query(expr)}

    def scalar(self, expr: str) -> float | None:
        """The value of a one-element result, else None."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def scraped(self, job: str) -> bool:
        """True if Prometheus has an ``up`` series of ``job`` (it scraped it at least once
        in the last 5 minutes, or is scraping it)."""
        return bool(self.query(f"up{{{Matcher(c.LABEL_JOB, '=', job).promql()}}}"))


def base_url(url: str) -> str:
    """:func:`limone_obs._prometheus_api.base_url`, its error a StackError."""
    try:
        return prometheus_base_url(url)
    except ConfigError as exc:
        raise StackError(str(exc)) from None


def _service(spec: ServiceSpec) -> str:
    return f'{c.LABEL_SLO_SERVICE}="{spec.service}"'


def _firing(prom: Prometheus, spec: ServiceSpec) -> dict[str, list[str]]:
    firing: dict[str, list[str]] = {}
    for sample in prom.query(f'ALERTS{{alertstate="firing",{_service(spec)}}}'):
        labels = sample["metric"]
        text = f"{labels.get('alertname')}({labels.get(c.LABEL_SEVERITY, '?')})"
        firing.setdefault(labels.get(c.LABEL_SLO, ""), []).append(text)
    return {slo: sorted(set(names)) for slo, names in firing.items()}


#: Labels every alert of the service carries (or ``ALERTS`` adds): they tell no firing
#: from another. The spec's own ``labels:`` are added per spec.
_SHARED_ALERT_LABELS = frozenset(
    {"__name__", "alertname", "alertstate", c.LABEL_SEVERITY, c.LABEL_SLO_SERVICE}
)


def collect_health(prom: Prometheus, spec: ServiceSpec) -> list[HealthAlert]:
    """The kit-health alerts of ``spec``'s service firing in Prometheus, sorted.

    They are the service's alerts without an ``slo`` label (``slo=""`` matches its
    absence): every SLO alert carries one and shows in its row of the table instead.
    """
    expr = Selector(
        c.SERIES_ALERTS,
        (
            Matcher("alertstate", "=", "firing"),
            Matcher(c.LABEL_SLO_SERVICE, "=", spec.service),
            Matcher(c.LABEL_SLO, "=", ""),
        ),
    ).promql()
    shared = _SHARED_ALERT_LABELS | set(spec.labels)
    found = {_health_alert(sample["metric"], shared) for sample in prom.query(expr)}
    return sorted(found)


def _health_alert(labels: Mapping[str, str], shared: frozenset[str]) -> HealthAlert:
    """The alert of one ``ALERTS`` sample, keeping the labels not in ``shared``."""
    own = tuple(sorted((k, v) for k, v in labels.items() if k not in shared))
    name = labels.get("alertname", "?")
    return HealthAlert(name, labels.get(c.LABEL_SEVERITY, "?"), own)


def _burn_rates(prom: Prometheus, spec: ServiceSpec) -> dict[str, dict[str, float]]:
    sel = f"{{{_service(spec)}}}"
    rates = {}
    for window in BURN_WINDOWS:
        expr = (
            f"{c.sli_error_ratio_rule(window)}{sel} / on ({c.LABEL_SLO}, {c.LABEL_SLO_SERVICE}) "
            f"{c.RULE_ERROR_BUDGET}{sel}"
        )
        rates[window] = prom.by_slo(expr)
    return rates


def collect(prom: Prometheus, spec: ServiceSpec) -> list[SloStatus]:
    """Read every SLO of ``spec`` from Prometheus, in spec order."""
    sel = f"{{{_service(spec)}}}"
    sli_error = prom.by_slo(f"{c.RULE_PERIOD_SLI_ERROR}{sel}")
    budget = prom.by_slo(f"{c.RULE_PERIOD_BUDGET_REMAINING}{sel}")
    burns = _burn_rates(prom, spec)
    firing = _firing(prom, spec)
    rows = []
    for slo in spec.slos:
        plain = slo.sli.status_sli(spec, slo)
        sli = None if plain is None else prom.scalar(plain)
        row = SloStatus(slo.name, slo.kind, slo.objective, sli, None)
        if plain is None:
            error = sli_error.get(slo.name)
            row = replace(
                row,
                sli=None if error is None else 1 - error,
                budget_left=budget.get(slo.name),
                burn={w: burns[w].get(slo.name) for w in BURN_WINDOWS},
            )
        progress = {t: prom.scalar(e) for t, e in slo.sli.status_progress(spec, slo).items()}
        rows.append(replace(row, firing=tuple(firing.get(slo.name, ())), progress=progress))
    return rows


def _pct(value: float | None, digits: int = 3) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value * 100:.{digits}f} %"


def _burn(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.2f}x"


def _progress(progress: Mapping[str, float | None]) -> str:
    """``<=1s 25.0 %, <=0.6s 12.5 %``: the share of events within each next stage."""
    return ", ".join(f"{title} {_pct(value, 1)}" for title, value in progress.items()) or "-"


def render(rows: Sequence[SloStatus]) -> str:
    """The table as text: one line per SLO, ``-`` where Prometheus has no value yet; a
    staged latency SLO lists the share of events within each next stage (last hour)."""
    header = ["SLO", "kind", "objective", "SLI", "budget left"]
    header += [f"burn {w}" for w in BURN_WINDOWS] + ["next stages", "firing"]
    table = [header]
    for row in rows:
        objective = "-" if row.objective is None else f"{row.objective:.10g} %"
        cells = [row.name, row.kind, objective, _pct(row.sli), _pct(row.budget_left, 1)]
        cells += [_burn(row.burn.get(w)) for w in BURN_WINDOWS]
        cells.append(_progress(row.progress))
        cells.append(", ".join(row.firing) or "-")
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) for r in table]
    lines = [f"{line}  {r[-1]}".rstrip() for line, r in zip(lines, table, strict=True)]
    return "\n".join(lines)


def render_health(spec: ServiceSpec, alerts: Sequence[HealthAlert]) -> str | None:
    """The kit-health section shown below the table: a header, then one line per firing
    alert, ``Name(severity)`` as in the table's firing column and its labels (``-`` for a
    service-wide one); ``kit health: none firing`` when none fires; None when none fires
    and the spec switches them off (``health: "off"``: there is nothing to watch)."""
    if not alerts:
        return "kit health: none firing" if spec.health.enabled else None
    table = [("kit health", "labels")]
    table += [(f"{a.name}({a.severity})", _label_text(a.labels)) for a in alerts]
    width = max(len(name) for name, _ in table)
    return "\n".join(f"{name.ljust(width)}  {labels}" for name, labels in table)


def _label_text(labels: Sequence[tuple[str, str]]) -> str:
    """``instance=10.0.0.5:8000, problem=storage_full``, or ``-`` without labels."""
    return ", ".join(f"{key}={value}" for key, value in labels) or "-"


def has_values(rows: Sequence[SloStatus]) -> bool:
    """True if any cell of the table holds something: a number (not NaN) for an SLI,
    budget, burn rate or stage, or a firing alert; False when every cell is ``-``."""
    return any(_row_has_values(row) for row in rows)


def _row_has_values(row: SloStatus) -> bool:
    numbers = [row.sli, row.budget_left, *row.burn.values(), *row.progress.values()]
    return bool(row.firing) or any(n is not None and not math.isnan(n) for n in numbers)


def _unread_rule_rows(spec: ServiceSpec, rows: Sequence[SloStatus]) -> set[str]:
    """The SLOs read from recording rules whose SLI or budget left shows ``-``."""
    from_rules = {slo.name for slo in spec.slos if slo.sli.status_sli(spec, slo) is None}
    return {
        row.name
        for row in rows
        if row.name in from_rules and (_missing(row.sli) or _missing(row.budget_left))
    }


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def history_seconds(prom: Prometheus, spec: ServiceSpec) -> float | None:
    """About how long Prometheus holds the spec's job within the SLO period (any of its
    targets, so replaced ones count too): the minutes of the period with an ``up`` sample
    of the job (one minute when it has scraped it for less); None when it has none."""
    job = Matcher(c.LABEL_JOB, "=", spec.job).promql()
    held = prom.scalar(f"count_over_time(count(up{{{job}}})[{spec.period}:1m]) * 60")
    return 60.0 if held is None and prom.scraped(spec.job) else held


def history_note(spec: ServiceSpec, seconds: float | None) -> str | None:
    """What the table's period figures cover when Prometheus holds less than the SLO
    period of the job (a fresh Prometheus: a budget of -2000 % after 20 minutes of
    errors is not 20 periods' budget spent); None when it holds the period."""
    if seconds is None or math.isnan(seconds) or seconds >= 0.95 * spec.period_seconds:
        return None
    if seconds >= 2 * 86400:
        held = f"{seconds / 86400:.1f} d"
    elif seconds >= 5400:
        held = f"{seconds / 3600:.1f} h"
    else:
        held = f"{max(1, round(seconds / 60))} min"
    return (
        f"note: Prometheus holds about {held} of job {spec.job!r}, less than the SLO "
        f"period ({spec.period}): SLI and budget left are over that time alone, as if it "
        "were the whole period (its error ratio against the period's budget)"
    )


def unscraped_job_hint(spec: ServiceSpec, spec_path: Path) -> str:
    """Why some rows show values and others "-" when Prometheus has no target of the
    spec's job: the recording rules it reads (by ``slo_service``) were built from another
    spec, and the SLOs read from the raw series of the job find none."""
    return (
        f"Prometheus scrapes no target of job {spec.job!r} (`job:` of {spec_path}): the "
        f"values shown come from recording rules of service {spec.service!r} built from "
        "another spec, and SLOs read from the job's own series show '-'. Set `job:` to "
        "the job_name of the scrape config, or pass the spec the rules were built from"
    )


def rules_hint(
    spec: ServiceSpec,
    spec_path: Path,
    url: str,
    rows: Sequence[SloStatus],
    groups: list[dict[str, Any]] | None,
) -> str | None:
    """What Prometheus lacks of the spec's rules, for a table that shows something, or None.

    Said only when ``groups`` (the recording rule groups Prometheus has loaded) tell it for
    sure: an SLO of the spec that records series has no recording rule there (the spec
    gained or renamed an SLO after its rule files were built or loaded: its alerts are
    missing too, even where the table reads the SLI from the raw series), an SLO whose
    SLI or budget shows ``-`` has rules not evaluated yet, or has rules that ran and
    counted no event (an AI API not called yet).
    """
    if groups is None:
        return None
    ours = [group for group in groups if spec.service in _services(group)]
    ruled = {slo for group in ours for slo in _slos(group, spec.service)}
    missing = [
        slo.name
        for slo in spec.slos
        if slo.name not in ruled and rules.slo_recording_groups(spec, slo)
    ]
    if missing:
        verb = "has" if len(missing) == 1 else "have"
        return (
            f"{_names(missing)} of {spec_path} (service {spec.service!r}) {verb} no "
            f"recording rule in Prometheus at {url}: the rule files Prometheus loaded come "
            f"from an older build of this spec, or from another spec. {_build_advice(spec_path)}, "
            f"then make Prometheus load {_rule_files(spec_path)} again (SIGHUP or a restart)"
        )
    unread = _unread_rule_rows(spec, rows)
    # Groups evaluate on their own intervals (the long windows' every minute): right after
    # a start or a reload, an SLO's SLI and budget stay "-" until its long group has run.
    pending = [
        group
        for group in ours
        if unread & _slos(group, spec.service) and group.get("lastEvaluation") == _NEVER_EVALUATED
    ]
    if pending:
        waiting = unread & {slo for group in pending for slo in _slos(group, spec.service)}
        named = [row.name for row in rows if row.name in waiting]
        return (
            f"{_names(named)} of {spec_path} (service {spec.service!r}): some of the rules "
            f"are loaded but not evaluated yet: wait up to one evaluation interval "
            f"({_interval(pending, longest=True)}), then run status again"
        )
    if unread:  # rules loaded and run: no event of the SLI in its window yet
        named = [row.name for row in rows if row.name in unread]
        its = "its" if len(named) == 1 else "their"
        check = shlex.join(["limone-obs", "check", "--spec", str(spec_path)])
        # Right after the first events, the slower group may not have run since them.
        slowest = _interval([g for g in ours if unread & _slos(g, spec.service)], longest=True)
        if not slowest[0].isdigit():
            slowest = "one evaluation interval"
        return (
            f"{_names(named)} of {spec_path} (service {spec.service!r}): {its} rules run but "
            f"count no event of {its} SLI yet (no request or call of the kind {its} SLI "
            "counts since Prometheus began scraping, or none before the rules' last run: "
            f"run status again after {slowest}): the SLI and budget show - until the first "
            f"one; if there was such traffic, `{check} --prometheus {shlex.quote(url)}` "
            "names each SLI query that finds nothing"
        )
    return None


def _names(slos: Sequence[str]) -> str:
    """``SLO 'a'`` or ``SLOs 'a', 'b'``."""
    return ("SLO " if len(slos) == 1 else "SLOs ") + ", ".join(repr(name) for name in slos)


#: ``lastEvaluation`` of a rule group Prometheus has not evaluated yet (Go's zero time).
_NEVER_EVALUATED = "0001-01-01T00:00:00Z"


def no_data_hint(
    spec: ServiceSpec,
    spec_path: Path,
    url: str,
    groups: list[dict[str, Any]] | None,
    scraped: bool | None = None,
) -> str:
    """Why no SLO of ``spec`` has a value at the Prometheus ``url``, and what to do.

    ``groups`` are the recording rule groups Prometheus has loaded
    (:meth:`Prometheus.rule_groups`): they tell whether this service's rules are loaded,
    evaluated yet, or whether only another service's are. ``scraped`` tells whether
    Prometheus has an ``up`` series of the spec's job (:meth:`Prometheus.scraped`; None:
    unknown): without one, rules that run find nothing because nothing was scraped yet.
    Without the groups (None) every likely cause is listed, one per line.
    """
    head = f"no SLO of {spec_path} (service {spec.service!r}) has a value in Prometheus at {url}"
    load = (
        f"add {_rule_files(spec_path)} (written from this spec by `limone-obs build`) to "
        "rule_files in Prometheus's configuration and reload it (SIGHUP or a restart)"
    )
    if groups is None:
        causes = (
            f"the spec's recording rules are not loaded: {load}",
            "Prometheus has not evaluated them yet: wait one evaluation interval, then retry",
            "--spec names another service's spec than the one whose rules Prometheus has",
        )
        return f"{head}; likely causes:" + "".join(f"\n  - {cause}" for cause in causes)
    ours = [group for group in groups if spec.service in _services(group)]
    if not ours:
        others = sorted(set().union(*(_services(group) for group in groups)) - {spec.service})
        also = ""
        if others:  # the likely mix-up: status run with one service's spec, rules of another
            named = ", ".join(repr(other) for other in others)
            also = f"; it has rules of service {named}: for that service, pass its spec with --spec"
        return f"{head}: Prometheus has no recording rule of service {spec.service!r}: {load}{also}"
    if all(group.get("lastEvaluation") == _NEVER_EVALUATED for group in ours):
        files = ", ".join(sorted({str(group.get("file")) for group in ours}))
        return (
            f"{head}: its rules are loaded ({files}) but not evaluated yet: wait one "
            f"evaluation interval ({_interval(ours)}), then run status again"
        )
    if scraped is False:
        return (
            f"{head}: its rules run, but Prometheus has no scrape of the job {spec.job!r} (no "
            f"up{{job={spec.job!r}}} series): right after Prometheus starts, wait for its "
            "first scrapes and run status again; if it stays so, no scrape_configs job is "
            f"named {spec.job!r} (the spec's job)"
        )
    return (
        f"{head}: its rules are loaded and evaluated but find no series: does Prometheus "
        f"scrape the job {spec.job!r} (the spec's job), and did the service get requests in "
        f"the last 5 minutes? `{shlex.join(['limone-obs', 'check', '--spec', str(spec_path)])} "
        f"--prometheus {shlex.quote(url)}` names each SLI query that finds nothing"
    )


def _rule_labels(group: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The labels of each rule of one group of ``/api/v1/rules`` (malformed ones skipped)."""
    rules = group.get("rules")
    for rule in rules if isinstance(rules, list) else ():
        labels = rule.get("labels") if isinstance(rule, dict) else None
        if isinstance(labels, dict):
            yield labels


def _services(group: Mapping[str, Any]) -> set[str]:
    """The ``slo_service`` label values of the rules of one group of ``/api/v1/rules``."""
    found = (labels.get(c.LABEL_SLO_SERVICE) for labels in _rule_labels(group))
    return {service for service in found if isinstance(service, str)}


def _slos(group: Mapping[str, Any], service: str) -> set[str]:
    """The ``slo`` label values of the rules of ``service`` in one group of ``/api/v1/rules``."""
    found = (
        labels.get(c.LABEL_SLO)
        for labels in _rule_labels(group)
        if labels.get(c.LABEL_SLO_SERVICE) == service
    )
    return {slo for slo in found if isinstance(slo, str)}


def _interval(groups: Sequence[Mapping[str, Any]], *, longest: bool = False) -> str:
    """The shortest (or ``longest``) evaluation interval of ``groups`` (``15 s``); the
    setting to read when Prometheus did not give one."""
    seconds = [g["interval"] for g in groups if isinstance(g.get("interval"), int | float)]
    if not seconds:
        return "see evaluation_interval"
    return f"{(max if longest else min)(seconds):g} s"


def _spec_root(spec_path: Path) -> Path | None:
    """The ``--root`` the spec at ``spec_path`` is built with, when the path is
    ``<root>/alerts/slo.yaml`` (also as ``slo.yaml`` from inside ``alerts/``: ``..``)."""
    if spec_path.parts[-2:] == SPEC_PATH.parts:
        return spec_path.parent.parent
    absolute = spec_path.absolute()
    if absolute.parts[-2:] == SPEC_PATH.parts:
        return Path(os.path.relpath(absolute.parent.parent))
    return None


def _build_advice(spec_path: Path) -> str:
    """How to build the rule files of the spec at ``spec_path``: with its ``--root`` when
    the path is ``<root>/alerts/slo.yaml``."""
    root = _spec_root(spec_path)
    if root is None:
        return "Run `limone-obs build --root DIR` (DIR: the folder holding alerts/slo.yaml)"
    return f"Run `{artifacts.build_command(root)}`"


def _rule_files(spec_path: Path) -> str:
    """The rule files ``limone-obs build`` writes from the spec at ``spec_path``: below the
    root it was read from (``ops/alerts/slo.yaml`` -> ``ops/alerts/rules/...``)."""
    written = (build.RECORDING_RULES, build.ALERTING_RULES)
    root = _spec_root(spec_path)
    if root is None:  # not <root>/alerts/slo.yaml: root unknown
        return " and ".join(written) + " below the --root you build with"
    return " and ".join((root / rel).as_posix() for rel in written)
