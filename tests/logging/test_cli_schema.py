"""The committed schema file, the ``log-check`` command and file output with rotation."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from limone_obs.cli import main
from limone_obs.errors import ConfigError
from limone_obs.logging import _pipeline, configure_logging, get_logger
from limone_obs.logging._sink import RotatingFile
from limone_obs.logging.schema import SCHEMA_PATH, artifacts, problems, render, schema
from tests.logging.helpers import SCHEMA_FILE, parse_lines
from tests.support import ROOT


def test_committed_schema_is_current() -> None:
    """logging/log-event.schema.json is byte-identical to what the generator writes."""
    assert render() == SCHEMA_FILE.read_bytes()


def test_generator_returns_the_schema_path() -> None:
    """The ``limone-obs build`` generator owns exactly the schema file."""
    assert [SCHEMA_PATH] == list(artifacts(ROOT).files)


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    """The schema itself passes the metaschema check."""
    Draft202012Validator.check_schema(schema())


def test_log_check_accepts_our_output(tmp_path: Path) -> None:
    """log-check exits 0 on lines written by configure_logging."""
    log = tmp_path / "app.log"
    with log.open("w") as stream:
        configure_logging(stream=stream)
        get_logger().info("hello", request_id="r1")
        get_logger().error("bad", status_code=500)
    result = CliRunner().invoke(main, ["log-check", str(log)])
    assert (0, "2 line(s) checked, 0 problem(s)\n") == (result.exit_code, result.stdout)


def test_log_check_reports_bad_lines(tmp_path: Path) -> None:
    """log-check names the file, line and field of each problem and exits 1."""
    log = tmp_path / "mixed.log"
    lines = ["plain text", "", '{"level": "LOUD"}', "[2026-12-07 10:00:00 +0000] [7] [INFO] up",
             '{"level": "info", ', "[1, 2]",
             '{"timestamp": "2026-13-45T03:04:05.678Z"}', '{"duration": NaN}']  # fmt: skip
    log.write_text("\n".join(lines) + "\n")  # an empty line is skipped
    result = CliRunner().invoke(main, ["log-check", str(log)])
    assert 1 == result.exit_code
    assert f"{log}:1: not a JSON object: plain text ('plain text')" in result.stderr
    assert f"{log}:3: level:" in result.stderr
    # gunicorn's own text line starts like a JSON array: still plain text, not a parse error.
    assert f"{log}:4: not a JSON object: plain text ('[2026-12-07" in result.stderr
    assert f"{log}:5: not JSON: " in result.stderr
    assert f"{log}:6: not a JSON object: a JSON array ('[1, 2]')" in result.stderr
    assert f"{log}:7: timestamp: '2026-13-45T03:04:05.678Z' does not match" in result.stderr
    # Python reads NaN; JSON has no such value, and shippers refuse the line.
    assert f"{log}:8: not JSON: NaN is not a JSON value" in result.stderr
    assert result.stdout.startswith("7 line(s) checked, ")


def test_file_output_rotates(tmp_path: Path) -> None:
    """With ``file=``, lines also go to a file rotated at file_max_bytes, backups kept."""
    path = tmp_path / "app.log"
    configure_logging(stream=io.BytesIO(), file=path, file_max_bytes=2048, file_backups=2)
    for n in range(60):
        get_logger().info("line", n=n, pad="x" * 100)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [".app.log.lock", "app.log", "app.log.1", "app.log.2"] == names
    sizes = [p.stat().st_size for p in tmp_path.glob("app.log*")]
    assert all(size <= 2048 for size in sizes)
    assert 59 == parse_lines(path.read_bytes())[-1]["n"]


@pytest.mark.parametrize(
    ("create", "lines", "files"),
    [
        (False, 20, ["app.log", "app.log.1", "moved.log"]),
        (True, 12, ["app.log", "moved.log"]),
    ],
    ids=["moved", "moved-and-created"],
)
def test_file_moved_away_is_not_shifted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, create: bool, lines: int, files: list[str]
) -> None:
    """A file moved away by something else (``mv``, logrotate) keeps this process's lines
    until it is full; then the process goes on in the file at the path: a new one, or the
    empty one logrotate's ``create`` put there, which it does not shift into the backups
    as if it were its own. No line lost, no file past the cap."""
    for name in ("LIMONE_OBS_SERVICE", "LIMONE_OBS_ENV"):  # they set the lines' length
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "app.log"
    configure_logging(stream=io.BytesIO(), file=path, file_max_bytes=2048, file_backups=2)
    log = get_logger()
    for n in range(5):
        log.info("line", n=n, pad="x" * 100)
    path.rename(tmp_path / "moved.log")
    if create:
        path.touch()
    for n in range(5, lines):
        log.info("line", n=n, pad="x" * 100)
    sink = _pipeline.current.sink
    assert sink is not None
    assert 0 == sink.dropped
    assert files == sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    logged = [
        e["n"]
        for name in ("moved.log", "app.log.1", "app.log")
        if name in files
        for e in parse_lines((tmp_path / name).read_bytes())
    ]
    assert list(range(lines)) == logged
    assert all(p.stat().st_size <= 2048 for p in tmp_path.glob("*.log*"))


def test_a_retried_rotation_does_not_push_backups_over_a_gap(tmp_path: Path) -> None:
    """A rotation that failed after moving some backups up left a gap; trying again moves
    only the backups before the gap, so none is overwritten."""
    path = tmp_path / "app.log"
    (tmp_path / "app.log").write_bytes(b"current\n")
    (tmp_path / "app.log.2").write_bytes(b"two\n")  # .1 is the gap a failed rotation left
    (tmp_path / "app.log.3").write_bytes(b"three\n")
    configure_logging(stream=io.BytesIO(), file=path, file_max_bytes=1024, file_backups=3)
    get_logger().info("line", pad="x" * 1100)  # over the cap: the file is rotated first
    assert b"current\n" == (tmp_path / "app.log.1").read_bytes()
    assert (b"two\n", b"three\n") == (
        (tmp_path / "app.log.2").read_bytes(),
        (tmp_path / "app.log.3").read_bytes(),
    )


def test_unwritable_file_is_a_config_error(tmp_path: Path) -> None:
    """A log file that cannot be opened is a ConfigError naming it."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="not-a-dir"):
        configure_logging(file=blocker / "app.log")


