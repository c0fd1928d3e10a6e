"""RUM in a real browser: headless Chromium opens pages served by a real server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from limone_obs import conventions as c
from tests.exporter.rum_app import counts, make_rum_app, samples
from tests.support import need, serve

pytestmark = pytest.mark.integration
EDITOR = "/editor/<int:project_id>"
#: Phases every page view must report once: the navigation beacon's (first paint included:
#: a small page paints after its load event, and the beacon waits for it) and the mark.
REQUIRED = (
    c.PHASE_TTFB, c.PHASE_FCP, c.PHASE_DOM_CONTENT_LOADED, c.PHASE_LOAD, c.MARK_AI_ANSWER_SHOWN,
)  # fmt: skip
#: Phases a browser reports at most once per view (LCP goes when the page is hidden).
OPTIONAL = (c.PHASE_LCP,)
N_BEACONS = c.MetricNames().rum_beacons_total


def browser(profile: Path) -> Any:
    """Headless Chromium driven by chromedriver (Selenium), in real time: a page paints
    as in a user's browser (a --dump-dom run's virtual time may end before any paint).
    Its console is kept (``driver.get_log("browser")``)."""
    from selenium import webdriver  # noqa: PLC0415 - only the browser tests need it
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = need("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(need("chromedriver")))


def settle(
    read: object, views: int, timeout: float = 20.0, page: str = EDITOR
) -> dict[tuple[str, str], float]:
    """Poll the histogram counts until every required phase of ``page`` has ``views``
    observations and two reads 0.3 s apart agree (beacons in flight); the last read at
    the deadline."""
    assert callable(read)
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = read()
        if now == last and all(now.get((page, p), 0) >= views for p in REQUIRED):
            return dict(now)
        last = now
    return dict(last)


def test_each_page_view_reports_each_phase_once(tmp_path: Path) -> None:
    """Two page views: each required phase observed twice, optional ones at most twice,
    with plausible values (ttfb <= DOM content loaded <= load < 30 s; the mark >= 0.1 s)."""
    app, metrics = make_rum_app()
    with serve(app, quiet=True) as url:
        driver = browser(tmp_path / "profile")
        try:
            for view in (1, 2):
                driver.get(f"{url}/editor/{view}")  # returns once the page has loaded
                assert f"Editor {view}" in driver.page_source
                found = settle(lambda: counts(metrics), view)
                expected = dict.fromkeys(REQUIRED, view)
                assert {p: found.get((EDITOR, p)) for p in REQUIRED} == expected
                assert all(found.get((EDITOR, p), 0) <= view for p in OPTIONAL)
        finally:
            driver.quit()
    assert {page for page, _ in found} == {EDITOR}
    # Two views rendered the tag twice: every view timed.
    assert {
        dict(k)[c.LABEL_PAGE]: v for k, v in samples(metrics, metrics.names.rum_pages_total).items()
    } == {EDITOR: 2.0}
    sums = {
        dict(k)[c.LABEL_PHASE]: v
        for k, v in samples(metrics, f"{metrics.names.page_load}_sum").items()
    }
    assert 0 < sums[c.PHASE_TTFB] <= sums[c.PHASE_DOM_CONTENT_LOADED] <= sums[c.PHASE_LOAD] < 60
    assert sums[c.PHASE_TTFB] <= sums[c.PHASE_FCP] < 60
    assert 0.2 <= sums[c.MARK_AI_ANSWER_SHOWN] < 60  # two marks set 120 ms after asking


def test_a_page_under_a_strict_nonce_policy_reports_with_the_nonce(tmp_path: Path) -> None:
    """A Content-Security-Policy allowing scripts by nonce only ('strict-dynamic'): the
    tag given the page's nonce loads, and every phase and the page's mark arrive."""
    app, metrics = make_rum_app()
    strict = "/strict/<int:project_id>"
    with serve(app, quiet=True) as url:
        driver = browser(tmp_path / "profile")
        try:
            driver.get(f"{url}/strict/7")
            assert "Strict 7" in driver.page_source
            found = settle(lambda: counts(metrics), 1, page=strict)
        finally:
            driver.quit()
    assert {p: found.get((strict, p)) for p in REQUIRED} == dict.fromkeys(REQUIRED, 1)


#: A page setting a misspelt mark (not in LIMONE_OBS_RUM_MARKS) and the right one.
TYPO_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>typo</title>{{ limone_obs_rum() }}</head>
<body><h1>Typo</h1><script>
  window.addEventListener("load", function () {
    limoneObs.mark("ai_answr_shown");
    limoneObs.mark("ai_answr_shown");
    limoneObs.mark("constructor");
    limoneObs.mark("ai_answer_shown");
  });
</script></body></html>
"""


