"""Answers of Prometheus's HTTP API (``/api/v1/...``): their JSON body, or what answered.

Something else may answer at the URL given as Prometheus (the Flask app, Grafana, a
proxy's error page). A command then says that something answered, with the HTTP status
and content type, instead of a JSON decoding error that reads as if nothing ran there.
"""

from __future__ import annotations

from typing import Any

import requests

#: Longest Content-Type shown in a message (the header is the other server's to choose).
_SHOWN_TYPE_CHARS = 80


def api_body(resp: requests.Response) -> dict[str, Any] | None:
    """The JSON object of ``resp`` if it is an answer of Prometheus's HTTP API, else None.

    Prometheus answers every API call, a refused query included (HTTP 400, 422), with a
    JSON object that has a ``status`` field; anything else came from another server.
    """
    try:
        body = resp.json()
    except ValueError:  # requests' JSONDecodeError derives from ValueError
        return None
    return body if isinstance(body, dict) and "status" in body else None


def not_the_api(url: str, path: str, resp: requests.Response, option: str = "--prometheus") -> str:
    """Says that ``url`` answered ``path`` with ``resp``, which is not Prometheus's HTTP
    API: its HTTP status and content type, and to check the URL and port of ``option``."""
    kind = (resp.headers.get("Content-Type") or "no Content-Type")[:_SHOWN_TYPE_CHARS]
    return (
        f"{url} answered {path} with HTTP {resp.status_code} ({kind}), not as Prometheus's "
        f"HTTP API: something else listens there; check the URL and port given to {option} "
        "(Prometheus listens on 9090 unless told otherwise)"
    )
