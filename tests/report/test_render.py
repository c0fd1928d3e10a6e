"""limone_obs.report.render: the HTML opens offline, the Markdown reads in a pull request."""

from __future__ import annotations

import html
import math
import os
import re
import stat
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from limone_obs.errors import ReportError
from limone_obs.report import charts
from limone_obs.report.collect import peak_rate_window
from limone_obs.report.model import (
    CARRIED,
    IMPROVEMENT,
    REGRESSION,
    TOO_FEW,
    UNCHANGED,
    Component,
    LatencyStep,
    Report,
    Row,
    SloRow,
    Stats,
    Throughput,
    Timeline,
)
from limone_obs.report.prometheus import Prometheus
from limone_obs.report.render import (
    ESTIMATES_NOTE,
    bucket,
    seconds_change,
    to_html,
    to_markdown,
    write_report,
)
from limone_obs.report.slos import WEIGHTED_NOTE
from limone_obs.report.window import Span
from limone_obs.stack import procs

POINTS = tuple((float(t), 1.0 + t / 10) for t in range(30))
INF = math.inf


def sample(*, timeline: bool = True) -> Report:
    now = Stats(
        count=900,
        errors=90,
        p50=0.3,
        p95=1.9,
        p99=2.5,
        mean=0.6,
        buckets=((0.25, 300), (0.5, 500), (1.0, 700), (1.5, 800), (2.0, 870), (INF, 900)),
    )
    then = Stats(
        count=800,
        errors=0,
        p50=0.2,
        p95=0.9,
        p99=1.2,
        mean=0.3,
        buckets=((0.25, 380), (0.5, 600), (1.0, 780), (INF, 800)),
    )
    series = POINTS if timeline else ()
    return Report(
        prometheus="http://127.0.0.1:9090", job="limoneide", service="limoneide",
        window=Span(1_800_000_000, 1_800_003_600), baseline=Span(1_799_395_200, 1_799_398_800),
        generated=1_800_003_700,
        endpoints=(Row("/projects/<int:project_id>", now, then, 1.0, REGRESSION),),
        dependencies=(Row("ai_api", now, then, 1.0, REGRESSION),),
        breakdown=(Component("ai_api", 1.5, 0.8), Component("other", 0.2, 0.2)),
        slos=(SloRow("availability", 0.999, 0.9, 1.0, -2.0, ("ErrorsHigh (page)",)),),
        steps=(LatencyStep(1.0, 0.6, 0.97),),
        throughput=Throughput(12.0, 10.0, 30.0, 20.0, 8.0, 5.0),
        timeline=Timeline(series, series, series, series, series, series),
    )  # fmt: skip


def test_html_needs_no_network() -> None:
    """Every image is a data URI; no script, stylesheet or image is fetched from anywhere."""
    page = to_html(sample())
    assert 5 == page.count('<figure class="chart"')
    assert [] == re.findall(r'(?:src|href)="(?!data:)', page)
    assert "<script" not in page


def test_missing_series_say_so_instead_of_empty_charts() -> None:
    """Without any point over time, the charts give way to a sentence."""
    page = to_html(sample(timeline=False))
    assert "Requests per second: no data in this window." in page
    assert 2 == page.count('<figure class="chart"')  # the bar charts remain


def test_markdown_tables_name_the_regression() -> None:
    """The Markdown has a table per section with the verdicts and the changes."""
    text = to_markdown(sample())
    assert "| /projects/\\<int:project_id> | 100.0 % | 900 |" in text
    assert "+111 %" in text  # p95 1.9 s against 0.9 s
    assert REGRESSION in text
    assert "ErrorsHigh (page)" in text


@pytest.mark.parametrize(
    ("now", "then", "expected"),
    [
        (1.9, 0.9, "+111 %"),
        (0.111, 0.250, "-56 %"),
        (0.00023, 0.0002, "±0 ms"),  # both "< 1 ms": no percentage of noise
        (0.0, 0.0003, "±0 ms"),
        (0.05, 0.0003, "+50 ms"),  # from under a millisecond: in milliseconds
        (0.0, 0.005, "-5 ms"),
        (None, 0.5, "n/a"),
    ],
)
def test_seconds_change_is_meaningful_at_the_printed_precision(
    now: float | None, then: float | None, expected: str
) -> None:
    """Relative when both print as whole milliseconds or more, else in milliseconds."""
    assert expected == seconds_change(now, then)


