"""Client of the demo service's fault switches (``/admin/faults``).

The service answers requests carrying its admin token (``LIMONE_DEMO_ADMIN_TOKEN``, sent
as ``Authorization: Bearer <token>``), or, when it has none, direct loopback clients.
Every function raises StackError (the CLI prints ``error: ...`` and exits 2) when the
service is unreachable or refuses; the message names the URL and the reason.
"""

from __future__ import annotations

from typing import Any

import requests

from limone_obs.errors import StackError


def switch_faults(
    app_url: str, changes: dict[str, Any] | None, token: str | None = None
) -> dict[str, Any]:
    """Apply ``changes`` (a partial state; None switches every fault off); return the state.

    ``token`` is the service's admin token, if it has one.
    """
    if changes:
        return _call("PUT", app_url, token, changes)
    return _call("DELETE", app_url, token, None)


def read_faults(app_url: str, token: str | None = None) -> dict[str, Any]:
    """The current fault switches of the service at ``app_url``."""
    return _call("GET", app_url, token, None)


def _call(method: str, app_url: str, token: str | None, body: Any) -> dict[str, Any]:
    url = f"{app_url.rstrip('/')}/admin/faults"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = requests.request(method, url, json=body, headers=headers, timeout=5)
    except requests.RequestException as exc:
        raise StackError(f"{url}: {type(exc).__name__}: is the demo service running?") from None
    if resp.status_code != 200:
        raise StackError(f"{url} answered {resp.status_code}: {resp.text.strip()}")
    try:
        state: dict[str, Any] = resp.json()
    except ValueError:
        raise StackError(f"{url} answered 200 but not JSON: is it the demo service?") from None
    return state
