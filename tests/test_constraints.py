"""scripts/constraints.txt: the releases the two README commands install.

The pins keep CI on releases the suite passed with; these tests keep the pins honest: each
one is a release pyproject.toml allows, the prometheus-client pin is one the fast path was
tested against, and nothing is pinned twice.
"""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from limone_obs.exporter import fast_path
from tests.support import ROOT

CONSTRAINTS = ROOT / "scripts" / "constraints.txt"
#: ``name==version``, then at most a comment.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][^\s#]*)(\s+#.*)?$")


def _pins() -> list[tuple[str, Version]]:
    """Every ``name==version`` line of the file, in order; any other line fails the test."""
    pins: list[tuple[str, Version]] = []
    for number, raw in enumerate(CONSTRAINTS.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        found = PIN.match(line)
        assert found, f"{CONSTRAINTS.name}:{number}: not a 'name==version' pin: {raw!r}"
        pins.append((canonicalize_name(found.group(1)), Version(found.group(2))))
    return pins


def _requirements() -> dict[str, list[Requirement]]:
    """pyproject.toml's requirements (dependencies and every extra) by canonical name."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs.extend(extra)
    found: dict[str, list[Requirement]] = {}
    for spec in specs:
        requirement = Requirement(spec)
        found.setdefault(canonicalize_name(requirement.name), []).append(requirement)
    return found


def test_each_package_is_pinned_once() -> None:
    """Two pins of one package would leave pip nothing it can install."""
    names = [name for name, _ in _pins()]
    assert sorted({n for n in names if names.count(n) > 1}) == []
    assert len(names) >= 10, "the file lost its pins"


def test_every_pin_is_a_release_pyproject_allows() -> None:
    """A pin outside a range would make pip fail to resolve, or test another release."""
    requirements = _requirements()
    outside = [
        f"{name}=={version} not in {requirement}"
        for name, version in _pins()
        for requirement in requirements.get(name, [])
        if not requirement.specifier.contains(version, prereleases=True)
    ]
    assert outside == []


def test_the_kit_s_own_dependencies_are_pinned() -> None:
    """The libraries whose new releases can change the kit's behaviour or output, and
    the checks'. orjson is left out: its release of the .venv has no wheel for CPython
    3.15, and a pin would need a compiler there (scripts/constraints.txt)."""
    pinned = {name for name, _ in _pins()}
    wanted = {"flask", "werkzeug", "prometheus-client", "structlog", "python-json-logger",
              "grafanalib", "pyyaml", "click", "requests", "promql-parser", "ruff", "mypy",
              "pytest", "hypothesis", "packaging"}  # fmt: skip
    assert sorted(wanted - pinned) == []


def test_prometheus_client_pin_is_one_the_fast_path_was_tested_with() -> None:
    """Otherwise CI would run the public-API fallback, and the fast path would go untested
    (its tests skip on such a release; test_tested_release_uses_the_fast_path fails)."""
    (version,) = [str(v) for name, v in _pins() if name == "prometheus-client"]
    assert version in fast_path.TESTED_VERSIONS
