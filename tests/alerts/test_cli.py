"""`limone-obs check`: validates the spec, prints a summary, exit 0 or 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from limone_obs.cli import main
from tests.support import ROOT


def test_check_accepts_the_committed_spec() -> None:
    """The committed spec is valid: 5 SLOs and 20 alert rules, exit 0."""
    result = CliRunner().invoke(main, ["check", "--spec", str(ROOT / "alerts" / "slo.yaml")])
    expected = f"{ROOT / 'alerts' / 'slo.yaml'}: valid, 5 SLOs, 20 alert rules\n"
    assert (0, expected) == (result.exit_code, result.output)


def test_check_reads_alerts_slo_yaml_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --spec, check reads alerts/slo.yaml below the working directory."""
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["check"])
    assert (0, "alerts/slo.yaml: valid") == (result.exit_code, result.output[:22])


def test_check_on_a_missing_file_exits_2(tmp_path: Path) -> None:
    """A missing spec is reported with its path, exit 2, no traceback."""
    missing = tmp_path / "nope.yaml"
    result = CliRunner().invoke(main, ["check", "--spec", str(missing)])
    expected = f"error: {missing}: file not found: create it (see alerts/README.md)\n"
    assert (2, expected) == (result.exit_code, result.output)
