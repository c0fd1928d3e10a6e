"""A secret URL value (``/reset-password/<token>``) is in no field of any line of its
request, in any form a line can hold it, whatever the server and the URL's encoding; and
a client choosing its token cannot rewrite the lines' own fields."""

from __future__ import annotations

import datetime
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from jsonschema import Draft202012Validator
from prometheus_client import CollectorRegistry

from limone_obs import Metrics
from limone_obs.logging import _context, configure_logging, init_app
from limone_obs.logging.gunicorn import access_fields
from tests.logging.helpers import Sent, environs_served, parse_lines
from tests.logging.url_secrets_app import create_app
from tests.support import gunicorn_server, serve, settled

MASKED_URL = "http://localhost/reset-password/[REDACTED]"
#: The value as Flask decodes it, the URL path sent, and the other texts a line could
#: leak it as (request.url's quoting, the client's own percent-encoding, the bytes as
#: PATH_INFO holds them).
CASES = {
    "plain": ("PATHTOKEN1leak9f8e", "PATHTOKEN1leak9f8e", ()),
    "quoted": ('abc\ndef"ghi-tok', "abc%0Adef%22ghi-tok", ("abc%0Adef%22ghi-tok",)),
    "space": ("ab cdef-tok", "ab%20cdef-tok", ("ab%20cdef-tok", "ab+cdef-tok")),
    "non-ascii": ("töken-é-42", "t%C3%B6ken-%C3%A9-42", ("t%C3%B6ken-%C3%A9-42", "tÃ¶ken")),
    "lower-hex": ("töken-é-42", "t%c3%b6ken-%c3%a9-42", ("t%c3%b6ken-%c3%a9-42", "tÃ¶ken")),
    "mixed": ("töken-é-42", "t%C3%B6k%65n-%C3%A9-42", ("t%C3%B6k%65n-%C3%A9-42", "k%65n")),
}


def _strings(value: Any) -> Iterator[str]:
    """Every key and string value of a decoded line, at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _leaks(events: list[dict[str, Any]], texts: tuple[str, ...]) -> list[str]:
    return [s for e in events for s in _strings(e) if any(t in s for t in texts)]


def _get(out: io.BytesIO, url: str, **environ: str) -> list[dict[str, Any]]:
    configure_logging(stream=out)
    create_app(stream=out).test_client().get(url, environ_overrides=environ).close()
    return parse_lines(out.getvalue())


@pytest.mark.parametrize("case", list(CASES))
def test_the_value_is_masked_in_every_field(case: str, out: io.BytesIO) -> None:
    """Fields quoting request.url (nested too), an ``extra=`` field, a keyword named like
    the path, a bound field on the access line, the environ's REQUEST_URI, RAW_URI and
    PATH_INFO, a url_for link (path and query): masked, the lines' shape kept."""
    value, sent, forms = CASES[case]
    events = _get(out, f"/reset-password/{sent}")
    assert [] == _leaks(events, (value, *forms))
    [app_line, link] = [e for e in events if e["logger"] == "views"]
    [std_line] = [e for e in events if e["logger"] == "views.std"]
    [access] = [e for e in events if e["logger"] == "limone_obs.access"]
    assert (app_line["url"], app_line["links"], app_line["extra_path"]) == (
        MASKED_URL, {"all": [MASKED_URL]}, "/reset-password/[REDACTED]",
    )  # fmt: skip
    assert (std_line["link"], access["referer"]) == (MASKED_URL, MASKED_URL)
    assert link["again"] == f"{MASKED_URL}?t=[REDACTED]"
    assert {e["path"] for e in events} == {"/reset-password/[REDACTED]"}


