"""Every panel query parses as PromQL after variable expansion (``promtool check rules``).

promtool 2.42 has no ``promql`` subcommand; ``check rules`` parses each rule's ``expr``
with Prometheus' own parser, so every expanded query becomes one recording rule of a
throw-away rule file. This needs no running server, unlike the scenario test.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from limone_obs.dashboards.generate import build_from
from limone_obs.dashboards.slo_inputs import load_service
from tests.dashboards.helpers import PanelQuery, prometheus_queries, variable_values
from tests.support import ROOT, need

pytestmark = pytest.mark.integration


def _check(
    promtool: str, queries: list[PanelQuery], folder: Path
) -> subprocess.CompletedProcess[str]:
    rules = [
        {"record": f"dashboards:query_{i}:check", "expr": q.expr} for i, q in enumerate(queries)
    ]
    path = folder / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    return subprocess.run(
        [promtool, "check", "rules", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _queries() -> list[PanelQuery]:
    values = variable_values(load_service(ROOT).job)
    return list(prometheus_queries(build_from(ROOT), values))


def test_every_expanded_query_parses(tmp_path: Path) -> None:
    """promtool accepts every Prometheus query of every panel once variables are expanded."""
    result = _check(need("promtool"), _queries(), tmp_path)
    assert (0, "") == (result.returncode, result.stderr.strip())


def test_the_parse_check_rejects_a_broken_query(tmp_path: Path) -> None:
    """The same check fails on a query with a PromQL syntax error (so the test above can fail)."""
    broken = PanelQuery("x.json", 1, "broken", "A", "sum(rate(x_total[10s])", False, False)
    result = _check(need("promtool"), [broken], tmp_path)
    assert 1 == result.returncode


def test_unexpanded_variables_do_not_parse(tmp_path: Path) -> None:
    """Without expansion ``[$__rate_interval]`` is not PromQL: expansion is what makes it valid."""
    unexpanded = PanelQuery(
        "x.json", 1, "raw", "A", "rate(x_total[$__rate_interval])", False, False
    )
    result = _check(need("promtool"), [unexpanded], tmp_path)
    assert 1 == result.returncode
