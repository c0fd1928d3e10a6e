"""Helpers of the alerts tests: the committed spec's text and small edits of it."""

from __future__ import annotations

from pathlib import Path

from limone_obs.alerts.spec import SPEC_PATH, ServiceSpec, parse_spec
from tests.support import ROOT

SPEC_FILE = ROOT / SPEC_PATH


def spec_text() -> str:
    """The committed ``alerts/slo.yaml``."""
    return SPEC_FILE.read_text(encoding="utf-8")


def edited(old: str, new: str, text: str | None = None) -> str:
    """The spec text with the first ``old`` replaced by ``new`` (``old`` must occur)."""
    text = spec_text() if text is None else text
    assert old in text, f"{old!r} not in the spec: the test's edit no longer applies"
    return text.replace(old, new, 1)


def parse_edited(old: str, new: str) -> ServiceSpec:
    """Parse the committed spec after one edit."""
    return parse_spec(edited(old, new))


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path -> bytes) below ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` by relative path, to compare before and after."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
