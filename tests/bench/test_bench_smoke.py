"""The benchmark suite runs end to end with tiny sizes (no timing is asserted).

Out of the default run (marker ``bench``: several minutes on a shared 2-core machine, most
of it valgrind): ``pytest -m bench tests/bench`` runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, need

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str]:
    """Run ``bench/runner.py --quick`` once; return (exit code, report, stderr)."""
    need("prometheus")
    output = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "runner.py"), "--quick", "--output", str(output)],
        capture_output=True, text=True, timeout=240, cwd=ROOT, check=False,
    )  # fmt: skip
    report = output.read_text() if output.exists() else ""
    return done.returncode, report, done.stderr


def test_every_module_succeeds(quick_report: tuple[int, str, str]) -> None:
    """Every bench module returns its section; the runner exits 0."""
    code, report, stderr = quick_report
    assert (0, False) == (code, "FAILED" in report), stderr
    for name in sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py")):
        assert f"{name}: ok" in stderr


def test_report_describes_machine_and_command(quick_report: tuple[int, str, str]) -> None:
    """The report names the command, the CPU, Python and the measured packages."""
    _, report, _ = quick_report
    for expected in ("Command: `bench/run --quick`", "- CPU: ", "- Python ", "prometheus-client "):
        assert expected in report


def test_report_has_every_section(quick_report: tuple[int, str, str]) -> None:
    """Exporter overhead, multiprocess render and rule evaluation sections are present."""
    _, report, _ = quick_report
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    for expected in (
        "## Exporter overhead per request",
        "## /metrics render time (multiprocess)",
        "## SLO rule evaluation (Prometheus)",
    ):
        assert expected in headings


def test_exporter_tables_have_bare_and_limone_rows(quick_report: tuple[int, str, str]) -> None:
    """Every exporter table (test client, gunicorn CPU per placement) has both rows."""
    _, report, _ = quick_report
    placements = 2 if len(os.sched_getaffinity(0)) >= 2 else 1
    assert 1 + placements == report.count("| bare Flask | ")
    assert 1 + placements == report.count("| limone-obs | ")


def test_multiprocess_table_covers_both_collectors(quick_report: tuple[int, str, str]) -> None:
    """The render table has 4-worker and churn rows for prometheus-client and limone-obs."""
    _, report, _ = quick_report
    rows = [line for line in report.splitlines() if line.startswith("| ") and "Collector" in line]
    assert 4 == len(rows)


def test_results_file_is_not_touched_by_quick_runs() -> None:
    """A quick run writes only where --output says: the committed results stay."""
    results = Path(ROOT / "bench" / "RESULTS.md")
    assert not results.exists() or "bench/run --quick" not in results.read_text()
