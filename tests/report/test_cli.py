"""limone_obs.report.cli: what ``limone-obs report`` writes and says, Prometheus stubbed out.

The numbers themselves are tested against a real Prometheus (test_report_prometheus.py);
here :func:`~limone_obs.report.cli.collect` returns a fixed report.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask, Response, jsonify

from limone_obs.cli import main
from limone_obs.report import cli as report_cli
from limone_obs.report.model import Report
from tests.report.test_render import sample
from tests.support import ROOT, serve


@pytest.fixture
def collected(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Stub out Prometheus: ``collect`` returns :func:`sample` and records its arguments."""
    seen: dict[str, Any] = {}

    def fake_collect(prom: object, **kwargs: Any) -> Report:
        seen.update(kwargs)
        return sample()

    monkeypatch.setattr(report_cli, "collect", fake_collect)
    return seen


def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import matplotlib`` (and its figure module) fail, as when it is not installed."""
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)


def report(tmp_path: Path, *extra: str) -> Result:
    args = ["report", "--from", "now-10m", "--to", "now", "--baseline", "1h",
            "--output", str(tmp_path / "review"), *extra]  # fmt: skip
    return CliRunner().invoke(main, args)


def test_without_matplotlib_the_report_is_written_without_charts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collected: dict[str, Any]
) -> None:
    """No matplotlib: exit 0, the Markdown and an HTML without charts are written, and one
    warning line names the install command."""
    no_matplotlib(monkeypatch)
    result = report(tmp_path, "--spec", "alerts/slo.yaml")
    assert 0 == result.exit_code, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert 1 == len(warnings)
    assert "pip install matplotlib (the 'report' extra of limone-obs)" in warnings[0]
    page = (tmp_path / "review.html").read_text()
    assert "<figure" not in page
    assert "No charts: matplotlib is not installed" in page
    assert (tmp_path / "review.md").read_text().startswith("## Performance review")


def test_without_a_spec_the_names_used_are_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collected: dict[str, Any]
) -> None:
    """No --spec and no alerts/slo.yaml: one line on stderr names the job, service and
    namespace used and where each came from (an option or the default)."""
    monkeypatch.chdir(tmp_path)
    result = report(tmp_path, "--job", "shop")
    assert 0 == result.exit_code, result.output
    assert ("shop", "limoneide", "limoneide") == (
        collected["job"], collected["service"], collected["namespace"])  # fmt: skip
    notes = [line for line in result.stderr.splitlines() if "no SLO spec" in line]
    assert [
        "note: no SLO spec (no --spec, no alerts/slo.yaml here): using job 'shop' (--job), "
        "service 'limoneide' (default), namespace 'limoneide' (default); "
        "pass --spec or --job/--service/--namespace"
    ] == notes


@pytest.mark.parametrize(
    "options",
    [
        ("--spec", str(ROOT / "alerts" / "slo.yaml")),
        ("--job", "shop", "--service", "shop", "--namespace", "shop"),
    ],
    ids=["spec", "all-options"],
)
def test_names_from_a_spec_or_options_need_no_note(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    collected: dict[str, Any],
    options: tuple[str, ...],
) -> None:
    """With a spec, or with all three options, nothing came from a default: no note."""
    monkeypatch.chdir(tmp_path)  # no alerts/slo.yaml here
    result = report(tmp_path, *options)
    assert 0 == result.exit_code, result.output
    assert "no SLO spec" not in result.stderr


def _json_api_app() -> Flask:
    """An app whose every path answers JSON of its own (a list), as an app's API would."""
    app = Flask(__name__)

    @app.get("/<path:_path>")
    def anything(_path: str) -> Response:
        return jsonify([])

    return app


def test_a_json_answer_that_is_not_prometheus_is_named_as_such(tmp_path: Path) -> None:
    """A server answering JSON that is not Prometheus's API (the app's port given as
    Prometheus): exit 2 and the message every command gives for it, no traceback."""
    with serve(_json_api_app(), quiet=True) as url:
        result = CliRunner().invoke(
            main, ["report", "--prometheus", url, "--output", str(tmp_path / "r")]
        )
    expected = (
        f"error: {url} answered /api/v1/query with HTTP 200 (application/json), not as "
        "Prometheus's HTTP API: something else listens there; check the URL and port given "
        "to --prometheus"
    )
    assert (2, expected) == (result.exit_code, result.output[: len(expected)])
