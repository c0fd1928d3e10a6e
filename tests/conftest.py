"""Fixtures shared by every test area; helpers live in ``tests.support``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT


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
