"""``limone-obs dashboards push`` against a local imitation of Grafana's HTTP API.

No Grafana server can run here; tests/dashboards/fake_grafana.py answers the folder and
dashboard endpoints the way Grafana documents them, including 401, 404, 412 and 5xx.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from limone_obs import conventions as c
from limone_obs.cli import main
from limone_obs.dashboards.build import tree
from limone_obs.dashboards.generate import build_from
from limone_obs.dashboards.push import Target, push
from limone_obs.errors import DashboardError
from limone_obs.stack import procs
from tests.dashboards.fake_grafana import FakeGrafana, running
from tests.dashboards.test_services import services
from tests.support import ROOT, serve

DB = "/api/dashboards/db"


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    """A running fake Grafana."""
    with running() as fake:
        yield fake


@pytest.fixture(scope="module")
def boards() -> dict[str, dict[str, Any]]:
    """The generated dashboards."""
    return build_from(ROOT)


def target(fake: FakeGrafana, **kwargs: Any) -> Target:
    """A token target with fast retries."""
    options: dict[str, Any] = {"token": "secret", "retries": 2, "backoff": 0.01}
    options.update(kwargs)
    return Target(url=fake.url, **options)


def test_push_creates_the_folder_and_saves_every_dashboard(
    grafana: FakeGrafana, boards: dict[str, dict[str, Any]]
) -> None:
    """A fresh Grafana gets the folder and all five dashboards, overwrite on, in the folder."""
    push(target(grafana), boards, "limoneide", "LimoneIDE")
    saved = {uid: (b["overwrite"], b["folderUid"]) for uid, b in grafana.dashboards.items()}
    expected = {board["uid"]: (True, "limoneide") for board in boards.values()}
    assert ({"limoneide": "LimoneIDE"}, expected) == (grafana.folders, saved)


def test_push_returns_grafanas_urls(
    grafana: FakeGrafana, boards: dict[str, dict[str, Any]]
) -> None:
    """push returns the URL Grafana reports for each dashboard."""
    urls = push(target(grafana), boards, "limoneide", "LimoneIDE")
    assert sorted(f"/d/{b['uid']}/x" for b in boards.values()) == sorted(urls)


def test_pushed_dashboards_have_no_instance_id(
    grafana: FakeGrafana, boards: dict[str, dict[str, Any]]
) -> None:
    """The body's dashboard.id is null: the uid identifies it across Grafana instances."""
    push(target(grafana), boards, "limoneide", "LimoneIDE")
    assert {None} == {b["dashboard"]["id"] for b in grafana.dashboards.values()}


def test_an_existing_folder_is_not_created_again(
    grafana: FakeGrafana, boards: dict[str, dict[str, Any]]
) -> None:
    """When GET /api/folders/<uid> answers 200, no POST /api/folders is sent."""
    grafana.folders["limoneide"] = "LimoneIDE"
    push(target(grafana), boards, "limoneide", "LimoneIDE")
    assert [] == [s for s in grafana.seen if (s.method, s.path) == ("POST", "/api/folders")]


def test_token_is_sent_as_bearer(grafana: FakeGrafana, boards: dict[str, dict[str, Any]]) -> None:
    """Every request carries Authorization: Bearer <token>."""
    push(target(grafana), boards, "limoneide", "LimoneIDE")
    assert {"Bearer secret"} == {s.authorization for s in grafana.seen}


def test_basic_auth_is_sent(grafana: FakeGrafana, boards: dict[str, dict[str, Any]]) -> None:
    """--basic-auth user:password becomes Authorization: Basic base64(user:password)."""
    push(target(grafana, token=None, basic_auth=("admin", "pw")), boards, "f", "F")
    expected = "Basic " + base64.b64encode(b"admin:pw").decode()
    assert {expected} == {s.authorization for s in grafana.seen}


def test_401_stops_at_once_with_a_hint(
    grafana: FakeGrafana, boards: dict[str, dict[str, Any]]
) -> None:
    """Refused credentials are not retried and the error says what to check."""
    grafana.fail("/api/folders/limoneide", 401)
    expected = r"HTTP 401 Unauthorized: .*check GRAFANA_TOKEN or --token"
    with pytest.raises(DashboardError, match=expected):
        push(target(grafana), boards, "limoneide", "LimoneIDE")
    assert 1 == len(grafana.seen)


def test_404_names_the_url_to_check(
    grafana: FakeGrafana, boards: dict[str, dict[str, Any]]
) -> None:
    """A 404 on save says to check --url."""
    grafana.fail(DB, 404)
    with pytest.raises(DashboardError, match=r"HTTP 404 .*check that --url"):
        push(target(grafana), boards, "limoneide", "LimoneIDE")


def test_412_reports_grafanas_message(
    grafana: FakeGrafana, boards: dict[str, dict[str, Any]]
) -> None:
    """A 412 (name exists elsewhere / changed concurrently) shows Grafana's message."""
    grafana.fail(DB, 412)
    with pytest.raises(DashboardError, match=r"HTTP 412 A dashboard with the same name.*"):
        push(target(grafana), boards, "limoneide", "LimoneIDE")


def test_5xx_is_retried_until_it_succeeds(
    grafana: FakeGrafana, boards: dict[str, dict[str, Any]]
) -> None:
    """Two 503 answers on a save are retried and the push completes."""
    grafana.fail(DB, 503, 500)
    push(target(grafana), boards, "limoneide", "LimoneIDE")
    saves = [s for s in grafana.seen if s.path == DB]
    assert (len(boards), len(boards) + 2) == (len(grafana.dashboards), len(saves))


