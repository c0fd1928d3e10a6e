"""Fixtures shared by every test area; helpers live in ``tests.support``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ROOT


@pytest.fixture
def project_root() -> Path:
    """The repository root (holds alerts/slo.yaml and the artifact folders)."""
    return ROOT


@pytest.fixture(autouse=True)
def clean_multiproc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test inherits PROMETHEUS_MULTIPROC_DIR from the shell; tests that want it set it."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
