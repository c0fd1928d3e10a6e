"""``limone-obs status``: table rendering and errors (the live table is tested in test_up)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from flask import Flask

from limone_obs.alerts.spec import load_spec
from limone_obs.cli import main
from limone_obs.errors import StackError
from limone_obs.stack.status import SloStatus, base_url, render
from tests.support import ROOT, serve


def test_render_formats_ratios_burns_and_missing_values() -> None:
    """Ratios print as percent, burn rates as multiples, missing and NaN values as '-'."""
    rows = [
        SloStatus(
            "availability",
            "ratio",
            99.9,
            0.9995,
            0.5,
            {"5m": 14.4, "1h": float("nan"), "6h": None, "3d": 0.5},
            ("AvailabilityErrorBudgetBurn(page)",),
        ),
        SloStatus("up", "up", None, 1.0, None),
    ]
    lines = render(rows).splitlines()
    assert lines[0].split()[:4] == ["SLO", "kind", "objective", "SLI"]
    assert [
        "availability", "ratio", "99.9", "%", "99.950", "%", "50.0", "%",
        "14.40x", "-", "-", "0.50x", "-", "AvailabilityErrorBudgetBurn(page)",
    ] == lines[1].split()  # fmt: skip
    assert ["up", "up", "-", "100.000", "%", "-", "-", "-", "-", "-", "-", "-"] == lines[2].split()


def test_render_shows_the_progress_of_each_next_stage() -> None:
    """A staged latency SLO lists the share of events within each next stage."""
    row = SloStatus("latency", "latency", 95.0, 0.99, 0.8, progress={"<=1s": 0.25, "<=0.6s": None})
    line = render([row]).splitlines()[1]
    assert "<=1s 25.0 %, <=0.6s -" in line


def test_the_errors_slo_reads_100_percent_without_any_5xx() -> None:
    """The threshold SLO's status query counts a missing error series as no errors."""
    spec = load_spec(ROOT / "alerts" / "slo.yaml")
    slo = spec.slo("errors")
    expr = slo.sli.status_sli(spec, slo)
    assert expr is not None
    expected = (
        '1 - (sum(rate(limoneide_requests_total{job="limoneide",status=~"5.."}[5m])) '
        'or vector(0)) / sum(rate(limoneide_requests_total{job="limoneide"}[5m]))'
    )
    assert expected == expr


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:9090", "http://127.0.0.1:9090"),
        ("http://127.0.0.1:9090/", "http://127.0.0.1:9090"),
        ("https://prom.example.com", "https://prom.example.com"),
    ],
)
def test_a_url_without_scheme_gets_http(given: str, expected: str) -> None:
    """No scheme means http://; a trailing slash is dropped."""
    assert expected == base_url(given)


def test_a_url_with_another_scheme_is_named() -> None:
    """ftp://... is refused with a message naming the value and an example."""
    with pytest.raises(StackError, match="'ftp://x' is not an http"):
        base_url("ftp://x")


def test_unreachable_prometheus_is_exit_2_with_the_url() -> None:
    """No Prometheus at the URL: exit 2 and a message naming it and --prometheus."""
    spec = str(ROOT / "alerts" / "slo.yaml")
    args = ["status", "--prometheus", "http://127.0.0.1:9", "--spec", spec]
    result = CliRunner().invoke(main, args)
    assert 2 == result.exit_code
    assert "cannot query Prometheus at http://127.0.0.1:9" in result.output


def _not_prometheus() -> Flask:
    """A web app on the port given as Prometheus (the trial pointed status at the app)."""
    app = Flask(__name__)
    app.add_url_rule("/", "index", lambda: "hello")
    return app


def test_a_server_that_is_not_prometheus_is_named_as_such() -> None:
    """Something answers, but not as Prometheus: exit 2, the message says it answered, with
    the HTTP status and content type, and to check the URL and port (no JSONDecodeError)."""
    spec = str(ROOT / "alerts" / "slo.yaml")
    with serve(_not_prometheus(), quiet=True) as url:
        result = CliRunner().invoke(main, ["status", "--prometheus", url, "--spec", spec])
    expected = (
        f"error: {url} answered /api/v1/query with HTTP 404 (text/html; charset=utf-8), not as "
        "Prometheus's HTTP API: something else listens there; check the URL and port given "
        "to --prometheus"
    )
    assert (2, expected) == (result.exit_code, result.output[: len(expected)])
