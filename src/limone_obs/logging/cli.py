"""The ``limone-obs`` subcommands of the logging area.

``limone-obs log-check FILE...`` validates captured log output (``-`` for stdin) line by
line against the log event schema, e.g. after ``gunicorn ... > app.log 2>&1``. It needs
no jsonschema: :func:`limone_obs.logging.schema.problems` checks the schema's rules.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import IO

import click

from limone_obs.logging import schema


def check_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, problem)`` for each line that is not a valid log event.

    Empty and blank lines are skipped: the output writes one to end a line a failed write cut
    short (see ``logging/README.md``), and shippers skip them too."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line, parse_constant=_not_json)
        except ValueError as exc:
            if line.lstrip().startswith("{"):
                yield number, f"not JSON: {exc}"
            else:  # a plain text line, whatever it starts with ("[INFO] ...", "2026-...")
                yield number, f"not a JSON object: plain text ({line.strip()[:60]!r})"
            continue
        if not isinstance(event, dict):
            kind = _JSON_KINDS.get(type(event), type(event).__name__)
            yield number, f"not a JSON object: {kind} ({line.strip()[:60]!r})"
            continue
        for problem in schema.problems(event):
            yield number, problem


def _not_json(name: str) -> float:
    """Python's json reads NaN and Infinity, which JSON has not (shippers refuse them)."""
    raise ValueError(f"{name} is not a JSON value (a number that is not finite)")


#: What a JSON value other than an object is called in log-check's messages.
_JSON_KINDS = {list: "a JSON array", str: "a JSON string", int: "a JSON number",
               float: "a JSON number", bool: "a JSON boolean", type(None): "JSON null"}  # fmt: skip


@click.command("log-check")
@click.argument("files", nargs=-1, type=click.File("r", encoding="utf-8", errors="replace"))
def log_check(files: tuple[IO[str], ...]) -> None:
    """Check that every line of FILES (default stdin) is a valid limone-obs log event
    (empty and blank lines are skipped)."""
    total = bad = 0
    handles: tuple[IO[str], ...] = files or (sys.stdin,)
    for handle in handles:
        lines = handle.read().splitlines()
        total += sum(1 for line in lines if line.strip())  # empty lines: see check_lines
        for number, problem in check_lines(lines):
            bad += 1
            click.echo(f"{handle.name}:{number}: {problem}", err=True)
    click.echo(f"{total} line(s) checked, {bad} problem(s)")
    if bad:
        sys.exit(1)


commands: list[click.Command] = [log_check]
