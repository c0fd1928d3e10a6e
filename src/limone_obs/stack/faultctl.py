"""Client of the demo service's fault switches (``/admin/faults``, loopback only)."""

from __future__ import annotations

from typing import Any

import requests

from limone_obs.errors import StackError


def switch_faults(app_url: str, changes: dict[str, Any] | None) -> dict[str, Any]:
    """Apply ``changes`` (a partial state; None switches every fault off); return the state.

    Raises StackError when the service is unreachable or refuses the change (its message
    names the bad field).
    """
    url = f"{app_url.rstrip('/')}/admin/faults"
    try:
        if changes:
            resp = requests.put(url, json=changes, timeout=5)
        else:
            resp = requests.delete(url, timeout=5)
    except requests.RequestException as exc:
        raise StackError(f"{url}: {type(exc).__name__}: is the demo service running?") from None
    if resp.status_code != 200:
        raise StackError(f"{url} answered {resp.status_code}: {resp.text.strip()}")
    state: dict[str, Any] = resp.json()
    return state
