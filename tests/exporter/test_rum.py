"""RUM: the script tag, the beacon endpoint and what a beacon may and may not record."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import pytest
from flask import Flask, render_template_string, request
from prometheus_client import CollectorRegistry

from limone_obs import Metrics
from limone_obs import conventions as c
from limone_obs.errors import ConfigError
from limone_obs.exporter import rum
from tests.exporter.rum_app import PAGES, N, counts, make_rum_app, samples

EDITOR = "/editor/<int:project_id>"


def token_of(html: str) -> str:
    found = re.search(r'data-page="([^"]+)"', html)
    assert found is not None, html
    return found.group(1).replace("&lt;", "<").replace("&gt;", ">")


def page_token(app: Flask, path: str = "/editor/7") -> str:
    return token_of(app.test_client().get(path).get_data(as_text=True))


def post(app: Flask, body: Any, **kwargs: Any) -> int:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return (
        app.test_client().post("/rum", data=data, content_type="text/plain", **kwargs).status_code
    )


def beacons(metrics: Metrics) -> dict[str, float]:
    return {dict(k)[c.LABEL_RESULT]: v for k, v in samples(metrics, N.rum_beacons_total).items()}


def test_tag_names_the_rendering_url_rule_signed() -> None:
    """The Jinja global renders a deferred script tag whose page token names the URL rule."""
    app, _ = make_rum_app()
    html = app.test_client().get("/editor/42").get_data(as_text=True)
    assert '<script src="/rum.js" data-beacon="/rum" data-page="' in html
    token = token_of(html)
    assert token.startswith(EDITOR + ".")
    assert rum.page_token(EDITOR, app).split(".")[0] == EDITOR


def test_tag_lists_the_marks_the_server_keeps() -> None:
    """``data-marks``: the script sends no other mark (and says so in the console)."""
    default, _ = make_rum_app()
    own, _ = make_rum_app(LIMONE_OBS_RUM_MARKS=["search_done", "ai_answer_shown"])
    none, _ = make_rum_app(LIMONE_OBS_RUM_MARKS=[])
    tags = [app.test_client().get("/about").get_data(as_text=True) for app in (default, own, none)]
    assert [re.findall(r'data-marks="([^"]*)"', tag) for tag in tags] == [
        ["ai_answer_shown"],
        ["ai_answer_shown,search_done"],
        [""],
    ]
    assert "data-marks" in rum.script_source().decode()


def rendered(app: Flask, template: str, **context: Any) -> str:
    """``template`` rendered in a request of its own for /editor/1 (one tag a request)."""
    with app.test_request_context("/editor/1"):
        return render_template_string(template, **context)


def test_tag_carries_the_nonce_given_or_flask_talismans() -> None:
    """``limone_obs_rum(nonce=...)`` puts the page's CSP nonce on the tag (escaped); with
    none given, Flask-Talisman's ``request.csp_nonce``; with neither, no attribute."""
    app, _ = make_rum_app()
    given = rendered(app, "{{ limone_obs_rum(nonce=n) }}", n='a"b')
    with app.test_request_context("/editor/1"):
        request.csp_nonce = "talisman1"  # type: ignore[attr-defined]
        talisman = render_template_string("{{ limone_obs_rum() }}")
    plain = rendered(app, "{{ limone_obs_rum() }}")
    assert (' nonce="a&#34;b" defer>' in given, ' nonce="talisman1" defer>' in talisman) == (
        True,
        True,
    )
    assert "nonce" not in plain


