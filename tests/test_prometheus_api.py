"""Telling an answer of Prometheus's HTTP API from another server's answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from flask import Flask, Response

from limone_obs._prometheus_api import api_body, base_url, not_the_api
from limone_obs.errors import ConfigError
from tests.support import serve

REFUSED = {"status": "error", "errorType": "bad_data", "error": "parse error"}


def _app() -> Flask:
    """Answers as Prometheus does (/refused) and as other servers do."""
    app = Flask(__name__)
    app.add_url_rule("/refused", "refused", lambda: (REFUSED, 400))
    app.add_url_rule("/json", "json", lambda: {"ok": True})
    app.add_url_rule("/list", "list", lambda: Response("[]", mimetype="application/json"))
    app.add_url_rule("/empty", "empty", lambda: Response(b"", content_type=""))
    app.add_url_rule(
        "/long-type", "long", lambda: Response("x", content_type="text/x;" + "a" * 500)
    )
    return app


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(_app(), quiet=True) as base:
        yield base


def test_a_refused_query_is_still_an_answer_of_the_api(url: str) -> None:
    """Prometheus refuses a bad query with HTTP 400 and a JSON object: that is the API."""
    assert REFUSED == api_body(requests.get(f"{url}/refused", timeout=10))


@pytest.mark.parametrize("path", ["/missing", "/json", "/list", "/empty"])
def test_another_servers_answer_is_not_the_api(url: str, path: str) -> None:
    """An HTML 404 page, JSON without Prometheus's status field, a list, nothing: not it."""
    assert api_body(requests.get(f"{url}{path}", timeout=10)) is None


def test_the_message_names_status_content_type_and_the_option(url: str) -> None:
    """The message says something answered, with what, and which option to check."""
    resp = requests.get(f"{url}/api/v1/query", timeout=10)
    expected = (
        f"{url} answered /api/v1/query with HTTP 404 (text/html; charset=utf-8), not as "
        "Prometheus's HTTP API: something else listens there; check the URL and port given "
        "to --prometheus (Prometheus listens on 9090 unless told otherwise)"
    )
    assert expected == not_the_api(url, "/api/v1/query", resp)


def test_a_long_content_type_is_cut(url: str) -> None:
    """The other server chooses the header: at most 80 of its characters are shown."""
    resp = requests.get(f"{url}/long-type", timeout=10)
    assert "(text/x;" + "a" * 73 + ")" in not_the_api(url, "/long-type", resp)


@pytest.mark.parametrize(
    ("given", "base"),
    [("localhost:9090", "http://localhost:9090"), ("http://h:9090/", "http://h:9090"),
     ("https://h/prom/api/v1", "https://h/prom"), (" 127.0.0.1:9090/api/v1/ ", "http://127.0.0.1:9090")],
)  # fmt: skip
def test_a_prometheus_url_is_made_whole(given: str, base: str) -> None:
    """The scheme is assumed, a trailing slash or the API's own path dropped (a trial's
    ``check --prometheus localhost`` failed in requests' words, ``.../api/v1`` read as
    "something else listens there")."""
    assert base == base_url(given)


@pytest.mark.parametrize("given", ["", "ftp://h", "localhost:99999", "http://", "http://h:x"])
def test_a_prometheus_url_that_is_none_is_refused_by_name(given: str) -> None:
    """No host, another scheme, a port out of range: a ConfigError naming the option."""
    with pytest.raises(ConfigError, match=r"--prometheus .* is not an http\(s\) URL"):
        base_url(given)
