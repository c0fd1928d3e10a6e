"""Configs of the local stack: Prometheus config, demo-speed rules, Alertmanager config."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from limone_obs.errors import ConfigError, StackError
from limone_obs.stack import _alerts, configs, procs
from tests.support import ROOT, need


def test_duration_seconds_reads_prometheus_durations() -> None:
    """Compound and millisecond durations convert to seconds."""
    actual = [configs.duration_seconds(t) for t in ("15s", "1h30m", "500ms", "2d")]
    assert [15.0, 5400.0, 0.5, 172800.0] == actual


@pytest.mark.parametrize("text", ["", "10", "1x", "m5", "-5s"])
def test_duration_seconds_rejects_garbage(text: str) -> None:
    """Text that is no Prometheus duration raises ConfigError naming the option."""
    with pytest.raises(ConfigError, match="--alert-for"):
        configs.duration_seconds(text, "--alert-for")


def test_fast_rules_caps_for_and_keeps_expressions() -> None:
    """Every ``for:`` above the cap becomes the cap (alerts on missing series, absent()
    or ``vector(0)``: the 1m floor);
    shorter ones and expressions stay."""
    text = yaml.safe_dump(
        {
            "groups": [
                {
                    "name": "g",
                    "interval": "30s",
                    "rules": [
                        {
                            "alert": "A",
                            "expr": "x > 1",
                            "for": "5m",
                            "annotations": {"description": "x over the last 5m, for 5m."},
                        },
                        {"alert": "B", "expr": "y > 1", "for": "2s"},
                        {"record": "r", "expr": "sum(z)"},
                        {"alert": "C", "expr": "absent(up)", "for": "5m"},
                        {"alert": "D", "expr": "absent(up)", "for": "30s"},
                        {"alert": "E", "expr": "(sum(x) or on () vector(0)) == 0", "for": "5m"},
                    ],
                }
            ]
        }
    )
    group = yaml.safe_load(configs.fast_rules(text, "10s"))["groups"][0]
    assert "interval" not in group
    expected = [
        ("x > 1", "10s"),
        ("y > 1", "2s"),
        ("sum(z)", None),
        ("absent(up)", configs.ABSENT_FLOOR),
        ("absent(up)", "30s"),
        ("(sum(x) or on () vector(0)) == 0", configs.ABSENT_FLOOR),
    ]
    assert expected == [(r["expr"], r.get("for")) for r in group["rules"]]
    # The page describes the rule that fired: its new for, the window unchanged.
    assert group["rules"][0]["annotations"]["description"] == "x over the last 5m, for 10s."


def test_generated_stack_config_passes_promtool(tmp_path: Path) -> None:
    """prometheus.yml with the generated rules (demo-speed) passes ``promtool check config``."""
    promtool = need("promtool")
    inputs = _alerts.inputs(ROOT, "http://127.0.0.1:9/alerts", fast=True)
    rule_files = []
    for name, text in inputs.rules.items():
        (tmp_path / name).write_text(configs.fast_rules(text, "10s"))
        rule_files.append(str(tmp_path / name))
    config = configs.prometheus_config(
        job=inputs.job,
        app_target="127.0.0.1:8000",
        alertmanager_target="127.0.0.1:9093",
        scrape_interval="1s",
        rule_files=rule_files,
    )
    (tmp_path / "prometheus.yml").write_text(config)
    check = [promtool, "check", "config", str(tmp_path / "prometheus.yml")]
    result = subprocess.run(check, capture_output=True, text=True, timeout=60, check=False)
    assert 0 == result.returncode, result.stdout + result.stderr


def test_stack_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    """The Alertmanager config pointed at the webhook receiver passes ``amtool check-config``."""
    amtool = need("amtool")
    inputs = _alerts.inputs(ROOT, "http://127.0.0.1:9/alerts", fast=True)
    (tmp_path / "am.yml").write_text(inputs.alertmanager)
    result = subprocess.run(
        [amtool, "check-config", str(tmp_path / "am.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "http://127.0.0.1:9/alerts" in inputs.alertmanager


def test_missing_spec_is_a_stack_error(tmp_path: Path) -> None:
    """A root without alerts/slo.yaml raises StackError saying to pass --root."""
    with pytest.raises(StackError, match="--root"):
        _alerts.inputs(tmp_path, "http://127.0.0.1:9/alerts", fast=False)


def test_prometheus_argv_has_no_lifecycle_api() -> None:
    """The local Prometheus has no HTTP lifecycle API (any local user could /-/quit it)."""
    argv = procs.prometheus_argv("prometheus", Path("p.yml"), Path("d"), 9090)
    assert [] == [arg for arg in argv if "lifecycle" in arg]


def test_a_taken_port_is_reported_as_port_in_use(tmp_path: Path) -> None:
    """A child that cannot bind its port (taken after it was chosen) ends wait_http with
    PortInUseError naming the port, so callers can retry on another."""
    binary = need("prometheus")
    with socket.socket() as taken:
        taken.bind((procs.LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "p.yml").write_text("global: {}\n")
        argv = procs.prometheus_argv(binary, tmp_path / "p.yml", tmp_path / "data", port)
        proc = procs.start("prometheus", argv, tmp_path / "prometheus.log")
        try:
            with pytest.raises(procs.PortInUseError, match=f"port {port} is taken"):
                procs.wait_http(proc, f"http://{procs.LOOPBACK}:{port}/-/ready", timeout=30)
        finally:
            proc.stop()
