"""The "Memory per worker" panel while every worker is replaced, and on a single process.

The kit's process series read 0 live workers (largest 0 bytes, sum 0) for the moment a
server's every worker is being replaced. The panel must then show no sample, not a
largest worker of 0 bytes or a mean of 0 / 0, nor the master's memory under a worker's
legend; a single-process server (no worker series at all) shows its one process.
Evaluated on Prometheus' own engine (promtool) for the panel's generated queries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from limone_obs import conventions as c
from limone_obs.dashboards.generate import build_from
from tests.dashboards.helpers import PanelQuery, prometheus_queries, variable_values
from tests.dashboards.test_idle_quantiles import JOB
from tests.dashboards.test_zero_fallback import _assert_holds
from tests.support import ROOT, promtool_test

pytestmark = pytest.mark.integration

PANEL = ("ux.json", "Memory per worker")
MiB = 2**20
#: Two workers of 100 and 60 MiB under a 40 MiB master, then for one minute (at 2m)
#: none live while they are replaced, then two again.
SERVER = {
    c.SERIES_PROCESS_MEMORY: f"{200 * MiB} {40 * MiB} {200 * MiB}",
    c.SERIES_PROCESS_WORKERS: "2 0 2",
    c.SERIES_PROCESS_WORKER_MAX_MEMORY: f"{100 * MiB} 0 {100 * MiB}",
    c.SERIES_PROCESS_WORKER_SUM_MEMORY: f"{160 * MiB} 0 {160 * MiB}",
}
#: A single-process server (waitress, `flask run`): its one process, no worker series.
SINGLE = {c.SERIES_PROCESS_MEMORY: f"{70 * MiB} {70 * MiB} {70 * MiB}"}


def _series(instance: str, values: dict[str, str]) -> list[dict[str, str]]:
    labels = f'{c.LABEL_JOB}="{JOB}", {c.LABEL_INSTANCE}="{instance}"'
    return [{"series": f"{name}{{{labels}}}", "values": v} for name, v in values.items()]


def _panel() -> dict[str, PanelQuery]:
    boards = build_from(ROOT)
    values = {**variable_values(JOB), "__rate_interval": "2m"}
    found = [q for q in prometheus_queries(boards, values) if (q.dashboard, q.title) == PANEL]
    return {q.ref: q for q in found}


def _check(expr: str, at: str, expected: dict[str, float]) -> dict[str, Any]:
    samples = [
        {"labels": f'{{{c.LABEL_INSTANCE}="{instance}"}}', "value": value}
        for instance, value in expected.items()
    ]
    return {"expr": expr, "eval_time": at, "exp_samples": samples}


def test_memory_per_worker_has_no_sample_while_no_worker_is_live(tmp_path: Path) -> None:
    """Largest worker and mean per worker: the workers' values while two are live, none
    while 0 are (mid-replacement), the one process of a single-process server always."""
    queries = _panel()
    largest, mean = queries["A"].expr, queries["B"].expr
    checks = []
    for at, live in (("0m", True), ("1m", False), ("2m", True)):
        server = {"gunicorn:1": 100 * MiB} if live else {}
        checks.append(_check(largest, at, {**server, "single:1": 70 * MiB}))
        server = {"gunicorn:1": 80 * MiB} if live else {}
        checks.append(_check(mean, at, {**server, "single:1": 70 * MiB}))
    series = _series("gunicorn:1", SERVER) + _series("single:1", SINGLE)
    test = {"interval": "1m", "input_series": series, "promql_expr_test": checks}
    path = tmp_path / "memory_test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [], "tests": [test]}))
    _assert_holds(promtool_test(path, tmp_path))
