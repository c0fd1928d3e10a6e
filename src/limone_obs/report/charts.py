"""The report's charts, drawn by matplotlib into SVG data URIs (the HTML opens offline).

matplotlib's object API (``Figure``) is used instead of ``pyplot``: no global state, no
GUI backend, safe in a server thread. A chart without data is not drawn: the caller
shows a sentence instead of an empty frame. matplotlib is optional (the ``report`` extra):
without it :func:`available` is False and the report is written without charts.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from limone_obs.errors import ReportError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Points = Sequence[tuple[float, float]]

NOW_COLOUR: Final = "#1f77b4"
THEN_COLOUR: Final = "#9a9a9a"
LIMIT_COLOUR: Final = "#d62728"
_SIZE: Final = (8.0, 3.2)
#: Fewer points than this get markers.
FEW_POINTS: Final = 5
#: How to get the charts when matplotlib is missing.
#: matplotlib alone, not ``limone-obs[report]``: a checkout installed from its path would
#: look for limone-obs on the package index.
INSTALL_HINT: Final = "pip install matplotlib (the 'report' extra of limone-obs)"


def available() -> bool:
    """True when matplotlib can be imported, so the charts can be drawn.

    Not cached: an import that already happened is a dictionary look-up, and tests take
    matplotlib away with ``sys.modules``.
    """
    try:
        import matplotlib.figure  # noqa: F401, PLC0415 - optional dependency
    except ImportError:
        return False
    return True


def _figure() -> Figure:
    try:
        from matplotlib.figure import Figure  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise ReportError(
            f"the report draws its charts with matplotlib, which is not installed: {INSTALL_HINT}"
        ) from None
    return Figure(figsize=_SIZE, dpi=100, layout="constrained")


def _data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    # No date in the metadata: the same data draws the same bytes.
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _style(ax: Axes, title: str, ylabel: str) -> None:
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


#: Tick steps of a clock axis (seconds): the first that gives at most 8 ticks is used.
_TICK_STEPS: Final = (
    10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    172800, 604800,
)  # fmt: skip


def clock_ticks(start: float, span: float) -> list[float]:
    """Tick positions (seconds since ``start``) on round UTC clock times (08:00, 08:10...),
    at most 8 over ``span`` seconds (a week's steps beyond)."""
    step = next((s for s in _TICK_STEPS if span / s <= 8), _TICK_STEPS[-1])
    first = -(-start // step) * step - start  # the first whole step at or after start
    return [first + k * step for k in range(int((span - first) // step) + 1)]


def clock_labels(start: float, span: float) -> Callable[[float, object], str]:
    """The x axis's tick labels: ``x`` seconds after ``start`` (Unix time) as a UTC clock
    time, ``08:05:30`` in a window up to 10 minutes long, ``08:05`` up to two days,
    ``15 Jan 08:05`` beyond (a reader matches a peak with deploys, alerts and logs by
    time, not by its offset). The second argument is matplotlib's tick position."""
    form = "%H:%M:%S" if span <= 600 else "%H:%M" if span <= 2 * 86400 else "%d %b %H:%M"

    def label(x: float, _position: object = None) -> str:
        return time.strftime(form, time.gmtime(start + x))

    return label


def line_chart(
    title: str,
    ylabel: str,
    now: Points,
    then: Points,
    *,
    limits: Sequence[tuple[float, str]] = (),
    scale: float = 1.0,
    start: float | None = None,
    span: float | None = None,
) -> str | None:
    """This window (solid) against the baseline (dashed, aligned on the window's start).

    Points are ``(seconds since the window's start, value)``; with ``start`` (the
    window's start, Unix time) the x axis reads UTC clock times (:func:`clock_labels`,
    ``span`` the window's length), else seconds. ``limits`` are horizontal lines
    (value, label), e.g. the 1 s objective; values are multiplied by ``scale`` (100 for
    percent). None when ``now`` has no point.
    """
    if not now:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    # A few points (a short run in a long window) are drawn as dots: a line needs two.
    marker = "o" if len(now) < FEW_POINTS else None
    xs, ys = [t for t, _ in now], [v * scale for _, v in now]
    ax.plot(xs, ys, color=NOW_COLOUR, marker=marker, label="window")
    if then:
        xs, ys = [t for t, _ in then], [v * scale for _, v in then]
        marker = "o" if len(then) < FEW_POINTS else None
        ax.plot(xs, ys, color=THEN_COLOUR, linestyle="--", marker=marker, label="baseline")
    for value, label in limits:
        ax.axhline(value * scale, color=LIMIT_COLOUR, linestyle=":", linewidth=1, label=label)
    if start is None:
        ax.set_xlabel("seconds since the window's start")
    else:
        from matplotlib.ticker import FixedLocator, FuncFormatter  # noqa: PLC0415 - optional

        length = span or xs[-1]
        ax.xaxis.set_major_locator(FixedLocator(clock_ticks(start, length)))
        ax.xaxis.set_major_formatter(FuncFormatter(clock_labels(start, length)))
        ax.set_xlabel(
            "UTC" + ("; the baseline at the same offset from its own start" if then else "")
        )
    ax.set_ylim(bottom=0)
    _style(ax, title, ylabel)
    ax.legend(loc="upper right", fontsize=8)
    return _data_uri(fig)


def bar_chart(
    title: str,
    ylabel: str,
    labels: Sequence[str],
    now: Sequence[float],
    then: Sequence[float] | None,
) -> str | None:
    """Grouped bars per label: this window, and the baseline beside it when given."""
    if not labels:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    width = 0.4 if then is not None else 0.7
    xs = list(range(len(labels)))
    ax.bar([x - width / 2 if then is not None else x for x in xs], now, width, color=NOW_COLOUR,
           label="window")  # fmt: skip
    if then is not None:
        ax.bar([x + width / 2 for x in xs], then, width, color=THEN_COLOUR, label="baseline")
    ax.set_xticks(
        xs,
        labels,
        rotation=20 if len(labels) > 4 else 0,
        ha="right" if len(labels) > 4 else "center",
        fontsize=8,
    )
    _style(ax, title, ylabel)
    ax.legend(loc="upper right", fontsize=8)
    return _data_uri(fig)
