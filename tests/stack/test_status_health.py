"""Integration: ``limone-obs status`` shows the kit-health alerts a real Prometheus fires.

The shop spec is built with short ``for:``s and its rules loaded in a real Prometheus,
which scrapes a real app with the kit's exporter: the exporter reports a full disk
(``ExporterProblem``, per instance and problem) and the app gets no request
(``TrafficStopped``, service-wide). Neither alert has an SLO, so no row of the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from limone_obs import Metrics, health
from limone_obs import conventions as c
from limone_obs.alerts import build
from limone_obs.cli import main
from limone_obs.stack.status import Prometheus
from tests.stack.test_status import SHOP
from tests.support import prometheus_server, serve, wait_until

pytestmark = pytest.mark.integration

SHOP_HEALTH = (
    SHOP
    + """
health:
  exporter_problem: {for: 1s}
  traffic_stopped: {window: 1m, for: 1s}
"""
)
KIT_HEALTH = {c.ALERT_EXPORTER_PROBLEM, c.ALERT_TRAFFIC_STOPPED}


@pytest.fixture(autouse=True)
def _fresh_health() -> Iterator[None]:
    """The problem this test reports stays out of other tests' scrapes."""
    health.reset()
    yield
    health.reset()


def _app() -> Flask:
    """An app with the kit's exporter on its own registry, and no route of its own."""
    app = Flask(__name__)
    Metrics(app)
    return app


def _firing(url: str) -> set[str]:
    """The names of the shop alerts firing in Prometheus at ``url``."""
    found = Prometheus(url).query('ALERTS{alertstate="firing",slo_service="shop"}')
    return {sample["metric"]["alertname"] for sample in found}


def test_status_shows_the_kit_health_alerts_firing(tmp_path: Path) -> None:
    """Each alert firing is a line below the table with its severity, and the instance
    and problem where it has them; the error on stderr (no SLO has a value: no request)
    starts a line of its own."""
    spec = tmp_path / "alerts" / "slo.yaml"
    spec.parent.mkdir()
    spec.write_text(SHOP_HEALTH)
    built = CliRunner().invoke(main, ["build", "--root", str(tmp_path)])
    assert 0 == built.exit_code, built.output
    rules = [str(tmp_path / r) for r in (build.RECORDING_RULES, build.ALERTING_RULES)]
    health.report_problem(c.PROBLEM_STORAGE_FULL, "the disk is full")
    with serve(_app(), quiet=True) as app_url:
        target = app_url.removeprefix("http://")
        with prometheus_server(tmp_path, target, job="shop", rule_files=rules) as url:
            wait_until(lambda: KIT_HEALTH <= _firing(url), f"{KIT_HEALTH} firing", 60)
            result = CliRunner().invoke(main, ["status", "--prometheus", url, "--spec", str(spec)])
    expected = [
        "",
        "kit health               labels",
        f"ExporterProblem(ticket)  instance={target}, problem={c.PROBLEM_STORAGE_FULL}",
        "TrafficStopped(ticket)   -",
    ]
    assert (expected, True) == (
        result.stdout.splitlines()[-4:],
        f"\n{expected[-1]}\nerror: no SLO of {spec}" in result.output,
    ), result.output