@pytest.mark.parametrize(
    "token",
    ["info", "url-secrets", "test", "views", "error", "message", "path", "exception", "type"],
)
def test_a_token_named_like_a_field_of_the_line_leaves_that_field_alone(
    token: str, out: io.BytesIO, validator: Draft202012Validator
) -> None:
    """A client choosing ``info``, the service's or env's name, a logger's name,
    ``error`` (with a failing view: its error line) or a field's name as its token:
    level, service, env, logger and endpoint keep their values, and no field or part of
    the exception is renamed, on every line (each valid); the token is masked elsewhere."""
    events = _get(out, f"/reset-password/{token}?fail=1")
    assert [] == [e for e in events if not validator.is_valid(e)]
    assert {e["level"] for e in events} == {"info", "error"}
    assert {(e["service"], e["env"]) for e in events} == {("url-secrets", "test")}
    assert {"views", "views.std", "limone_obs.access"} <= {e["logger"] for e in events}
    assert {e.get("endpoint") for e in events} == {"/reset-password/<token>"}
    [access] = [e for e in events if e["logger"] == "limone_obs.access"]
    assert (access["status_code"], access["exception"]["message"]) == (
        500, f"reset failed for {MASKED_URL}?fail=1",
    )  # fmt: skip


@pytest.mark.parametrize("token", ["e", "reset"])
def test_only_the_values_place_in_the_path_is_masked(token: str, out: io.BytesIO) -> None:
    """A value that is also part of the rule's static text is masked where the rule puts
    it, not wherever it occurs (``/r[REDACTED]s[REDACTED]t-password/[REDACTED]``), in
    the path of every line (the line's scrub leaves the path as routing masked it)."""
    events = _get(out, f"/reset-password/{token}")
    assert {e["path"] for e in events} == {"/reset-password/[REDACTED]"}


def test_a_redirect_of_routing_is_masked(out: io.BytesIO) -> None:
    """``/slash/<token>/`` asked without its slash: Flask answers 308 before any view;
    the value is masked as for a 405."""
    events = _get(out, "/slash/SLASHTOKEN99")
    [access] = [e for e in events if e["logger"] == "limone_obs.access"]
    assert (access["status_code"], access["path"]) == (308, "/slash/[REDACTED]")
    assert [] == _leaks(events, ("SLASHTOKEN99",))


def test_a_404_for_a_slash_too_many_is_masked(out: io.BytesIO) -> None:
    """``/reset-password/<token>`` asked with a slash appended (a mail client's link):
    Flask answers 404; the path matches the rule without that slash: masked. Any other
    404 stays as sent."""
    _get(out, "/reset-password/TrailTok55/")
    events = _get(out, "/nothing/TrailTok66/")  # the lines of both
    access = [(e["status_code"], e["path"]) for e in events if e["logger"] == "limone_obs.access"]
    assert [(404, "/reset-password/[REDACTED]/"), (404, "/nothing/TrailTok66/")] == access
    assert [] == _leaks(events, ("TrailTok55",))


def test_a_token_equal_to_the_clients_address_or_agent_keeps_them(out: io.BytesIO) -> None:
    """A client whose token is its own address or user agent cannot blank them in
    gunicorn's access line (written after the response, with the request's values still
    this context's, through the logger gunicorn's access log uses): log evasion."""
    configure_logging(stream=out)
    app = create_app(stream=out)
    served = environs_served(app)
    client = app.test_client()
    for token, agent in (("127.0.0.1", "Agent"), ("UaTok5678", "UaTok5678")):
        client.get(f"/reset-password/{token}", headers={"User-Agent": agent}).close()
        fields = access_fields(Sent(), served[-1], datetime.timedelta(milliseconds=5))
        logging.getLogger("gunicorn.access").info("request finished", extra=fields)
        line = parse_lines(out.getvalue())[-1]
        assert (line["logger"], line["path"]) == ("gunicorn.access", "/reset-password/[REDACTED]")
        assert (line["remote_addr"], line["user_agent"]) == ("127.0.0.1", agent)


