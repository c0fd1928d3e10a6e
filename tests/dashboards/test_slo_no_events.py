"""The SLO panels of an SLO whose SLI counted no event: "No data", not NaN.

Its recorded ratios divide 0 by 0 (a browser SLO before its first beacon: a trial saw
NaN in every SLI, budget and burn panel, and in the overview's SLO table). Evaluated on
Prometheus' own engine (promtool) for the generated queries: the recorded series at NaN
give no sample; real values, an overspent budget's negative one included, are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from limone_obs import conventions as c
from limone_obs.dashboards import promql
from limone_obs.dashboards.generate import build_from
from tests.dashboards.helpers import PanelQuery, prometheus_queries, variable_values
from tests.dashboards.test_idle_quantiles import JOB
from tests.dashboards.test_zero_fallback import _assert_holds
from tests.support import ROOT, promtool_test

pytestmark = pytest.mark.integration

SLO = "page-load"
#: The recorded rules that are no ratio of events (never NaN), and their values.
FIXED = {c.RULE_OBJECTIVE: "0.95", c.RULE_ERROR_BUDGET: "0.05"}
#: Values of the ratio rules in the second scenario besides the 5 % bad: an overspent
#: budget, 90 % within the next stage.
VALUES = {c.RULE_PERIOD_BUDGET_REMAINING: "-0.5", c.stage_sli_rule("1h"): "0.9"}


def _queries() -> list[PanelQuery]:
    boards = build_from(ROOT)
    found = [
        q
        for q in prometheus_queries(boards, variable_values(JOB))
        if f'{c.LABEL_SLO}="{SLO}"' in q.expr and c.SERIES_ALERTS not in q.expr
    ]
    # The overview's SLO table: its SLI and budget-left columns.
    overview = [
        q
        for q in prometheus_queries(boards, variable_values(JOB))
        if (q.dashboard, q.title) == ("overview.json", "SLOs") and q.ref in ("B", "C")
    ]
    return found + overview


def _series(queries: list[PanelQuery], ratio: str | None) -> list[dict[str, str]]:
    """One series per recorded rule the queries read, for the SLO: the fixed ones their
    value, the ratios NaN (``ratio`` None) or their scenario value."""
    seen: dict[str, dict[str, str]] = {}
    for query in queries:
        for sel in promql.read(query.expr).selectors:
            if ":" not in sel.name:  # a raw series (the up SLO's SLI): none here
                continue
            labels = {name: value for name, op, value in sel.matchers if op == "="}
            labels[c.LABEL_SLO] = SLO
            text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            value = FIXED.get(sel.name) or ("NaN" if ratio is None else VALUES.get(sel.name, ratio))
            seen[text + sel.name] = {"series": f"{sel.name}{{{text}}}", "values": value}
    return list(seen.values())


def _run(tmp_path: Path, queries: list[PanelQuery], ratio: str | None, samples: list[Any]) -> None:
    checks = [
        {"expr": q.expr, "eval_time": "0m", "exp_samples": expected}
        for q, expected in zip(queries, samples, strict=True)
    ]
    test = {"interval": "1m", "input_series": _series(queries, ratio), "promql_expr_test": checks}
    path = tmp_path / "slo_panels_test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [], "tests": [test]}))
    _assert_holds(promtool_test(path, tmp_path))


def test_an_slo_without_events_shows_no_data_in_its_panels(tmp_path: Path) -> None:
    """Every panel query of the SLO's recorded ratios (SLI, budget left, burn rates,
    progress, burndown, the overview's SLI and budget columns) gives no sample while they
    are NaN; the objective still shows."""
    ratios = [q for q in _queries() if not q.expr.startswith(c.RULE_OBJECTIVE)]
    assert len(ratios) >= 15, [q.where for q in ratios]
    _run(tmp_path, ratios, None, [[] for _ in ratios])


SCOPE = f'{c.LABEL_SLO}="{SLO}", {c.LABEL_SLO_SERVICE}="limoneide"'
#: (dashboard, panel, query) -> the sample it shows over 5 % bad events, an overspent
#: budget and 90 % within the next stage.
PICKS = {
    ("slos.json", "Budget left", "A"): (f"{c.RULE_PERIOD_BUDGET_REMAINING}{{{SCOPE}}}", -0.5),
    ("slos.json", "SLI over time", "A"): (f"{{{SCOPE}}}", 0.95),
    ("slos.json", "Burn rate by window", "A"): (f"{{{SCOPE}}}", 1.0),
    ("slos.json", "Progress toward the next stages", "B"): (
        f'{c.stage_sli_rule("1h")}{{{SCOPE}, {c.LABEL_STAGE}="1"}}',
        0.9,
    ),
}


def test_real_ratios_are_kept_negative_budget_included(tmp_path: Path) -> None:
    """The same queries over real ratios (5 % bad, a budget overspent to -50 %) show
    them: the NaN filter keeps every number."""
    queries = {(q.dashboard, q.title, q.ref): q for q in _queries()}
    picked = [queries[key] for key in PICKS]
    samples = [[{"labels": labels, "value": value}] for labels, value in PICKS.values()]
    _run(tmp_path, picked, "0.05", samples)
