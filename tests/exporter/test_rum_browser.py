"""RUM in a real browser: headless Chromium opens pages served by a real server."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from limone_obs import conventions as c
from tests.exporter.rum_app import counts, make_rum_app, samples
from tests.support import in_ci, serve

pytestmark = pytest.mark.integration
EDITOR = "/editor/<int:project_id>"
#: Phases every page view must report once: the navigation beacon's and the page's mark.
REQUIRED = (c.PHASE_TTFB, c.PHASE_DOM_CONTENT_LOADED, c.PHASE_LOAD, c.MARK_AI_ANSWER_SHOWN)
#: Phases a browser reports at most once per view (paint timing may be missing headless).
OPTIONAL = (c.PHASE_FCP, c.PHASE_LCP)


def chromium() -> str:
    """Path of Debian's chromium; skip locally, fail under CI=true when it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium is not installed: apt-get install -y --no-install-recommends chromium"
        if in_ci():
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return path


def open_page(browser: str, url: str, profile: Path) -> str:
    """Load ``url`` in headless Chromium until its virtual time runs out; return the DOM."""
    argv = [
        browser, "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
        "--virtual-time-budget=8000", "--dump-dom", url,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def settle(read: object, tries: int = 50) -> dict[tuple[str, str], float]:
    """Poll the histogram counts until two reads 0.2 s apart agree (beacons in flight)."""
    assert callable(read)
    last = read()
    for _ in range(tries):
        time.sleep(0.2)
        now = read()
        if now == last and all(now.get((EDITOR, p)) for p in REQUIRED):
            return dict(now)
        last = now
    return dict(last)


def test_each_page_view_reports_each_phase_once(tmp_path: Path) -> None:
    """Two page views: each required phase observed twice, optional ones at most twice,
    with plausible values (ttfb <= DOM content loaded <= load < 30 s; the mark >= 0.1 s)."""
    browser = chromium()
    app, metrics = make_rum_app()
    with serve(app, quiet=True) as url:
        for view in (1, 2):
            dom = open_page(browser, f"{url}/editor/{view}", tmp_path / f"profile{view}")
            assert f"Editor {view}" in dom
            found = settle(lambda: counts(metrics))
            assert {p: found.get((EDITOR, p)) for p in REQUIRED} == dict.fromkeys(REQUIRED, view)
            assert all(found.get((EDITOR, p), 0) <= view for p in OPTIONAL)
    assert {page for page, _ in found} == {EDITOR}
    sums = {
        dict(k)[c.LABEL_PHASE]: v
        for k, v in samples(metrics, f"{metrics.names.page_load}_sum").items()
    }
    assert 0 < sums[c.PHASE_TTFB] <= sums[c.PHASE_DOM_CONTENT_LOADED] <= sums[c.PHASE_LOAD] < 60
    assert 0.2 <= sums[c.MARK_AI_ANSWER_SHOWN] < 60  # two marks set 120 ms after asking
