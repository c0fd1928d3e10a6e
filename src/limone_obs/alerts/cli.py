"""The ``limone-obs`` subcommands of the alerts area."""

from __future__ import annotations

import click

commands: list[click.Command] = []
