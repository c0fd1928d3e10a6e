"""compose/: the compose file validates, and every config it mounts validates with its tool."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from limone_obs.alerts import _durations
from limone_obs.alerts.spec import load_spec
from limone_obs.stack import compose
from tests.support import ROOT, need

COMPOSE = ROOT / "compose"


def _compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = need("docker-compose")
    return subprocess.run(
        [binary, "-f", str(COMPOSE / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=COMPOSE,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """``docker-compose config`` output with the required password set."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PORT")}
    result = _compose_config({**env, "GRAFANA_ADMIN_PASSWORD": "test-only"})
    assert 0 == result.returncode, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_compose_file_validates(resolved: dict[str, Any]) -> None:
    """docker-compose accepts the file; it defines the whole stack."""
    expected = {"app", "webhook", "load", "prometheus", "alertmanager", "grafana", "loki", "alloy"}
    assert expected == set(resolved["services"])


def test_grafana_password_has_no_default() -> None:
    """Without GRAFANA_ADMIN_PASSWORD docker-compose refuses the file and names the variable."""
    env = {k: v for k, v in os.environ.items() if k != "GRAFANA_ADMIN_PASSWORD"}
    result = _compose_config(env)
    assert 0 != result.returncode
    assert "GRAFANA_ADMIN_PASSWORD" in result.stderr


def test_every_published_port_is_bound_to_loopback(resolved: dict[str, Any]) -> None:
    """Each published port has host address 127.0.0.1."""
    ports = [str(p) for s in resolved["services"].values() for p in s.get("ports", [])]
    assert ports
    assert [] == [p for p in ports if not p.startswith("127.0.0.1:")]


def _bind_sources(resolved: dict[str, Any]) -> dict[str, str]:
    """Host path -> container path of every bind mount (named volumes left out)."""
    binds = {}
    for service in resolved["services"].values():
        for volume in service.get("volumes", []):
            source, target = str(volume).split(":")[:2]
            if source.startswith("/"):
                binds[source] = target
    return binds


def test_every_mounted_host_path_exists(resolved: dict[str, Any]) -> None:
    """Every file or folder the stack mounts from the repo exists (docker.sock excepted)."""
    missing = [
        src
        for src in _bind_sources(resolved)
        if not Path(src).exists() and src != "/var/run/docker.sock"
    ]
    assert [] == missing


def test_grafana_dashboards_are_mounted_where_provisioning_looks(
    resolved: dict[str, Any],
) -> None:
    """The dashboards provider's path is where compose mounts the generated dashboards/."""
    provider_file = COMPOSE / "grafana" / "provisioning" / "dashboards" / "limoneide.yml"
    provider = yaml.safe_load(provider_file.read_text())["providers"][0]
    binds = _bind_sources(resolved)
    assert provider["options"]["path"] == binds[str(ROOT / "dashboards")]
    assert "/etc/grafana/provisioning" == binds[str(COMPOSE / "grafana" / "provisioning")]


def test_prometheus_config_and_mounted_rules_pass_promtool(tmp_path: Path) -> None:
    """compose/prometheus.yml, with the rules it mounts, passes ``promtool check config``."""
    promtool = need("promtool")
    text = (COMPOSE / "prometheus.yml").read_text()
    local = text.replace("/etc/prometheus/rules", str(ROOT / "alerts" / "rules"))
    (tmp_path / "prometheus.yml").write_text(local)
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    found = re.search(r"SUCCESS: (\d+) rule files found", result.stdout + result.stderr)
    assert found is not None
    assert len(list((ROOT / "alerts" / "rules").glob("*.yml"))) == int(found.group(1))


def test_prometheus_scrapes_the_job_the_spec_selects() -> None:
    """The app's scrape job is the spec's ``job``, so the SLO rules see its series."""
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    spec = load_spec(ROOT / "alerts" / "slo.yaml")
    assert ["app:8000"] == jobs[spec.job]["static_configs"][0]["targets"]


def test_alertmanager_config_is_generated_from_the_spec() -> None:
    """compose/alertmanager.yml is what the generator makes today (regenerate if not)."""
    generated = compose.artifacts(ROOT).files[compose.ALERTMANAGER_FILE]
    assert generated.decode() == (ROOT / compose.ALERTMANAGER_FILE).read_text()


