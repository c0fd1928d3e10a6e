"""Fixtures of the stack tests: the demo configures logging, so reset it around each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from limone_obs.logging.setup import reset_for_tests


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    """No test inherits the logging settings of another (the demo app configures them)."""
    reset_for_tests()
    yield
    reset_for_tests()