def test_a_mark_the_server_does_not_keep_is_not_sent_and_the_console_says_so(
    tmp_path: Path,
) -> None:
    """A misspelt mark name: one console warning naming it and LIMONE_OBS_RUM_MARKS, no
    beacon for it (it cost a 400 counted as malformed, without a word), and the page's
    other phases and its right mark still arrive."""
    from flask import render_template_string  # noqa: PLC0415

    app, metrics = make_rum_app()
    app.add_url_rule("/typo", "typo", lambda: render_template_string(TYPO_PAGE))
    with serve(app, quiet=True) as url:
        driver = browser(tmp_path / "profile")
        try:
            driver.get(f"{url}/typo")
            found = settle(lambda: counts(metrics), 1, page="/typo")
            console = [entry["message"] for entry in driver.get_log("browser")]
        finally:
            driver.quit()
    assert {p: found.get(("/typo", p)) for p in REQUIRED} == dict.fromkeys(REQUIRED, 1)
    warned = [m for m in console if "ai_answr_shown" in m]
    assert len(warned) == 1, console
    assert "is not in LIMONE_OBS_RUM_MARKS (ai_answer_shown): not sent" in warned[0]
    # A name of Object's prototype is a name like any (it was dropped without a word).
    assert len([m for m in console if 'mark \\"constructor\\"' in m]) == 1, console
    results = {dict(k)[c.LABEL_RESULT]: v for k, v in samples(metrics, N_BEACONS).items()}
    assert results.get(c.RUM_MALFORMED, 0) == 0, results


#: A page with the RUM script twice: the kit's tag, and a copy written by hand (a static
#: include of the file) naming the same page.
DOUBLE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>double</title>{{ limone_obs_rum() }}
<script src="/rum.js" data-beacon="/rum" data-page="{{ token }}" defer></script></head>
<body><h1>Double</h1><script>
  window.addEventListener("load", function () { limoneObs.mark("ai_answer_shown"); });
</script></body></html>
"""


def test_the_script_twice_on_a_page_reports_the_view_once(tmp_path: Path) -> None:
    """Two copies of the script on one page: the first reports, the second says so in
    the console and sends nothing (every phase was observed twice, without a word)."""
    from flask import render_template_string  # noqa: PLC0415

    from limone_obs.exporter.rum import page_token  # noqa: PLC0415

    app, metrics = make_rum_app()

    @app.get("/double")
    def double() -> str:
        return render_template_string(DOUBLE_PAGE, token=page_token("/double"))

    with serve(app, quiet=True) as url:
        driver = browser(tmp_path / "profile")
        try:
            driver.get(f"{url}/double")
            settle(lambda: counts(metrics), 1, page="/double")
            console = [entry["message"] for entry in driver.get_log("browser")]
            driver.get("about:blank")  # leaving the page: what any copy still had goes now
            found = settle(lambda: counts(metrics), 1, page="/double")
        finally:
            driver.quit()
    assert {p: found.get(("/double", p)) for p in REQUIRED} == dict.fromkeys(REQUIRED, 1)
    assert len([m for m in console if "on this page twice" in m]) == 1, console