def test_breakdown_and_rows_not_compared_show_no_change() -> None:
    """A part whose windows are too few to compare says so instead of a change; a row
    that is too few to compare shows no p95 change (its verdict says why)."""
    few = Row("/search", Stats(10, 0, 0.1, 0.2, 0.3, 0.15), Stats(12, 0, 0.1, 0.4, 0.5, 0.3),
              1.0, TOO_FEW)  # fmt: skip
    report = replace(
        sample(),
        endpoints=(few,),
        breakdown=(Component("ai_api", 0.111, 0.250, TOO_FEW), Component("other", 0.0003, 0.0002)),
    )
    lines = to_markdown(report).splitlines()
    assert f"| ai_api | 111 ms | 250 ms | {TOO_FEW} |" in lines
    assert "| other | < 1 ms | < 1 ms | ±0 ms |" in lines
    cells = "| 150 ms | 300 ms | - | 100 ms | 200 ms | 300 ms | 400 ms | - | 0.00 % | 0.00 % |"
    assert f"| /search | 100.0 % | 10 {cells} {TOO_FEW} |" in lines
    # The summary counts it in words ("1 too few to compare" read as garbled).
    summary = next(line for line in lines if line.startswith("- Endpoints and dependencies: "))
    assert "1 with too few requests to compare in the window or the baseline" in summary, summary


@pytest.mark.parametrize(
    ("now", "then", "where"),
    [
        (500, 0, "in the baseline"),
        (10, 500, "in the window"),
        (10, 0, "in the window or the baseline"),
    ],
)
def test_the_summary_says_which_window_holds_too_few_requests(
    now: int, then: int, where: str
) -> None:
    """An empty baseline (a Prometheus younger than --baseline) with a busy window was
    summed up as "too few requests to compare", read as a quiet window."""
    row = Row("/pay", Stats(now, 0, 0.1, 0.2, 0.3, 0.15), Stats(then, 0, 0.1, 0.2, 0.3, 0.15),
              1.0, TOO_FEW)  # fmt: skip
    lines = to_markdown(replace(sample(), endpoints=(row,), dependencies=())).splitlines()
    summary = next(line for line in lines if line.startswith("- Endpoints and dependencies: "))
    assert f"1 with too few requests to compare {where}." in summary, summary


def test_the_summary_names_the_rows_that_regressed_or_improved() -> None:
    """The count "2 regressed" alone sent a trial's reader hunting through the tables: the summary
    names the endpoints and dependencies of a regression or an improvement."""
    base = sample()
    worse = replace(base.endpoints[0], name="/ai/complete", verdict=REGRESSION)
    better = replace(base.endpoints[0], name="/search", verdict=IMPROVEMENT)
    same = replace(base.endpoints[0], name="/health", verdict=UNCHANGED)
    slow = replace(base.endpoints[0], name="ai_api", verdict=REGRESSION)
    report = replace(base, endpoints=(worse, better, same), dependencies=(slow,))
    summary = next(line for line in to_markdown(report).splitlines()
                   if line.startswith("- Endpoints and dependencies: "))  # fmt: skip
    assert (
        "- Endpoints and dependencies: 1 improved (endpoint /search), 2 regressed (endpoint "
        "/ai/complete, dependency ai_api), 1 unchanged."
    ) == summary


