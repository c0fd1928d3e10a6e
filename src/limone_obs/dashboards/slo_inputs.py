"""What the dashboards need from the SLO spec (``alerts/slo.yaml``), behind one function.

:func:`load_service` reads the spec with :func:`limone_obs.alerts.spec.load_spec` and keeps
only what a panel draws: objectives, thresholds, burn-rate tiers, runbooks, the series
each SLI counts and, for an SLO without recording rules, its SLI from the raw series. The
spec's selectors carry ``job="<job>"``; the dashboards replace that matcher with their own
``$job``/``$instance`` filters, keeping every other matcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from limone_obs import conventions as c
from limone_obs.alerts import model
from limone_obs.alerts.selectors import Selector
from limone_obs.alerts.spec import SPEC_PATH, load_spec

KIND_RATIO = model.KIND_RATIO
KIND_LATENCY = model.KIND_LATENCY
KIND_THRESHOLD = model.KIND_THRESHOLD
KIND_UP = model.KIND_UP


@dataclass(frozen=True)
class Tier:
    """One burn-rate alert tier: fires when both windows burn faster than ``factor``."""

    severity: str
    factor: float
    long_window: str
    short_window: str


@dataclass(frozen=True)
class Series:
    """A series of the spec: metric name and its matchers other than ``job``."""

    metric: str
    matchers: tuple[str, ...] = ()

    def with_suffix(self, suffix: str) -> Series:
        """The same matchers on ``metric + suffix`` (a histogram's ``_bucket``)."""
        return Series(self.metric + suffix, self.matchers)

    def label_value(self, label: str) -> str | None:
        """The value of an ``=`` matcher on ``label`` (``dependency="ai_api"``), or None."""
        prefix = f'{label}="'
        for matcher in self.matchers:
            if matcher.startswith(prefix):
                return matcher[len(prefix) : -1]
        return None


@dataclass(frozen=True)
class SloView:
    """One SLO as the dashboards see it; ``objective`` is a percentage (99.9)."""

    name: str
    kind: str
    objective: float | None
    description: str
    runbook_url: str
    threshold_seconds: float | None = None
    errors: Series | None = None
    total: Series | None = None
    histogram: Series | None = None
    #: The part of ``histogram`` whose fast events are good (defaults to all of it).
    good: Series | None = None
    tiers: tuple[Tier, ...] = ()
    #: Next thresholds of a staged latency SLO (seconds, descending).
    stages: tuple[float, ...] = ()
    #: The window of a ``threshold`` SLO's recorded error ratio (its alert's window).
    window: str | None = None
    #: The panels of the SLO's dashboard row, as its kind lays them out.
    panels: tuple[model.Panel, ...] = ()
    #: PromQL of the SLI now (good share, 0..1) of an SLO whose kind records no rules
    #: (``up``: the share of the job's targets up), as ``limone-obs status`` reads it but
    #: with ``$job`` filtered too; None when the recording rules carry the SLI.
    raw_sli: str | None = None

    @property
    def target(self) -> float:
        """The objective as a ratio (0.999); 1.0 for SLOs without one (``up``)."""
        return round((self.objective if self.objective is not None else 100.0) / 100, 9)

    @property
    def budget(self) -> float:
        """The allowed bad-event ratio (0.001)."""
        return round(1 - self.target, 9)

    @property
    def windows(self) -> tuple[str, ...]:
        """Every burn-rate window of the tiers, shortest first, without repeats."""
        found = {w for t in self.tiers for w in (t.long_window, t.short_window)}
        return tuple(w for w in c.SLI_WINDOWS if w in found)


@dataclass(frozen=True)
class ServiceView:
    """The service's SLOs: ``service`` is the ``slo_service`` label of the rules."""

    service: str
    job: str
    namespace: str
    period: str
    slos: tuple[SloView, ...]
    #: The workers' mean busy share above which the WorkersSaturated ticket fires.
    saturated_above: float = 0.9


def load_service(root: Path) -> ServiceView:
    """The SLOs of ``root/alerts/slo.yaml``; SpecError when it is missing or invalid."""
    return from_spec(load_spec(root / SPEC_PATH))


def from_spec(spec: model.ServiceSpec) -> ServiceView:
    """Convert the alerts area's :class:`~limone_obs.alerts.model.ServiceSpec`."""
    return ServiceView(
        service=spec.service,
        job=spec.job,
        namespace=spec.namespace,
        period=spec.period,
        slos=tuple(_slo(spec, slo) for slo in spec.slos),
        saturated_above=spec.health.workers_saturated_above,
    )


def _series(selector: Selector | None) -> Series | None:
    if selector is None:
        return None
    kept = tuple(m.promql() for m in selector.matchers if m.name != c.LABEL_JOB)
    return Series(selector.metric, kept)


def _raw_sli(spec: model.ServiceSpec, slo: model.Slo) -> str | None:
    """The kind's SLI of an SLO without recording rules; None for one with rules (or
    none). Each ``job="<job>"`` of it also filters ``$job``, like every series a panel
    reads: the SLI stays the spec's job's, and is empty while ``$job`` is another job."""
    sli = slo.sli.unrecorded_sli(spec, slo)
    if sli is None:
        return None
    spec_job = model.job_matcher(spec.job).promql()
    return sli.replace(spec_job, f'{c.LABEL_JOB}="${c.VAR_JOB}", {spec_job}')


def _slo(spec: model.ServiceSpec, slo: model.Slo) -> SloView:
    selectors = slo.sli.selectors()
    return SloView(
        name=slo.name,
        kind=slo.kind,
        objective=slo.objective,
        description=slo.description,
        runbook_url=slo.runbook_url,
        threshold_seconds=slo.sli.good_within_seconds(),
        errors=_series(selectors.get("errors")),
        total=_series(selectors.get("total")),
        histogram=_series(selectors.get("histogram")),
        good=_series(selectors.get("good")),
        tiers=tuple(Tier(t.severity, t.factor, t.long_window, t.short_window) for t in slo.tiers),
        stages=slo.sli.next_stages(),
        window=slo.sli.ratio_window(),
        panels=slo.sli.dashboard_row(),
        raw_sli=_raw_sli(spec, slo),
    )
