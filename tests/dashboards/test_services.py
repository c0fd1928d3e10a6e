"""Two services (limoneide and billing) generate into one Grafana provisioning tree."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from limone_obs.alerts.spec import parse_spec
from limone_obs.cli import main
from limone_obs.dashboards import provisioning
from limone_obs.dashboards.build import TREE_DASHBOARDS, TREE_PROVISIONING, readme, tree
from limone_obs.dashboards.generate import build_all
from limone_obs.dashboards.slo_inputs import ServiceView, from_spec, load_service
from limone_obs.errors import DashboardError
from tests.support import ROOT

SPEC = ROOT / "alerts" / "slo.yaml"
_LINK = re.compile(r"/d/([\w-]+)")


def billing_spec() -> str:
    """The committed spec renamed to the billing service (its own job)."""
    text = SPEC.read_text()
    assert "service: limoneide\n" in text
    return text.replace("service: limoneide\n", "service: billing\n", 1).replace(
        "job: limoneide\n", "job: billing\n", 1
    )


def services() -> list[ServiceView]:
    """limoneide (the committed spec) and billing."""
    return [load_service(ROOT), from_spec(parse_spec(billing_spec()))]


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    """The tree of both services."""
    return tree(services())


def boards(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """``{path: dashboard}`` of every dashboard of the tree."""
    return {p: json.loads(b) for p, b in files.items() if p.endswith(".json")}


def test_every_dashboard_has_its_own_uid_and_title(files: dict[str, bytes]) -> None:
    """12 dashboards (6 a service), 12 uids, 12 titles: nothing overwrites anything."""
    found = boards(files).values()
    uids, titles = [b["uid"] for b in found], [b["title"] for b in found]
    assert (12, 12, 12) == (len(found), len(set(uids)), len(set(titles)))


def test_billing_names_come_from_the_service(files: dict[str, bytes]) -> None:
    """billing's overview: uid billing-overview, title "billing / ...", tag billing."""
    board = boards(files)[f"{TREE_DASHBOARDS}/billing/overview.json"]
    expected = ("billing-overview", "billing / Service overview", ["billing"])
    assert expected == (board["uid"], board["title"], board["tags"])


def test_links_stay_inside_their_service(files: dict[str, bytes]) -> None:
    """Every /d/<uid> link and the tag links of a dashboard point at its own service."""
    stray = []
    for path, board in boards(files).items():
        service = path.split("/")[1]
        text = json.dumps(board)
        stray += [(path, uid) for uid in _LINK.findall(text) if not uid.startswith(f"{service}-")]
        stray += [(path, t) for link in board["links"] for t in link["tags"] if t != service]
    assert [] == stray


def test_each_service_has_its_own_folder_and_path(files: dict[str, bytes]) -> None:
    """One provider per service: its folder uid and the folder its dashboards are in."""
    providers = {
        path: yaml.safe_load(content)["providers"][0]
        for path, content in files.items()
        if path.startswith(f"{TREE_PROVISIONING}/dashboards/")
    }
    found = sorted((p["folderUid"], p["options"]["path"]) for p in providers.values())
    root = provisioning.CONTAINER_DASHBOARDS_ROOT
    assert [("billing", f"{root}/billing"), ("limoneide", f"{root}/limoneide")] == found


def test_provider_paths_hold_the_services_dashboards(files: dict[str, bytes]) -> None:
    """Mounting dashboards/ at the root puts each service's JSON where its provider reads."""
    folders = {p.split("/")[1] for p in files if p.startswith(f"{TREE_DASHBOARDS}/")}
    assert {"billing", "limoneide"} == folders


def test_one_datasource_file_links_logs_back_to_each_service(files: dict[str, bytes]) -> None:
    """Loki's derived fields link request_id and endpoint to each service's dashboards."""
    doc = yaml.safe_load(files[f"{TREE_PROVISIONING}/datasources/datasources.yml"])
    (loki,) = [d for d in doc["datasources"] if d["type"] == "loki"]
    urls = sorted(_LINK.findall(json.dumps(loki["jsonData"]["derivedFields"])))
    expected = ["billing-endpoint", "billing-logs", "limoneide-endpoint", "limoneide-logs"]
    assert expected == urls


def test_the_same_service_twice_is_refused() -> None:
    """Two specs of one service would overwrite each other: DashboardError naming it."""
    with pytest.raises(DashboardError, match="limoneide"):
        tree([load_service(ROOT), load_service(ROOT)])


def test_a_service_name_too_long_for_a_grafana_uid_is_refused() -> None:
    """uids are at most 40 characters: the error says to shorten the service name."""
    text = SPEC.read_text().replace("service: limoneide\n", f"service: {'x' * 30}\n", 1)
    with pytest.raises(DashboardError, match="shorten or rename `service`"):
        build_all(from_spec(parse_spec(text)))


def test_cli_writes_the_tree(tmp_path: Path) -> None:
    """`limone-obs dashboards tree --spec A --spec B --out DIR` writes both services."""
    billing = tmp_path / "billing.yaml"
    billing.write_text(billing_spec())
    out = tmp_path / "grafana"
    args = ["dashboards", "tree", "--spec", str(SPEC), "--spec", str(billing), "--out", str(out)]
    result = CliRunner().invoke(main, args)
    written = sorted(p.name for p in (out / TREE_DASHBOARDS / "billing").iterdir())
    assert (0, 6) == (result.exit_code, len(written))


def test_billing_dashboards_open_on_billings_job(files: dict[str, bytes]) -> None:
    """Each service's dashboards (every one with a $job, the SLO dashboard too) preselect
    its own scrape job."""
    jobs = {
        (path.split("/")[1], path.split("/")[2]): variable["current"]["value"]
        for path, board in boards(files).items()
        for variable in board["templating"]["list"]
        if variable["name"] == "job"
    }
    assert 10 == len(jobs)
    assert [] == [(key, job) for key, job in jobs.items() if job != key[0]]


def test_each_logs_dashboard_opens_on_its_own_service(files: dict[str, bytes]) -> None:
    """The Logs dashboard's $service (the logs' service label) preselects the spec's
    service: in a Loki shared by several services Grafana would pick the first."""
    services = {
        path.split("/")[1]: variable["current"]["value"]
        for path, board in boards(files).items()
        if path.endswith("/logs.json")
        for variable in board["templating"]["list"]
        if variable["name"] == "service"
    }
    assert {"limoneide": "limoneide", "billing": "billing"} == services


def test_the_readme_names_the_services_own_series() -> None:
    """The dashboards README of a service with its own namespace names its series
    (shop_build_info, shop_workers), none of the default namespace's."""
    text = billing_spec().replace("namespace: limoneide\n", "namespace: shop\n", 1)
    text = text.replace("limoneide_", "shop_")  # the spec's series are the namespace's
    service = from_spec(parse_spec(text))
    written = readme(build_all(service), service)
    assert ("shop_build_info" in written, "shop_workers" in written) == (True, True)
    assert "limoneide_" not in written


def test_provisioning_escapes_grafana_variables(files: dict[str, bytes]) -> None:
    """Grafana expands ${...} in provisioning files from its environment: every Grafana
    variable there is written $${...}, so the links keep ${__value.raw}."""
    text = files[f"{TREE_PROVISIONING}/datasources/datasources.yml"].decode()
    unescaped = re.findall(r"(?<!\$)\$\{", text)
    assert (True, []) == ("$${__value.raw}" in text, unescaped)
