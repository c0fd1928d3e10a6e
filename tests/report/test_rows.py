"""The endpoint and dependency tables' shares: of requests, and of the time in calls."""

from __future__ import annotations

from limone_obs.report.collect import _rows, coverage_note
from limone_obs.report.model import Stats
from limone_obs.report.window import Span


class _Calls:
    """A source of the window's numbers: many quick database calls, a few slow AI calls."""

    def stats(self, _span: Span, _by: str, *, dependency: bool) -> dict[str, Stats]:
        assert isinstance(dependency, bool)
        return {
            "db": Stats(count=4394.0, errors=0.0, p50=None, p95=None, p99=None, mean=0.0096),
            "ai_api": Stats(count=580.0, errors=0.0, p50=None, p95=None, p99=None, mean=1.27),
            "template": Stats(count=1160.0, errors=0.0, p50=None, p95=None, p99=None, mean=None),
        }


def test_a_dependencys_share_is_of_the_time_in_calls() -> None:
    """Where the time goes: the AI API's 737 s outweigh the database's 42 s in 4394 calls
    (by calls the database read 72 %); a dependency without a mean has no time share."""
    rows = _rows(_Calls(), Span(0.0, 600.0), None, "dependency", dependency=True)  # type: ignore[arg-type]
    shares = {row.name: round(row.share, 3) for row in rows}
    assert [row.name for row in rows] == ["ai_api", "db", "template"]
    assert shares == {"ai_api": 0.946, "db": 0.054, "template": 0.0}


def test_an_endpoints_share_is_of_the_requests() -> None:
    """The endpoint table keeps the share of requests."""
    rows = _rows(_Calls(), Span(0.0, 600.0), None, "endpoint", dependency=False)  # type: ignore[arg-type]
    assert {row.name: round(row.share, 3) for row in rows} == {
        "db": 0.716, "ai_api": 0.095, "template": 0.189,
    }  # fmt: skip


def test_a_window_partly_without_scrapes_is_said() -> None:
    """A 17-minute window of which Prometheus has 7.5 minutes of the job's scrapes (it
    started inside it): its averages count the rest as no traffic, and a note says so;
    a window covered (nearly) whole, or not at all (which says so itself), has none."""
    (note,) = coverage_note(450.0, 1043, "shop")
    assert "over about 7.5 minutes of the window's 17.4 minutes" in note
    assert "request rates count the rest as no traffic" in note
    assert [] == coverage_note(1000.0, 1043, "shop") == coverage_note(None, 1043, "shop")
    (baseline,) = coverage_note(450.0, 1043, "shop", "baseline")
    assert "of the baseline's 17.4 minutes" in baseline
    assert "a change against it, in rates or throughput, is partly the missing time" in baseline
