"""Answers of Prometheus's HTTP API (``/api/v1/...``): their JSON body, or what answered.

Something else may answer at the URL given as Prometheus (the Flask app, Grafana, a
proxy's error page). A command then says that something answered, with the HTTP status
and content type, instead of a JSON decoding error that reads as if nothing ran there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from limone_obs.errors import ConfigError

#: The API's path, which a URL given as Prometheus's may end in by mistake.
_API_PATH = "/api/v1"


def base_url(url: str, option: str = "--prometheus") -> str:
    """``url`` with ``http://`` added when it has no scheme, without a trailing slash or
    ``/api/v1``; a ConfigError naming ``option`` when it is no http(s) URL with a valid
    port (``localhost`` alone, a port of 99999 failed inside requests' own words)."""
    text = url.strip()
    if "://" not in text:
        text = f"http://{text}"
    text = text.rstrip("/").removesuffix(_API_PATH).rstrip("/")
    scheme = text.split("://", 1)[0].lower()
    try:
        valid = scheme in ("http", "https") and bool(urlsplit(text).hostname)
        urlsplit(text).port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(
            f"{option} {url!r} is not an http(s) URL with a valid port: give e.g. "
            "http://127.0.0.1:9090 (or 127.0.0.1:9090, http:// is assumed)"
        )
    return text


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
