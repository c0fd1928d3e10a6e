"""A kind defined outside the package gets rules, promtool tests, a runbook, an SLO
dashboard row, a ``status`` row and ``check --prometheus`` queries without any change to
the alerts, dashboards or stack packages: adding a kind is one module (issue 14).

The kind ``restarts`` lives only here: the job's processes restarting more than ``max``
times over ``window`` opens an alert; its SLI is the share of processes that did not
restart. It is registered for each test through :data:`limone_obs.alerts.kinds.PARSERS`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from limone_obs import conventions as c
from limone_obs.alerts import _parse, alerting, build, kinds, model, runbooks
from limone_obs.alerts._parse import KindParser
from limone_obs.alerts._reader import Reader
from limone_obs.alerts.cli import sli_queries
from limone_obs.alerts.model import Panel, PanelName, ServiceSpec, Sli, Slo, job_matcher
from limone_obs.alerts.selectors import Selector
from limone_obs.alerts.spec import parse_spec
from limone_obs.alerts.unittests import INSTANCE, alert_check, plain_test
from limone_obs.dashboards.generate import build_all
from limone_obs.dashboards.lint import panels
from limone_obs.dashboards.slo_inputs import from_spec
from limone_obs.stack import procs
from limone_obs.stack.status import Prometheus, SloStatus, collect, render
from tests.alerts.helpers import spec_text, write_tree
from tests.support import need, promtool_test

KIND: Final = "restarts"
START_TIME: Final = "process_start_time_seconds"
ALERT: Final = "RestartsRestarting"
#: The SLO appended to the committed spec (its ``slos:`` list ends the file).
SLO_TEXT: Final = """
  - name: restarts
    kind: restarts
    description: The service's processes keep running.
    window: 10m
    max: 2
"""


@dataclass(frozen=True, kw_only=True)
class RestartsSli(Sli):
    """The job's processes restarting more than ``max`` times over ``window``."""

    kind = KIND
    window: str
    max: float
    severity: str

    def _changes(self, spec: ServiceSpec) -> str:
        selector = Selector(START_TIME, (job_matcher(spec.job),)).promql()
        return f"changes({selector}[{self.window}])"

    def recording_groups(self, spec: ServiceSpec, slo: Slo) -> list[model.Group]:
        """None: the alert reads the raw series."""
        del spec, slo
        return []

    def alerts(self, spec: ServiceSpec, slo: Slo) -> list[model.Rule]:
        """``<Slo>Restarting`` when the restarts summed over the job exceed ``max``."""
        name = c.slo_alert_name(slo.name, "Restarting")
        notes = alerting.alert_annotations(slo, name, "restarts", "Processes restart.")
        labels = alerting.alert_labels(spec, slo, self.severity)
        expr = f"sum({self._changes(spec)}) > {self.max:g}"
        return [alerting.make_alert(name, expr, "1m", labels, notes)]

    def scenarios(self, spec: ServiceSpec, slo: Slo) -> list[dict[str, Any]]:
        """A process restarting every minute fires; one that keeps running does not."""
        (rule,) = self.alerts(spec, slo)
        labels = f'{{job="{spec.job}",instance="{INSTANCE}"}}'
        steady = {"series": f"{START_TIME}{labels}", "values": "100x20"}
        restarting = {"series": f"{START_TIME}{labels}", "values": "100+60x20"}
        return [
            plain_test(f"{slo.name}: steady", [steady], [alert_check(rule, 15, None)]),
            plain_test(f"{slo.name}: restarting", [restarting], [alert_check(rule, 15, {})]),
        ]

    def runbook(self, spec: ServiceSpec, slo: Slo) -> str:
        """One section."""
        name = c.slo_alert_name(slo.name, "Restarting")
        return runbooks.section(spec, slo, name, "Processes restart.", "Read their logs.\n")

    def status_sli(self, spec: ServiceSpec, slo: Slo) -> str | None:
        """Share of the job's processes that did not restart over ``window``."""
        del slo
        return f"avg({self._changes(spec)} == bool 0)"

    def dashboard_row(self) -> tuple[Panel, ...]:
        """The SLO's text, its firing alerts and the targets' ``up``: existing panels."""
        return (
            Panel(PanelName.DEFINITION, 8),
            Panel(PanelName.FIRING, 8),
            Panel(PanelName.UP, 8, 6),
        )

    def live_queries(self, spec: ServiceSpec) -> list[tuple[str, str]]:
        """The job's start-time series."""
        return [("job", Selector(START_TIME).promql(job_matcher(spec.job)))]


def parse(ctx: _parse.Context, item: Reader) -> RestartsSli:
    """Read the ``restarts`` fields."""
    del ctx
    return RestartsSli(
        window=item.duration("window", "1h"),
        max=item.number("max", 3),
        severity=item.choice("severity", model.SEVERITIES, c.SEVERITY_TICKET),
    )


