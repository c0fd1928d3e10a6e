"""compose/: the compose file validates, and every config it mounts validates with its tool."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from flask import Flask, request

from limone_obs import conventions as c
from limone_obs.alerts import _durations
from limone_obs.alerts.spec import load_spec
from limone_obs.stack import compose, procs
from tests.support import ROOT, in_ci, need, serve

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
    expected = {
        "app", "nginx", "webhook", "load", "prometheus", "alertmanager", "grafana", "loki", "alloy",
    }  # fmt: skip
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


#: Host paths of the Docker host itself, mounted read-only (absent on this machine).
HOST_PATHS = {"/var/lib/docker/containers"}


def test_every_mounted_host_path_exists(resolved: dict[str, Any]) -> None:
    """Every file or folder the stack mounts from the repo exists (Docker's own excepted)."""
    missing = [
        src for src in _bind_sources(resolved) if not Path(src).exists() and src not in HOST_PATHS
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
    (tmp_path / "metrics-token").write_text("test-token\n")
    local = text.replace("/etc/prometheus/rules", str(ROOT / "alerts" / "rules")).replace(
        SECRET_PATH, str(tmp_path / "metrics-token")
    )
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
    # .dockerignore leaves out everything but what it lets through with "!path": a COPY
    # of anything else fails the build.
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert [] == [src for src in sources if src.rstrip("/") not in allowed]


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


SECRET_PATH = "/run/secrets/metrics-token"


def test_no_container_gets_the_docker_socket(resolved: dict[str, Any]) -> None:
    """No service mounts the Docker socket (it is root on the host, whatever :ro says)."""
    mounts = [str(v) for s in resolved["services"].values() for v in s.get("volumes", [])]
    assert [] == [m for m in mounts if "docker.sock" in m]


def test_alloy_reads_the_container_log_files_read_only(resolved: dict[str, Any]) -> None:
    """Alloy mounts Docker's json-file logs read-only and its config reads those files."""
    volumes = [str(v) for v in resolved["services"]["alloy"]["volumes"]]
    config = (ROOT / "logging" / "alloy" / "config.alloy").read_text()
    assert (True, True) == (
        "/var/lib/docker/containers:/var/lib/docker/containers:ro" in volumes,
        '"/var/lib/docker/containers/*/*-json.log"' in config,
    )


def test_alloy_keeps_only_this_projects_app(resolved: dict[str, Any]) -> None:
    """The app logs its compose project and service per line; Alloy compares both.

    Alloy gets the project name (compose's default: this folder's name) and drops lines
    of any other container or project.
    """
    options = resolved["services"]["app"]["logging"]["options"]
    config = (ROOT / "logging" / "alloy" / "config.alloy").read_text()
    env = resolved["services"]["alloy"]["environment"]
    assert (
        {"com.docker.compose.project", "com.docker.compose.service"},
        "compose",
        True,
        True,
    ) == (
        set(options["labels"].split(",")),
        env["COMPOSE_PROJECT"],
        'sys.env("COMPOSE_PROJECT")' in config and '\\"app\\"' in config,
        'value               = "no"' in config,
    )


def test_every_container_is_hardened(resolved: dict[str, Any]) -> None:
    """no-new-privileges, every capability dropped and a memory limit, for every service."""
    weak = [
        name
        for name, service in resolved["services"].items()
        if "no-new-privileges:true" not in service.get("security_opt", [])
        or service.get("cap_drop") != ["ALL"]
        or "cap_add" in service
        or not service.get("mem_limit")
    ]
    assert [] == weak


def test_only_alloy_runs_as_root(resolved: dict[str, Any]) -> None:
    """Third-party images run as their own non-root users; nginx as uid 101; Alloy as root
    without capabilities (Docker's log files are root's)."""
    root = [n for n, s in resolved["services"].items() if str(s.get("user", "")).startswith("0")]
    assert (["alloy"], "101:101") == (root, resolved["services"]["nginx"]["user"])


#: An exact version tag (x.y.z, optionally -variant) or a digest.
PINNED = re.compile(r".+(@sha256:[0-9a-f]{64}|:v?\d+\.\d+\.\d+(-[a-z0-9.-]+)?)$")


def test_every_image_is_pinned(resolved: dict[str, Any]) -> None:
    """Every third-party image names an exact version (no registry here gives digests)."""
    images = {s["image"] for s in resolved["services"].values() if "build" not in s}
    assert [] == sorted(i for i in images if not PINNED.match(i))


def test_dockerfile_base_image_is_pinned() -> None:
    """exporter/Dockerfile's base image names an exact Python version."""
    [base] = [
        line.split()[1]
        for line in (ROOT / "exporter" / "Dockerfile").read_text().splitlines()
        if line.startswith("FROM ")
    ]
    assert PINNED.match(base), base


def test_prometheus_sends_the_metrics_token_of_the_app(resolved: dict[str, Any]) -> None:
    """The app reads the secret into LIMONE_OBS_METRICS_TOKEN; Prometheus sends the same file."""
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    spec = load_spec(ROOT / "alerts" / "slo.yaml")
    services = resolved["services"]
    command = " ".join(services["app"]["command"])
    assert (
        {"type": "Bearer", "credentials_file": SECRET_PATH},
        True,
        True,
    ) == (
        jobs[spec.job]["authorization"],
        f'token="$$(cat {SECRET_PATH})" && [ -n "$$token" ]' in command
        and 'LIMONE_OBS_METRICS_TOKEN="$$token" exec gunicorn' in command,
        all(
            "metrics-token"
            in [
                str(x.get("source", x)) if isinstance(x, dict) else x
                for x in services[name]["secrets"]
            ]
            for name in ("app", "prometheus")
        ),
    )


def test_the_metrics_token_file_is_not_committed() -> None:
    """compose/metrics-token is ignored by git: every checkout makes its own."""
    result = subprocess.run(
        ["git", "check-ignore", "-q", "compose/metrics-token"], cwd=ROOT, check=False, timeout=30
    )
    assert 0 == result.returncode


def test_nginx_stamps_the_queue_start_and_proxies_to_the_app(resolved: dict[str, Any]) -> None:
    """nginx sets X-Request-Start "t=${msec}" on every proxied request, to app:8000."""
    conf = (COMPOSE / "nginx.conf").read_text()
    volumes = [str(v) for v in resolved["services"]["nginx"]["volumes"]]
    assert (True, True, True, ["127.0.0.1:8000:8080/tcp"]) == (
        'proxy_set_header X-Request-Start "t=${msec}";' in conf,
        "server app:8000;" in conf,
        any(v.endswith(":/etc/nginx/nginx.conf:ro") for v in volumes),
        [str(p) for p in resolved["services"]["nginx"]["ports"]],
    )


def test_the_header_commands_run_in_sequence() -> None:
    """The header's commands run one after the other: the password is exported, not set
    for one command (the next one would fail on the :? guard)."""
    header = (COMPOSE / "docker-compose.yml").read_text().split("\n\n", 1)[0]
    commands = [line[1:].strip() for line in header.splitlines() if line.startswith("#   ")]
    assert (True, []) == (
        "export GRAFANA_ADMIN_PASSWORD='choose-one'" in commands,
        [c for c in commands if re.match(r"GRAFANA_ADMIN_PASSWORD=\S+ ", c)],
    )


# --- compose/nginx.conf in a real nginx -------------------------------------------------


def _nginx() -> str:
    """Debian's nginx (scripts/bootstrap.sh installs nginx-light); skip locally, fail in CI."""
    path = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if path is None:
        message = "nginx is not installed: apt-get install -y --no-install-recommends nginx-light"
        if in_ci():
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return path


def _echo_app() -> Flask:
    """An app answering with the headers nginx sets that it received."""
    app = Flask("nginx-echo")

    @app.get("/<path:anything>")
    def echo(anything: str) -> dict[str, str | None]:
        return {
            "path": anything,
            "start": request.headers.get(c.QUEUE_START_HEADER),
            "request_id": request.headers.get(c.REQUEST_ID_HEADER),
            "host": request.headers.get("Host"),
        }

    return app


def _local_nginx_conf(tmp_path: Path, port: int, app_url: str) -> Path:
    """compose/nginx.conf with only the addresses and paths of this machine changed."""
    text = (COMPOSE / "nginx.conf").read_text()
    for old, new in (
        ("listen 8080;", f"listen {procs.LOOPBACK}:{port};"),
        ("server app:8000;", f"server {app_url.removeprefix('http://')};"),
        ("/tmp/", f"{tmp_path}/"),
    ):
        assert old in text, f"{old!r} is no longer in compose/nginx.conf"
        text = text.replace(old, new)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    return conf


@pytest.fixture
def nginx_url(tmp_path: Path) -> Iterator[str]:
    """compose/nginx.conf run by a real nginx on 127.0.0.1, in front of ``_echo_app``."""
    binary = _nginx()
    with serve(_echo_app(), quiet=True) as app_url:
        port = procs.free_port()
        conf = _local_nginx_conf(tmp_path, port, app_url)
        argv = [binary, "-e", "stderr", "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"]
        proc = procs.start("nginx", argv, tmp_path / "nginx.log")
        url = f"http://{procs.LOOPBACK}:{port}"
        try:
            procs.wait_http(proc, f"{url}/ready")
            yield url
        finally:
            proc.stop()


@pytest.mark.integration
def test_nginx_stamps_each_request_with_its_arrival_time(nginx_url: str) -> None:
    """X-Request-Start is "t=<seconds>.<milliseconds>", between sending and the answer."""
    before = time.time()
    body = requests.get(f"{nginx_url}/projects", timeout=10).json()
    after = time.time()
    found = re.fullmatch(r"t=(\d+\.\d{3})", body["start"] or "")
    assert (True, True) == (
        found is not None,
        found is not None and before - 0.001 <= float(found.group(1)) <= after + 0.001,
    ), body


@pytest.mark.integration
def test_nginx_replaces_a_client_sent_request_start(nginx_url: str) -> None:
    """A client cannot set the queue start: nginx writes its own value over it."""
    body = requests.get(
        f"{nginx_url}/projects", headers={c.QUEUE_START_HEADER: "t=1"}, timeout=10
    ).json()
    assert re.fullmatch(r"t=\d{10,}\.\d{3}", body["start"] or ""), body


@pytest.mark.integration
def test_nginx_sends_its_own_request_id_and_the_clients_host(nginx_url: str) -> None:
    """Each request gets nginx's own id (32 hex digits), whatever id the client sent, and
    the Host the client used, port included."""
    ids = [
        requests.get(
            f"{nginx_url}/projects", headers={c.REQUEST_ID_HEADER: "same-for-all"}, timeout=10
        ).json()
        for _ in range(2)
    ]
    assert [True, True] == [bool(re.fullmatch(r"[0-9a-f]{32}", b["request_id"] or "")) for b in ids]
    assert ids[0]["request_id"] != ids[1]["request_id"]
    assert nginx_url.removeprefix("http://") == ids[0]["host"]


@pytest.mark.integration
def test_nginx_does_not_serve_metrics(nginx_url: str) -> None:
    """/metrics is not proxied (Prometheus scrapes the app directly, with its token)."""
    assert 404 == requests.get(f"{nginx_url}/metrics", timeout=10).status_code
