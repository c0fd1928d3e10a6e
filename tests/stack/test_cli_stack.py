"""``limone-obs up`` option checks and ``limone-obs fault`` against a running demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from limone_obs.cli import main
from limone_obs.demo import create_app
from tests.stack.helpers import serve


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ai-latency", "3-1"], "--ai-latency '3-1': use min-max seconds"),
        (["--alert-for", "5x"], "--alert-for '5x': use a Prometheus duration"),
        (["--scrape-interval", "often"], "--scrape-interval 'often'"),
        (["--mix", "projects"], "--mix entry 'projects'"),
        (["--app", "yourapp"], "--app 'yourapp': use MODULE:FACTORY()"),
        (["--app", "shop:create_app()", "--fault", "errors"], "--fault errors: the fault"),
    ],
)
def test_up_rejects_bad_options_before_starting(args: list[str], message: str) -> None:
    """Invalid values end ``up`` with exit 2 and a message naming the option, nothing started."""
    result = CliRunner().invoke(main, ["up", *args])
    assert 2 == result.exit_code
    assert message in result.output


def test_fault_command_switches_and_clears_faults(tmp_path: Path) -> None:
    """``fault --error-rate`` sets the switch on the running demo; ``fault --off`` clears it."""
    app = create_app({"LIMONE_DEMO_DATA_DIR": str(tmp_path)}, registry=CollectorRegistry())
    runner = CliRunner()
    with serve(app) as url:
        on = runner.invoke(
            main, ["fault", "--url", url, "--error-rate", "0.5", "--latency", "db=1"]
        )
        off = runner.invoke(main, ["fault", "--url", url, "--off"])
    assert {
        "error_rate": 0.5,
        "latency": {"db": 1.0},
        "outage": False,
        "n_plus_one": False,
    } == json.loads(on.output)
    assert {"error_rate": 0.0, "latency": {}, "outage": False, "n_plus_one": False} == json.loads(
        off.output
    )


def test_fault_command_reports_a_refused_change(tmp_path: Path) -> None:
    """An unknown dependency is refused by the service; the command exits 2 with its reason."""
    app = create_app({"LIMONE_DEMO_DATA_DIR": str(tmp_path)}, registry=CollectorRegistry())
    with serve(app) as url:
        result = CliRunner().invoke(main, ["fault", "--url", url, "--latency", "smtp=1"])
    assert 2 == result.exit_code
    assert "unknown dependency 'smtp'" in result.output


def test_fault_command_switches_the_n_plus_one_loop(tmp_path: Path) -> None:
    """``fault --n-plus-one`` turns the N+1 loop on, ``--no-n-plus-one`` off again."""
    app = create_app({"LIMONE_DEMO_DATA_DIR": str(tmp_path)}, registry=CollectorRegistry())
    runner = CliRunner()
    with serve(app) as url:
        on = runner.invoke(main, ["fault", "--url", url, "--n-plus-one"])
        off = runner.invoke(main, ["fault", "--url", url, "--no-n-plus-one"])
    assert (0, 0) == (on.exit_code, off.exit_code)
    assert (True, False) == (
        json.loads(on.output)["n_plus_one"],
        json.loads(off.output)["n_plus_one"],
    )