def test_a_value_that_breaks_url_quoting_fails_nothing(out: io.BytesIO) -> None:
    """A ``path`` value that reads like a URL with a bad port (``http://x:y/abcd``), which
    Werkzeug's IRI helper refuses: the request is served, the value masked."""
    configure_logging(stream=out)
    client = create_app(stream=out).test_client()
    assert 200 == client.get("/go/http://x:y/abcd").status_code
    events = parse_lines(out.getvalue())
    assert {e["path"] for e in events} == {"/go/[REDACTED]"}
    assert [] == _leaks(events, ("x:y/abcd",))


def test_an_excluded_path_clears_the_previous_requests_values(out: io.BytesIO) -> None:
    """A path the log excludes (but the metrics record) served next in the same context
    does not keep the previous request's values: its lines would be scrubbed of them."""
    configure_logging(stream=out)
    app = Flask("excluded")
    app.config["LIMONE_OBS_LOG_EXCLUDED_PATHS"] = ["/health"]
    Metrics(app, registry=CollectorRegistry())
    init_app(app)
    app.add_url_rule("/reset-password/<token>", "reset", lambda **_: "ok")
    app.add_url_rule("/health", "health", lambda: "ok")
    client = app.test_client()
    client.get("/reset-password/PATHTOKEN1leak9f8e").close()
    assert _context.request_secrets()
    client.get("/health").close()
    assert () == _context.request_secrets()


def test_a_value_longer_than_the_paths_cap_is_masked(out: io.BytesIO) -> None:
    """The path field is cut to 2048 characters: a longer value is masked before the cut."""
    events = _get(out, "/reset-password/" + "y" * 2100)
    assert {e["path"] for e in events} == {"/reset-password/[REDACTED]"}
    assert [] == _leaks(events, ("y" * 64,))


def test_a_field_cut_to_the_line_cap_keeps_no_part_of_the_value(out: io.BytesIO) -> None:
    """A field over the line cap is cut: the value is masked before, so no head of it is
    left at the cut."""
    events = _get(out, "/reset-password/SECRETTOKEN0xyz/big")
    [big] = [e for e in events if e.get("message") == "big"]
    assert big.get("truncated") is True
    assert [] == _leaks(events, ("SECRETTOK", "ECRETTOKEN0", "TOKEN0xyz"))


def test_a_thread_of_a_copied_request_context_has_it_masked(out: io.BytesIO) -> None:
    """``copy_current_request_context`` runs the thread without the request's context
    variables: its lines are scrubbed of the request's secret values all the same."""
    events = _get(out, "/reset-password/PATHTOKEN1leak9f8e/thread")
    [mail] = [e for e in events if e.get("message") == "mail sent"]
    assert mail["link"] == f"{MASKED_URL}/thread"
    assert [] == _leaks(events, ("PATHTOKEN1leak9f8e",))


@pytest.mark.parametrize(
    ("url", "secret"),
    [("/magic/0A5F2A1C-3B4D-4E5F-8A9B-0C1D2E3F4A5B", "0A5F2A1C-3B4D"),
     ("/pin/000123456", "123456")],
    ids=["uuid-upper-case", "int-leading-zeros"],
)  # fmt: skip
def test_a_converters_value_is_masked_as_the_url_wrote_it(
    url: str, secret: str, out: io.BytesIO
) -> None:
    """``<uuid:token>`` matches an upper-case UUID (Flask's value is lower-case), and
    ``<int:pin>`` one with leading zeros: the text of the URL is masked."""
    events = _get(out, url)
    assert {e["path"] for e in events} == {url.rsplit("/", 1)[0] + "/[REDACTED]"}
    assert [] == _leaks(events, (secret, secret.lower()))


def test_a_url_that_is_not_utf8_is_masked_as_the_server_passed_it(out: io.BytesIO) -> None:
    """gunicorn passes the URL's bytes as they came (``%ff%fe`` as ``\\xff\\xfe``, PEP
    3333); Flask matches U+FFFD for them. Neither form, nor the client's, is left."""
    events = _get(
        out,
        "/",
        PATH_INFO="/reset-password/\xff\xfeTOKENVALUE",
        REQUEST_URI="/reset-password/%ff%feTOKENVALUE",
        RAW_URI="/reset-password/%ff%feTOKENVALUE",
    )
    assert {e["path"] for e in events} == {"/reset-password/[REDACTED]"}
    assert [] == _leaks(events, ("TOKENVALUE",))


