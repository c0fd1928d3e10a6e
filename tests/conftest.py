"""Fixtures shared by every test area; helpers live in ``tests.support``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT, UNTESTED_CLIENT


@pytest.fixture
def project_root() -> Path:
    """The repository root (holds alerts/slo.yaml and the artifact folders)."""
    return ROOT


@pytest.fixture(autouse=True)
def clean_multiproc_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test inherits PROMETHEUS_MULTIPROC_DIR from the shell or from an earlier test;
    tests that want it set it. Removed again after each test: a test that set it through
    ``os.environ`` would otherwise leak it into the next module's fixtures."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    yield
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.pop("prometheus_multiproc_dir", None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the ``fast_path`` tests where the fast path is never selected."""
    if UNTESTED_CLIENT is None:
        return
    for item in items:
        if item.get_closest_marker("fast_path") is not None:
            item.add_marker(pytest.mark.skip(reason=UNTESTED_CLIENT))
