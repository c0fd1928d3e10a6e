"""Run every ``bench/bench_*.py`` module and write the report (called by ``bench/run``).

Each module's ``run(quick: bool) -> str`` returns a markdown section; each runs in its own
Python process so global state (prometheus-client's value class, logging setup) cannot
leak between them. The report starts with the machine and the command, so results from
different machines are never mixed up. A module that fails gets a section with its error
and the exit status is 1.

Usage: ``python bench/runner.py [--quick] [--output PATH] [--only NAME ...]``; the full run
writes ``bench/RESULTS.md`` unless ``--output`` says otherwise, ``--quick`` only prints
unless ``--output`` is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = (
    "limone-obs", "flask", "werkzeug", "prometheus-client", "prometheus-flask-exporter",
    "gunicorn", "structlog", "python-json-logger", "orjson",
)  # fmt: skip
MODULE_TIMEOUT = 480
#: Modules that need longer: valgrind runs Python ~50x slower; the exporter's timings take
#: ~7 minutes on a fast 2-core machine and over 8 on a slower one.
TIMEOUTS = {"bench_instructions": 1500, "bench_exporter": 1200}


def modules(only: list[str]) -> list[str]:
    """Names of the bench modules to run, sorted; ``only`` filters by name."""
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    return [n for n in names if not only or n in only or n.removeprefix("bench_") in only]


def run_module(name: str, quick: bool) -> tuple[str, bool, float]:
    """Run one module's ``run(quick)`` in a child process; return (markdown, ok, seconds)."""
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import {name}; print({name}.run({quick}))"
    )
    start = time.monotonic()
    limit = TIMEOUTS.get(name, MODULE_TIMEOUT)
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True,
            timeout=limit, cwd=HERE.parent, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"## {name}\n\nFAILED: no result within {limit} s\n", False, limit
    elapsed = time.monotonic() - start
    if out.returncode != 0:
        tail = "\n".join(out.stderr.strip().splitlines()[-15:])
        return f"## {name}\n\nFAILED (exit {out.returncode}):\n\n```\n{tail}\n```\n", False, elapsed
    return out.stdout.strip() + "\n", True, elapsed


def machine() -> list[str]:
    """Markdown lines describing this machine and the software measured."""
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    prometheus = shutil.which("prometheus")
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- Packages: {', '.join(versions)}",
        f"- Prometheus binary: {prometheus or 'not installed'}",
    ]


def report(sections: list[str], quick: bool, seconds: float) -> str:
    """The whole RESULTS.md text."""
    command = "bench/run --quick" if quick else "bench/run"
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        "# Benchmark results",
        "",
        f"Command: `{command}` (from the repository root), {when}, {seconds:.0f} s in all.",
        "All numbers of one table come from the same run. Generated: do not edit by hand.",
        "",
        "## Machine",
        "",
        *machine(),
        "",
    ]
    return "\n".join(head) + "\n" + "\n".join(sections)


def main(argv: list[str]) -> int:
    """Run the selected modules, print and write the report; 1 if any module failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--output", type=Path, help="where to write the report")
    parser.add_argument("--only", nargs="*", default=[], help="module names to run")
    args = parser.parse_args(argv)
    start, sections, ok = time.monotonic(), [], True
    for name in modules(args.only):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        text, passed, elapsed = run_module(name, args.quick)
        print(f"  {name}: {'ok' if passed else 'FAILED'} in {elapsed:.0f} s", file=sys.stderr)
        sections.append(text)
        ok = ok and passed
    text = report(sections, args.quick, time.monotonic() - start)
    output = args.output or (None if args.quick else HERE / "RESULTS.md")
    if output is not None:
        output.write_text(text, encoding="utf-8")
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
