"""Turning the spec's YAML mapping into :mod:`limone_obs.alerts.spec` dataclasses.

One function per part of the spec; each reads its fields through a
:class:`~limone_obs.alerts._reader.Reader`, so every error is located and says what is
allowed. Cross-field rules (windows shorter than the period, burn tiers that can fire,
thresholds on bucket boundaries, errors within total) are checked here, once.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeVar

from limone_obs import conventions as c
from limone_obs.alerts import _durations, samples
from limone_obs.alerts._reader import Reader, closest, did_you_mean, plain_number_hint, shown
from limone_obs.alerts.model import (
    KIND_UP,
    SEVERITIES,
    SPEC_VERSION,
    TIER_OFF,
    AlertmanagerSpec,
    BurnTier,
    HealthSpec,
    QuantileAlert,
    Receiver,
    ServiceSpec,
    Sli,
    Slo,
    dashboard_link,
    frozen,
    job_matcher,
)
from limone_obs.alerts.selectors import Catalogue, Matcher, Selector, parse_selector
from limone_obs.errors import CollectedSpecError, SpecError

T = TypeVar("T")

NAME_PATTERN: Final = r"[a-z][a-z0-9]*(-[a-z0-9]+)*"
LABEL_PATTERN: Final = r"[a-zA-Z_][a-zA-Z0-9_]*"
NAME_HINT: Final = "use lowercase letters, digits and single dashes, starting with a letter"
LABEL_HINT: Final = "use letters, digits and underscores, not starting with a digit"
METRIC_NAME_PATTERN: Final = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
#: An SLO's keys holding a selector (its metric name first), and those naming a histogram.
SELECTOR_KEYS: Final = ("total", "errors", "histogram", "good")
HISTOGRAM_KEYS: Final = frozenset({"histogram", "good"})
#: The series a histogram's base name stands for (``buckets:`` takes the base name).
_SERIES_SUFFIXES: Final = ("_bucket", "_count", "_sum")
#: Labels and annotations the generator sets itself; the spec may not override them.
RESERVED_LABELS: Final = frozenset(
    {"alertname", c.LABEL_SEVERITY, c.LABEL_SLO, c.LABEL_SLO_SERVICE, "long_window", "short_window"}
)
RESERVED_ANNOTATIONS: Final = frozenset(
    {c.ANNOTATION_SUMMARY, c.ANNOTATION_DESCRIPTION, c.ANNOTATION_RUNBOOK, c.ANNOTATION_DASHBOARD}
)
DEFAULT_WEBHOOK: Final = "http://127.0.0.1:9095/alerts"
DEFAULT_GRAFANA: Final = "http://127.0.0.1:3000"
DEFAULT_RUNBOOKS: Final = "https://github.com/limoneide/limone-obs/blob/main/alerts/runbooks"
#: The mission's tiers (ARCHITECTURE.md): name -> severity, long, short, budget %, for.
DEFAULT_TIERS: Final = {
    "page-fast": (c.SEVERITY_PAGE, "1h", "5m", 2.0, "2m"),
    "page-slow": (c.SEVERITY_PAGE, "6h", "30m", 5.0, "15m"),
    "ticket-fast": (c.SEVERITY_TICKET, "1d", "2h", 10.0, "1h"),
    "ticket-slow": (c.SEVERITY_TICKET, "3d", "6h", 10.0, "3h"),
}
TOP_KEYS: Final = (
    "version", "service", "job", "namespace", "period", "grafana_url", "dashboard_url",
    "runbook_base_url", "labels", "min_rate", "buckets", "tiers", "alertmanager", "health",
    "slos",
)  # fmt: skip
#: Most bucket boundaries one histogram may declare under ``buckets:``.
MAX_BUCKETS: Final = 64
COMMON_SLO_KEYS: Final = (
    "name", "kind", "description", "labels", "annotations", "runbook_url", "dashboard_url",
)  # fmt: skip


@dataclass(frozen=True)
class KindParser:
    """How one SLO kind reads its part of an SLO: the keys it allows and its parser."""

    keys: tuple[str, ...]
    parse: Callable[[Context, Reader], Sli]


class Found:
    """The located errors found so far; parsing goes on past each independent one.

    :meth:`get` runs one read and, when it raises a :class:`SpecError`, keeps the error
    and returns a fallback so that the checks after it still run.
    """

    def __init__(self) -> None:
        self.errors: list[SpecError] = []

    def get(self, read: Callable[[], T], fallback: T) -> T:
        """``read()``, or ``fallback`` after keeping the error(s) it raised."""
        try:
            return read()
        except CollectedSpecError as exc:
            self.errors += exc.errors
        except SpecError as exc:
            self.errors.append(exc)
        return fallback

    def raise_any(self) -> None:
        """Raise every error kept (one :class:`CollectedSpecError`), if any."""
        if self.errors:
            raise CollectedSpecError(self.errors)


def service(top: Reader, kinds: Mapping[str, KindParser]) -> ServiceSpec:
    """Validate the top-level mapping of the spec; ``kinds`` maps each kind to its parser
    (:data:`limone_obs.alerts.kinds.PARSERS`).

    Every top-level field, every tier and every SLO is checked even after another fails;
    all the errors found are raised together as one :class:`CollectedSpecError`. Within one
    SLO every field is read (the kinds' parsers collect too), except one that depends on a
    field in error (``threshold_seconds`` on ``histogram``).
    """
    found = Found()
    found.errors += top.unknown(TOP_KEYS)
    found.get(lambda: _version(top), None)
    name = found.get(lambda: top.text("service", pattern=NAME_PATTERN, hint=NAME_HINT), "service")
    namespace = found.get(
        lambda: top.text("namespace", c.DEFAULT_NAMESPACE, pattern=LABEL_PATTERN, hint=LABEL_HINT),
        c.DEFAULT_NAMESPACE,
    )
    grafana = found.get(lambda: top.url("grafana_url", DEFAULT_GRAFANA), DEFAULT_GRAFANA).rstrip(
        "/"
    )
    dashboard = dashboard_link(grafana, name, c.DASHBOARD_SLOS)
    ctx = Context(
        top=top,
        kinds=kinds,
        service=name,
        job=found.get(lambda: plain_text(top, "job", top.text("job", name)), name),
        names=c.MetricNames(namespace),
        buckets=_buckets(top, found),
        period=found.get(lambda: _period(top), "30d"),
        labels=found.get(lambda: labels(top, "labels"), dict[str, str]()),
        min_rate=found.get(lambda: _min_rate(top, 0.0), 0.0),
        dashboard_url=found.get(lambda: top.url("dashboard_url", dashboard), dashboard),
        runbooks=found.get(
            lambda: top.url("runbook_base_url", DEFAULT_RUNBOOKS), DEFAULT_RUNBOOKS
        ).rstrip("/"),
    )
    ctx.tiers = _tiers(top, ctx.period, found)
    slos = _slos(ctx, found)
    found.get(lambda: _check_bucket_names(top, ctx, slos), None)
    alertmanager = found.get(lambda: _alertmanager(top.child("alertmanager", {})), None)
    health = found.get(lambda: _health(top), None)
    found.raise_any()
    assert alertmanager is not None  # else raise_any raised
    assert health is not None
    return ServiceSpec(
        service=name,
        job=ctx.job,
        namespace=namespace,
        period=ctx.period,
        grafana_url=grafana,
        dashboard_url=ctx.dashboard_url,
        runbook_base_url=ctx.runbooks,
        labels=ctx.labels,
        slos=slos,
        alertmanager=alertmanager,
        source=top.file,
        health=health,
        buckets={name: bounds for name, bounds in ctx.buckets.items() if bounds is not None},
    )


def _check_bucket_names(top: Reader, ctx: Context, slos: Sequence[Slo]) -> None:
    """Each ``buckets:`` key must be a histogram an SLO reads or one of the exporter's:
    a misspelt key was ignored, and the thresholds then judged against the defaults.
    An SLO in error is read from its text (the metric its selectors start with), so a
    misspelt key is told beside the threshold error it causes."""
    read = {s.metric for slo in slos for s in slo.sli.selectors().values()}
    raw = top.raw("slos", [])
    for item in raw if isinstance(raw, list) else []:
        for key in SELECTOR_KEYS:
            value = item.get(key) if isinstance(item, dict) else None
            if isinstance(value, str) and (metric := re.match(METRIC_NAME_PATTERN, value.strip())):
                read.add(metric[0])
    known = read | {f"{ctx.names.namespace}_{suffix}" for suffix in c.HISTOGRAM_BUCKETS}
    block = top.child("buckets", {})
    for name in ctx.buckets:
        if name not in known:
            block.fail(
                name,
                f"{did_you_mean(name, sorted(known))}no SLO reads this histogram and the "
                f"exporter writes none of this name (SLOs read: {', '.join(sorted(read))}): "
                "give the base name of the histogram whose buckets these are",
            )


def _buckets(top: Reader, found: Found) -> dict[str, tuple[float, ...] | None]:
    """``buckets:``: histogram base name -> its bucket boundaries in seconds, for the
    histograms whose buckets are not the exporter's defaults (``Metrics(buckets=...)``,
    ``dependency_buckets=...``, or a histogram of the app's own).

    Each list is read on its own: a malformed one is a located error kept in ``found``
    and maps to None, so the SLOs on that histogram wait for it (their thresholds are not
    checked against buckets that are not known) while the other lists still hold.
    """
    block = found.get(lambda: top.child("buckets", {}), None)
    if block is None:
        return {}
    return {
        name: found.get(functools.partial(_bounds, block, name, raw), None)
        for name, raw in block.items()
    }


def _bounds(block: Reader, name: str, raw: Any) -> tuple[float, ...]:
    """The boundaries listed for one histogram: finite, positive and ascending."""
    if not re.fullmatch(METRIC_NAME_PATTERN, name) or name.endswith(_SERIES_SUFFIXES):
        block.fail(
            name,
            "is not a histogram's base name: give the name without _bucket, e.g. "
            "billing_request_duration_seconds",
        )
    example = "e.g. [0.05, 0.1, 0.3, 0.5, 1, 2.5, 5], the list the app gives Metrics(buckets=...)"
    if not isinstance(raw, list) or not raw or len(raw) > MAX_BUCKETS:
        block.fail(name, f"must be a list of 1 to {MAX_BUCKETS} bucket boundaries, {example}")
    bounds: list[float] = []
    for index, value in enumerate(raw):
        key = f"{name}[{index}]"
        if isinstance(value, bool) or not isinstance(value, int | float):
            block.fail(key, f"{shown(value)} is not a number of seconds; {example}")
        if not 0 < value < math.inf:
            block.fail(key, f"{shown(value)} must be a positive, finite number of seconds "
                       "(+Inf is implied)")  # fmt: skip
        if bounds and value <= bounds[-1]:
            block.fail(
                key,
                f"{shown(value)} is not above the boundary before it ({bounds[-1]:g}): list "
                "the boundaries in ascending order, each once",
            )
        bounds.append(float(value))
    return tuple(bounds)


def _version(top: Reader) -> None:
    version = top.raw("version", SPEC_VERSION)
    if isinstance(version, str) and version.strip() == str(SPEC_VERSION):
        top.fail("version", f"{version!r} is text: write version: {SPEC_VERSION}, unquoted")
    if version != SPEC_VERSION:
        top.fail("version", f"{version!r} is not supported; this limone-obs reads version 1")


def _switched_off(reader: Reader, key: str) -> bool:
    """True when ``key`` is ``"off"`` (or YAML's unquoted ``off``, false); other text is
    refused, with ``"off"`` offered when it is close (``of``); a mapping is read later."""
    value = reader.raw(key, {})
    if value in (False, TIER_OFF):
        return True
    if isinstance(value, str):
        hint = 'did you mean "off"? ' if closest(value, (TIER_OFF,)) else ""
        reader.fail(
            key, f'{shown(value)} is not allowed; {hint}give a mapping of settings or "off"'
        )
    return False


def _health(top: Reader) -> HealthSpec:
    """``health:``: thresholds of the kit-health tickets (defaults when left out; ``"off"``
    switches them off)."""
    if _switched_off(top, "health"):
        return HealthSpec(enabled=False)
    block = top.child("health", {})
    block.only(
        (
            "exporter_problem", "log_lines_dropped", "workers_saturated", "calls_per_request",
            "traffic_stopped",
        ),
        "health",
    )  # fmt: skip
    default = HealthSpec()
    problem = _health_block(block, "exporter_problem", ("for",))
    dropped = _health_block(block, "log_lines_dropped", ("window", "for"))
    workers = _health_block(block, "workers_saturated", ("above", "for"))
    busy = workers.number("above", default.workers_saturated_above)
    if not 0 < busy <= 1:
        workers.fail("above", f"{busy:g} must be a share of the time above 0, at most 1 (0.9)")
    calls = _health_block(block, "calls_per_request", ("dependency", "above", "for"))
    above = calls.number("above", default.calls_per_request)
    if above <= 0:
        calls.fail("above", f"{above:g} must be a positive number of calls per request")
    _calls_bound(calls, above)
    traffic, window, for_, severity = _traffic_stopped(block, default)
    return HealthSpec(
        traffic=traffic,
        traffic_window=window,
        traffic_for=for_,
        traffic_severity=severity,
        exporter_problem_for=problem.wait("for", default.exporter_problem_for),
        dropped_lines_window=dropped.window("window", default.dropped_lines_window),
        dropped_lines_for=dropped.wait("for", default.dropped_lines_for),
        workers_saturated_above=busy,
        workers_saturated_for=workers.wait("for", default.workers_saturated_for),
        calls_dependency=calls.text("dependency", default.calls_dependency),
        calls_per_request=above,
        calls_for=calls.wait("for", default.calls_for),
    )


def _calls_bound(calls: Reader, above: float) -> None:
    """Refuse a calls-per-request limit that is not a bucket boundary the p95 can pass.

    Between two boundaries the p95 is interpolated: a constant 6 calls reads 9.75 (within
    (5, 10]), so a limit of 8 would fire on it. At a boundary the alert is exact: it fires
    when more than 5 % of requests made more calls. The last boundary cannot be passed
    (a p95 in the +Inf bucket reads as that boundary).
    """
    bounds = [b for b in c.CALLS_PER_REQUEST_BUCKETS[:-1] if b > 0]
    if above in bounds:
        return
    if above >= c.CALLS_PER_REQUEST_BUCKETS[-1]:
        last = c.CALLS_PER_REQUEST_BUCKETS[-1]
        calls.fail(
            "above",
            f"{above:g}: the p95 of the calls-per-request histogram never reads above its "
            f"last boundary, {last:g} (more calls fall in +Inf), so the alert could never "
            f"fire; use one of {', '.join(f'{b:g}' for b in bounds)}",
        )
    lower = [b for b in bounds if b < above]
    higher = [b for b in bounds if b > above]
    near = " or ".join(f"{b:g}" for b in (lower[-1:] + higher[:1]))
    calls.fail(
        "above",
        f"{above:.15g} is not a bucket boundary of the calls-per-request histogram "
        f"({', '.join(f'{b:g}' for b in bounds)}): between two boundaries its p95 is "
        "interpolated (a constant 6 calls reads 9.75), so the alert could fire on fewer "
        f"calls than {above:g}; use {near}",
    )


def _traffic_stopped(block: Reader, default: HealthSpec) -> tuple[bool, str, str, str]:
    """``health.traffic_stopped``: (on, window, for, severity); ``"off"`` switches it off."""
    if _switched_off(block, "traffic_stopped"):
        return False, default.traffic_window, default.traffic_for, default.traffic_severity
    stopped = _health_block(block, "traffic_stopped", ("window", "for", "severity"))
    return (
        True,
        stopped.window("window", default.traffic_window),
        stopped.wait("for", default.traffic_for),
        stopped.choice("severity", SEVERITIES, default.traffic_severity),
    )


def _health_block(block: Reader, key: str, allowed: tuple[str, ...]) -> Reader:
    child = block.child(key, {})
    child.only(allowed, f"health.{key}")
    return child


@dataclass
class Context:
    """Service-wide settings every SLO inherits while it is parsed."""

    top: Reader
    kinds: Mapping[str, KindParser]
    service: str
    job: str
    names: c.MetricNames
    #: The spec's ``buckets:``: histogram base name -> boundaries, None for a malformed
    #: list (see :func:`_buckets`).
    buckets: dict[str, tuple[float, ...] | None]
    period: str
    labels: dict[str, str]
    min_rate: float
    dashboard_url: str
    runbooks: str
    tiers: dict[str, BurnTier] = field(default_factory=dict)


def _period(top: Reader) -> str:
    period = top.duration("period", "30d", examples="28d or 30d")
    if _durations.seconds(period) < 86400:
        top.fail("period", f"{period!r} is too short for an SLO period; use e.g. 28d or 30d")
    return period


def _min_rate(reader: Reader, default: float) -> float:
    rate = reader.number("min_rate", default)
    if rate < 0:
        reader.fail("min_rate", f"{rate} is negative; give events per second, 0 for no guard")
    return rate


def labels(reader: Reader, key: str, reserved: frozenset[str] = RESERVED_LABELS) -> dict[str, str]:
    """A mapping of label (or annotation) names to string values, none of them ``reserved``
    nor starting with ``__`` (Prometheus' own). Label values are plain text; annotation
    values (``reserved`` other than :data:`RESERVED_LABELS`) may hold whole templates."""
    block = reader.child(key, {})
    found = {}
    for name, value in block.items():
        if re.fullmatch(LABEL_PATTERN, name) is None:
            block.fail(name, f"{name!r} is not a valid name: use letters, digits, underscores")
        if name.startswith("__"):
            block.fail(name, f"{name!r}: names starting with __ are Prometheus' own")
        if name in reserved:
            taken = ", ".join(sorted(reserved))
            block.fail(name, f"{name!r} is set by limone-obs; reserved: {taken}")
        if not isinstance(value, str):
            block.fail(name, f"must be a string, found {value!r} (quote it in YAML)")
        if reserved is RESERVED_LABELS:
            plain_text(block, name, value)
        else:
            annotation_text(block, name, value)
        found[name] = value
    return found


def plain_text(reader: Reader, key: str, value: str) -> str:
    """``value`` (of ``key``) when it holds no control character and no ``{{``:
    it is written into alert rules, whose labels and annotations Prometheus expands as
    templates (a label value ``{{ $value }}`` makes a new alert each evaluation)."""
    if any(ch < " " or ch == "\x7f" for ch in value):
        reader.fail(key, f"{shown(value)} holds a control character (a newline?): remove it")
    if "{{" in value:
        reader.fail(key, f"{shown(value)} holds {{{{: Prometheus would expand it as a template")
    return value


def annotation_text(reader: Reader, key: str, value: str) -> str:
    """``value`` (an SLO's description or extra annotation ``key``) when it holds no
    template action. Prometheus would expand one as a Go template, and the generated
    tests must expect exactly what it renders: ``$value`` is not known before the alert
    fires, and ``$labels`` are those of the sample that fires, which differ per alert (a
    quantile alert's has none). The description is also the dashboards' and runbooks'
    text, where a template shows as written (and Grafana reads ``$value`` as a variable)."""
    if "{{" in value:
        reader.fail(
            key,
            f"{shown(value)} holds {{{{: the SLO's description and annotations are plain "
            "text (the generated tests must expect what Prometheus renders, and the "
            "description is the dashboards' and runbooks' text too). Write the SLO's name "
            "or labels as text; the alert's summary states its burn rate or value already",
        )
    return value


#: What Grafana reads as a dashboard variable in a text panel: ``$name``, ``${name}``,
#: ``[[name]]`` (as :data:`limone_obs.dashboards.promql.VARIABLE` finds them).
_GRAFANA_VARIABLE: Final = re.compile(r"\$(?:\{|[A-Za-z_])|\[\[[A-Za-z_]")


def description_text(reader: Reader, key: str, value: str) -> str:
    """:func:`annotation_text`, and no ``$name``: the description is the SLO dashboard's
    text too, where Grafana would put a variable's value in its place (``$job``) or
    nothing (``$value``, which its lint reports)."""
    annotation_text(reader, key, value)
    variable = _GRAFANA_VARIABLE.search(value)
    if variable is not None:
        reader.fail(
            key,
            f"{shown(value)} holds {value[variable.start() : variable.start() + 12]!r}: the "
            "description is the SLO dashboard's text too, where Grafana reads $name (and "
            "[[name]]) as a dashboard variable; write it otherwise (a price like $5 is fine)",
        )
    return value


def _tiers(top: Reader, period: str, found: Found) -> dict[str, BurnTier]:
    """The service's tiers; a tier in error is kept in ``found`` and stands in with the
    defaults so that the SLOs naming it are still checked."""
    if not top.has("tiers"):
        return _default_tiers(period)
    block = found.get(lambda: top.child("tiers"), None)
    if block is None:
        return {}
    if not block.data:
        found.get(
            lambda: block.fail(
                None, "must define at least one tier (or be left out for the defaults)"
            ),
            None,
        )
    tiers = {}
    for name, _ in block.items():
        if re.fullmatch(NAME_PATTERN, name) is None:
            found.errors.append(
                SpecError(block.where(name), f"tier name {name!r} must match {NAME_PATTERN}")
            )
        stand_in = _tier(name, DEFAULT_TIERS.get(name, DEFAULT_TIERS["page-fast"]), period)
        tiers[name] = found.get(functools.partial(_tier_at, block, name, period), stand_in)
    return tiers


def _tier_at(block: Reader, name: str, period: str) -> BurnTier:
    return _tier_from(block.child(name), name, period)


def _tier_from(tier: Reader, name: str, period: str) -> BurnTier:
    tier.only(("severity", "long_window", "short_window", "budget_percent", "for"), "a tier")
    long, short = tier.window("long_window"), tier.window("short_window")
    if _durations.seconds(short) >= _durations.seconds(long):
        tier.fail("short_window", f"{short!r} must be shorter than long_window {long!r}")
    if _durations.seconds(long) > _durations.seconds(period):
        tier.fail("long_window", f"{long!r} is longer than the period {period!r}")
    share = tier.number("budget_percent")
    if not 0 < share <= 100:
        tier.fail("budget_percent", f"{share} is outside (0, 100]: the share of the budget spent")
    least = _least_share(long, period)
    if share < least:
        factor = share / least
        tier.fail(
            "budget_percent",
            f"{share:g} % of the {period} error budget in {long} is a burn rate of "
            f"{factor:.4g}, below 1: the tier would fire while the budget lasts the whole "
            f"period (the SLO met); set it to at least {math.ceil(least * 100) / 100:g} (100 x "
            f"{long} / {period}), or use a shorter long_window",
        )
    severity = tier.choice("severity", SEVERITIES)
    return _tier(name, (severity, long, short, share, tier.wait("for", longest=short)), period)


def _least_share(long_window: str, period: str) -> float:
    """The budget share (%) whose spending over ``long_window`` is a burn rate of 1: the
    pace that spends the budget exactly over ``period``; any less is no burn at all."""
    return 100 * _durations.seconds(long_window) / _durations.seconds(period)


def _default_tiers(period: str) -> dict[str, BurnTier]:
    """:data:`DEFAULT_TIERS` for ``period``: each tier's share of the budget raised to a
    burn rate of 1 where it would be less (``ticket-slow``'s 10 % in 3d is 0.933 of a 28d
    budget), and a tier whose long window is longer than the period left out."""
    tiers = {}
    for name, (severity, long, short, share, for_) in DEFAULT_TIERS.items():
        least = _least_share(long, period)
        if least <= 100:
            tiers[name] = _tier(name, (severity, long, short, max(share, least), for_), period)
    return tiers


def _tier(name: str, values: tuple[str, str, str, float, str], period: str) -> BurnTier:
    """Build a tier from (severity, long, short, budget %, for), computing its factor."""
    severity, long, short, share, for_ = values
    factor = share * _durations.seconds(period) / (100 * _durations.seconds(long))
    return BurnTier(name, severity, long, short, share, for_, round(factor, 6))


def _slos(ctx: Context, found: Found) -> tuple[Slo, ...]:
    if not ctx.top.has("slos"):
        found.get(lambda: ctx.top.raw("slos"), None)  # "is required"
        return ()
    raw = ctx.top.raw("slos")
    if not isinstance(raw, list) or not raw:
        message = "must be a non-empty list of SLOs (name, kind, ...)"
        found.errors.append(SpecError(ctx.top.where("slos"), message))
        return ()
    slos: list[Slo] = []
    first: dict[str, int] = {}  # name -> index of the SLO that has it
    up: int | None = None  # index of the SLO of kind up
    for index, item in enumerate(raw):
        where = f"slos[{index}]"
        slo = found.get(functools.partial(_slo_at, ctx, where, item, found), None)
        if slo is None:
            continue
        if slo.name in first:
            message = (
                f"{slo.name!r} is used by an earlier SLO, slos[{first[slo.name]}]: give each "
                "SLO a name of its own (it labels its rules, alerts and runbook)"
            )
            found.errors.append(SpecError(ctx.top.where(f"{where}.name"), message))
        first.setdefault(slo.name, index)
        if slo.kind == KIND_UP and up is not None:
            message = (
                f"a second SLO of kind 'up' (the first is slos[{up}]): both would watch the "
                "same job's targets and raise the same alerts twice; keep one"
            )
            found.errors.append(SpecError(ctx.top.where(f"{where}.kind"), message))
        elif slo.kind == KIND_UP:
            up = index
        slos.append(slo)
    return tuple(slos)


def _slo_at(ctx: Context, where: str, item: object, found: Found) -> Slo | None:
    return _slo(ctx, Reader.of(ctx.top.file, where, item), found)


def _slo(ctx: Context, item: Reader, found: Found) -> Slo | None:
    """One SLO, or None when it has errors (kept in ``found``)."""
    before = len(found.errors)
    name = found.get(lambda: item.text("name", pattern=NAME_PATTERN, hint=NAME_HINT), None)
    if name is not None:
        item = Reader(item.file, f"{item.path} ({name})", item.data)
    kind = found.get(lambda: item.choice("kind", tuple(ctx.kinds)), None)
    sli = None
    if kind is not None:
        parser = ctx.kinds[kind]
        allowed = (*COMMON_SLO_KEYS, *parser.keys)
        found.errors += item.unknown(allowed, f"an SLO of kind {kind!r}")
        at = len(found.errors)
        sli = found.get(lambda: parser.parse(ctx, item), None)
        # A misspelt key already got "did you mean threshold_seconds?": the key it meant
        # is missing, and saying so again adds nothing.
        meant = {item.where(m) for m in item.meant(allowed)}
        found.errors[at:] = [
            e for e in found.errors[at:] if not (e.location in meant and e.detail == "is required")
        ]
    slo_name = name or "slo"
    default_runbook = f"{ctx.runbooks}/{ctx.service}/{slo_name}.md"
    has_min_rate = kind is not None and "min_rate" in ctx.kinds[kind].keys
    no_labels: dict[str, str] = {}
    description = found.get(
        lambda: description_text(
            item, "description", item.text("description", f"{kind} SLO {name} of {ctx.service}")
        ),
        "",
    )
    min_rate = found.get(lambda: _min_rate(item, ctx.min_rate) if has_min_rate else 0.0, 0.0)
    own_labels = found.get(lambda: labels(item, "labels"), no_labels)
    annotations = found.get(lambda: labels(item, "annotations", RESERVED_ANNOTATIONS), no_labels)
    runbook_url = found.get(lambda: item.url("runbook_url", default_runbook), "")
    dashboard_url = found.get(lambda: item.url("dashboard_url", ctx.dashboard_url), "")
    if name is None or kind is None or sli is None or len(found.errors) > before:
        return None
    return Slo(
        name=name,
        kind=kind,
        description=description,
        sli=sli,
        min_rate=min_rate,
        labels=frozen({**ctx.labels, **own_labels}),
        annotations=frozen(annotations),
        runbook_url=runbook_url,
        dashboard_url=dashboard_url,
    )


#: The smallest error budget, in percent, an objective may leave (eight nines).
_LEAST_BUDGET = 1e-6


def objective(item: Reader) -> float:
    """The SLO's ``objective``: a percentage strictly between 0 and 100.

    A value up to 1 is taken for a ratio written where a percentage belongs (0.999 for
    99.9 %), and one below 50 for a limit of bad events (1.5 for "at most 1.5 % errors"),
    and rejected with that hint, before any burn-factor check could confuse. One above
    99.999999 is refused: smaller budgets lose precision in the rules and generated tests.
    """
    objective = item.number("objective")
    if objective == 1:  # as a ratio it is 100 %, itself refused: maybe a limit of bad ones
        item.fail(
            "objective",
            "1 looks like a ratio (100 %, which no SLO can meet) or a limit of bad events: "
            "give the percentage of good events, below 100, e.g. 99 for at most 1 % bad",
        )
    if 0 < objective < 1:
        item.fail(
            "objective",
            f"{objective:.10g} looks like a ratio: give a percentage, e.g. "
            f"{round(objective * 100, 6):g} for {objective:.10g}",
        )
    if not 0 < objective < 100:
        item.fail("objective", f"{objective} is outside (0, 100): give a percentage like 99.9")
    if round(100 - objective, 12) < _LEAST_BUDGET:  # rounded: the float of 99.999999 passes
        item.fail(
            "objective",
            f"{objective:.15g} allows fewer than 1 bad event in 100 million: the rules and "
            "their generated tests lose precision past that, and no window holds the "
            f"events to measure it; give at most {100 - _LEAST_BUDGET:.15g}",
        )
    if objective < 50:  # no SLO lets most events be bad: a limit of bad ones, or a typo
        item.fail(
            "objective",
            f"{objective:.10g} lets {100 - objective:.10g} % of events be bad: give the percentage "
            f"of good events, e.g. {100 - objective:.10g} for at most {objective:.10g} % bad",
        )
    return objective


def _default_selector(ctx: Context, key: str) -> Selector:
    if key == "total":
        return Selector(ctx.names.requests_total)
    if key == "errors":
        return parse_selector(f'{ctx.names.requests_total}{{{c.LABEL_STATUS}=~"5.."}}')
    return Selector(ctx.names.request_duration)


def selector(ctx: Context, item: Reader, key: str) -> Selector:
    """The selector at ``key`` (or the exporter's default series), with the job matcher."""
    if not item.has(key):
        selector = _default_selector(ctx, key)
    else:
        text = item.text(key)
        try:
            selector = parse_selector(text)
        except ValueError as exc:
            item.fail(key, f"{text!r} is not a PromQL series selector: {exc}")
    selector = selector.with_default(job_matcher(ctx.job))
    own = _kit_default_series(ctx.names.namespace, selector)
    if own is not None:
        item.fail(
            key,
            f"{selector.metric} is the exporter's series in namespace "
            f"{c.DEFAULT_NAMESPACE!r}, but the spec's namespace is {ctx.names.namespace!r}: "
            f"write {own}, or set `namespace: {c.DEFAULT_NAMESPACE}`",
        )
    if key in ("histogram", "good") and selector.metric.endswith(("_bucket", "_count", "_sum")):
        item.fail(key, f"{selector.metric!r}: give the histogram's base name, without _bucket")
    if any(m.name == c.LABEL_LE for m in selector.matchers):
        item.fail(key, "must not match on le: limone-obs adds the threshold's bucket itself")
    if key != "good":  # good: after its own check against the histogram (see good())
        _check_catalogue(ctx, item, key, selector)
    return selector


def _check_catalogue(ctx: Context, item: Reader, key: str, selector: Selector) -> None:
    """A series of the spec's namespace must be the exporter's, as ``check`` says too:
    rules built on a misspelt name or an impossible matcher select nothing and never fire
    (a histogram's thresholds then wait for it)."""
    histogram = key in HISTOGRAM_KEYS
    wrong = _catalogue(ctx.names.namespace).problems(
        selector, histogram=histogram, counter=not histogram
    )
    if wrong:
        item.fail(key, wrong[0])


def _kit_default_series(namespace: str, selector: Selector) -> str | None:
    """The name to write when ``selector`` is an exporter series of the kit's default
    namespace in a spec of another (a spec copied from the kit's and given its own
    namespace: its SLI would select nothing, and its alerts never fire); else None."""
    if namespace == c.DEFAULT_NAMESPACE:
        return None
    if _catalogue(namespace).foreign_namespace(selector) != c.DEFAULT_NAMESPACE:
        return None
    return f"{namespace}{selector.metric[len(c.DEFAULT_NAMESPACE) :]}"


@functools.cache
def _catalogue(namespace: str) -> Catalogue:
    return Catalogue.of(namespace)


def good(ctx: Context, item: Reader, histogram: Selector) -> Selector:
    """The ``good`` selector of a latency SLO: ``histogram`` narrowed by more matchers."""
    if not item.has("good"):
        _check_testable(item, "histogram", histogram)
        return histogram
    good = selector(ctx, item, "good")
    if good.metric != histogram.metric or not set(histogram.matchers) <= set(good.matchers):
        item.fail(
            "good",
            f"{good.promql()} must be the histogram {histogram.promql()} with matchers added "
            f'for the good events, e.g. {histogram.promql()[:-1]},outcome="ok"}}',
        )
    _check_catalogue(ctx, item, "good", good)
    _check_testable(item, "good", good)
    return good


def _check_testable(item: Reader, key: str, chosen: Selector) -> None:
    """The generated promtool tests feed the rules a series ``chosen`` selects: some value
    of each label must pass its matchers (a regex no usual value matches, and whose own
    text spells none out, cannot be fed)."""
    if samples.solve(chosen.matchers) is None:
        item.fail(
            key,
            f"{chosen.promql()}: no label value found that passes every matcher (tried the "
            "values the matchers spell out, then usual ones), so the generated promtool tests "
            "could not feed it a series: check the regexes (Prometheus anchors them: "
            '"/invoices/.*", not "invoices")',
        )


def counters(ctx: Context, item: Reader) -> tuple[Selector, Selector]:
    """The ``errors`` and ``total`` selectors, errors a proper subset of total. A
    ``total`` of the spec's own needs its ``errors``: the default (the exporter's 5xx
    answers) would count other events than it (HTTP 5xx over payment attempts)."""
    errors, total = selector(ctx, item, "errors"), selector(ctx, item, "total")
    if item.has("total") and not item.has("errors"):
        example = total.promql(Matcher(c.LABEL_STATUS, "=~", "5.."))
        item.fail(
            "errors",
            f"missing: total is {item.text('total')!r} of the spec's own, and the default "
            f"errors ({errors.promql()}) counts other events; give the errors of that total, "
            f"e.g. {example} for its 5xx answers, or a counter of its failed events",
        )
    _check_subset(item, errors, total, Catalogue.of(ctx.names.namespace).domain)
    _check_same_series(ctx, item, errors, total)
    _check_not_successes(ctx, item, errors)
    return errors, total


def _check_not_successes(ctx: Context, item: Reader, errors: Selector) -> None:
    """``errors`` of the exporter's requests must not count a 200 answer: an inverted
    matcher (``status=~"2.."``) makes the SLO burn on every healthy request."""
    if errors.metric != ctx.names.requests_total:
        return
    if all(m.matches("200") for m in errors.matchers if m.name == c.LABEL_STATUS):
        item.fail(
            "errors",
            f"{errors.promql()} counts successful answers (status 200 passes it): errors "
            'are the failed ones, e.g. status=~"5.." for server errors',
        )


def _check_same_series(ctx: Context, item: Reader, errors: Selector, total: Selector) -> None:
    """Within the exporter's series, errors must be total's metric with total's matchers
    and more: a different metric (cache lookups over requests) is no share of total.

    Outside the exporter's namespace the series are the user's own and cannot be
    checked; ``errors`` may then name another counter.
    """
    known = Catalogue.of(ctx.names.namespace).names
    if errors.metric not in known or total.metric not in known:
        return
    if errors.metric == total.metric and set(total.matchers) <= set(errors.matchers):
        return
    item.fail(
        "errors",
        f"{errors.promql()} is not a part of total {total.promql()}: errors must be the same "
        f"metric as total ({total.metric}) with total's matchers and more, e.g. "
        f"{total.promql(Matcher(c.LABEL_STATUS, '=~', '5..'))}; for another "
        "counter's share, give total that counter too",
    )


def _check_subset(
    item: Reader, errors: Selector, total: Selector, domains: Callable[[str], samples.Domain]
) -> None:
    """errors must pick some of total's series (same metric) and not all of them; a label
    of the exporter's with known values counts only those values (``domains``)."""
    if samples.bad_labels(errors, total, domains) is None:
        item.fail(
            "errors",
            f"{errors.promql()} selects no series that total ({total.promql()}) also counts"
            f"{_written_values(errors, domains)}: errors must be a subset of total (tried the "
            "label values the exporter writes, else usual ones)",
        )
    if samples.good_labels(errors, total, domains) is None:
        item.fail(
            "errors",
            f"{errors.promql()} selects every series of total ({total.promql()})"
            f"{_written_values(errors, domains)}: add a matcher that only the bad events pass, "
            'e.g. status=~"5.." on the request series',
        )


def _written_values(errors: Selector, domains: Callable[[str], samples.Domain]) -> str:
    """Which values were tried, when the exporter's are known (a typo then selects all)."""
    domain = domains(errors.metric)
    known = [
        f"{m.name}: {', '.join(values)}"
        for m in errors.matchers
        if (values := domain(m.name)) is not None and len(values) <= 12
    ]
    return f" (of the values the exporter writes: {'; '.join(known)})" if known else ""


def threshold(ctx: Context, item: Reader, histogram: Selector) -> float:
    """``threshold_seconds``: one of the bucket boundaries of ``histogram``."""
    return _bucket(ctx, item, "threshold_seconds", item.number("threshold_seconds"), histogram)


def _bucket(ctx: Context, item: Reader, key: str, value: float, histogram: Selector) -> float:
    if histogram.metric in ctx.buckets and ctx.buckets[histogram.metric] is None:
        return value  # its buckets: list is in error (said there): nothing to check against
    declared = ctx.buckets.get(histogram.metric)
    own = c.exporter_histogram(ctx.names.namespace, histogram.metric)
    catalogue = _catalogue(ctx.names.namespace)
    other = None if declared or own else catalogue.foreign_namespace(histogram)
    if other is not None:
        # The exporter's histogram of another namespace (a spec left on the default for
        # an app with Metrics(namespace="shop")): listing its buckets, as the advice
        # below says, made a build whose every rule selected nothing (a trial).
        item.fail(key, c.foreign_namespace_advice(histogram.metric, other, ctx.names.namespace))
    if not declared and own is None:
        client = ", ".join(f"{b:g}" for b in c.CLIENT_DEFAULT_BUCKETS)
        item.fail(
            key,
            f"{histogram.metric} is not one of the exporter's histograms, so its bucket "
            "boundaries are not known here and a threshold between two of them would count "
            "every event as bad: list them in the spec, buckets: "
            f"{{{histogram.metric}: [...]}} (a prometheus_client.Histogram made without "
            f"buckets= has {client}), and use one of them",
        )
    buckets = declared or c.histogram_buckets(ctx.names.namespace, histogram.metric)
    if value not in buckets:
        allowed = ", ".join(f"{b:g}" for b in buckets)
        whose = "the buckets: of the spec" if declared else "the exporter's default buckets"
        argument = c.HISTOGRAM_BUCKETS_ARGUMENT.get(own or "")
        item.fail(
            key,
            f"{value:.15g} s is not a bucket boundary of {histogram.metric} ({whose}), so no "
            f"series counts the events under it; use one of: {allowed}"
            + (
                f"; if the app gives it other buckets ({argument}), list them in the spec: "
                f"buckets: {{{histogram.metric}: [...]}}"
                if argument and not declared
                else ""
            ),
        )
    return value


def stages(ctx: Context, item: Reader, histogram: Selector, committed: float) -> tuple[float, ...]:
    """``stages``: the roadmap's next thresholds in seconds, each a bucket boundary of
    ``histogram``, below the committed ``threshold_seconds`` and below the one before."""
    raw = item.raw("stages", [])
    if not isinstance(raw, list):
        item.fail(
            "stages", f"must be a list of thresholds in seconds, e.g. [1.0, 0.6]; found {raw!r}"
        )
    found: list[float] = []
    for index, value in enumerate(raw):
        key = f"stages[{index}]"
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = plain_number_hint(value, seconds=True)
            item.fail(key, f"must be a number of seconds, found {value!r}{hint}")
        previous = found[-1] if found else committed
        if value >= previous:
            # An example from the histogram's own boundaries below this SLO's threshold.
            buckets = ctx.buckets.get(histogram.metric) or c.histogram_buckets(
                ctx.names.namespace, histogram.metric
            )
            lower = sorted((b for b in buckets if b < committed), reverse=True)[1:4:2]
            example = f", e.g. [{', '.join(f'{b:g}' for b in lower)}]" if lower else ""
            item.fail(
                key,
                f"{value:g} s is not below {previous:g} s: list the next thresholds from the "
                f"committed threshold_seconds ({committed:g} s) downwards, each below the one "
                f"before and a bucket boundary{example}",
            )
        found.append(_bucket(ctx, item, key, float(value), histogram))
    return tuple(found)


def _tier_overrides(ctx: Context, item: Reader) -> dict[str, str]:
    """The SLO's ``tiers:`` mapping, tier name -> page | ticket | off.

    An unquoted ``off`` is a boolean false in YAML 1.1; it is read as ``"off"``.
    """
    block = item.child("tiers", {})
    found = {}
    for name, value in block.items():
        if name not in ctx.tiers:
            block.fail(name, f"unknown tier {name!r}; defined: {', '.join(ctx.tiers)}")
        if value is False:
            found[name] = TIER_OFF
        else:
            found[name] = block.choice(name, (*SEVERITIES, TIER_OFF))
    return found


def tiers_of(
    found: Found, ctx: Context, item: Reader, objective: float | None
) -> tuple[BurnTier, ...]:
    """:func:`slo_tiers`, its error kept in ``found``; without a valid ``objective`` only
    the overrides are checked (whether a tier can fire depends on the objective)."""
    if objective is None:
        found.get(lambda: _tier_overrides(ctx, item), None)
        return ()
    return found.get(lambda: slo_tiers(ctx, item, objective), ())


def slo_tiers(ctx: Context, item: Reader, objective: float) -> tuple[BurnTier, ...]:
    """The service's tiers with the SLO's overrides; each must be able to fire (every
    tier that cannot is named, in one CollectedSpecError)."""
    overrides = _tier_overrides(ctx, item)
    budget = round((100 - objective) / 100, 12)
    enabled = []
    found = Found()
    for name, tier in ctx.tiers.items():
        severity = overrides.get(name, tier.severity)
        if severity == TIER_OFF:
            continue
        if tier.factor * budget >= 1:
            found.get(functools.partial(_never_fires, item, tier, budget, ctx.period), None)
        enabled.append(BurnTier(name, severity, *_tier_rest(tier)))
    found.raise_any()
    return tuple(enabled)


def _tier_rest(tier: BurnTier) -> tuple[str, str, float, str, float]:
    return tier.long_window, tier.short_window, tier.budget_percent, tier.for_, tier.factor


def _never_fires(item: Reader, tier: BurnTier, budget: float, period: str) -> None:
    """Refuse ``tier`` for this SLO, naming the lowest objective it can fire at.

    A higher objective is a smaller budget, so the fix is to raise it (never to lower
    it), or to lower the factor: a longer long window or a smaller share of the budget,
    or a shorter ``period`` (named when it is longer than a quarter: a trial's 3650d
    period refused every tier without a word of it).
    """
    lowest = 100 * (1 - 1 / tier.factor)  # factor x budget < 1 needs objective above this
    item.fail(
        f"tiers.{tier.name}",
        f"burn factor {tier.factor:g} x error budget {budget:g} = {tier.factor * budget:.4g} "
        ">= 1: the error ratio can never exceed it, so this alert could never fire; raise "
        f"the objective above 100 x (1 - 1/{tier.factor:g}) = {lowest:.4f} (e.g. "
        f'{_just_above(lowest)}), switch the tier off for this SLO (tiers: {{{tier.name}: "off"}}) '
        "or lower its factor in the top-level tiers: (a longer long_window or a smaller "
        "budget_percent)"
        + (
            f"; the factor grows with the period, {period} here (28d or 30d is usual)"
            if _durations.seconds(period) > _durations.seconds("92d")
            else ""
        ),
    )


def _just_above(bound: float) -> str:
    """The shortest objective above ``bound`` with 2 or more decimals, below 100."""
    for digits in range(2, 10):
        step = 10**-digits
        value = math.floor(bound / step + 1e-6) * step + step  # strictly above the bound
        if value < 100:
            return f"{value:.{digits}f}"
    return f"{bound:.10f}"


def quantile_alert(item: Reader) -> QuantileAlert | None:
    """The optional ``quantile_alert: {for, severity}`` block."""
    if not item.has("quantile_alert"):
        return None
    block = item.child("quantile_alert")
    block.only(("for", "severity"), "quantile_alert")
    return QuantileAlert(block.wait("for", "15m"), block.choice("severity", SEVERITIES))


def _alertmanager(block: Reader) -> AlertmanagerSpec:
    block.only(("receivers", "group_wait", "group_interval", "repeat_interval", "resolve_timeout"))
    receivers = block.child("receivers", {})
    receivers.only(SEVERITIES, "receivers")
    repeat = block.child("repeat_interval", {})
    repeat.only(SEVERITIES, "repeat_interval")
    return AlertmanagerSpec(
        receivers={sev: _receiver(receivers.child(sev, {})) for sev in SEVERITIES},
        group_wait=block.duration("group_wait", "30s"),
        group_interval=block.duration("group_interval", "5m"),
        repeat_interval={
            c.SEVERITY_PAGE: repeat.duration(c.SEVERITY_PAGE, "1h"),
            c.SEVERITY_TICKET: repeat.duration(c.SEVERITY_TICKET, "12h"),
        },
        resolve_timeout=block.duration("resolve_timeout", "5m"),
    )


def _receiver_config(item: Reader) -> None:
    """One entry of an ``extra`` ``*_configs`` list (a mapping: :meth:`Reader.of`) whose
    URLs (``url``, ``api_url``, ``webhook_url``...) are http(s) URLs. The rest is
    Alertmanager's to judge (``limone-obs check`` runs amtool on the built config when it
    is installed)."""
    for key, _value in item.items():
        if key == "url" or key.endswith("_url"):
            item.url(key)


def _receiver(block: Reader) -> Receiver:
    block.only(("webhook_url", "send_resolved", "extra"), "a receiver")
    url = None
    if block.raw("webhook_url", DEFAULT_WEBHOOK) is not None:
        url = block.url("webhook_url", DEFAULT_WEBHOOK)
    resolved = block.raw("send_resolved", True)
    if not isinstance(resolved, bool):
        block.fail("send_resolved", f"must be true or false, found {resolved!r}")
    extra = block.child("extra", {})
    for key, value in extra.items():
        if not key.endswith("_configs") or not isinstance(value, list):
            extra.fail(key, "must be an Alertmanager *_configs list, e.g. slack_configs: [...]")
        for index, item in enumerate(value):
            _receiver_config(Reader.of(extra.file, f"{extra.path}.{key}[{index}]", item))
    if url is None and not extra.data:
        block.fail(
            None,
            "has no webhook_url and no extra *_configs: alerts would go nowhere. Give it "
            "webhook_url: https://... (your alert receiver), or extra: with Alertmanager's "
            "*_configs (slack_configs, pagerduty_configs, ...); leave webhook_url out (not "
            "empty) for the demo stack's webhook",
        )
    return Receiver(url, resolved, MappingProxyType(dict(extra.data)))
