"""Fixtures shared by the exporter's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import values

from tests.exporter.helpers import UNTESTED_CLIENT


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the ``fast_path`` tests where the fast path is never selected."""
    if UNTESTED_CLIENT is None:
        return
    for item in items:
        if item.get_closest_marker("fast_path") is not None:
            item.add_marker(pytest.mark.skip(reason=UNTESTED_CLIENT))


@pytest.fixture
def mp_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Multiprocess mode in this process (an empty directory), prometheus-client's value
    class restored after."""
    path = tmp_path / "mp"
    path.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())  # type: ignore[no-untyped-call]
    return path
