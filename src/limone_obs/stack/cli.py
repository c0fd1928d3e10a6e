"""The ``limone-obs`` subcommands of the stack area."""

from __future__ import annotations

import click

commands: list[click.Command] = []