@pytest.fixture
def spec(monkeypatch: pytest.MonkeyPatch) -> ServiceSpec:
    """The committed spec plus one ``restarts`` SLO, the kind registered for the test."""
    monkeypatch.setitem(kinds.PARSERS, KIND, KindParser(("window", "max", "severity"), parse))
    return parse_spec(spec_text().rstrip("\n") + "\n" + SLO_TEXT)


def test_the_new_kind_brings_its_alert_into_the_rule_file(spec: ServiceSpec) -> None:
    """The generated alerting rules hold the kind's alert in the SLO's group, with the
    labels every SLO alert carries."""
    rules = yaml.safe_load(build.rule_files(spec)[build.ALERTING_RULES])
    (group,) = [g for g in rules["groups"] if g["name"] == "slo-alerts-restarts"]
    (rule,) = group["rules"]
    expected = {
        "alert": ALERT,
        "expr": 'sum(changes(process_start_time_seconds{job="limoneide"}[10m])) > 2',
        "slo": "restarts",
        "severity": "ticket",
    }
    assert expected == {
        "alert": rule["alert"],
        "expr": rule["expr"],
        "slo": rule["labels"][c.LABEL_SLO],
        "severity": rule["labels"][c.LABEL_SEVERITY],
    }


@pytest.mark.integration
def test_the_new_kinds_promtool_tests_pass(spec: ServiceSpec, tmp_path: Path) -> None:
    """Everything generated for the spec is written; promtool runs the kind's scenarios
    against the generated rule files and they pass, and its runbook has its section."""
    write_tree(tmp_path, build.generate(spec))
    test_file = f"{build.GENERATED_TESTS_DIR}/restarts.yml"
    result = promtool_test(test_file, tmp_path)
    runbook = (tmp_path / build.RUNBOOKS_DIR / spec.service / "restarts.md").read_text()
    assert (0, True) == (result.returncode, f"## {ALERT}" in runbook), result.stdout[-3000:]


def _row(board: dict[str, Any], title: str) -> list[tuple[str, int, int]]:
    """(title, width, height) of the panels of the row titled ``title``."""
    found: list[tuple[str, int, int]] = []
    inside = False
    for panel in panels(board):
        if panel["type"] == "row":
            inside = panel["title"] == title
        elif inside:
            found.append((panel["title"], panel["gridPos"]["w"], panel["gridPos"]["h"]))
    return found


def test_the_new_kind_lays_out_its_slo_dashboard_row(spec: ServiceSpec) -> None:
    """The SLO dashboard has a row for the SLO with the panels its kind lists, in order,
    at the widths and heights it gives."""
    board = build_all(from_spec(spec))["slos.json"]
    expected = [("Definition", 8, 8), ("Firing alerts", 8, 8), ("Scrape target up", 8, 6)]
    assert expected == _row(board, "SLO restarts")


def test_check_prometheus_queries_the_new_kinds_series(spec: ServiceSpec) -> None:
    """``check --prometheus`` asks for the series the kind names."""
    queries = [(q.location, q.promql) for q in sli_queries(spec, "f") if "(restarts)" in q.location]
    expected = ("f: slos[7] (restarts).job", 'process_start_time_seconds{job="limoneide"}')
    assert [expected] == queries


def _prometheus_config(folder: Path, job: str, port: int) -> Path:
    """Prometheus scraping itself as ``job`` every second, the generated rules loaded."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(folder / build.RECORDING_RULES), str(folder / build.ALERTING_RULES)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"{procs.LOOPBACK}:{port}"]}]}
        ],
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.integration
def test_status_shows_a_row_for_the_new_kind(spec: ServiceSpec, tmp_path: Path) -> None:
    """A real Prometheus (scraping itself as the spec's job, the generated rules loaded)
    gives the SLO's status row its kind's SLI: 100 % of the processes kept running."""
    write_tree(tmp_path, build.rule_files(spec))
    port = procs.free_port()
    config = _prometheus_config(tmp_path, spec.job, port)
    argv = procs.prometheus_argv(need("prometheus"), config, tmp_path / "data", port)
    proc = procs.start("prometheus", argv, tmp_path / "prometheus.log")
    prom = Prometheus(f"http://{procs.LOOPBACK}:{port}")
    try:
        procs.wait_http(proc, f"{prom.url}/-/ready")
        row = _restarts_row(prom, spec)
    finally:
        proc.stop()
    line = next(line for line in render([row]).splitlines() if line.startswith("restarts"))
    assert (KIND, 1.0, True) == (row.kind, row.sli, "100.000 %" in line)


def _restarts_row(prom: Prometheus, spec: ServiceSpec, timeout: float = 30.0) -> SloStatus:
    """The status row of the ``restarts`` SLO once Prometheus has scraped the job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = next(r for r in collect(prom, spec) if r.name == "restarts")
        if row.sli is not None:
            return row
        time.sleep(0.5)
    pytest.fail(f"no SLI for the restarts SLO within {timeout:.0f} s")
