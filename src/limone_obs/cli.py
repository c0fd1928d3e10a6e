"""The ``limone-obs`` command: a thin layer over the package's generators and tools.

Each area contributes its subcommands through ``limone_obs.<area>.cli.commands``; this
module only assembles them, runs ``build``, and turns :class:`LimoneObsError` into a
one-line message on stderr and exit status 2 (no traceback).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from limone_obs import artifacts
from limone_obs.errors import CollectedSpecError, LimoneObsError

#: Areas whose ``cli.commands`` are added to the group.
_AREAS = ("exporter", "logging", "alerts", "dashboards", "stack", "report")


class _Group(click.Group):
    """A click group that reports LimoneObsError as ``error: ...`` and exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CollectedSpecError as exc:  # one line per located error
            for error in exc.errors:
                click.echo(f"error: {error}", err=True)
            sys.exit(2)
        except LimoneObsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="limone-obs")
def main() -> None:
    """limone-obs: metrics, logs, SLO alerts and dashboards for a Flask service.

    The defaults are LimoneIDE's (service limoneide); your own service's come from its
    SLO spec (alerts/slo.yaml below --root, or --spec).
    """


@main.command()
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Project root holding alerts/slo.yaml and the artifact folders.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any artifact is stale.")
def build(root: Path, check: bool) -> None:
    """Regenerate every artifact (rules, Alertmanager config, tests, dashboards, catalogue).

    Prints `wrote PATH` for each file written and `removed PATH` for each file an earlier
    build wrote that this one no longer makes (an SLO taken out of the spec), PATH below
    the current folder (`ops/alerts/...` with `--root ops`).
    """
    if check:
        problems = artifacts.diff(root, artifacts.collect(root))
        for line in problems:
            click.echo(_below(root, line), err=True)
        _spec_warnings(root)
        if problems:
            click.echo(_stale_advice(root, problems), err=True)
            sys.exit(1)
        click.echo("artifacts are up to date")
        return
    left: list[str] = []
    removed: list[str] = []
    changed = artifacts.build(root, left=left, removed=removed)
    for rel in changed:
        click.echo(f"{'removed' if rel in removed else 'wrote'} {(root / rel).as_posix()}")
    for line in left:
        click.echo(_below(root, line), err=True)
    _spec_warnings(root)
    click.echo(f"{len(changed)} file(s) changed")


#: The beginnings of build's lines about one file, each followed by its path below --root.
_FILE_LINES = (artifacts.FOREIGN, "missing: ", "stale: ", "not generated any more: ")


def _below(root: Path, line: str) -> str:
    """A line of ``build`` or ``build --check`` about one file, its path named as the
    ``wrote`` lines name theirs: below the current folder (``ops/alerts/...`` with
    ``--root ops``)."""
    for start in _FILE_LINES:
        if line.startswith(start):
            rel, paren, rest = line.removeprefix(start).partition(" (")
            return f"{start}{(root / rel).as_posix()}{paren}{rest}"
    return line


def _stale_advice(root: Path, problems: list[str]) -> str:
    """The last line of a failed ``build --check``: rebuild, move files out, or both (a
    rebuild leaves a file it did not write where it is)."""
    foreign = [line for line in problems if line.startswith(artifacts.FOREIGN)]
    move = "move the files not written by limone-obs out of its folders"
    if len(foreign) == len(problems):
        return f"artifacts are up to date, but {move}"
    command = artifacts.build_command(root)
    return f"artifacts are stale: run `{command}`{f', {move},' if foreign else ''} and commit"


def _spec_warnings(root: Path) -> None:
    """Print what ``limone-obs check`` would refuse in the spec ``build`` just used, and
    its notes on links, receivers and tiers (a receiver that tells nobody)."""
    # Imported here: the alerts area's command module, loaded by _add_area_commands too.
    from limone_obs.alerts.cli import build_notes, build_warnings  # noqa: PLC0415

    for warning in build_warnings(root):
        click.echo(f"warning: {warning} (`limone-obs check` refuses this)", err=True)
    for note in build_notes(root):
        click.echo(f"note: {note}", err=True)


def _add_area_commands() -> None:
    for area in _AREAS:
        module = importlib.import_module(f"limone_obs.{area}.cli")
        for command in module.commands:
            main.add_command(command)


_add_area_commands()
