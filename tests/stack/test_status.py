"""``limone-obs status``: table rendering and errors (the live table is tested in test_up)."""

from __future__ import annotations

from click.testing import CliRunner

from limone_obs.cli import main
from limone_obs.stack.status import SloStatus, render
from tests.support import ROOT


def test_render_formats_ratios_burns_and_missing_values() -> None:
    """Ratios print as percent, burn rates as multiples, missing and NaN values as '-'."""
    rows = [
        SloStatus(
            "availability",
            "ratio",
            99.9,
            0.9995,
            0.5,
            {"5m": 14.4, "1h": float("nan"), "6h": None, "3d": 0.5},
            ("AvailabilityErrorBudgetBurn(page)",),
        ),
        SloStatus("up", "up", None, 1.0, None),
    ]
    lines = render(rows).splitlines()
    assert lines[0].split()[:4] == ["SLO", "kind", "objective", "SLI"]
    assert [
        "availability", "ratio", "99.9", "%", "99.950", "%", "50.0", "%",
        "14.40x", "-", "-", "0.50x", "AvailabilityErrorBudgetBurn(page)",
    ] == lines[1].split()  # fmt: skip
    assert ["up", "up", "-", "100.000", "%", "-", "-", "-", "-", "-", "-"] == lines[2].split()


def test_unreachable_prometheus_is_exit_2_with_the_url() -> None:
    """No Prometheus at the URL: exit 2 and a message naming it and --prometheus."""
    spec = str(ROOT / "alerts" / "slo.yaml")
    args = ["status", "--prometheus", "http://127.0.0.1:9", "--spec", spec]
    result = CliRunner().invoke(main, args)
    assert 2 == result.exit_code
    assert "cannot query Prometheus at http://127.0.0.1:9" in result.output