def test_alertmanager_config_passes_amtool() -> None:
    """compose/alertmanager.yml passes ``amtool check-config`` and targets the webhook service."""
    amtool = need("amtool")
    path = ROOT / compose.ALERTMANAGER_FILE
    result = subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    assert compose.WEBHOOK_URL in path.read_text()


def test_loki_config_keeps_structured_metadata() -> None:
    """Loki accepts structured metadata (ids go there, not into labels); tsdb schema v13.

    No Loki binary is installable here, so this checks the settings the shipper relies on.
    """
    config = yaml.safe_load((COMPOSE / "loki.yaml").read_text())
    assert config["limits_config"]["allow_structured_metadata"] is True
    assert ("tsdb", "v13") == (
        config["schema_config"]["configs"][0]["store"],
        config["schema_config"]["configs"][0]["schema"],
    )


def test_dockerfile_copies_only_existing_paths() -> None:
    """Every COPY source of exporter/Dockerfile exists in the repo (the build context)."""
    dockerfile = (ROOT / "exporter" / "Dockerfile").read_text()
    sources = [
        src
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for src in line.split()[1:-1]
    ]
    assert sources
    assert [] == [src for src in sources if not (ROOT / src).exists()]


def test_alloy_gets_the_loki_url_its_config_reads(resolved: dict[str, Any]) -> None:
    """logging/alloy/config.alloy reads LOKI_URL; compose sets it to the loki service."""
    assert 'sys.env("LOKI_URL")' in (ROOT / "logging" / "alloy" / "config.alloy").read_text()
    url = resolved["services"]["alloy"]["environment"]["LOKI_URL"]
    assert "http://loki:3100/loki/api/v1/push" == url


def test_grafana_datasources_point_at_compose_services(resolved: dict[str, Any]) -> None:
    """Every provisioned datasource URL names a service (and its port) of the compose file."""
    path = COMPOSE / "grafana" / "provisioning" / "datasources" / "datasources.yml"
    sources = yaml.safe_load(path.read_text())["datasources"]
    hosts = {urlsplit(s["url"]).hostname for s in sources}
    assert {"prometheus", "loki"} == hosts
    assert hosts <= set(resolved["services"])


def test_prometheus_keeps_at_least_the_slo_period(resolved: dict[str, Any]) -> None:
    """Retention covers the spec's period, or the period SLI silently becomes shorter."""
    command = resolved["services"]["prometheus"]["command"]
    (retention,) = [
        a.split("=", 1)[1] for a in command if a.startswith("--storage.tsdb.retention.time=")
    ]
    period = load_spec(ROOT / "alerts" / "slo.yaml").period
    assert _durations.seconds(retention) > _durations.seconds(period)


def test_prometheus_lifecycle_api_is_off(resolved: dict[str, Any]) -> None:
    """Compose's Prometheus runs without --web.enable-lifecycle (no HTTP /-/quit)."""
    command = resolved["services"]["prometheus"]["command"]
    assert [] == [arg for arg in command if "lifecycle" in arg]


def test_app_takes_the_admin_token_from_the_environment() -> None:
    """The app container gets LIMONE_DEMO_ADMIN_TOKEN from the caller's environment."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PORT")}
    env.update(GRAFANA_ADMIN_PASSWORD="test-only", LIMONE_DEMO_ADMIN_TOKEN="tok-123")
    result = _compose_config(env)
    assert 0 == result.returncode, result.stderr
    app_env = yaml.safe_load(result.stdout)["services"]["app"]["environment"]
    assert "tok-123" == app_env["LIMONE_DEMO_ADMIN_TOKEN"]


def test_docker_socket_mount_says_it_is_root_equivalent() -> None:
    """The Docker socket mount carries the warning that :ro does not restrict the API."""
    text = (COMPOSE / "docker-compose.yml").read_text()
    before_mount = text.split("/var/run/docker.sock:/var/run/docker.sock:ro", 1)[0]
    assert "does not restrict the Docker API" in before_mount.rsplit("volumes:", 1)[1]
