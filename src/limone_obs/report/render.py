"""Turn a :class:`~.model.Report` into one self-contained HTML file and a Markdown summary."""

from __future__ import annotations

import errno
import html
import math
import os
import re
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final, NamedTuple

from limone_obs import conventions as c
from limone_obs.errors import ReportError
from limone_obs.report import charts
from limone_obs.report.model import (
    CARRIED,
    COMPARED,
    IMPROVEMENT,
    MIN_COUNT,
    REGRESSION,
    TOO_FEW,
    UNCHANGED,
    Report,
    Row,
    SloRow,
    Stats,
)
from limone_obs.report.slos import WEIGHTED_NOTE

_CSS: Final = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:84rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}
th,td{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right}
td{white-space:nowrap}.wide{overflow-x:auto}
th:first-child,td:first-child{text-align:left}
.regression{color:#b00020;font-weight:600}.improvement{color:#137333;font-weight:600}
.meta{color:#555}.empty{color:#555;font-style:italic}.note{color:#555;font-size:.85rem}
figure.chart{margin:1rem 0}figure.chart img{width:100%;max-width:800px;height:auto}
"""


#: Durations below this print as ``< 1 ms`` (whole milliseconds below a second).
_UNDER_A_MS: Final = 0.0005


def seconds(value: float | None) -> str:
    """``0.0123`` -> ``12 ms``, ``1.5`` -> ``1.50 s``, ``0.0002`` -> ``< 1 ms``, ``0`` ->
    ``0 ms``, None -> ``n/a``."""
    if value is None:
        return "n/a"
    if 0 < value < _UNDER_A_MS:
        return "< 1 ms"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def percent(value: float | None, digits: int = 2) -> str:
    """``0.99912`` -> ``99.91 %``; None -> ``n/a``."""
    return "n/a" if value is None else f"{value * 100:.{digits}f} %"


def seconds_change(now: float | None, then: float | None) -> str:
    """The change between two durations, meaningful at the precision they print with:
    relative (``+12 %``) when both print as 1 ms or more, else in whole milliseconds
    (``+3 ms``, ``±0 ms``), since a percentage of values under a millisecond (two
    ``< 1 ms``, or ``0 ms`` and ``< 1 ms``) is noise; ``n/a`` when either is unknown."""
    if now is None or then is None:
        return "n/a"
    if min(now, then) < _UNDER_A_MS:
        diff = round((now - then) * 1000)
        return f"{diff:+d} ms" if diff else "±0 ms"
    return f"{(now - then) / then * 100:+.0f} %"


def number(value: float | None, digits: int = 1) -> str:
    """A plain number, or ``n/a``."""
    return "n/a" if value is None else f"{value:,.{digits}f}"


#: A change not shown because the verdict says why the windows are not compared.
NOT_COMPARED: Final = "-"


def bucket(bounds: tuple[float, float] | None) -> str:
    """A histogram bucket ``(lower, upper]`` as ``1-1.5 s``, ``100-250 ms`` or ``> 30 s``."""
    if bounds is None:
        return ""
    lower, upper = bounds
    if math.isinf(upper):
        return f"> {lower:g} s" if lower >= 1 else f"> {lower * 1000:g} ms"
    if upper < 1:
        return f"{lower * 1000:g}-{upper * 1000:g} ms"
    return f"{lower:g}-{upper:g} s"


def _estimate(stats: Stats | None, q: float) -> str:
    """The ``q`` quantile (0.5, 0.95 or 0.99) with the bucket it was interpolated in:
    ``1.48 s (1-1.5 s)``. The bucket tells a p99 of 4.11 s with no request above 3.07 s
    (``3-5 s``: the interpolation's guess) from a measured one."""
    value = None if stats is None else {0.5: stats.p50, 0.95: stats.p95, 0.99: stats.p99}[q]
    if stats is None or value is None:
        return seconds(None)
    where = bucket(stats.bucket_of(q))
    return f"{seconds(value)} ({where})" if where else seconds(value)


def _row_cells(row: Row) -> list[str]:
    now, then = row.now, row.then
    compared = row.verdict in COMPARED  # else the verdict says why there is no change

    def moved(a: float | None, b: float | None) -> str:
        return seconds_change(a, b) if compared else NOT_COMPARED

    return [
        row.name, percent(row.share, 1), number(now.count, 0),
        seconds(now.mean), seconds(then.mean if then else None),
        moved(now.mean, then.mean if then else None),
        _estimate(now, 0.5), _estimate(now, 0.95), _estimate(now, 0.99), _estimate(then, 0.95),
        moved(now.p95, then.p95 if then else None),
        percent(now.error_ratio), percent(then.error_ratio if then else None), row.verdict,
    ]  # fmt: skip


ROW_HEADER: Final = (
    "name", "share of requests", "count", "mean", "mean baseline", "mean change", "p50",
    "p95", "p99", "p95 baseline", "p95 change", "errors", "errors baseline", "verdict",
)  # fmt: skip
#: The dependency table's: its share is of the time in calls, its count of calls.
DEPENDENCY_HEADER: Final = ("name", "share of time", "calls", *ROW_HEADER[3:])
#: Under the endpoint and dependency tables: which numbers are exact and which estimated.
ESTIMATES_NOTE: Final = (
    "The mean is exact: the histogram's sum over its count. p50, p95 and p99 are "
    "estimates: histogram_quantile interpolates inside the histogram's bucket that holds "
    "each (in brackets), and the true value can be anywhere in it. A "
    "change within one bucket can leave them unchanged; the verdict reads the mean too. "
    "Counts are Prometheus's increase() over the window, extrapolated to its edges: they "
    "can differ from the exact number by a few (read them as rates), and requests a "
    "process served after its last scrape before it stopped are in none."
)


#: Under the per-endpoint time table.
ENDPOINT_BREAKDOWN_NOTE: Final = (
    "Exact means over all of the endpoint's requests: the time of its own calls of each "
    'dependency, and "other" (the app\'s code, waits in no tracked call), never below 0: '
    "calls made at once (two AI calls in parallel) can add up to more than the request."
)


#: Under the calls-per-request table.
CALLS_NOTE: Final = (
    "Exact means: each dependency's calls in the endpoint's requests (track(), template "
    "renders, track_sqlalchemy's statements), over all of its requests (those that made no "
    "such call count as 0)."
)


def _calls_change(now: float | None, then: float | None) -> str:
    """``+1.00`` / ``-0.50`` calls per request, ``±0`` for none, ``n/a`` without both."""
    if now is None or then is None:
        return "n/a"
    change = now - then
    return "±0" if abs(change) < 0.005 else f"{change:+.2f}"


def _slo_cells(row: SloRow) -> list[str]:
    """Numbers, or why each is missing; an SLI not request-weighted says how it was read."""

    def shown(name: str, value: float | None, digits: int) -> str:
        if value is None:
            return row.why.get(name, "n/a")
        text = percent(value, digits)
        return f"{text} ({row.basis})" if row.basis and name.startswith("sli") else text

    return [
        row.name, shown("objective", row.objective, 2), shown("sli_now", row.sli_now, 3),
        shown("sli_then", row.sli_then, 3), shown("budget_left", row.budget_left, 1),
        ", ".join(row.fired) or "none",
    ]  # fmt: skip


class Table(NamedTuple):
    """A table of the report: header, rows of cells, and sentences printed under it."""

    header: Sequence[str]
    rows: list[list[str]]
    notes: Sequence[str] = ()


def _tables(report: Report) -> dict[str, Table]:
    slo_header = ("SLO", "objective", "SLI", "SLI baseline", "budget left", "alerts fired")
    return {
        "endpoints": Table(
            ROW_HEADER, [_row_cells(r) for r in report.endpoints], (ESTIMATES_NOTE,)
        ),
        "dependencies": Table(
            DEPENDENCY_HEADER, [_row_cells(r) for r in report.dependencies], (ESTIMATES_NOTE,)
        ),
        "breakdown": Table(
            ("part of a request", "time per request", "baseline", "change"),
            [[p.name, seconds(p.now), seconds(p.then),
              p.not_compared or seconds_change(p.now, p.then)]
             for p in report.breakdown],
        ),
        "endpoint_breakdown": Table(
            ("endpoint and part", "time per request", "baseline", "change"),
            [[p.name, seconds(p.now), seconds(p.then),
              p.not_compared or seconds_change(p.now, p.then)]
             for p in report.endpoint_breakdown],
            (ENDPOINT_BREAKDOWN_NOTE,),
        ),
        "calls": Table(
            ("endpoint and dependency", "calls per request", "baseline", "change"),
            [[p.name, number(p.now, 2), number(p.then, 2),
              p.not_compared or _calls_change(p.now, p.then)]
             for p in report.calls],
            (CALLS_NOTE,),
        ),
        "slos": Table(
            slo_header, [_slo_cells(s) for s in report.slos],
            (WEIGHTED_NOTE, *(s.note for s in report.slos if s.note)) if report.slos else (),
        ),
        "steps": Table(
            ("served within", f"share of {_requests(report)}", "baseline"),
            [[seconds(s.threshold), percent(s.share_now, 1), percent(s.share_then, 1)]
             for s in report.steps],
        ),
        "throughput": Table(("measure", "window", "baseline"), _throughput_rows(report)),
    }  # fmt: skip


def _rate_window(seconds: int) -> str:
    """``1 m`` for whole minutes, else ``45 s``."""
    return f"{seconds // 60} m" if seconds % 60 == 0 else f"{seconds} s"


def _throughput_rows(report: Report) -> list[list[str]]:
    t = report.throughput
    reached = (
        ", ".join(f"{s:.0f} req/s" for s in t.steps_reached()) or "none of 100 / 500 / 1000 req/s"
    )
    peak = f"peak requests per second ({_rate_window(t.peak_window)} rate)"
    return [
        ["average requests per second", number(t.avg_now, 2), number(t.avg_then, 2)],
        [peak, number(t.peak_now, 2), number(t.peak_then, 2)],
        # A scrape the app's workers serve waits, like a request, for a free one: a pool of
        # sync workers shows at most all but one of them busy (not so on a metrics port).
        [
            "peak requests in flight (seen by scrapes, which the app's workers serve: "
            "they wait for a free one)",
            number(t.in_flight_now, 0),
            number(t.in_flight_then, 0),
        ],
        ["throughput steps reached", reached, ""],
    ]


# --- HTML -----------------------------------------------------------------------------

TITLES: Final = {
    "endpoints": "Endpoints", "dependencies": "Dependencies",
    "breakdown": "Where a request's time goes",
    "endpoint_breakdown": "Where each endpoint's time goes",
    "calls": "Calls per request (each endpoint's calls of each dependency)", "slos": "SLOs",
    "steps": "Latency roadmap (the SLO's committed threshold, then its next stages)",
    "throughput": "Throughput and concurrency",
}  # fmt: skip


def _html_table(table: Table) -> str:
    if not table.rows:
        return '<p class="empty">No data in this window.</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(_td(cell) for cell in row) + "</tr>" for row in table.rows)
    notes = "".join(f'<p class="note">{html.escape(note)}</p>' for note in table.notes)
    # Cells stay on one line ("1.48 s (1-1.5 s)"); a wide table scrolls on its own.
    table_html = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="wide">{table_html}</div>{notes}'


def _td(cell: str) -> str:
    # Verdict cells carry their verdict as a class, so regressions stand out in red.
    css = f' class="{cell}"' if cell in {REGRESSION, IMPROVEMENT} else ""
    return f"<td{css}>{html.escape(cell)}</td>"


def _figure(name: str, title: str, uri: str | None) -> str:
    if uri is None:
        return f'<p class="empty">{html.escape(title)}: no data in this window.</p>'
    return (
        f'<figure class="chart" data-chart="{name}"><img alt="{html.escape(title)}" '
        f'src="{uri}"></figure>'
    )


def _titles(report: Report) -> dict[str, str]:
    """The sections' titles; the latency roadmap's names the SLO it comes from."""
    if report.roadmap_slo is None:
        return {**TITLES, "steps": "Latency roadmap (the default: no request latency SLO given)"}
    steps = f"Latency roadmap of SLO {report.roadmap_slo} (its threshold, then its next stages)"
    return {**TITLES, "steps": steps}


def _requests(report: Report) -> str:
    """``requests``, or the requests the roadmap's SLO counts: ``requests (endpoint=~...)``."""
    return f"requests ({report.roadmap_scope})" if report.roadmap_scope else "requests"


def _p95_title(report: Report) -> str:
    """The p95 chart's title: of the requests the roadmap's SLO counts, whose thresholds
    it draws (``p95 latency of requests (endpoint=~...)``), else of all requests."""
    if report.roadmap_scope:
        return f"p95 latency of {_requests(report)}"
    return "p95 latency (all requests)"


def latency_limits(report: Report) -> tuple[tuple[float, str], ...]:
    """The p95 chart's lines: the latency roadmap of the report (the spec's latency SLO's
    committed threshold, then its next stages; the seed's roadmap without one)."""
    if not report.steps:
        return ()
    first, *stages = (step.threshold for step in report.steps)
    owner = f"{report.roadmap_slo} SLO threshold" if report.roadmap_slo else "default roadmap"
    return (
        (first, f"{seconds(first)}: {owner}"),
        *((t, f"{seconds(t)}: next stage") for t in stages),
    )


def _charts(report: Report) -> dict[str, str]:
    tl = report.timeline
    eps = report.endpoints[:8]
    parts = report.breakdown
    has_then = report.baseline is not None
    start, span = report.window.start, report.window.seconds  # the x axis's clock times
    return {
        "rate": _figure("rate", "Requests per second", charts.line_chart(
            "Requests per second", "req/s", tl.rate_now, tl.rate_then,
            start=start, span=span)),
        "p95": _figure("p95", "p95 latency", charts.line_chart(
            _p95_title(report), "seconds", tl.p95_now, tl.p95_then,
            limits=latency_limits(report), start=start, span=span)),
        "errors": _figure("errors", "5xx ratio", charts.line_chart(
            "5xx ratio", "%", tl.errors_now, tl.errors_then, limits=report.error_limits,
            scale=100.0, start=start, span=span)),
        "endpoints": _figure("endpoints", "p95 per endpoint", charts.bar_chart(
            "p95 per endpoint", "seconds", [r.name for r in eps], [r.now.p95 or 0 for r in eps],
            [(r.then.p95 or 0) if r.then else 0 for r in eps] if has_then else None)),
        "breakdown": _figure("breakdown", "Time per request", charts.bar_chart(
            "Where a request's time goes (seconds per request)", "seconds",
            [p.name for p in parts], [p.now or 0 for p in parts],
            [p.then or 0 for p in parts] if has_then else None)),
    }  # fmt: skip


#: How the summary counts rows of each verdict ("2 regressed, 6 with too few requests").
_SUMMARY_WORDS = {
    REGRESSION: "regressed",
    IMPROVEMENT: "improved",
    UNCHANGED: "unchanged",
    TOO_FEW: "with too few requests to compare",
}


#: The verdicts whose rows the summary names (a postmortem reads which, not how many).
_NAMED_VERDICTS: Final = (REGRESSION, IMPROVEMENT)


def _named(report: Report, verdict: str) -> str:
    """`` (endpoint /a, dependency db)``: the rows of a regression or an improvement."""
    if verdict not in _NAMED_VERDICTS:
        return ""
    names = [f"endpoint {r.name}" for r in report.endpoints if r.verdict == verdict]
    names += [f"dependency {r.name}" for r in report.dependencies if r.verdict == verdict]
    return f" ({', '.join(names)})"


def _too_few_where(report: Report) -> str:
    """`` in the baseline`` (or the window, or both) of the rows too few to compare: an
    empty baseline (a Prometheus younger than --baseline) is not a quiet window."""
    rows = [r for r in (*report.endpoints, *report.dependencies) if r.verdict == TOO_FEW]
    window = any(r.now.count < MIN_COUNT for r in rows)
    baseline = any(r.then is not None and r.then.count < MIN_COUNT for r in rows)
    if window and baseline:
        return " in the window or the baseline"
    return " in the baseline" if baseline else " in the window"


def _slo_summary(report: Report) -> list[str]:
    """The SLOs whose SLI over the window is below their objective, and the pages that
    fired (not those held back): what a postmortem opens with."""
    missed = [
        f"{row.name} {percent(row.sli_now)} (objective {row.objective * 100:.10g} %)"
        for row in report.slos
        if row.sli_now is not None and row.objective is not None and row.sli_now < row.objective
    ]
    # "AlertName (page)": a delivered page; "(page, inhibited)" ones were held back;
    # "(page, firing at the window's start)" ones began before the window.
    paged, carried = f" ({c.SEVERITY_PAGE})", f" ({c.SEVERITY_PAGE}, {CARRIED})"
    fired = [text for row in report.slos for text in row.fired]
    pages = sorted({text.removesuffix(paged) for text in fired if text.endswith(paged)})
    before = sorted({text.removesuffix(carried) for text in fired if text.endswith(carried)})
    lines = [f"SLOs below their objective in the window: {', '.join(missed)}."] if missed else []
    lines += [f"Pages fired: {', '.join(pages)}."] if pages else []
    return lines + (
        [f"Pages firing since before the window: {', '.join(before)}."] if before else []
    )


def _summary(report: Report) -> list[str]:
    verdicts = report.verdicts()
    if report.baseline is None:
        rows = sum(verdicts.values())
        lines = [f"Endpoints and dependencies: {rows}, without a baseline to compare with."]
    else:
        counted = [
            f"{count} {_SUMMARY_WORDS.get(verdict, verdict)}{_named(report, verdict)}"
            + (_too_few_where(report) if verdict == TOO_FEW else "")
            for verdict, count in sorted(verdicts.items())
        ]
        lines = [f"Endpoints and dependencies: {', '.join(counted) or 'none'}."]
    lines += _slo_summary(report)
    for step in report.steps:
        lines.append(
            f"{percent(step.share_now, 1)} of {_requests(report)} within "
            f"{seconds(step.threshold)}"
            + (f" (baseline {percent(step.share_then, 1)})" if report.baseline else "")
            + "."
        )
    return [*lines, *report.notes]


_NO_CHARTS: Final = (
    '<p class="empty">No charts: matplotlib is not installed '
    f"({html.escape(charts.INSTALL_HINT)}). The tables below are complete.</p>"
)


def to_html(report: Report) -> str:
    """The whole report as one HTML document with its charts embedded (without charts,
    saying so, when matplotlib is not installed)."""
    drawn = charts.available()
    # Without matplotlib: no figure anywhere, one sentence where the charts over time go.
    tables, figures = _tables(report), _charts(report) if drawn else {}
    baseline = report.baseline.label() if report.baseline else "none"
    meta = (
        f"Window {report.window.label()} &middot; baseline {html.escape(baseline)} &middot; "
        f"job {html.escape(report.job)} &middot; Prometheus {html.escape(report.prometheus)} "
        f"&middot; made {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(report.generated))}"
    )
    summary = "".join(f"<li>{html.escape(line)}</li>" for line in _summary(report))
    body = [
        f"<h1>Performance review: {html.escape(report.service)}</h1>",
        f'<p class="meta">{meta}</p>',
        f'<section id="summary"><h2>Summary</h2><ul>{summary}</ul></section>',
        '<section id="timeline"><h2>Over time</h2>'
        + (figures["rate"] + figures["p95"] + figures["errors"] if drawn else _NO_CHARTS)
        + "</section>",
    ]
    for key, title in _titles(report).items():
        content = _html_table(tables[key]) + figures.get(key, "")
        body.append(f'<section id="{key}"><h2>{html.escape(title)}</h2>{content}</section>')
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Performance review: {html.escape(report.service)}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


# --- Markdown ---------------------------------------------------------------------------


def _md_text(text: str) -> str:
    """``text`` as Markdown shows it: a URL rule's ``<int:id>`` would be an autolink, a
    ``<name>`` an HTML tag (hidden), a regex's ``.*`` start an emphasis: those ``<`` and
    every ``*`` (and ``\\``) are backslash-escaped; ``< 1 ms`` stays as it is."""
    return _MD_SPECIAL.sub(r"\\\g<0>", text)


#: What CommonMark would read as markup in the report's text (see :func:`_md_text`).
_MD_SPECIAL: Final = re.compile(r"[\\*]|<(?=[A-Za-z/!?])")


def _md_cell(text: str) -> str:
    return _md_text(text).replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> str:
    if not table.rows:
        return "_No data in this window._\n"
    lines = ["| " + " | ".join(map(_md_cell, table.header)) + " |",
             "|" + "---|" * len(table.header)]  # fmt: skip
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    lines += [f"\n{_md_text(note)}" for note in table.notes]
    return "\n".join(lines) + "\n"


def to_markdown(report: Report) -> str:
    """A Markdown summary for a pull request or chat (no charts; the HTML has them)."""
    tables = _tables(report)
    baseline = report.baseline.label() if report.baseline else "none"
    out = [
        f"## Performance review: {_md_text(report.service)}\n",
        f"Window {report.window.label()}; baseline {baseline}; job `{report.job}`.\n",
        *(f"- {_md_text(line)}" for line in _summary(report)),
        "",
    ]
    for key, title in _titles(report).items():
        out += [f"### {_md_text(title)}\n", _md_table(tables[key])]
    return "\n".join(out)


#: Attempts at a free temporary name next to a report file (random names: one is plenty).
_TEMP_ATTEMPTS: Final = 3


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, empty file beside ``path``, opened for writing, with the mode a plain
    ``open(path, "w")`` gives: 0666 minus the umask (the kernel applies it).
    ``tempfile.mkstemp`` makes 0600 files, meant for secrets; a report is meant to be shared."""
    for _ in range(_TEMP_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename: no reader sees half a file, and a
    failure leaves neither a partial report nor a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_report(report: Report, prefix: Path) -> tuple[Path, Path]:
    """Write ``<prefix>.html`` and ``<prefix>.md`` (each whole or not at all); return both."""
    html_path, md_path = prefix.with_suffix(".html"), prefix.with_suffix(".md")
    blocked = next((p for p in prefix.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:  # mkdir would say "File exists", naming nothing
        raise ReportError(
            f"cannot write the report to {prefix}.*: {blocked} is a file, not a folder"
        )
    try:
        html_text, md_text = to_html(report), to_markdown(report)
        _write_atomic(html_path, html_text)
        _write_atomic(md_path, md_text)
    except OSError as exc:
        raise ReportError(f"cannot write the report to {prefix}.*: {exc.strerror or exc}") from None
    return html_path, md_path