def test_exact_mean_and_estimated_percentiles_are_told_apart() -> None:
    """Each row has the exact mean, its baseline and change; every percentile cell names
    the bucket it was interpolated in (a p99 above the last finite bound says so); both
    formats say the percentiles are estimates."""
    text = to_markdown(sample())
    cells = (
        "| 600 ms | 300 ms | +100 % | 300 ms (250-500 ms) | 1.90 s (1.5-2 s) | 2.50 s (> 2 s) "
        "| 900 ms (0.5-1 s) |"
    )
    assert f"| /projects/\\<int:project_id> | 100.0 % | 900 {cells}" in text
    assert 2 == text.count(ESTIMATES_NOTE)
    assert 2 == to_html(sample()).count(f'<p class="note">{html.escape(ESTIMATES_NOTE)}</p>')


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ((1.0, 1.5), "1-1.5 s"),
        ((0.1, 0.25), "100-250 ms"),
        ((0.0, 0.005), "0-5 ms"),
        ((0.75, 1.0), "0.75-1 s"),
        ((30.0, INF), "> 30 s"),
        ((0.5, INF), "> 500 ms"),
        (None, ""),
    ],
)
def test_bucket_labels(bounds: tuple[float, float] | None, expected: str) -> None:
    """Bucket bounds in the unit of the upper bound; above the last bound: ``> bound``."""
    assert expected == bucket(bounds)


def test_slo_table_says_why_instead_of_n_a() -> None:
    """Missing numbers read as their reason, an SLI read otherwise than request-weighted
    says how, and the notes under the table explain both kinds of SLI."""
    rows = (
        SloRow("errors", 0.99, 0.985, 1.0, None, ("ErrorsHigh (page)",), "lowest 5m",
               {"budget_left": "no budget (threshold SLO)"}, "errors: lowest 5m note."),
        SloRow("up", None, 1.0, 1.0, None, (), "mean over time",
               {"objective": "none (up SLO)", "budget_left": "no budget (up SLO)"}),
    )  # fmt: skip
    text = to_markdown(replace(sample(), slos=rows))
    assert ("| errors | 99.00 % | 98.500 % (lowest 5m) | 100.000 % (lowest 5m) | "
            "no budget (threshold SLO) | ErrorsHigh (page) |") in text  # fmt: skip
    assert ("| up | none (up SLO) | 100.000 % (mean over time) | 100.000 % (mean over time) | "
            "no budget (up SLO) | none |") in text  # fmt: skip
    assert "errors: lowest 5m note." in text
    assert WEIGHTED_NOTE in text


def test_peak_rate_names_its_rate_window() -> None:
    """The peak rate row says which rate it is: a minute's, or the short window's own."""
    assert "| peak requests per second (1 m rate) | 30.00 | 20.00 |" in to_markdown(sample())
    short = replace(sample(), throughput=Throughput(12.0, 10.0, 30.0, 20.0, 8.0, 5.0, 45))
    assert "| peak requests per second (45 s rate) | 30.00 |" in to_markdown(short)


@pytest.mark.parametrize(
    ("span", "scrape", "expected"),
    [(3600, 15.0, 60), (45, 1.0, 45), (45, 15.0, 60), (3600, 60.0, 240), (10, 5.0, 20)],
)
def test_peak_rate_window_fits_the_report_window(span: int, scrape: float, expected: int) -> None:
    """A minute, no longer than the window (else idle time before it dilutes the peak),
    never under four scrapes."""
    assert expected == peak_rate_window(span, scrape)


def test_write_into_a_file_path_fails_cleanly(tmp_path: Path) -> None:
    """A prefix under a regular file (not a folder) is a ReportError naming that file (it
    said "File exists"); nothing is left over."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ReportError, match=f"cannot write the report.*: {blocker} is a file, not"):
        write_report(sample(), blocker / "deeper" / "review")
    assert [blocker] == list(tmp_path.iterdir())


def test_files_are_written_whole(tmp_path: Path) -> None:
    """Both files appear complete, with no temporary file beside them."""
    html_path, md_path = write_report(sample(), tmp_path / "out" / "review")
    assert html_path.read_text().endswith("</html>\n")
    assert md_path.read_text().startswith("## Performance review: limoneide")
    assert ["review.html", "review.md"] == sorted(p.name for p in (tmp_path / "out").iterdir())


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002], ids=oct)
def test_files_get_the_usual_mode(tmp_path: Path, umask: int) -> None:
    """Both files are 0666 minus the umask, like any file a tool writes (a report is
    shared in a pull request), not mkstemp's 0600; a replaced report too."""
    previous = os.umask(umask)
    try:
        write_report(sample(), tmp_path / "review")
        paths = write_report(sample(), tmp_path / "review")  # replaces both
    finally:
        os.umask(previous)
    assert [0o666 & ~umask] * 2 == [stat.S_IMODE(p.stat().st_mode) for p in paths]


