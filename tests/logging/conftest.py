"""Fixtures of the logging tests: a clean logging state per test, schema validation."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from jsonschema import Draft202012Validator

from limone_obs.logging.setup import reset_for_tests
from tests.logging.helpers import SCHEMA_FILE


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    """Every test starts and ends with default settings and no handler of ours."""
    reset_for_tests()
    yield
    reset_for_tests()


@pytest.fixture(scope="session")
def validator() -> Draft202012Validator:
    """A validator for the committed ``logging/log-event.schema.json``."""
    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


@pytest.fixture
def out() -> io.BytesIO:
    """A binary stream to log into."""
    return io.BytesIO()