def test_5xx_gives_up_after_the_retries(
    grafana: FakeGrafana, boards: dict[str, dict[str, Any]]
) -> None:
    """With retries=2 a save that keeps failing is tried 3 times, then reported."""
    grafana.fail(DB, 503, 503, 503)
    with pytest.raises(DashboardError, match="failed after 3 attempts: HTTP 503"):
        push(target(grafana), boards, "limoneide", "LimoneIDE")
    assert 3 == len([s for s in grafana.seen if s.path == DB])


def test_unreachable_grafana_is_reported(boards: dict[str, dict[str, Any]]) -> None:
    """A port nobody listens on fails after the retries, saying what to check (not
    urllib3's text)."""
    closed = Target(url=f"http://127.0.0.1:{procs.free_port()}", token="t", retries=1, backoff=0.01)
    expected = (
        r"failed after 2 attempts: cannot reach Grafana \(ConnectionError\): is it running, "
        r"and is --url \(or GRAFANA_URL\) its root URL\?$"
    )
    with pytest.raises(DashboardError, match=expected):
        push(closed, boards, "limoneide", "LimoneIDE")


def test_another_servers_page_is_named_by_its_content_type(
    boards: dict[str, dict[str, Any]],
) -> None:
    """--url pointing at another web server: its HTML 404 page is not pasted into the
    message; its content type is named, with the hint to check --url."""
    with serve(Flask(__name__), quiet=True) as url:
        other = Target(url=url, token="t", retries=0)
        with pytest.raises(DashboardError) as raised:
            push(other, boards, "limoneide", "LimoneIDE")
    assert str(raised.value).startswith(
        f"GET {url}/api/folders/limoneide: HTTP 404 (text/html; charset=utf-8, not Grafana's "
        "JSON API): not found: check that --url is Grafana's root URL"
    ), str(raised.value)


@pytest.mark.parametrize(
    ("token", "basic"), [(None, None), ("t", ("u", "p"))], ids=["neither", "both"]
)
def test_exactly_one_kind_of_credentials(token: str | None, basic: tuple[str, str] | None) -> None:
    """Target needs a token or basic auth, not both and not none."""
    expected = r"exactly one of a token \(GRAFANA_TOKEN, or --token\) or user:password"
    with pytest.raises(DashboardError, match=expected):
        Target(url="http://127.0.0.1:3000", token=token, basic_auth=basic)


def test_cli_push_saves_the_committed_dashboards(grafana: FakeGrafana) -> None:
    """`limone-obs dashboards push --url --token` saves dashboards/*.json and says where."""
    args = ["dashboards", "push", "--url", grafana.url, "--token", "t", str(ROOT / "dashboards")]
    result = CliRunner().invoke(main, args)
    assert (0, 6, c.DASHBOARD_FOLDER_TITLE) == (
        result.exit_code,
        result.output.count("saved /d/"),
        grafana.folders[c.DASHBOARD_FOLDER_UID],
    )


def test_cli_push_exits_2_on_refused_credentials(grafana: FakeGrafana) -> None:
    """A 401 makes the CLI print `error: ...` and exit 2."""
    grafana.fail(f"/api/folders/{c.DASHBOARD_FOLDER_UID}", 401)
    args = ["dashboards", "push", "--url", grafana.url, "--basic-auth", "admin:bad"]
    result = CliRunner().invoke(main, [*args, str(ROOT / "dashboards")])
    assert (2, True) == (result.exit_code, "error: GET" in result.output)


def test_cli_credentials_from_the_environment_or_with_a_warning(grafana: FakeGrafana) -> None:
    """GRAFANA_TOKEN and GRAFANA_BASIC_AUTH are read silently; the same secrets given as
    options still work, each with a warning that says where to put them instead."""
    args = ["dashboards", "push", "--url", grafana.url, str(ROOT / "dashboards" / "slos.json")]
    quiet = CliRunner().invoke(main, args, env={"GRAFANA_TOKEN": "t"})
    basic = CliRunner().invoke(main, args, env={"GRAFANA_BASIC_AUTH": "admin:admin"})
    loud = CliRunner().invoke(main, [*args, "--token", "t"])
    assert (0, 0, "") == (quiet.exit_code, basic.exit_code, quiet.stderr + basic.stderr)
    assert (0, True) == (
        loud.exit_code,
        loud.stderr.startswith(
            "warning: --token on the command line is visible in the process list and stays "
            "in the shell history; set GRAFANA_TOKEN in the environment instead"
        ),
    ), loud.output
    basic_header = "Basic " + base64.b64encode(b"admin:admin").decode()
    assert {"Bearer t", basic_header} == {s.authorization for s in grafana.seen}


def test_two_services_go_to_their_own_folders(grafana: FakeGrafana) -> None:
    """Without --folder, limoneide's and billing's dashboards land in their own folders,
    each titled like the service, and none overwrites another."""
    files = tree(services())
    both = {p: json.loads(b) for p, b in files.items() if p.endswith(".json")}
    push(target(grafana), both)
    folders = {b["dashboard"]["uid"]: b["folderUid"] for b in grafana.dashboards.values()}
    assert (
        {"limoneide": "LimoneIDE", "billing": "billing"},
        12,
        {uid.split("-")[0] for uid in folders} == set(folders.values()),
    ) == (grafana.folders, len(folders), True)
