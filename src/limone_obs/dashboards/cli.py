"""The ``limone-obs dashboards`` subcommands: ``lint``, ``tree`` and ``push``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from limone_obs.alerts.cli import specs_option
from limone_obs.alerts.spec import load_spec
from limone_obs.dashboards.build import tree
from limone_obs.dashboards.generate import OUTPUT_DIR
from limone_obs.dashboards.lint import lint_file
from limone_obs.dashboards.push import Target, push
from limone_obs.dashboards.slo_inputs import from_spec
from limone_obs.errors import DashboardError


def _dashboard_files(paths: tuple[Path, ...]) -> list[Path]:
    """The dashboard files of ``paths`` (folders give their ``*.json``), default the
    ``dashboards/`` folder here; DashboardError if there is none to read."""
    if not paths and not Path(OUTPUT_DIR).is_dir():
        raise DashboardError(
            f"no {OUTPUT_DIR}/ folder in {Path.cwd()}: name the dashboards to read, e.g. "
            f"DIR/{OUTPUT_DIR} for the folder `limone-obs build --root DIR` wrote"
        )
    files: list[Path] = []
    for path in paths or (Path(OUTPUT_DIR),):
        if path.is_dir():
            files.extend(sorted(path.glob("*.json")))
        else:  # a file, or a missing one: linting reports it and goes on
            files.append(path)
    if not files:
        raise DashboardError(
            f"no *.json dashboards in {', '.join(map(str, paths or (OUTPUT_DIR,)))}"
        )
    return files


@click.group("dashboards")
def group() -> None:
    """Check and publish the generated Grafana dashboards."""


def _lint_each(files: list[Path]) -> tuple[int, int]:
    """Print every finding of every file; return (findings, unreadable files)."""
    findings = unreadable = 0
    for path in files:
        try:
            found = lint_file(path)
        except DashboardError as exc:  # report it and go on with the other files
            click.echo(f"{exc} [unreadable]")
            unreadable += 1
            continue
        for finding in found:
            click.echo(str(finding))
        findings += len(found)
    return findings, unreadable


@group.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def lint_command(paths: tuple[Path, ...]) -> None:
    """Lint dashboard JSON files or folders (default: dashboards/).

    Every file is read, even after one that cannot be: exit 1 if any file had findings or
    could not be read.
    """
    files = _dashboard_files(paths)
    findings, unreadable = _lint_each(files)
    if findings or unreadable:
        click.echo(
            f"{findings} finding(s) in {len(files)} dashboard(s), {unreadable} unreadable",
            err=True,
        )
        sys.exit(1)
    click.echo(f"{len(files)} dashboard(s), no findings")


@group.command("tree")
@specs_option
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder receiving dashboards/<service>/ and provisioning/.",
)
def tree_command(specs: tuple[Path, ...], out: Path) -> None:
    """Write one Grafana provisioning tree for several services into --out.

    Every spec is read and every dashboard built before the first file is written.
    """
    files = tree([from_spec(load_spec(spec)) for spec in specs])
    for rel, content in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    click.echo(f"wrote {len(files)} file(s) for {len(specs)} service(s) into {out}")


def _basic_auth(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user:
        raise DashboardError("--basic-auth must be user:password")
    return user, password


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DashboardError(f"{path}: cannot read a dashboard: {exc}") from None
    if not isinstance(data, dict) or not data.get("uid"):
        raise DashboardError(f"{path}: not a dashboard with a uid")
    return data


#: The environment variables ``push`` reads its credentials from.
TOKEN_ENV = "GRAFANA_TOKEN"
BASIC_AUTH_ENV = "GRAFANA_BASIC_AUTH"


def _warn_of_secrets_in_argv(ctx: click.Context) -> None:
    """One warning per credential given as a command-line option rather than from the
    environment: other users of the machine see it in the process list, and the shell
    keeps it in its history."""
    for name, option, env in (
        ("token", "--token", TOKEN_ENV),
        ("basic_auth", "--basic-auth", BASIC_AUTH_ENV),
    ):
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
            click.echo(
                f"warning: {option} on the command line is visible in the process list and "
                f"stays in the shell history; set {env} in the environment instead",
                err=True,
            )


@group.command("push")
@click.option(
    "--url", required=True, envvar="GRAFANA_URL", help="Grafana root URL (or GRAFANA_URL)."
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    help=f"Service account token; prefer {TOKEN_ENV} (a value given here is visible in "
    "the process list and shell history).",
)
@click.option(
    "--basic-auth",
    envvar=BASIC_AUTH_ENV,
    help=f"user:password instead of a token; prefer {BASIC_AUTH_ENV} (as for --token).",
)
@click.option(
    "--folder",
    default=None,
    help="Folder uid for every dashboard [default: each dashboard's service, e.g. limoneide].",
)
@click.option(
    "--folder-title",
    default=None,
    help="Title given to the folder if it has to be created [default: the service's title].",
)
@click.option("--retries", default=3, show_default=True, help="Retries on 5xx / network errors.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def push_command(
    *,
    url: str,
    token: str | None,
    basic_auth: str | None,
    folder: str | None,
    folder_title: str | None,
    retries: int,
    paths: tuple[Path, ...],
) -> None:
    """Save dashboards (default: dashboards/*.json) to Grafana, overwriting, into --folder
    (default: each dashboard's service folder)."""
    _warn_of_secrets_in_argv(click.get_current_context())
    target = Target(url=url, token=token, basic_auth=_basic_auth(basic_auth), retries=retries)
    boards = {path.name: _load(path) for path in _dashboard_files(paths)}
    for saved in push(target, boards, folder, folder_title):
        click.echo(f"saved {saved}")


commands: list[click.Command] = [group]
