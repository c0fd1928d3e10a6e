"""The demo's admin endpoint (fault switches): token, loopback and proxy rules; the client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry

from limone_obs import conventions as c
from limone_obs.cli import main
from limone_obs.demo import create_app
from limone_obs.errors import StackError
from limone_obs.stack import procs
from limone_obs.stack.faultctl import read_faults, switch_faults
from tests.stack.helpers import serve

TOKEN = "s3cret-token"
OFF = {"error_rate": 0.0, "latency": {}, "outage": False, "n_plus_one": False}


def _app(tmp_path: Path, token: str | None = None) -> Flask:
    config = {"LIMONE_DEMO_DATA_DIR": str(tmp_path), c.DEMO_ADMIN_TOKEN_ENV: token}
    return create_app(config, registry=CollectorRegistry())


@pytest.fixture
def guarded(tmp_path: Path) -> FlaskClient:
    """A demo whose admin endpoint has a token."""
    return _app(tmp_path, TOKEN).test_client()


@pytest.fixture
def open_client(tmp_path: Path) -> FlaskClient:
    """A demo without an admin token (loopback-only admin endpoint)."""
    return _app(tmp_path).test_client()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_is_required_even_from_loopback(guarded: FlaskClient) -> None:
    """With a token configured, a loopback client without it gets 401; nothing changes."""
    resp = guarded.put("/admin/faults", json={"outage": True})
    assert 401 == resp.status_code
    assert c.DEMO_ADMIN_TOKEN_ENV in resp.json["error"]  # type: ignore[index]
    assert 200 == guarded.get("/projects").status_code


def test_wrong_token_is_refused(guarded: FlaskClient) -> None:
    """A wrong bearer token is 401."""
    resp = guarded.put("/admin/faults", json={"outage": True}, headers=_bearer("guess"))
    assert 401 == resp.status_code


def test_token_admits_a_remote_client(guarded: FlaskClient) -> None:
    """With the right token a non-loopback client (e.g. Docker's proxy) may switch faults."""
    resp = guarded.put(
        "/admin/faults",
        json={"outage": True},
        headers=_bearer(TOKEN),
        environ_base={"REMOTE_ADDR": "172.18.0.1"},
    )
    assert 200 == resp.status_code
    assert 503 == guarded.get("/projects").status_code


@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-For": "203.0.113.7"},
        {"Forwarded": "for=203.0.113.7"},
        {"X-Real-IP": "203.0.113.7"},
    ],
)
def test_without_token_proxied_loopback_requests_are_refused(
    open_client: FlaskClient, header: dict[str, str]
) -> None:
    """Without a token, a loopback request carrying a proxy header is 403 (a proxy on
    the same host would make every client look local)."""
    resp = open_client.put("/admin/faults", json={"outage": True}, headers=header)
    assert 403 == resp.status_code
    assert next(iter(header)) in resp.json["error"]  # type: ignore[index]
    assert 200 == open_client.get("/projects").status_code


def test_without_token_a_direct_loopback_client_is_admitted(open_client: FlaskClient) -> None:
    """Without a token, a direct loopback client (no proxy headers) may switch faults."""
    assert 200 == open_client.put("/admin/faults", json={"error_rate": 0.5}).status_code


def test_client_sends_the_token(tmp_path: Path) -> None:
    """switch_faults/read_faults with the token change and read the state over HTTP."""
    with serve(_app(tmp_path, TOKEN)) as url:
        changed = switch_faults(url, {"error_rate": 0.5}, TOKEN)
        read = read_faults(url, TOKEN)
    assert {**OFF, "error_rate": 0.5} == changed
    assert changed == read


def test_client_without_the_token_raises(tmp_path: Path) -> None:
    """Without the token the client raises StackError with the 401 and the service's reason."""
    with serve(_app(tmp_path, TOKEN)) as url, pytest.raises(StackError, match="answered 401"):
        read_faults(url)


def test_fault_command_takes_the_token_from_the_environment(tmp_path: Path) -> None:
    """``limone-obs fault`` sends $LIMONE_DEMO_ADMIN_TOKEN to a service that has a token."""
    env = {c.DEMO_ADMIN_TOKEN_ENV: TOKEN}
    with serve(_app(tmp_path, TOKEN)) as url:
        result = CliRunner(env=env).invoke(main, ["fault", "--url", url, "--outage"])
    assert 0 == result.exit_code, result.output
    assert {**OFF, "outage": True} == json.loads(result.output)


def test_fault_command_reads_a_token_file(tmp_path: Path) -> None:
    """``limone-obs fault --token-file`` reads the token ``up`` leaves in its workdir."""
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN + "\n")
    with serve(_app(tmp_path, TOKEN)) as url:
        args = ["fault", "--url", url, "--token-file", str(token_file)]
        result = CliRunner().invoke(main, args)
    assert 0 == result.exit_code, result.output
    assert OFF == json.loads(result.output)


def test_fault_command_missing_token_file_is_an_error(tmp_path: Path) -> None:
    """A --token-file that cannot be read ends the command with exit 2 naming it."""
    missing = tmp_path / "nope"
    result = CliRunner().invoke(main, ["fault", "--token-file", str(missing)])
    assert 2 == result.exit_code
    assert f"error: --token-file {missing}" in result.output


def test_fault_show_against_a_dead_service_exits_2(tmp_path: Path) -> None:
    """Showing the faults of a service that does not answer prints ``error: ...`` and
    exits 2, no traceback."""
    url = f"http://{procs.LOOPBACK}:{procs.free_port()}"
    result = CliRunner().invoke(main, ["fault", "--url", url])
    assert 2 == result.exit_code
    assert f"error: {url}/admin/faults: ConnectionError" in result.output
    assert "Traceback" not in result.output
