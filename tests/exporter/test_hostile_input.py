"""Hostile input: random paths, junk methods, huge headers, non-UTF-8 bytes.

None of it may add an endpoint or method label value beyond the app's routes, the
unmatched value and OTHER, and none of it may turn into a 5xx caused by the exporter.
"""

from __future__ import annotations

import random
import socket
import string
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from limone_obs import conventions as c
from tests.exporter.helpers import label_values, make_app
from tests.exporter.test_gunicorn import gunicorn

N = c.MetricNames()
_ALPHABET = string.ascii_letters + string.digits + "-_.~%/"
_JUNK_METHODS = ["BREW", "PROPFIND", "get", "X" * 40, "M-SEARCH", "DELETE", "PATCH"]


def _random_path(rng: random.Random) -> str:
    # The first character is never "/": "//x" would be read as a host by the test client.
    rest = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 60)))
    return "/" + rng.choice(string.ascii_letters) + rest


def test_ten_thousand_random_paths_add_no_series() -> None:
    """10 000 random paths and junk methods through the WSGI stack: bounded labels, no 5xx."""
    app, metrics = make_app()
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    client = app.test_client()
    rng = random.Random(20261126)
    statuses = set()
    for i in range(10_000):
        method = _JUNK_METHODS[i % len(_JUNK_METHODS)] if i % 3 == 0 else "GET"
        statuses.add(client.open(_random_path(rng), method=method, buffered=True).status_code)
    assert not any(status >= 500 for status in statuses)
    endpoints = label_values(metrics, N.requests_total, "endpoint")
    assert endpoints <= routes | {c.ENDPOINT_UNMATCHED}
    methods = label_values(metrics, N.requests_total, "method")
    assert methods <= set(c.KNOWN_METHODS) | {c.METHOD_OTHER}


def _raw_request(port: int, request: bytes) -> bytes:
    """Send raw bytes to 127.0.0.1:port; return the status line (or b'' if closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0]


def _raw_requests(rng: random.Random) -> list[bytes]:
    big = b"a" * 8000
    reqs = [
        b"GET /projects/\xff\xfe\x80 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /\xc3\x28/%ff%fe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /projects/1 HTTP/1.1\r\nHost: x\r\nX-Big: " + big + b"\r\nConnection: close\r\n\r\n",
        b"BREW /projects/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /projects/1 HTTP/1.1\r\nHost: x\r\ntraceparent: " + big + b"\r\n\r\n",
    ]
    for _ in range(300):
        path = _random_path(rng).encode()
        reqs.append(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return reqs


@pytest.mark.integration
def test_hostile_bytes_against_real_gunicorn(tmp_path: Path) -> None:
    """Raw non-UTF-8 paths, 8 KB headers, junk methods on a real server: no new labels."""
    with gunicorn(tmp_path, workers=2) as url:
        port = int(url.rsplit(":", 1)[1])
        status_lines = [_raw_request(port, raw) for raw in _raw_requests(random.Random(7))]
        codes = [int(line.split()[1]) for line in status_lines]
        assert [code for code in codes if code >= 500] == []
        text = requests.get(f"{url}/metrics", timeout=10).text
    endpoints = {
        sample.labels["endpoint"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == N.requests_total
    }
    assert endpoints <= {"/projects/<int:project_id>", "/projects", "/slow", c.ENDPOINT_UNMATCHED}
