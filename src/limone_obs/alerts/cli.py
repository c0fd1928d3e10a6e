"""The ``limone-obs`` subcommands of the alerts area: ``check`` validates the SLO spec.

Errors are :class:`~limone_obs.errors.SpecError`; the top-level command prints them as
``error: <file>: <field>: <message>`` and exits 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from limone_obs.alerts import alerting
from limone_obs.alerts.spec import SPEC_PATH, load_spec


@click.command("check")
@click.option(
    "--spec",
    "spec_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=SPEC_PATH,
    show_default=True,
    help="SLO spec to validate.",
)
def check(spec_path: Path) -> None:
    """Validate the SLO spec; exit 2 with the located error when it is invalid."""
    spec = load_spec(spec_path)
    alerts = sum(len(alerting.alerts(spec, slo)) for slo in spec.slos)
    click.echo(f"{spec_path}: valid, {len(spec.slos)} SLOs, {alerts} alert rules")


commands: list[click.Command] = [check]
