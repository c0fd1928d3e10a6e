"""Fixtures of the stack tests: reset logging around each test; no inherited admin token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from limone_obs import conventions as c
from limone_obs.logging.setup import reset_for_tests


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    """No test inherits the logging settings of another (the demo app configures them)."""
    reset_for_tests()
    yield
    reset_for_tests()


@pytest.fixture(autouse=True)
def no_admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token in the developer's environment must not change the demo's admin rules."""
    monkeypatch.delenv(c.DEMO_ADMIN_TOKEN_ENV, raising=False)
