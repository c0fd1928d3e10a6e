"""The README's first command, ``./scripts/demo``, with short options: it ends by itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.integration


def test_scripts_demo_runs_and_prints_where_to_look(tmp_path: Path) -> None:
    """scripts/demo (bootstrap + ``limone-obs up``) exits 0 and prints its URLs and summary."""
    args = [f"--{name}-port=0" for name in ("app", "prometheus", "alertmanager", "webhook")]
    args += ["--workdir", str(tmp_path), "--duration", "8", "--fault", "none"]
    args += ["--ai-latency", "0.01-0.02", "--workers", "2"]
    result = subprocess.run(
        [str(ROOT / "scripts" / "demo"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    output = result.stdout + result.stderr
    assert 0 == result.returncode, output
    assert "metrics        http://127.0.0.1:" in output
    assert "where to look:" in output
    assert f"{tmp_path}/logs/app.log" in output