# --- issue 13: log-check on a plain install (no jsonschema) --------------------------

_RUN_WITHOUT_JSONSCHEMA = (
    "import sys; sys.modules['jsonschema'] = None; "  # any import of it raises ImportError
    "from limone_obs.cli import main; sys.argv[0] = 'limone-obs'; main()"
)


def _log_check_without_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _RUN_WITHOUT_JSONSCHEMA, "log-check", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_log_check_works_without_jsonschema(tmp_path: Path) -> None:
    """With jsonschema unimportable, log-check accepts good lines (exit 0) and names the
    field of a bad one (exit 1)."""
    good = tmp_path / "good.log"
    with good.open("w") as stream:
        configure_logging(stream=stream)
        get_logger().info("hello", request_id="r1", status_code=200, duration=0.5)
    bad = tmp_path / "bad.log"
    bad.write_text(good.read_text().replace('"level":"info"', '"level":"LOUD"'))
    ok, failed = _log_check_without_jsonschema(good), _log_check_without_jsonschema(bad)
    assert (0, "1 line(s) checked, 0 problem(s)\n") == (ok.returncode, ok.stdout), ok.stderr
    assert 1 == failed.returncode
    assert f"{bad}:1: level: 'LOUD' is not one of" in failed.stderr


field_values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 700), st.floats(allow_nan=False),
    st.sampled_from(["", "info", "LOUD", "2026-01-02T03:04:05.678Z", "2026-13-45T03:04:05.678Z",
                     "2026-12-31T23:59:60.000Z", "0" * 32, "a" * 16,
                     "abc-123", "bad id!", "x\n"]),
    st.dictionaries(st.sampled_from(["type", "message", "traceback"]), st.text(max_size=3)),
    st.lists(st.integers(), max_size=2),
)  # fmt: skip
events = st.dictionaries(
    st.sampled_from([*schema()["properties"], "other", "", " ", "_id", "@timestamp", ".a", "b.",
                     "a..b", "service.name", "user.id"]),
    field_values, max_size=12,
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(event=events)
def test_own_checker_agrees_with_jsonschema(event: dict[str, Any]) -> None:
    """On arbitrary events (valid and broken fields of every kind), the built-in checker
    finds a problem exactly where jsonschema does (same fields)."""
    validator = Draft202012Validator(schema())
    expected = {
        ".".join(map(str, e.absolute_path)) or "(line)" for e in validator.iter_errors(event)
    }
    actual = {problem.split(": ", 1)[0] for problem in problems(event)}
    assert expected == actual


#: A valid line's fields, for lines with one thing wrong.
_GOOD = (
    '"timestamp":"2026-12-08T01:06:52.995Z","level":"info","logger":"a","message":"m",'
    '"service":"s","env":"e"'
)


def test_log_check_reports_what_shippers_refuse(tmp_path: Path) -> None:
    """Bytes that are not UTF-8, a field named twice, and names Elasticsearch refuses are
    problems (they passed); a raw U+2028 in a value and a CRLF line end are not."""
    log = tmp_path / "shipped.log"
    log.write_bytes(
        b"{" + _GOOD.encode().replace(b'"m"', b'"m \xff"') + b"}\n"
        + b"{" + _GOOD.encode() + b',"a":1,"a":2}\n'
        + b"{" + _GOOD.encode() + b',"_id":1,"service.name":2,"user.id":3}\n'
        + b"{" + _GOOD.encode().replace(b'"m"', '"m\u2028x"'.encode()) + b"}\r\n"
    )  # fmt: skip
    result = CliRunner().invoke(main, ["log-check", str(log)])
    assert 1 == result.exit_code
    assert f"{log}:1: not UTF-8: byte 0xff at column " in result.stderr
    assert f"{log}:2: not JSON: the field 'a' appears twice in one object" in result.stderr
    assert f"{log}:3: (line): field name '_id': a name Elasticsearch refuses" in result.stderr
    assert f"{log}:3: (line): field name 'service.name': " in result.stderr
    assert "user.id" not in result.stderr
    assert f"{log}:4:" not in result.stderr
    assert "4 line(s) checked, 4 problem(s)\n" == result.stdout


def test_log_check_counts_a_large_capture_and_says_when_empty(tmp_path: Path) -> None:
    """20,000 lines (read one at a time: a capture was read whole, gigabytes of memory
    for a big one) are all counted; an empty input says it held no line."""
    log = tmp_path / "big.log"
    line = b"{" + _GOOD.encode() + b"}\n"
    with log.open("wb") as out:
        for _ in range(20):
            out.write(line * 1000)
    result = CliRunner().invoke(main, ["log-check", str(log)])
    assert (0, "20000 line(s) checked, 0 problem(s)\n") == (result.exit_code, result.stdout)
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    result = CliRunner().invoke(main, ["log-check", str(empty)])
    assert "0 line(s) checked, 0 problem(s) (the input held no line" in result.stdout


def test_own_checker_refuses_unknown_keywords() -> None:
    """A schema keyword the checker does not implement is an error, never skipped."""
    with pytest.raises(ValueError, match="maxItems"):
        list(problems(["x"], {"type": "array", "maxItems": 3}))


def test_a_closed_log_file_takes_no_file_again(tmp_path: Path) -> None:
    """Writing to a closed file output raises (the sink drops and counts the line)
    instead of taking ``app.log`` or a numbered sibling again for good."""
    file = RotatingFile(tmp_path / "app.log", 2048, 1)
    file.write(b"one\n")
    file.close()
    with pytest.raises(ValueError, match="closed log file"):
        file.write(b"two\n")
    other = RotatingFile(tmp_path / "app.log", 2048, 1)
    other.write(b"three\n")  # the path is free again: no app-1.log
    other.close()
    assert b"one\nthree\n" == (tmp_path / "app.log").read_bytes()
    assert not (tmp_path / "app-1.log").exists()
