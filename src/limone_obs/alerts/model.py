"""The model of the SLO spec: frozen dataclasses, built once by :mod:`limone_obs.alerts.spec`.

Kinds of SLO (:data:`KINDS`):

- ``ratio``: good/bad events from two counters, ``errors`` over ``total`` (availability).
- ``latency``: events of a histogram slower than ``threshold_seconds`` over all events.
- ``threshold``: a plain alert when the error ratio over ``window`` exceeds
  ``100 - objective`` percent for ``for``, e.g. more than 1 % 5xx over 5 minutes.
- ``up``: the scrape target is down (``up == 0``) or gone (no ``up`` series at all).

``ratio`` and ``latency`` SLOs get multi-window multi-burn-rate alerts, one per enabled
:class:`BurnTier`; the burn factor of a tier is computed from the share of the error
budget it may spend, the period and its long window, never typed in.

An :class:`Slo` holds what every kind shares; its ``sli`` (a :class:`Sli` subclass from
:mod:`limone_obs.alerts.kinds`) holds the kind's own fields and generates its artifacts.
Its row on the SLO dashboard is data too (:class:`Panel`, :class:`PanelName`): the kind
lists the panels, :mod:`limone_obs.dashboards.slos` draws them, and no kind imports the
dashboards.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Final

from limone_obs import conventions as c
from limone_obs.alerts import _durations
from limone_obs.alerts.selectors import Matcher, Selector

KIND_RATIO: Final = "ratio"
KIND_LATENCY: Final = "latency"
KIND_THRESHOLD: Final = "threshold"
KIND_UP: Final = "up"
KINDS: Final = (KIND_RATIO, KIND_LATENCY, KIND_THRESHOLD, KIND_UP)
#: Kinds that have an error budget and burn-rate alerts.
BUDGET_KINDS: Final = (KIND_RATIO, KIND_LATENCY)
SEVERITIES: Final = (c.SEVERITY_PAGE, c.SEVERITY_TICKET)
#: Value of a per-SLO tier override that switches the tier off.
TIER_OFF: Final = "off"
SPEC_VERSION: Final = 1

#: A rule and a rule group as plain data, in the shape of a Prometheus rule file.
Rule = dict[str, Any]
Group = dict[str, Any]


def frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(sorted(mapping.items())))


@dataclass(frozen=True)
class BurnTier:
    """One multi-window burn-rate alert tier of one SLO.

    The alert fires when the error ratio over both ``long_window`` and ``short_window``
    exceeds ``factor`` times the error budget, for ``for_``. ``factor`` is
    ``budget_percent / 100 * period / long_window``: burning that fast for the long window
    spends ``budget_percent`` of the period's budget (2 % in 1 h of 30 d -> 14.4).
    """

    name: str
    severity: str
    long_window: str
    short_window: str
    budget_percent: float
    for_: str
    factor: float


@dataclass(frozen=True)
class QuantileAlert:
    """A latency SLO's plain alert: the objective's quantile (p95 for 95 %) above the threshold."""

    for_: str
    severity: str


@dataclass(frozen=True)
class Panel:
    """One panel of an SLO's row on the SLO dashboard, as data.

    ``name`` is one of :class:`PanelName` (the dashboards know how to draw each);
    ``width`` is in grid columns (24 per line, a panel that does not fit starts a new
    line) and ``height`` in grid units.
    """

    name: str
    width: int
    height: int = 8


class PanelName:
    """The panels an SLO row of the SLO dashboard can hold, by name (drawn by
    :mod:`limone_obs.dashboards.slos`): the SLO's text, its objective and SLI stats, the
    error budget left, burn rate per window, the bad-event ratio now (kinds without a
    budget), the firing alerts, the SLI and burn rates over time, the stages' progress, the
    budget burndown, good and bad events, and the scrape targets' ``up``."""

    DEFINITION: Final = "definition"
    OBJECTIVE_SLI: Final = "objective-sli"
    BUDGET_LEFT: Final = "budget-left"
    BURN_RATES: Final = "burn-rates"
    CURRENT_SLI: Final = "current-sli"
    FIRING: Final = "firing"
    SLI_SERIES: Final = "sli-series"
    BURN_SERIES: Final = "burn-series"
    PROGRESS: Final = "progress"
    BURNDOWN: Final = "burndown"
    EVENTS: Final = "events"
    UP: Final = "up"


@dataclass(frozen=True)
class Receiver:
    """An Alertmanager receiver: a webhook URL (or None) plus raw ``*_configs`` blocks."""

    webhook_url: str | None
    send_resolved: bool
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class AlertmanagerSpec:
    """Routing settings of the generated ``alerts/alertmanager.yml``.

    ``receivers`` maps a severity (``page``, ``ticket``) to its receiver; ``repeat_interval``
    maps a severity to how often an unresolved alert is sent again.
    """

    receivers: Mapping[str, Receiver]
    group_wait: str
    group_interval: str
    repeat_interval: Mapping[str, str]
    resolve_timeout: str


