"""Helpers shared by the tests of every area (import as ``tests.support``).

Integration tests ask for real binaries with :func:`need`: missing locally, the test is
skipped with the install command; missing with ``CI=true``, the test fails, so CI can
never pass by skipping what it must run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from limone_obs.stack import procs

ROOT = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where missing binaries are failures."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(service: str) -> str:
    """Return the path of ``service`` (see ``procs.BINARIES``); skip locally, fail in CI."""
    path = procs.find_binary(service)
    if path is None:
        message = f"{service} is not installed: {procs.install_hint(service)}"
        if in_ci():
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return path
