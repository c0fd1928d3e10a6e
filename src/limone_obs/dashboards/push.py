"""Push dashboards to a running Grafana through its HTTP API.

``POST /api/folders`` creates the folder (by uid) if ``GET /api/folders/<uid>`` says it is
missing; ``POST /api/dashboards/db`` then saves each dashboard with ``overwrite: true``
into that folder. 5xx answers and connection errors are retried with exponential
back-off; 401, 403, 404, 412 and other 4xx answers stop at once with a message saying
what to check.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from limone_obs.errors import DashboardError

_HINTS = {
    401: "Grafana refused the credentials: check GRAFANA_TOKEN or --token (a service "
    "account token), or GRAFANA_BASIC_AUTH or --basic-auth (user:password)",
    403: "the credentials lack permission: the service account needs the Editor role on the folder",
    404: "not found: check that --url is Grafana's root URL (e.g. http://localhost:3000)",
    412: "precondition failed: a dashboard with the same name or uid exists elsewhere, or "
    "it was changed concurrently; delete or rename the other one",
}


@dataclass(frozen=True)
class Target:
    """Where and how to push: Grafana's root URL and one kind of credentials."""

    url: str
    token: str | None = None
    basic_auth: tuple[str, str] | None = None
    retries: int = 3
    backoff: float = 0.5
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if (self.token is None) == (self.basic_auth is None):
            raise DashboardError(
                "push: give exactly one of a token (GRAFANA_TOKEN, or --token) or "
                "user:password (GRAFANA_BASIC_AUTH, or --basic-auth)"
            )
        if not self.url.startswith(("http://", "https://")):
            raise DashboardError(f"push: --url {self.url!r} must start with http:// or https://")


class Client:
    """A small Grafana API client with retries (one ``requests.Session``)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.session = requests.Session()
        if target.token is not None:
            self.session.headers["Authorization"] = f"Bearer {target.token}"
        else:
            self.session.auth = target.basic_auth
        self.session.headers["Accept"] = "application/json"

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        """Send one request, retrying 5xx and connection errors; return the response.

        Statuses in ``ok`` are returned; any other raises DashboardError.
        """
        url = self.target.url.rstrip("/") + path
        for attempt in range(self.target.retries + 1):
            problem = self._attempt(method, url, body, ok)
            if isinstance(problem, requests.Response):
                return problem
            if attempt < self.target.retries:
                time.sleep(self.target.backoff * 2**attempt)
        raise DashboardError(
            f"{method} {url} failed after {self.target.retries + 1} attempts: {problem}"
        )

    def _attempt(
        self, method: str, url: str, body: Any, ok: tuple[int, ...]
    ) -> requests.Response | str:
        try:
            resp = self.session.request(method, url, json=body, timeout=self.target.timeout)
        except requests.RequestException as exc:  # the exception's text is urllib3's maze
            return (
                f"cannot reach Grafana ({type(exc).__name__}): is it running, and is --url "
                "(or GRAFANA_URL) its root URL?"
            )
        if resp.status_code in ok:
            return resp
        if resp.status_code >= 500:
            return f"HTTP {resp.status_code} {_message(resp)}"
        hint = _HINTS.get(resp.status_code, "Grafana rejected the request")
        raise DashboardError(f"{method} {url}: HTTP {resp.status_code} {_message(resp)}: {hint}")


def _message(resp: requests.Response) -> str:
    """Grafana's own message of an error answer; for a body that is not JSON (a proxy's or
    another server's page), its content type only: the page itself is no message."""
    try:
        body = resp.json()
    except ValueError:
        kind = (resp.headers.get("Content-Type") or "no Content-Type")[:80]
        return f"({kind}, not Grafana's JSON API)"
    if isinstance(body, dict):
        return str(body.get("message") or body.get("status") or body)
    return str(body)[:200]


def ensure_folder(client: Client, uid: str, title: str) -> None:
    """Create folder ``uid`` titled ``title`` unless it exists."""
    path = f"/api/folders/{uid}"
    resp = client.call("GET", path, ok=(200, 404))
    if resp.status_code == 404:
        if "json" not in resp.headers.get("Content-Type", ""):  # another server's 404 page
            url = client.target.url.rstrip("/") + path
            raise DashboardError(f"GET {url}: HTTP 404 {_message(resp)}: {_HINTS[404]}")
        client.call("POST", "/api/folders", {"uid": uid, "title": title})


def folder_of(dashboard: Mapping[str, Any]) -> tuple[str, str]:
    """``(uid, title)`` of the folder of a generated dashboard: its service's.

    The generators tag every dashboard with its service name and title the links to
    its siblings with the service's display name (``common.board``).
    """
    tags = dashboard.get("tags") or []
    if not tags or not isinstance(tags[0], str):
        raise DashboardError(
            f"dashboard {dashboard.get('uid')!r} has no tag naming its service: give --folder"
        )
    links = dashboard.get("links") or []
    title = links[0].get("title") if links and isinstance(links[0], dict) else None
    return tags[0], str(title or tags[0])


def push(
    target: Target,
    dashboards: Mapping[str, Mapping[str, Any]],
    folder_uid: str | None = None,
    folder_title: str | None = None,
) -> list[str]:
    """Save every dashboard, overwriting; return Grafana's URL of each.

    Into folder ``folder_uid`` (titled ``folder_title`` if it has to be created), or,
    without one, each dashboard into its service's folder (:func:`folder_of`), so two
    services pushed to one Grafana keep their own folders.
    """
    client = Client(target)
    urls = []
    folders: set[str] = set()
    for name, dashboard in sorted(dashboards.items()):
        uid, title = folder_of(dashboard) if folder_uid is None else (folder_uid, "")
        if uid not in folders:
            ensure_folder(client, uid, folder_title or title or uid)
            folders.add(uid)
        body = {
            "dashboard": {**dashboard, "id": None},  # id is per Grafana instance; uid rules
            "folderUid": uid,
            "overwrite": True,
            "message": f"limone-obs push of {name}",
        }
        resp = client.call("POST", "/api/dashboards/db", body)
        urls.append(str(resp.json().get("url", dashboard.get("uid", name))))
    return urls
