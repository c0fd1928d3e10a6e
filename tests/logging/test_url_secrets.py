"""A secret URL value (``/reset-password/<token>``) is in no field of any line of its
request, in any form a line can hold it, whatever the server and the URL's encoding."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from limone_obs.logging import configure_logging
from tests.logging.helpers import parse_lines
from tests.logging.url_secrets_app import create_app
from tests.support import gunicorn_server, settled

#: The value as Flask decodes it, the URL path sent, and the texts a line could leak it
#: as (decoded; quoted as request.url has it; as the client sent it).
CASES = {
    "plain": ("PATHTOKEN1leak9f8e", "PATHTOKEN1leak9f8e", ()),
    "quoted": ('abc\ndef"ghi-tok', "abc%0Adef%22ghi-tok", ("abc%0Adef%22ghi-tok",)),
    "non-ascii": ("töken-é-42", "t%C3%B6ken-%C3%A9-42", ("t%C3%B6ken-%C3%A9-42",)),
    "lower-hex": ("töken-é-42", "t%c3%b6ken-%c3%a9-42", ("t%c3%b6ken-%c3%a9-42",)),
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


def _lines_of(out: io.BytesIO, path: str) -> list[dict[str, Any]]:
    configure_logging(stream=out)
    create_app(stream=out).test_client().get(f"/reset-password/{path}").close()
    return parse_lines(out.getvalue())


@pytest.mark.parametrize("case", list(CASES))
def test_the_value_is_masked_in_every_field(case: str, out: io.BytesIO) -> None:
    """Fields quoting request.url (nested too), an ``extra=`` field, a keyword named like
    the path, a bound field on the access line: masked, the lines' shape kept."""
    value, sent, forms = CASES[case]
    events = _lines_of(out, sent)
    assert [] == _leaks(events, (value, *forms))
    [app_line] = [e for e in events if e["logger"] == "views"]
    [std_line] = [e for e in events if e["logger"] == "views.std"]
    [access] = [e for e in events if e["logger"] == "limone_obs.access"]
    masked = "http://localhost/reset-password/[REDACTED]"
    assert (app_line["url"], app_line["links"], app_line["extra_path"]) == (
        masked, {"all": [masked]}, "/reset-password/[REDACTED]",
    )  # fmt: skip
    assert (std_line["link"], access["referer"]) == (masked, masked)
    assert {e["path"] for e in events} == {"/reset-password/[REDACTED]"}


def test_a_value_longer_than_the_paths_cap_is_masked(out: io.BytesIO) -> None:
    """The path field is cut to 2048 characters: a longer value is masked before the cut."""
    value = "y" * 2100
    events = _lines_of(out, value)
    assert {e["path"] for e in events} == {"/reset-password/[REDACTED]"}
    assert [] == _leaks(events, ("y" * 64,))


def test_a_url_that_is_not_utf8_is_masked_as_the_server_passed_it(out: io.BytesIO) -> None:
    """gunicorn passes the URL's bytes as they came (``%ff%fe`` as ``\\xff\\xfe``, PEP
    3333); Flask matches U+FFFD for them. Neither form, nor the client's, is left."""
    configure_logging(stream=out)
    environ = {
        "PATH_INFO": "/reset-password/\xff\xfeTOKENVALUE",
        "REQUEST_URI": "/reset-password/%ff%feTOKENVALUE",
        "RAW_URI": "/reset-password/%ff%feTOKENVALUE",
    }
    client = create_app(stream=out).test_client()
    client.get("/", environ_overrides=environ).close()
    events = parse_lines(out.getvalue())
    assert {e["path"] for e in events} == {"/reset-password/[REDACTED]"}
    assert [] == _leaks(events, ("TOKENVALUE",))


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

        # App, stdlib, the kit's and gunicorn's access lines: the last come after the body.
        events = settled(
            lines,
            lambda ls: sum("reset-password" in e.get("path", "") for e in ls) >= 4 * len(sent),
        )
    secret = [e for e in events if "reset-password" in str(e.get("path", ""))]
    assert 4 * len(sent) == len(secret)
    assert {e["path"] for e in secret} == {"/reset-password/[REDACTED]"}
    texts = ("TOKENVALUE", 'abc\ndef"ghi-tok', "abc%0Adef%22ghi-tok", "PATHTOKEN1leak9f8e")
    assert [] == _leaks(events, texts)
