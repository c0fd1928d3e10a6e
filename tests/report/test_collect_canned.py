"""The report's collection on canned answers: a dependency named ``other`` beside the
time outside every dependency (also called "other" in the report), neither hiding the
other (a review found the dependency's 0.5 s dropped); a dependency of the baseline only;
a window that has not ended.
Prometheus answers canned samples here: the queries themselves are checked on
Prometheus' engine in test_breakdown_queries.py."""

from __future__ import annotations

from limone_obs import conventions as c
from limone_obs.report import queries as q
from limone_obs.report.collect import _breakdown, _endpoint_breakdown, _Source
from limone_obs.report.model import Row, Stats
from limone_obs.report.prometheus import Prometheus, Sample
from limone_obs.report.window import Span

WINDOW = Span(1000.0, 1600.0)
N = c.MetricNames()


class Canned(Prometheus):
    """A Prometheus answering each query from a table (no server): ``"<expr>@<time>"``
    answers at that evaluation time only, ``"<expr>"`` at any."""

    def __init__(self, answers: dict[str, list[Sample]]) -> None:
        super().__init__("http://127.0.0.1:1")
        self.answers = answers

    def instant(self, expr: str, at: float) -> list[Sample]:
        at_time = self.answers.get(f"{expr}@{at:g}")
        return at_time if at_time is not None else self.answers.get(expr, [])

    def scrape_interval(self, job: str) -> float | None:  # noqa: ARG002 - one job only
        return 15.0


def _sample(value: float, **labels: str) -> Sample:
    return Sample(labels, value)


def test_a_dependency_named_other_keeps_its_row_in_both_tables() -> None:
    """/a: 0.3 s in db, 0.5 s in a dependency named "other", 0.2 s outside both."""
    seconds = WINDOW.seconds
    answers = {
        q.endpoint_time_per_request(N, "j", seconds): [
            _sample(0.3, endpoint="/a", dependency="db"),
            _sample(0.5, endpoint="/a", dependency="other"),
        ],
        q.endpoint_outside_dependencies(N, "j", seconds): [_sample(0.2, endpoint="/a")],
        q.time_per_request(N, "j", seconds): [
            _sample(0.3, dependency="db"),
            _sample(0.5, dependency="other"),
        ],
        q.outside_dependencies(N, "j", seconds): [_sample(0.2)],
    }
    src = _Source(Canned(answers), c.DEFAULT_NAMESPACE, "j", "svc")
    stats = Stats(count=100.0, errors=0.0, p50=None, p95=None, p99=None)
    endpoints = (Row("/a", stats, None, 1.0, "unchanged"),)
    per_endpoint = _endpoint_breakdown(src, WINDOW, None, endpoints)
    assert [(p.name, p.now) for p in per_endpoint] == [
        ("/a dependency other", 0.5),
        ("/a db", 0.3),
        ("/a other", 0.2),
    ]
    deps = (Row("db", stats, None, 1.0, "unchanged"), Row("other", stats, None, 1.0, "unchanged"))
    service = _breakdown(src, WINDOW, None, (100.0, None), deps)
    assert [(p.name, p.now) for p in service] == [
        ("dependency other", 0.5),
        ("db", 0.3),
        ("other", 0.2),
    ]


def test_a_dependency_of_the_baseline_only_keeps_its_row() -> None:
    """The AI calls of the baseline are gone from the window (all failing at once, say):
    the service-wide table still shows them, with no time now, as the per-endpoint table
    does (a review found the row dropped)."""
    baseline = Span(400.0, 1000.0)
    seconds = WINDOW.seconds
    per_dependency = q.time_per_request(N, "j", seconds)
    answers = {
        f"{per_dependency}@{WINDOW.end:g}": [_sample(0.3, dependency="db")],
        f"{per_dependency}@{baseline.end:g}": [
            _sample(0.3, dependency="db"),
            _sample(1.6, dependency="ai"),
        ],
        q.outside_dependencies(N, "j", seconds): [_sample(0.2)],
    }
    src = _Source(Canned(answers), c.DEFAULT_NAMESPACE, "j", "svc")
    stats = Stats(count=100.0, errors=0.0, p50=None, p95=None, p99=None)
    deps = (
        Row("db", stats, stats, 1.0, "unchanged"),
        Row("ai", Stats.none(), stats, 0.0, "unchanged"),
    )
    service = _breakdown(src, WINDOW, baseline, (100.0, 100.0), deps)
    assert [(p.name, p.now, p.then) for p in service] == [
        ("db", 0.3, 0.3),
        ("ai", None, 1.6),
        ("other", 0.2, 0.2),
    ]


def test_a_window_that_has_not_ended_says_so() -> None:
    """``--to`` 7 s ahead (accepted up to 60 s, for clocks that differ): a note says its
    last requests are not counted yet (a trial's report read 2-4 % low, verdicts moved)."""
    from limone_obs.report.collect import _unfinished_note  # noqa: PLC0415

    (note,) = _unfinished_note(WINDOW, WINDOW.end - 7.0)
    assert "ends 7 s after this report was made: its last requests are not counted" in note
    assert _unfinished_note(WINDOW, WINDOW.end) == []