def test_prometheus_down_is_a_clear_error() -> None:
    """A closed port is a ReportError naming the URL and the --prometheus option."""
    url = f"http://{procs.LOOPBACK}:{procs.free_port()}"
    with pytest.raises(ReportError, match=r"cannot reach Prometheus at .*--prometheus"):
        Prometheus(url, timeout=5).instant("up", 0)


def test_html_without_matplotlib_says_so_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without matplotlib the page has every table, no figure, and one sentence naming
    the install command where the charts over time go."""
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)
    page = to_html(sample())
    assert "<figure" not in page
    assert 1 == page.count("pip install matplotlib (the &#x27;report&#x27; extra of limone-obs)")
    assert 6 == page.count("<table>")


def test_p95_chart_draws_the_specs_roadmap(monkeypatch: pytest.MonkeyPatch) -> None:
    """The p95 chart's lines are the latency SLO's committed threshold and its next
    stages, labelled so, not fixed 1 s / 0.6 s lines."""
    drawn: dict[str, object] = {}

    def record(title: str, *args: object, **kwargs: object) -> str:
        drawn[title] = kwargs.get("limits")
        return "data:image/svg+xml;base64,"

    monkeypatch.setattr(charts, "line_chart", record)
    steps = (LatencyStep(2.5, 0.99, 0.98), LatencyStep(1.0, 0.6, 0.5), LatencyStep(0.6, 0.1, 0.1))
    to_html(replace(sample(), steps=steps, roadmap_slo="latency"))
    assert (
        (2.5, "2.50 s: latency SLO threshold"),
        (1.0, "1.00 s: next stage"),
        (0.6, "600 ms: next stage"),
    ) == drawn["p95 latency (all requests)"]


def test_5xx_chart_draws_the_reports_error_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 5xx chart's lines are the report's error limits (the spec's SLOs on the 5xx
    share), not a fixed 1 % line."""
    drawn: dict[str, object] = {}

    def record(title: str, *args: object, **kwargs: object) -> str:
        drawn[title] = kwargs.get("limits")
        return "data:image/svg+xml;base64,"

    monkeypatch.setattr(charts, "line_chart", record)
    limits = ((0.005, "0.5 %: availability SLO"),)
    to_html(replace(sample(), error_limits=limits))
    assert limits == drawn["5xx ratio"]


def test_the_roadmap_section_names_its_slo_and_scope() -> None:
    """The roadmap's title names the SLO it comes from, its column the requests counted;
    without an SLO it says the roadmap is the default one."""
    scoped = replace(sample(), roadmap_slo="orders-latency", roadmap_scope='endpoint=~"/o/.*"')
    text = to_markdown(scoped)
    assert "### Latency roadmap of SLO orders-latency (its threshold" in text
    assert '| served within | share of requests (endpoint=~"/o/.\\*") | baseline |' in text
    assert "### Latency roadmap (the default: no request latency SLO given)" in to_markdown(
        replace(sample(), roadmap_slo=None)
    )


def test_the_p95_chart_names_the_requests_it_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    """The p95 chart draws the roadmap SLO's thresholds over that SLO's requests: its
    title names them; without a scope, all requests."""
    titles: list[str] = []

    def record(title: str, *args: object, **kwargs: object) -> str:
        titles.append(title)
        return "data:image/svg+xml;base64,"

    monkeypatch.setattr(charts, "line_chart", record)
    to_html(replace(sample(), roadmap_slo="orders-latency", roadmap_scope='endpoint=~"/o/.*"'))
    to_html(sample())
    p95 = [title for title in titles if title.startswith("p95")]
    assert ['p95 latency of requests (endpoint=~"/o/.*")', "p95 latency (all requests)"] == p95


