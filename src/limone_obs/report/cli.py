"""``limone-obs report``: write the before/after performance review of a time window."""

from __future__ import annotations

from pathlib import Path

import click

from limone_obs import conventions as c
from limone_obs.alerts.model import ServiceSpec
from limone_obs.alerts.spec import SPEC_PATH, load_spec
from limone_obs.report import charts
from limone_obs.report.collect import collect
from limone_obs.report.prometheus import Prometheus
from limone_obs.report.render import write_report
from limone_obs.report.window import parse_baseline, parse_window


def _names(
    spec: Path | None, job: str | None, service: str | None, namespace: str | None
) -> tuple[str, str, str, ServiceSpec | None, str | None]:
    """job, service, namespace (the options, else the spec's, else the defaults), the
    spec (None without one), and a note naming what was used when a value came from the
    defaults (no spec to read)."""
    path = spec if spec is not None else (SPEC_PATH if SPEC_PATH.is_file() else None)
    if path is not None:
        loaded = load_spec(path)
        ns = namespace or loaded.namespace
        return job or loaded.job, service or loaded.service, ns, loaded, None
    default = c.DEFAULT_NAMESPACE
    given = {"job": job, "service": service, "namespace": namespace}
    used = {name: value or default for name, value in given.items()}
    note = None
    if None in given.values():
        # A silent default reads another service's data (or none) without a hint why.
        sources = [
            f"{name} {used[name]!r} ({'--' + name if given[name] else 'default'})" for name in given
        ]
        note = (
            f"no SLO spec (no --spec, no {SPEC_PATH} here): using {', '.join(sources)}; "
            "pass --spec or --job/--service/--namespace"
        )
    return used["job"], used["service"], used["namespace"], None, note


@click.command("report")
@click.option(
    "--prometheus", default="http://127.0.0.1:9090", show_default=True, help="Prometheus URL."
)
@click.option(
    "--from",
    "start",
    default="now-1h",
    show_default=True,
    help="Window start: now-1h, an ISO 8601 time (UTC if no zone) or Unix seconds.",
)
@click.option("--to", "end", default="now", show_default=True, help="Window end (same forms).")
@click.option(
    "--baseline",
    default="7d",
    show_default=True,
    help="Compare with the same span this long before (7d), or from this time; 'none'.",
)
@click.option(
    "--spec",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SLO spec giving job, service and namespace [default: alerts/slo.yaml if present].",
)
@click.option("--job", default=None, help="Scrape job of the app (overrides the spec).")
@click.option("--service", default=None, help="slo_service of the SLO rules (overrides the spec).")
@click.option("--namespace", default=None, help="Metric namespace (overrides the spec).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("limone-obs-report"),
    show_default=True,
    help="Writes OUTPUT.html (charts embedded) and OUTPUT.md (missing folders of the "
    "path are created).",
)
def report_command(  # noqa: PLR0917 - click passes each option positionally
    prometheus: str,
    start: str,
    end: str,
    baseline: str,
    spec: Path | None,
    job: str | None,
    service: str | None,
    namespace: str | None,
    output: Path,
) -> None:
    """Compare a time window with a baseline: latency, errors, SLOs, throughput.

    Per endpoint and dependency: request share, exact mean and p50/p95/p99 estimates with
    their change; where a request's time goes; every SLO of the spec with the alerts that
    fired; throughput against the 100 / 500 / 1000 req/s steps. Writes a self-contained
    HTML file (charts need matplotlib) and a Markdown summary.
    """
    window = parse_window(start, end)
    base = parse_baseline(baseline, window)
    job_, service_, namespace_, loaded, note = _names(spec, job, service, namespace)
    if note is not None:
        click.echo(f"note: {note}", err=True)
    data = collect(
        Prometheus(prometheus),
        job=job_,
        service=service_,
        namespace=namespace_,
        window=window,
        baseline=base,
        spec=loaded,
    )
    html_path, md_path = write_report(data, output)
    for note in data.notes:
        click.echo(f"note: {note}", err=True)
    if not charts.available():
        click.echo(
            f"warning: {html_path} has no charts: matplotlib is not installed: "
            f"{charts.INSTALL_HINT}",
            err=True,
        )
    click.echo(f"report: {html_path} (open in a browser) and {md_path} (Markdown summary)")


commands = [report_command]