def test_tag_takes_a_nonce_function_and_warns_once_of_a_value_it_cannot_use(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Flask-Talisman's ``csp_nonce`` global is a function: called. A misspelt template
    variable (Jinja's Undefined, which raises when called) or a number renders the tag
    without a nonce, never a failed page, and one warning line per kind of value."""
    app, _ = make_rum_app()
    called = rendered(app, "{{ limone_obs_rum(nonce=f) }}", f=lambda: "fn1")
    with caplog.at_level(logging.WARNING, logger="limone_obs.exporter.rum"):
        for _ in range(2):
            undefined = rendered(app, "{{ limone_obs_rum(nonce=no_such_name) }}")
            number = rendered(app, "{{ limone_obs_rum(nonce=7) }}")
    assert ' nonce="fn1" defer>' in called
    assert ("nonce" in undefined, "nonce" in number) == (False, False)
    assert "data-page" in undefined
    warned = [r.getMessage() for r in caplog.records if "limone_obs_rum(nonce=" in r.getMessage()]
    assert 2 == len(warned), warned


def test_tag_is_empty_outside_a_request() -> None:
    """Rendering outside a request (no URL rule to name) gives an empty string, no error."""
    app, _ = make_rum_app()
    with app.app_context():
        assert render_template_string("{{ limone_obs_rum() }}") == ""


def test_a_page_of_no_url_rule_gets_the_script_without_a_page() -> None:
    """A 404 handler's page (no URL rule): the script without data-page, so the page's own
    limoneObs.mark() calls exist and record nothing."""
    app, _ = make_rum_app()

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[str, int]:
        return render_template_string("<p>not here</p>{{ limone_obs_rum() }}"), 404

    html = app.test_client().get("/no/such/page").get_data(as_text=True)
    assert ('<script src="/rum.js" defer></script>' in html, "data-page" in html) == (True, False)


def test_each_tag_with_a_page_counts_as_a_page_rendered() -> None:
    """``rum_pages_total{page}`` counts the tags rendered with a page token, by URL rule:
    what the beacons are compared with. A tag without a page (a 404 handler's, outside
    a request), a HEAD request's page and the beacons themselves do not count."""
    app, metrics = make_rum_app()

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[str, int]:
        return render_template_string("{{ limone_obs_rum() }}"), 404

    client = app.test_client()
    for path in ("/editor/1", "/editor/2", "/about", "/no/such/page"):
        assert client.get(path).status_code in (200, 404)
    with app.app_context():
        render_template_string("{{ limone_obs_rum() }}")
    assert client.head("/about").status_code == 200  # rendered, never shown
    assert post(app, {"p": page_token(app), "v": {"load": 1.0}}) == 204
    rendered = {dict(k)[c.LABEL_PAGE]: v for k, v in samples(metrics, N.rum_pages_total).items()}
    assert rendered == {EDITOR: 3.0, "/about": 1.0}


def test_a_huge_integer_is_dropped_without_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """A 400-digit integer (math.isfinite raises on it) is a plain 400: no line per beacon
    (any visitor has a token), nothing observed."""
    app, metrics = make_rum_app()
    body = json.dumps({"p": page_token(app), "v": {"load": 10**400}})
    with caplog.at_level("DEBUG"):
        statuses = [post(app, body) for _ in range(3)]
    assert (statuses, counts(metrics)) == ([400] * 3, {})
    assert [r.getMessage() for r in caplog.records if r.levelno >= 30] == []


def test_script_is_served_and_shipped_as_a_file() -> None:
    """GET /rum.js serves the packaged script, as JavaScript."""
    app, _ = make_rum_app()
    response = app.test_client().get("/rum.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.data == rum.script_source()
    assert b"sendBeacon" in response.data


def test_beacon_records_each_phase_once() -> None:
    """A navigation beacon adds one observation per phase to the page's histogram."""
    app, metrics = make_rum_app()
    values = {"ttfb": 0.05, "fcp": 0.2, "dom_content_loaded": 0.3, "load": 1.4}
    assert post(app, {"p": page_token(app), "v": values}) == 204
    assert counts(metrics) == {(EDITOR, phase): 1.0 for phase in values}
    total = samples(metrics, f"{N.page_load}_sum")
    assert sum(total.values()) == pytest.approx(sum(values.values()))
    assert beacons(metrics)[c.RUM_ACCEPTED] == 1


def test_registered_mark_is_a_phase() -> None:
    """A mark named in LIMONE_OBS_RUM_MARKS is recorded as its own phase; others are not."""
    app, metrics = make_rum_app(LIMONE_OBS_RUM_MARKS=["ai_answer_shown", "saved"])
    token = page_token(app)
    assert post(app, {"p": token, "v": {"saved": 0.4, "ai_answer_shown": 0.9}}) == 204
    assert post(app, {"p": token, "v": {"unknown_mark": 0.4}}) == 400
    assert counts(metrics) == {(EDITOR, "saved"): 1.0, (EDITOR, "ai_answer_shown"): 1.0}


def test_buckets_hold_both_targets() -> None:
    """The page-load buckets contain the 1 s and 2 s targets (the SLOs count below them)."""
    for threshold in c.RUM_THRESHOLDS:
        assert threshold in c.PAGE_LOAD_BUCKETS


@pytest.mark.parametrize(
    ("body", "status", "result"),
    [
        (b"not json", 400, c.RUM_MALFORMED),
        (b"[1, 2]", 400, c.RUM_MALFORMED),
        (b'{"p": "x"}', 400, c.RUM_MALFORMED),
        (b'{"p": 1, "v": {"load": 1}}', 400, c.RUM_BAD_PAGE),
        (b'{"p": "/about", "v": {"load": 1}}', 400, c.RUM_BAD_PAGE),
        (b"[" * 1500, 400, c.RUM_MALFORMED),
        (b"x" * (rum.MAX_BODY_BYTES + 1), 413, c.RUM_TOO_LARGE),
    ],
)
def test_hostile_beacons_get_4xx_and_no_series(body: bytes, status: int, result: str) -> None:
    """Malformed, unsigned or oversized beacons get a 4xx, are counted, add no series."""
    app, metrics = make_rum_app()
    assert post(app, body) == status
    assert counts(metrics) == {}
    assert beacons(metrics)[result] == 1


def test_forged_page_token_is_refused() -> None:
    """A token for a page the server did not sign (or re-signed with another key) is refused."""
    app, metrics = make_rum_app()
    other, _ = make_rum_app(SECRET_KEY="another key")
    assert post(app, {"p": page_token(other), "v": {"load": 1.0}}) == 400
    forged = rum.page_token("/not/a/rule", app)
    assert post(app, {"p": forged, "v": {"load": 1.0}}) == 400
    assert counts(metrics) == {}


@pytest.mark.parametrize(
    "value", [-0.1, 1e9, 10**400, float("nan"), float("inf"), "1.0", True, None, [1], {"a": 1}]
)
def test_absurd_values_are_dropped(value: object) -> None:
    """Negative, huge, non-finite or non-numeric values are not observed."""
    app, metrics = make_rum_app()
    body = json.dumps({"p": page_token(app), "v": {"load": value}}, allow_nan=True)
    assert post(app, body) == 400
    assert counts(metrics) == {}


def test_flood_is_rate_limited() -> None:
    """Beyond LIMONE_OBS_RUM_RATE beacons per second a beacon gets 429 and is not recorded."""
    app, metrics = make_rum_app(LIMONE_OBS_RUM_RATE=5)
    token = page_token(app)
    statuses = [post(app, {"p": token, "v": {"load": 1.0}}) for _ in range(20)]
    assert statuses.count(204) < 20
    assert 429 in statuses
    assert counts(metrics)[(EDITOR, "load")] == statuses.count(204)


@pytest.mark.parametrize(
    "garbage",
    [b"garbage", b'{"p": "forged.token.sig", "v": {"load": 1.0}}', b"x" * 4096],
    ids=["malformed", "forged-token", "too-large"],
)
def test_a_flood_of_garbage_does_not_crowd_out_real_beacons(garbage: bytes) -> None:
    """The rate is spent only by beacons whose page token checks out: far more bad
    beacons than the rate allows leave every real one of the same second recorded."""
    app, metrics = make_rum_app(LIMONE_OBS_RUM_RATE=5)
    token = page_token(app)
    refused = [post(app, garbage) for _ in range(50)]
    real = [post(app, {"p": token, "v": {"load": 1.0}}) for _ in range(4)]
    assert (set(refused), real) == ({413 if len(garbage) > 2048 else 400}, [204] * 4)
    assert counts(metrics)[(EDITOR, "load")] == 4


def test_beacons_stay_out_of_the_request_series() -> None:
    """Beacon and script requests add nothing to the request counter (their own counter)."""
    app, metrics = make_rum_app()
    token = page_token(app)
    app.test_client().get("/rum.js")
    post(app, {"p": token, "v": {"load": 1.0}})
    endpoints = {dict(k)[c.LABEL_ENDPOINT] for k in samples(metrics, N.requests_total)}
    assert endpoints == {EDITOR}


def test_rum_off_registers_nothing_and_the_tag_renders_empty() -> None:
    """LIMONE_OBS_RUM=False: no beacon route, no script route; the Jinja global renders
    nothing, so the pages that include it still render (a 500 each before)."""
    app, metrics = make_rum_app(LIMONE_OBS_RUM=False)
    client = app.test_client()
    assert client.post("/rum", data="{}").status_code == 404
    page = client.get("/editor/1")
    assert (page.status_code, "<script src" in page.get_data(as_text=True)) == (200, False)
    assert samples(metrics, N.rum_beacons_total) == {}
    assert samples(metrics, N.rum_pages_total) == {}


def test_a_tag_rendered_twice_in_one_request_counts_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base template and its child both call limone_obs_rum(): one page counted (the
    browser reports from one copy: test_rum_browser), and one warning line per process
    saying what to do."""
    app, metrics = make_rum_app()
    twice = "<html><head>{{ limone_obs_rum() }}</head><body>{{ limone_obs_rum() }}</body></html>"

    @app.get("/twice")
    def page_twice() -> str:
        return render_template_string(twice)

    monkeypatch.setattr(rum, "_twice_said", False)
    with caplog.at_level("WARNING", logger="limone_obs"):
        pages = [app.test_client().get("/twice").get_data(as_text=True) for _ in range(2)]
    assert [page.count("<script src") for page in pages] == [2, 2]
    rendered = {dict(k)[c.LABEL_PAGE]: v for k, v in samples(metrics, N.rum_pages_total).items()}
    assert rendered == {"/twice": 2.0}
    lines = [r.getMessage() for r in caplog.records if "called twice" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "'/twice'" in lines[0]


def test_beacon_path_is_configurable() -> None:
    """LIMONE_OBS_RUM_PATH moves the beacon and the script; the tag follows."""
    app, metrics = make_rum_app(LIMONE_OBS_RUM_PATH="/_obs/rum")
    html = app.test_client().get("/editor/1").get_data(as_text=True)
    assert 'src="/_obs/rum.js" data-beacon="/_obs/rum"' in html
    body = json.dumps({"p": token_of(html), "v": {"load": 0.5}})
    client = app.test_client()
    assert client.post("/_obs/rum", data=body, content_type="text/plain").status_code == 204
    assert counts(metrics) == {(EDITOR, "load"): 1.0}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("LIMONE_OBS_RUM_PATH", "rum"),
        ("LIMONE_OBS_RUM_PATH", "/"),
        ("LIMONE_OBS_RUM_PATH", "/rum/"),
        ("LIMONE_OBS_RUM_PATH", "//cdn.example.com/rum"),
        ("LIMONE_OBS_RUM_PATH", "/.."),
        ("LIMONE_OBS_RUM_PATH", "/a/./rum"),
        ("LIMONE_OBS_RUM_PATH", "/metrics"),
        ("LIMONE_OBS_RUM_MARKS", "ai_answer_shown"),
        ("LIMONE_OBS_RUM_MARKS", ["Bad Name"]),
        ("LIMONE_OBS_RUM_MARKS", ["load"]),
        ("LIMONE_OBS_RUM_RATE", 0),
    ],
)
def test_bad_settings_are_config_errors(key: str, value: object) -> None:
    """An invalid RUM setting fails Metrics(app) with a ConfigError naming the setting."""
    app = Flask("bad")
    app.config[key] = value
    with pytest.raises(ConfigError, match=key):
        Metrics(app, registry=CollectorRegistry())


def test_every_allowed_page_is_an_app_rule() -> None:
    """The pages a token may name are exactly the app's URL rules (RUM routes excluded)."""
    app, _ = make_rum_app()
    receiver = app.extensions["limone_obs_rum"]
    assert set(PAGES) <= receiver.pages()
    assert "/rum" not in receiver.pages()
    assert "/rum.js" not in receiver.pages()


def test_unsigned_tokens_are_warned_about_once_and_only_when_rum_is_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No key: no warning at start (an app may never use RUM); one at the first tag."""
    app = Flask("no_key")
    Metrics(app, registry=CollectorRegistry())
    app.add_url_rule("/page", "page", lambda: render_template_string("{{ limone_obs_rum() }}"))
    app.add_url_rule("/plain", "plain", lambda: "plain")
    with caplog.at_level("WARNING", logger="limone_obs"):
        app.test_client().get("/plain")
        before = [r.getMessage() for r in caplog.records if "not signed" in r.getMessage()]
        for _ in range(3):
            app.test_client().get("/page")
    after = [r.getMessage() for r in caplog.records if "not signed" in r.getMessage()]
    assert ([], 1) == (before, len(after))
    assert ("'no_key'" in after[0], "LIMONE_OBS_RUM = False" in after[0]) == (True, True)


def test_a_rendered_pages_series_exist_before_its_first_beacon() -> None:
    """The first render of a page makes its page-load series, every phase and mark, at 0:
    Prometheus counts a series from its first sample, so beacons arriving with the
    series would be missing from rate() and the RUM SLIs. Pages never rendered have none."""
    app, metrics = make_rum_app()
    assert samples(metrics, f"{N.page_load}_count") == {}
    app.test_client().get("/editor/1")
    made = samples(metrics, f"{N.page_load}_count")
    phases = {*c.RUM_PHASES, *c.DEFAULT_RUM_MARKS}
    assert {(dict(k)[c.LABEL_PAGE], dict(k)[c.LABEL_PHASE]) for k in made} == {
        (EDITOR, phase) for phase in phases
    }
    assert set(made.values()) == {0.0}


def test_a_token_signed_with_another_key_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    """Two processes with different keys (a SECRET_KEY made at random per worker): the
    beacons of the other's pages are refused as bad_page, and one warning line says why
    and what to do; an expired token (a page left open) or garbage says nothing."""
    other, _ = make_rum_app(SECRET_KEY="another-worker-key")
    foreign = page_token(other)
    app, metrics = make_rum_app(LIMONE_OBS_RUM_MAX_AGE=1)
    expired = page_token(app)
    with caplog.at_level(logging.WARNING, logger="limone_obs.exporter.rum"):
        post(app, {"p": "garbage.token.x", "v": {"load": 1.0}})
        expires = time.monotonic() + 30
        while post(app, {"p": expired, "v": {"load": 1.0}}) != 400:  # up to 2 s
            assert time.monotonic() < expires, "the token never expired"
            time.sleep(0.1)
        assert [] == [r for r in caplog.records if "another key" in r.getMessage()]
        statuses = [post(app, {"p": token, "v": {"load": 1.0}}) for token in (foreign, foreign)]
    assert statuses == [400, 400]
    assert beacons(metrics)[c.RUM_BAD_PAGE] >= 4.0
    said = [r.getMessage() for r in caplog.records if "another key" in r.getMessage()]
    assert len(said) == 1, said
    assert EDITOR in said[0]
    assert "SECRET_KEY or LIMONE_OBS_RUM_KEY" in said[0]


def test_an_error_pages_tag_after_the_views_is_rendered() -> None:
    """A view rendered its page, then failed; its error handler's page carries the tag
    too (it is the page shown, and its own limoneObs.mark calls need the script), and
    the request counts once."""
    app, metrics = make_rum_app()

    @app.get("/fails")
    def fails() -> str:
        render_template_string("<p>never sent</p>{{ limone_obs_rum() }}")
        raise RuntimeError("the commit failed")

    @app.errorhandler(500)
    def error_page(_error: Exception) -> tuple[str, int]:
        return render_template_string("<p>sorry</p>{{ limone_obs_rum() }}"), 500

    response = app.test_client().get("/fails")
    assert (response.status_code, "data-page=" in response.get_data(as_text=True)) == (500, True)
    rendered = {dict(k)[c.LABEL_PAGE]: v for k, v in samples(metrics, N.rum_pages_total).items()}
    assert rendered == {"/fails": 1.0}