def test_the_summary_names_the_slos_below_objective_and_the_pages() -> None:
    """A postmortem opens with the SLOs the window missed and the pages that fired (a
    trial's summary had only endpoint verdicts); held-back pages are not named, and pages
    firing since before the window are named apart (a trial's calm window listed them)."""
    slos = (
        SloRow("availability", 0.999, 0.8774, 1.0, -6.6,
               ("AvailabilityErrorBudgetBurn (page)", "AvailabilityErrorBudgetBurn (ticket)")),
        SloRow("errors", 0.99, 0.995, 1.0, None, ("ErrorsHigh (page, inhibited)",)),
        SloRow("ai-latency", 0.99, 0.995, 1.0, None,
               (f"AiLatencyErrorBudgetBurn (page, {CARRIED})",)),
        SloRow("latency", 0.9995, 0.99, None, None, ()),
        SloRow("up", None, 1.0, 1.0, None, ()),
    )  # fmt: skip
    lines = to_markdown(replace(sample(), slos=slos)).splitlines()
    assert (
        "- SLOs below their objective in the window: availability 87.74 % (objective "
        "99.9 %), latency 99.00 % (objective 99.95 %)."
    ) in lines
    assert "- Pages fired: AvailabilityErrorBudgetBurn." in lines
    assert "- Pages firing since before the window: AiLatencyErrorBudgetBurn." in lines


@pytest.mark.parametrize(
    ("span", "offset", "expected"),
    [
        (300.0, 90.0, "08:01:30"),  # a short window: to the second
        (3600.0, 90.0, "08:01"),
        (7 * 86400.0, 86400.0 + 90.0, "16 Jan 08:01"),  # beyond two days: the day too
    ],
)
def test_chart_times_are_utc_clock_times(span: float, offset: float, expected: str) -> None:
    """The line charts' x axis reads UTC clock times of the window (matched with deploys,
    alerts and logs by time), not seconds since the window's start."""
    start = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
    assert expected == charts.clock_labels(start, span)(offset, 0)


def test_every_line_chart_gets_the_windows_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each line chart is given the window's start and length (its x axis's clock)."""
    clocks: dict[str, tuple[object, object]] = {}

    def record(title: str, *args: object, **kwargs: object) -> str:
        clocks[title] = (kwargs.get("start"), kwargs.get("span"))
        return "data:image/svg+xml;base64,"

    monkeypatch.setattr(charts, "line_chart", record)
    to_html(sample())
    assert 3 == len(clocks)
    assert {(1_800_000_000, 3600)} == set(clocks.values())


@pytest.mark.parametrize(
    ("start", "span", "expected"),
    [
        (1_800_000_000.0, 3600.0, [0.0, 600.0, 1200.0, 1800.0, 2400.0, 3000.0, 3600.0]),
        (1_800_000_007.0, 300.0, [53.0, 113.0, 173.0, 233.0, 293.0]),  # on whole minutes
        (1_800_000_000.0, 20.0, [0.0, 10.0, 20.0]),
    ],
)
def test_chart_ticks_fall_on_round_clock_times(
    start: float, span: float, expected: list[float]
) -> None:
    """Ticks sit on whole steps of the clock (08:10, 08:20), not on whole steps from the
    window's start, at most 8 of them."""
    assert expected == charts.clock_ticks(start, span)
    assert len(charts.clock_ticks(start, 7 * 86400.0)) <= 8


def test_markdown_renders_url_rules_and_regexes_as_written() -> None:
    """Rendered by a CommonMark parser (tables on, as GitHub's), every URL rule, regex and
    "< 1 ms" reads as written: ``<int:project_id>`` was an autolink, ``<id>`` a hidden
    HTML tag, ``.*`` the start of an emphasis (a trial's pull request lost them)."""
    from markdown_it import MarkdownIt  # noqa: PLC0415 - a test dependency only here

    rules = ("/projects/<int:project_id>", "/users/<id>")
    rows = tuple(replace(sample().endpoints[0], name=name) for name in rules)
    report = replace(sample(), endpoints=rows, roadmap_slo="orders", roadmap_scope='e=~"/o/.*x*"',
                     breakdown=(Component("other", 0.0003, 0.0002),))  # fmt: skip
    rendered = MarkdownIt("commonmark").enable("table").render(to_markdown(report))
    text = html.unescape(re.sub(r"<[^>]+>", "", rendered))  # the text a reader sees
    for written in (*rules, 'e=~"/o/.*x*"', "< 1 ms"):
        assert written in text, written
    assert "<a href" not in rendered