@dataclass(frozen=True, kw_only=True)
class Sli(ABC):
    """The kind-specific part of an SLO: its fields and everything generated from them.

    One subclass per kind, in :mod:`limone_obs.alerts.kinds` (the shape of Sloth's SLI
    plugins): it brings its recording rules, alerting rules, promtool scenarios, runbook
    sections, its row on the SLO dashboard, the query of its row in ``limone-obs status``
    and the series ``check --prometheus`` looks for. The generators call these methods and
    never branch on the kind; adding a kind adds a module.
    """

    #: The ``kind`` value of the spec (``ratio``, ``latency``, ...).
    kind: ClassVar[str]
    #: Percent of good events (99.9); None for kinds without one (``up``).
    objective: float | None = None
    #: The enabled burn-rate tiers; empty for kinds without an error budget.
    tiers: tuple[BurnTier, ...] = ()

    def selectors(self) -> Mapping[str, Selector]:
        """The spec's selectors of this SLO by field name (``total``, ``histogram``, ...)."""
        return {}

    @abstractmethod
    def recording_groups(self, spec: ServiceSpec, slo: Slo) -> list[Group]:
        """The recording rule groups of ``slo`` (may be empty)."""

    @abstractmethod
    def alerts(self, spec: ServiceSpec, slo: Slo) -> list[Rule]:
        """Every alerting rule of ``slo``, in a stable order."""

    @abstractmethod
    def scenarios(self, spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
        """The promtool unit tests (``tests:`` entries) of every alert of ``slo``."""

    @abstractmethod
    def runbook(self, spec: ServiceSpec, slo: Slo) -> str:
        """The Markdown sections of ``slo``'s runbook, one per alert."""

    def inhibit_rules(self, spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
        """Alertmanager inhibit rules silencing ``slo``'s alerts while another alert of the
        same incident already pages (one page per incident); none by default."""
        del spec, slo
        return []

    def status_progress(self, spec: ServiceSpec, slo: Slo) -> dict[str, str]:
        """PromQL of the progress ``limone-obs status`` shows (a share per next stage, by
        a short title such as ``<=1s``); empty for kinds without stages."""
        del spec, slo
        return {}

    @abstractmethod
    def status_sli(self, spec: ServiceSpec, slo: Slo) -> str | None:
        """PromQL of the SLI shown by ``limone-obs status`` (good share, 0..1), or None
        when the row reads the recorded period SLI instead."""

    def unrecorded_sli(self, spec: ServiceSpec, slo: Slo) -> str | None:
        """The :meth:`status_sli` of an SLO whose kind records no rules (``up``: the share
        of its targets up), which the dashboards and the report read from the raw series;
        None for an SLO with recording rules, whose SLI they read from those."""
        if self.recording_groups(spec, slo):
            return None
        return self.status_sli(spec, slo)

    def window_sli(self, spec: ServiceSpec, slo: Slo, window: str) -> str | None:
        """PromQL of the good share (0..1) of the events of the last ``window`` (``"360s"``),
        counted from the raw series, for kinds with an error budget: the report's SLI of a
        window, exact however short the window is (the recorded 5m rates reach 5 minutes
        before it). None for the other kinds."""
        del spec, slo, window
        return None

    def counted_sli(self, window: str) -> str | None:
        """PromQL of the good share (0..1) of the events of the last ``window``, counted
        from the raw series, for every kind that counts events (``threshold`` too: the
        report's SLI of a window shorter than its alert's); None for the other kinds."""
        del window
        return None

    @abstractmethod
    def dashboard_row(self) -> tuple[Panel, ...]:
        """The panels of this SLO's row on the SLO dashboard, left to right."""

    def good_within_seconds(self) -> float | None:
        """Seconds within which an event is good (a latency SLI's threshold), or None."""
        return None

    def next_stages(self) -> tuple[float, ...]:
        """The roadmap's next thresholds (seconds, descending); empty without stages."""
        return ()

    def ratio_window(self) -> str | None:
        """The window of the recorded error ratio a kind without burn tiers alerts on
        (``threshold``: ``5m``), or None."""
        return None

    def roadmap(self, histogram: str) -> tuple[float, ...]:
        """The committed threshold then the next stages when this SLI counts events of the
        histogram ``histogram`` (base name); empty otherwise."""
        del histogram
        return ()

    def roadmap_events(self, histogram: str) -> tuple[Selector, Selector] | None:
        """``(good, all)``: the selections of the histogram ``histogram`` (base name) whose
        events this SLI counts (good ones within its threshold), when :meth:`roadmap` has
        thresholds; else None."""
        del histogram
        return None

    def live_queries(self, spec: ServiceSpec) -> list[tuple[str, str]]:
        """(spec field, PromQL) of every series selection the SLI reads, for
        ``check --prometheus``; empty when the kind cannot say (the check then refuses)."""
        del spec
        return []


@dataclass(frozen=True)
class Slo:
    """One SLO of the service.

    - ``name``: the ``slo`` label value (lowercase, digits, dashes).
    - ``kind``: one of :data:`KINDS`; ``sli``: that kind's fields and generators
      (:class:`Sli`; every selector there already carries the service's ``job`` matcher).
    - ``min_rate``: events per second below which burn and threshold alerts stay quiet.
    - ``labels`` / ``annotations``: passed through to every alert of the SLO.
    - ``runbook_url``: the SLO's runbook page (each alert links to its own section);
      ``dashboard_url``: the dashboard every alert links to.
    """

    name: str
    kind: str
    description: str
    sli: Sli
    min_rate: float
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    runbook_url: str
    dashboard_url: str

    @property
    def objective(self) -> float | None:
        """Percent of good events (99.9); for ``threshold`` the alert fires above
        ``100 - objective`` percent errors; None for ``up``."""
        return self.sli.objective

    @property
    def tiers(self) -> tuple[BurnTier, ...]:
        """The enabled burn tiers (budget kinds), severity overrides applied."""
        return self.sli.tiers

    @property
    def error_budget(self) -> float:
        """The allowed error ratio, ``1 - objective / 100`` rounded to stay exact (0.001)."""
        if self.objective is None:
            raise ValueError(f"SLO {self.name!r} of kind {self.kind!r} has no objective")
        return round((100 - self.objective) / 100, 12)

    @property
    def target(self) -> float:
        """The objective as a ratio (0.999)."""
        return round(1 - self.error_budget, 12)


@dataclass(frozen=True)
class HealthSpec:
    """Thresholds of the kit-health and saturation tickets (``health:`` in the spec).

    - ``exporter_problem_for``: how long ``<ns>_exporter_problems`` may be > 0;
    - ``dropped_lines_window`` / ``dropped_lines_for``: log lines dropped (any increase)
      over the window, for that long;
    - ``workers_saturated_above`` / ``workers_saturated_for``: the workers' mean busy share
      (request seconds per second over their slots, Little's law) above that, for that long;
    - ``calls_dependency`` / ``calls_per_request`` / ``calls_for``: the p95 of the calls one
      request makes to that dependency above the count, for that long;
    - ``traffic_window`` / ``traffic_for`` / ``traffic_severity``: no request served over
      the window while Prometheus scrapes the service, for that long (``traffic`` False:
      that alert is off);
    - ``enabled``: False switches them all off (a service without those series).
    """

    enabled: bool = True
    exporter_problem_for: str = "5m"
    dropped_lines_window: str = "10m"
    dropped_lines_for: str = "5m"
    workers_saturated_above: float = 0.9
    workers_saturated_for: str = "5m"
    calls_dependency: str = "db"
    calls_per_request: float = 20.0
    calls_for: str = "15m"
    traffic: bool = True
    traffic_window: str = "15m"
    traffic_for: str = "5m"
    traffic_severity: str = "ticket"


@dataclass(frozen=True)
class ServiceSpec:
    """The whole spec of one service.

    - ``service``: the ``slo_service`` label of every rule and alert.
    - ``job``: the value of the ``job`` label every selector is restricted to.
    - ``namespace``: the metric namespace of the exporter (default ``limoneide``).
    - ``period``: the SLO period (``30d``); ``period_seconds`` its length.
    - ``grafana_url`` / ``dashboard_url``: Grafana and the SLO dashboard alerts link to.
    - ``runbook_base_url``: where ``alerts/runbooks/`` is browsable.
    - ``labels``: extra labels on every alert.
    - ``slos``: the SLOs in file order; ``alertmanager``: routing and receivers.
    - ``source``: the file the spec was read from, for messages.
    """

    service: str
    job: str
    namespace: str
    period: str
    grafana_url: str
    dashboard_url: str
    runbook_base_url: str
    labels: Mapping[str, str]
    slos: tuple[Slo, ...]
    alertmanager: AlertmanagerSpec
    source: str
    health: HealthSpec = field(default_factory=HealthSpec)
    #: ``buckets:``: histogram base name -> the boundaries the app gives it, where they
    #: are not the exporter's defaults.
    buckets: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def histogram_buckets(self, metric: str) -> tuple[float, ...]:
        """The bucket boundaries of the histogram ``metric`` (base name): the spec's
        ``buckets:`` entry, else the exporter's defaults for it."""
        return self.buckets.get(metric) or c.histogram_buckets(self.namespace, metric)

    @property
    def period_seconds(self) -> int:
        """The period in seconds (30d -> 2592000)."""
        return _durations.seconds(self.period)

    @property
    def names(self) -> c.MetricNames:
        """The exporter's series names in this spec's namespace."""
        return c.MetricNames(self.namespace)

    def slo(self, name: str) -> Slo:
        """The SLO called ``name``; KeyError when there is none."""
        for slo in self.slos:
            if slo.name == name:
                return slo
        raise KeyError(name)


def dashboard_link(grafana_url: str, service: str, dashboard: str) -> str:
    """The URL of ``service``'s ``dashboard`` (``slos``, ``overview``...) in Grafana."""
    return f"{grafana_url}/d/{c.dashboard_uid(service, dashboard)}"


def job_matcher(job: str) -> Matcher:
    """The matcher every selector of the spec carries: ``job="<job>"``."""
    return Matcher(c.LABEL_JOB, "=", job)
