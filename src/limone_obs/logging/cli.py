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


def check_lines(lines: Iterable[str | bytes]) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, problem)`` for each line that is not a valid log event.

    Lines given as bytes must be UTF-8 (Elasticsearch and Loki refuse other bytes); an
    object may not name a field twice (Elasticsearch refuses the line). Empty and blank
    lines are skipped: the output writes one to end a line a failed write cut short (see
    ``logging/README.md``), and shippers skip them too."""
    for number, raw in enumerate(lines, 1):
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, f"not UTF-8: byte {raw[exc.start]:#04x} at column {exc.start + 1}"
                continue
        else:
            line = raw
        if not line.strip():
            continue
        try:
            event = json.loads(line, parse_constant=_not_json, object_pairs_hook=_no_repeats)
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


def _no_repeats(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object as a dict; ValueError if it names a field twice (json keeps the last
    value without a word; Elasticsearch refuses the line)."""
    event = dict(pairs)
    if len(event) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the field {key!r} appears twice in one object")
            seen.add(key)
    return event


def _not_json(name: str) -> float:
    """Python's json reads NaN and Infinity, which JSON has not (shippers refuse them)."""
    raise ValueError(f"{name} is not a JSON value (a number that is not finite)")


#: What a JSON value other than an object is called in log-check's messages.
_JSON_KINDS = {list: "a JSON array", str: "a JSON string", int: "a JSON number",
               float: "a JSON number", bool: "a JSON boolean", type(None): "JSON null"}  # fmt: skip


@click.command("log-check")
@click.argument("files", nargs=-1, type=click.File("rb"))
def log_check(files: tuple[IO[bytes], ...]) -> None:
    """Check that every line of FILES (default stdin) is a valid limone-obs log event
    (empty and blank lines are skipped)."""
    counted = [0]
    bad = 0
    handles: tuple[IO[bytes], ...] = files or (sys.stdin.buffer,)
    for handle in handles:
        name = getattr(handle, "name", "<stdin>")
        for number, problem in check_lines(_lines(handle, counted)):
            bad += 1
            click.echo(f"{name}:{number}: {problem}", err=True)
    total = counted[0]
    empty = " (the input held no line: was the capture written?)" if not total and not bad else ""
    click.echo(f"{total} line(s) checked, {bad} problem(s){empty}")
    if bad:
        sys.exit(1)


def _lines(handle: IO[bytes], counted: list[int]) -> Iterator[bytes]:
    """The lines of ``handle`` one at a time (a capture of gigabytes is never held
    whole), without their ``\\n``; ``counted[0]`` grows by each that is not blank.
    Lines end at ``\\n`` only: ``str.splitlines()`` would also cut at ``\\x1c``-``\\x1e``,
    ``\\x85`` and U+2028, which JSON text may hold raw and a shipper's reader does not."""
    for raw in handle:
        line = raw.removesuffix(b"\n")
        if line.strip():  # empty lines: see check_lines
            counted[0] += 1
        yield line


commands: list[click.Command] = [log_check]
