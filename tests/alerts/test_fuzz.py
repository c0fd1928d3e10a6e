"""Any value in any field of the spec gives a valid model or a SpecError, never a crash.

The catalogue pass of ``limone-obs check`` runs on every input too and must not raise.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limone_obs.alerts import build
from limone_obs.alerts._reader import load_yaml
from limone_obs.alerts.cli import lint
from limone_obs.alerts.spec import parse_spec
from limone_obs.errors import SpecError
from tests.alerts.helpers import spec_text

BASE: dict[str, Any] = yaml.safe_load(spec_text())


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path of ``node``, parents before children."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        items: list[tuple[Any, Any]] = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        items = []
    for key, child in items:
        found.extend(_paths(child, (*prefix, key)))
    return found


PATHS = _paths(BASE)
#: A float rendered from NaN or infinity ("+Inf" buckets are written capitalised).
NON_FINITE = re.compile(rb"(?<![A-Za-z])(nan|inf)(?![A-Za-z])")
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _replaced(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=VALUES)
def test_any_field_value_is_accepted_or_reported(path: tuple[Any, ...], value: Any) -> None:
    """Replacing one field by any YAML value parses, or raises SpecError with a location."""
    text = yaml.safe_dump(_replaced(path, value), allow_unicode=True)
    outcome = _outcome(text)
    assert outcome in ("generated", "located error"), outcome


#: YAML's structural characters and the constructs the loader refuses, to splice in.
SPLICES = st.text(alphabet="[]{}&*?!:,-|>'\"#%@` \n\t\\abc01", max_size=40) | st.sampled_from(
    ["&a ", "*a", "? [a, b]\n: x\n", "[" * 300, "!!python/object:os.system ", "<<: *a\n"]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(at=st.integers(0, len(spec_text())), splice=SPLICES)
def test_any_text_spliced_into_the_spec_is_accepted_or_reported(at: int, splice: str) -> None:
    """Any characters inserted anywhere in the spec text: a model or a located SpecError."""
    text = spec_text()
    outcome = _outcome(text[:at] + splice + text[at:])
    assert outcome in ("generated", "located error"), outcome


def _outcome(text: str) -> str:
    """What parsing and generating ``text`` gave, as a word (or the unexpected error)."""
    try:
        lint(load_yaml(text, "alerts/slo.yaml"), "alerts/slo.yaml")  # check's catalogue pass
        files = build.generate(parse_spec(text))
    except SpecError as exc:
        return "located error" if exc.location.startswith("alerts/slo.yaml") else repr(exc)
    broken = [rel for rel, content in files.items() if NON_FINITE.search(content)]
    return f"non-finite number in {broken}" if broken else "generated"
