"""The committed schema file, the ``log-check`` command and file output with rotation."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from limone_obs.cli import main
from limone_obs.errors import ConfigError
from limone_obs.logging import configure_logging, get_logger
from limone_obs.logging.schema import SCHEMA_PATH, artifacts, render, schema
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
    log.write_text('plain text\n{"level": "LOUD"}\n')
    result = CliRunner().invoke(main, ["log-check", str(log)])
    assert 1 == result.exit_code
    assert f"{log}:1: not JSON" in result.stderr
    assert f"{log}:2: level:" in result.stderr


def test_file_output_rotates(tmp_path: Path) -> None:
    """With ``file=``, lines also go to a file rotated at file_max_bytes, backups kept."""
    path = tmp_path / "app.log"
    configure_logging(stream=io.BytesIO(), file=path, file_max_bytes=2048, file_backups=2)
    for n in range(60):
        get_logger().info("line", n=n, pad="x" * 100)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert ["app.log", "app.log.1", "app.log.2"] == names
    sizes = [p.stat().st_size for p in tmp_path.iterdir()]
    assert all(size <= 2048 for size in sizes)
    assert 59 == parse_lines(path.read_bytes())[-1]["n"]


def test_unwritable_file_is_a_config_error(tmp_path: Path) -> None:
    """A log file that cannot be opened is a ConfigError naming it."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="not-a-dir"):
        configure_logging(file=blocker / "app.log")
