"""Helpers of the dashboards tests: every panel query, expanded as Grafana would."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from limone_obs import conventions as c
from limone_obs.dashboards import promql
from limone_obs.dashboards.common import PROCESS_NOTE, VAR_BASELINE
from limone_obs.dashboards.lint import panels, prometheus_targets, repeated_by
from tests.dashboards.example_app import DEPENDENCIES, PROJECT_ENDPOINT

#: ``$__rate_interval`` with a 1 s scrape interval: Grafana uses max(4 x scrape, step +
#: scrape); 10 s keeps a few samples in every window.
RATE_INTERVAL = "10s"
#: ``$baseline`` in the scenarios: 5 s back, so the baseline series has data in a test
#: that has run for a few seconds (1 d / 1 w in Grafana).
BASELINE_SECONDS = "5"
#: True once the baseline series have data: requests observed in a rate window
#: ``BASELINE_SECONDS`` back, of the endpoint the drill-down shows (its baseline panels
#: read that endpoint alone; the service's other requests can come first). Series merely
#: present there are not enough: the baseline p95 of a window without observations is
#: empty (not NaN).
BASELINE_READY = (
    f"sum(rate({c.MetricNames(c.DEFAULT_NAMESPACE).request_duration_count}"
    f'{{{c.LABEL_ENDPOINT}="{PROJECT_ENDPOINT}"}}[{RATE_INTERVAL}] '
    f"offset {BASELINE_SECONDS}s)) > 0"
)


def variable_values(job: str) -> dict[str, str]:
    """Values Grafana would substitute for the test scenario (``$instance`` = All)."""
    return {
        c.VAR_JOB: job,
        c.VAR_INSTANCE: ".*",
        c.VAR_ENDPOINT: PROJECT_ENDPOINT,
        "__rate_interval": RATE_INTERVAL,
        "__range": "1m",
        "__interval": "2s",
        VAR_BASELINE: BASELINE_SECONDS,
    }


#: What the scenarios' Grafana repeats rows over: ``$dependency`` = every dependency the
#: example app calls, as ``label_values`` lists them.
REPEATS: dict[str, tuple[str, ...]] = {c.VAR_DEPENDENCY: tuple(sorted(DEPENDENCIES))}
#: Regex metacharacters Grafana escapes in a multi-value variable's value for Prometheus.
_REGEX_SPECIALS = frozenset("^$*+?.()|{}[]")


def grafana_regex_value(value: str) -> str:
    """``value`` as Grafana writes one value of a multi-value variable into a Prometheus
    query: each regex metacharacter behind a backslash, itself escaped for the PromQL
    string (``payments.v2`` -> ``payments\\\\.v2``)."""
    value = value.replace("\\", "\\" * 4)  # a backslash: a literal one in the regex
    return "".join(f"\\\\{ch}" if ch in _REGEX_SPECIALS else ch for ch in value)


@dataclass(frozen=True)
class PanelQuery:
    """One Prometheus query of one panel."""

    dashboard: str
    panel_id: int
    title: str
    ref: str
    expr: str
    instant: bool
    process: bool

    @property
    def where(self) -> str:
        """``overview.json panel 3 "p95 latency" query A``, for messages."""
        return f'{self.dashboard} panel {self.panel_id} "{self.title}" query {self.ref}'


def prometheus_queries(
    dashboards: Mapping[str, Mapping[str, Any]],
    values: Mapping[str, str],
    repeats: Mapping[str, tuple[str, ...]] = REPEATS,
) -> Iterator[PanelQuery]:
    """Every Prometheus query of every panel, variables expanded with ``values``.

    A panel of a repeated row gives one query per value ``repeats`` lists for the row's
    variable, as Grafana draws one copy of it per value: the value escaped as Grafana
    escapes it in the query, as it is in the title.
    """
    for name, board in sorted(dashboards.items()):
        repeated = repeated_by(board)
        for panel in panels(board):
            var = repeated.get(panel["id"])
            copies = [(values, panel["title"])]
            if var is not None:
                copies = [
                    ({**values, var: grafana_regex_value(v)}, panel["title"].replace(f"${var}", v))
                    for v in repeats[var]
                ]
            for scoped, title in copies:
                for target in prometheus_targets(panel):
                    yield PanelQuery(
                        dashboard=name,
                        panel_id=panel["id"],
                        title=title,
                        ref=target["refId"],
                        expr=promql.expand(target["expr"], scoped),
                        instant=bool(target.get("instant")),
                        process=PROCESS_NOTE.strip() in panel.get("description", ""),
                    )
