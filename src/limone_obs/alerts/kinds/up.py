"""Kind ``up``: the scrape target is down, gone, or serves no limone-obs metrics.

Spec fields: ``for``, ``absent_for``, ``severity``. Alerts: ``TargetDown`` (``up == 0``
for ``for``), ``TargetAbsent`` (no ``up`` series of the job for ``absent_for``),
``MetricsAbsent`` (a ticket, per instance: scraped but without ``<namespace>_build_info``).
No objective, no recording rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from limone_obs import conventions as c
from limone_obs.alerts import _parse, alerting, runbooks
from limone_obs.alerts._reader import Reader
from limone_obs.alerts.model import (
    KIND_UP,
    SEVERITIES,
    Group,
    Panel,
    PanelName,
    Rule,
    ServiceSpec,
    Sli,
    Slo,
    job_matcher,
)
from limone_obs.alerts.selectors import Selector
from limone_obs.alerts.unittests import (
    INSTANCE,
    SECOND_INSTANCE,
    alert_check,
    constant,
    minutes,
    plain_test,
)

KEYS: Final = ("for", "severity", "absent_for")


@dataclass(frozen=True, kw_only=True)
class UpSli(Sli):
    """The job's ``up`` series: down for ``for_`` or missing for ``absent_for`` pages."""

    kind = KIND_UP
    for_: str
    severity: str
    absent_for: str

    def recording_groups(self, spec: ServiceSpec, slo: Slo) -> list[Group]:
        """None: the alerts read ``up`` directly."""
        del spec, slo
        return []

    def alerts(self, spec: ServiceSpec, slo: Slo) -> list[Rule]:
        """``TargetDown``, ``TargetAbsent`` and ``MetricsAbsent``. MetricsAbsent matches on
        ``instance``, so one instance of a fleet without the exporter fires although the
        others have it; a ticket, since users are still served."""
        up = Selector(c.SERIES_UP, (job_matcher(spec.job),)).promql()
        info = Selector(spec.names.build_info, (job_matcher(spec.job),)).promql()
        page = alerting.alert_labels(spec, slo, self.severity)
        ticket = alerting.alert_labels(spec, slo, c.SEVERITY_TICKET)
        return [
            alerting.make_alert(
                c.ALERT_TARGET_DOWN, f"{up} == 0", self.for_, page,
                self._notes(spec, slo, c.ALERT_TARGET_DOWN),
            ),
            alerting.make_alert(
                c.ALERT_TARGET_ABSENT, f"absent({up})", self.absent_for, dict(page),
                self._notes(spec, slo, c.ALERT_TARGET_ABSENT),
            ),
            alerting.make_alert(
                c.ALERT_METRICS_ABSENT, f"{up} == 1\nunless on ({c.LABEL_INSTANCE})\n{info}",
                self.absent_for, ticket, self._notes(spec, slo, c.ALERT_METRICS_ABSENT),
            ),
        ]  # fmt: skip

    def _notes(self, spec: ServiceSpec, slo: Slo, alert: str) -> dict[str, str]:
        texts = {
            c.ALERT_TARGET_DOWN: (
                f"{spec.service}: scrape target {{{{ $labels.instance }}}} is down",
                f"Prometheus failed to scrape {{{{ $labels.instance }}}} of job {spec.job} for "
                f"{self.for_}: the process is down, hung, or unreachable.",
            ),
            c.ALERT_TARGET_ABSENT: (
                f"{spec.service}: no scrape target of job {spec.job}",
                f"Prometheus has had no up series for job {spec.job} for {self.absent_for}: "
                "the target left service discovery or the scrape config.",
            ),
            c.ALERT_METRICS_ABSENT: (
                f"{spec.service}: {{{{ $labels.instance }}}} exposes no limone-obs metrics",
                f"Instance {{{{ $labels.instance }}}} of job {spec.job} is scraped but has had "
                f"no {spec.names.build_info} series for {self.absent_for}: the exporter is not "
                "installed there or its namespace differs, so the SLO alerts miss its traffic.",
            ),
        }
        summary, description = texts[alert]
        return alerting.alert_annotations(slo, alert, summary, f"{slo.description} {description}")

    def scenarios(self, spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
        """Target down, up, gone, and up without metrics; raw-series alerts are active at
        t = 0. Each alert is checked one minute before and after its ``for``; the others
        of the SLO must stay quiet in the same scenario."""
        down, absent, no_metrics = self.alerts(spec, slo)
        wait_down, wait_absent = minutes(down["for"]), minutes(absent["for"])
        end = max(wait_down, wait_absent) + 1
        own = {c.LABEL_JOB: spec.job, c.LABEL_INSTANCE: INSTANCE}
        other = {c.LABEL_JOB: f"{spec.job}-other", c.LABEL_INSTANCE: INSTANCE}
        second = {**own, c.LABEL_INSTANCE: SECOND_INSTANCE}
        info = {**own, "version": "1.0.0", "revision": "abc", "python": "3.11.7"}
        up_ok, job = constant(c.SERIES_UP, own, "1", end + 1), {c.LABEL_JOB: spec.job}

        def fires(rule: Rule, wait: int, labels: dict[str, str]) -> list[dict[str, Any]]:
            return [alert_check(rule, wait - 1, None), alert_check(rule, wait + 1, labels)]

        cases = [
            ("target down fires TargetDown after for", [constant(c.SERIES_UP, own, "0", end + 1)],
             [*fires(down, wait_down, own), alert_check(no_metrics, end, None)]),
            ("target up with its metrics fires nothing",
             [up_ok, constant(spec.names.build_info, info, "1", end + 1)],
             [alert_check(rule, end, None) for rule in (down, absent, no_metrics)]),
            ("no up series of the job fires TargetAbsent after for",
             [constant(c.SERIES_UP, other, "1", end + 1)],
             [*fires(absent, wait_absent, job), alert_check(no_metrics, end, None)]),
            ("target up without limone-obs metrics fires MetricsAbsent after for", [up_ok],
             fires(no_metrics, wait_absent, own)),
            ("one of two instances without limone-obs metrics fires MetricsAbsent for it",
             [up_ok, constant(spec.names.build_info, info, "1", end + 1),
              constant(c.SERIES_UP, second, "1", end + 1)],
             fires(no_metrics, wait_absent, second)),
        ]  # fmt: skip
        return [plain_test(f"{slo.name}: {title}", lines, checks) for title, lines, checks in cases]

    def inhibit_rules(self, spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
        """While the target is down or gone (a page), the SLOs' ``SliAbsent`` tickets of the
        same service stay silent: their series are missing for that very reason."""
        down = f"{c.ALERT_TARGET_DOWN}|{c.ALERT_TARGET_ABSENT}"
        service = f'{c.LABEL_SLO_SERVICE}="{spec.service}"'
        return [
            {
                "source_matchers": [f'alertname=~"{down}"', service, f'{c.LABEL_SLO}="{slo.name}"'],
                "target_matchers": [f'alertname=~".+{c.ALERT_SUFFIX_SLI_ABSENT}"', service],
                "equal": [c.LABEL_SLO_SERVICE],
            }
        ]

    def runbook(self, spec: ServiceSpec, slo: Slo) -> str:
        """One section per target alert."""
        return runbooks.up_sections(spec, slo)

    def status_sli(self, spec: ServiceSpec, slo: Slo) -> str | None:
        """Share of the job's targets up."""
        del slo
        return f"avg({c.SERIES_UP}{{{c.LABEL_JOB}={c.promql_string(spec.job)}}})"

    def dashboard_row(self) -> tuple[Panel, ...]:
        """The SLO's text, each target's ``up`` and the firing alerts."""
        return (Panel(PanelName.DEFINITION, 6), Panel(PanelName.UP, 12), Panel(PanelName.FIRING, 6))

    def live_queries(self, spec: ServiceSpec) -> list[tuple[str, str]]:
        """The job's ``up`` series."""
        return [("job", Selector(c.SERIES_UP).promql(job_matcher(spec.job)))]


def parse(ctx: _parse.Context, item: Reader) -> UpSli:
    """Read the ``up`` fields of the SLO at ``item``."""
    del ctx
    found = _parse.Found()  # every field's first error, not only the SLO's first
    for_ = found.get(lambda: item.wait("for", "1m"), "")
    severity = found.get(lambda: item.choice("severity", SEVERITIES, c.SEVERITY_PAGE), "")
    absent_for = found.get(lambda: item.wait("absent_for", "5m"), "")
    found.raise_any()
    return UpSli(for_=for_, severity=severity, absent_for=absent_for)
