"""Fixtures shared by the exporter's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import values


@pytest.fixture
def mp_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Multiprocess mode in this process (an empty directory), prometheus-client's value
    class restored after."""
    path = tmp_path / "mp"
    path.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())  # type: ignore[no-untyped-call]
    return path