def test_many_bad_bytes_cost_linear_time(out: io.BytesIO) -> None:
    """64 bad bytes in a secret value: found in linear time (a pattern per U+FFFD
    backtracked exponentially: 40 such bytes held the worker for minutes). The suite's
    per-test timeout fails this test if that comes back."""
    bad = "\xff" * 64
    events = _get(
        out,
        "/",
        PATH_INFO=f"/reset-password/{bad}a",
        REQUEST_URI=f"/reset-password/{'%ff' * 64}a",
    )
    assert {e["path"] for e in events} == {"/reset-password/[REDACTED]"}
    assert [] == _leaks(events, ("%ff%ff", bad[:8]))


def test_werkzeugs_request_line_is_masked_for_every_encoding(out: io.BytesIO) -> None:
    """Werkzeug's development server logs the request target as an IRI (valid UTF-8
    decoded, bad bytes re-quoted upper-case, reserved escapes as sent): masked too."""
    configure_logging(stream=out)
    sent = ["%ff%feTOKENVALUE", "%C3%B6abcd%3fTOK", "t%c3%b6ken-%c3%a9-42"]
    with serve(create_app(stream=out)) as url:
        for path in sent:
            assert requests.get(f"{url}/reset-password/{path}", timeout=10).status_code == 200
    events = settled(
        lambda: parse_lines(out.getvalue()),
        lambda ls: sum(e["logger"] == "limone_obs.access" for e in ls) >= len(sent),
    )
    server = [e["message"] for e in events if e["logger"] == "werkzeug"]
    assert len(server) == len(sent)
    assert all("GET /reset-password/[REDACTED] HTTP/1.1" in m for m in server), server
    texts = ("TOKENVALUE", "abcd", "öabcd", "t%c3%b6ken", "töken")
    assert [] == _leaks(events, texts)


@pytest.mark.integration
def test_under_gunicorn_no_form_of_the_value_is_logged(tmp_path: Path) -> None:
    """A real gunicorn (the kit's config, its own access lines on): a URL that is not
    UTF-8, one that needs quoting and a plain one; no line holds any form of them."""
    (tmp_path / "prom").mkdir()
    env = {
        "GUNICORN_WORKERS": "1",
        "GUNICORN_ACCESSLOG": "-",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
    }
    app = "tests.logging.url_secrets_app:create_app()"
    sent = ["%ff%feTOKENVALUE", "abc%0Adef%22ghi-tok", "PATHTOKEN1leak9f8e"]
    with gunicorn_server(app, tmp_path, env, ready_path="/ready") as (base, _):
        for path in sent:
            assert requests.get(f"{base}/reset-password/{path}", timeout=10).status_code == 200
        log = tmp_path / "gunicorn.log"

        def lines() -> list[dict[str, Any]]:
            text = log.read_text(encoding="utf-8", errors="replace")
            return [json.loads(x) for x in text.splitlines() if x.startswith("{")]

        # App (2), stdlib, the kit's and gunicorn's access lines: the last after the body.
        events = settled(
            lines,
            lambda ls: sum("reset-password" in e.get("path", "") for e in ls) >= 5 * len(sent),
        )
    secret = [e for e in events if "reset-password" in str(e.get("path", ""))]
    assert 5 * len(sent) == len(secret)
    assert {e["path"] for e in secret} == {"/reset-password/[REDACTED]"}
    texts = ("TOKENVALUE", 'abc\ndef"ghi-tok', "abc%0Adef%22ghi-tok", "PATHTOKEN1leak9f8e")
    assert [] == _leaks(events, texts)
