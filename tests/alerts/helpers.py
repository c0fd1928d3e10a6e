"""Helpers of the alerts tests: the committed spec's text and small edits of it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from limone_obs.alerts import unittests
from limone_obs.alerts.spec import SPEC_PATH, ServiceSpec, parse_spec
from tests.support import ROOT, promtool_test

SPEC_FILE = ROOT / SPEC_PATH


def spec_text() -> str:
    """The committed ``alerts/slo.yaml``."""
    return SPEC_FILE.read_text(encoding="utf-8")


def edited(old: str, new: str, text: str | None = None) -> str:
    """The spec text with the first ``old`` replaced by ``new`` (``old`` must occur)."""
    text = spec_text() if text is None else text
    assert old in text, f"{old!r} not in the spec: the test's edit no longer applies"
    return text.replace(old, new, 1)


def parse_edited(old: str, new: str) -> ServiceSpec:
    """Parse the committed spec after one edit."""
    return parse_spec(edited(old, new))


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path -> bytes) below ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` by relative path, to compare before and after."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def runbook_section(text: str, alert: str) -> str:
    """The ``## <alert>`` section of the runbook ``text``, up to the next ``## `` heading."""
    start = text.index(f"## {alert}\n")
    end = text.find("\n## ", start)
    return text[start:] if end < 0 else text[start:end]


def promql_blocks(text: str) -> list[str]:
    """The queries of the ``promql`` code blocks in ``text``, in order."""
    return re.findall(r"```promql\n(.*?)\n```", text, flags=re.DOTALL)


def evaluate(
    tmp_path: Path, series: list[dict[str, str]], checks: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    """Run ``checks`` (promtool ``promql_expr_test`` entries) on ``series`` with promtool,
    Prometheus' own query engine; the caller reads the exit code and output."""
    test = {"interval": f"{unittests.STEP}m", "input_series": series, "promql_expr_test": checks}
    doc = {"rule_files": [], "evaluation_interval": f"{unittests.STEP}m", "tests": [test]}
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return promtool_test(path, tmp_path)
