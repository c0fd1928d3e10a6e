"""The performance report ``limone-obs up`` writes of its own run (:mod:`limone_obs.report`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from limone_obs.alerts.spec import load_spec
from limone_obs.errors import LimoneObsError
from limone_obs.report import collect, write_report
from limone_obs.report.prometheus import Prometheus
from limone_obs.report.window import Span

#: Name (without suffix) of the report files in the work directory.
REPORT_NAME = "report"


def write_run_report(
    prometheus_url: str, spec_path: Path, started: float, workdir: Path, say: Callable[[str], None]
) -> Path | None:
    """Write ``<workdir>/report.html`` and ``.md`` for the run since ``started``.

    The run has no baseline (its fault shows in the charts over time). Returns the HTML
    path, or None after saying why no report was written: a report never fails the run.
    """
    try:
        spec = load_spec(spec_path)
        data = collect(
            Prometheus(prometheus_url), job=spec.job, service=spec.service,
            namespace=spec.namespace, window=Span(started, time.time()), baseline=None,
            spec=spec,
        )  # fmt: skip
        html_path, _ = write_report(data, workdir / REPORT_NAME)
    except LimoneObsError as exc:
        say(f"report: not written: {exc}")
        return None
    say(f"report: {html_path}")
    return html_path
