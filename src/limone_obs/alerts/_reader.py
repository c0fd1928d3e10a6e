"""Reading the SLO spec's YAML: strict loading and typed field access with located errors.

Every error raised here is a :class:`SpecError` whose location names the file and the
field path (``alerts/slo.yaml: slos[1] (latency).objective``) and whose message gives the
value found and what is allowed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn

import yaml

from limone_obs.alerts import _durations
from limone_obs.errors import SpecError

_URL_RE: Final = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_MISSING: Final[Any] = object()


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a key written twice in one mapping (pyyaml keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} appears twice (lines {seen[key]} and {line})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node))


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_yaml(text: str, file: str) -> Any:
    """Parse ``text``; a syntax error or a repeated key becomes a SpecError naming the line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}: line {mark.line + 1}" if mark else file
        raise SpecError(where, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SpecError(file, f"invalid YAML: {exc}") from None


def kind_name(value: Any) -> str:
    """The YAML word for ``value``'s type, for messages (``a list``, ``a number``)."""
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    for typ, name in names.items():
        if isinstance(value, typ):
            return name
    return "a list" if isinstance(value, list) else "a mapping"


@dataclass(frozen=True)
class Reader:
    """Typed access to one mapping of the spec at ``path`` (``""`` for the top level)."""

    file: str
    path: str
    data: Mapping[str, Any]

    @classmethod
    def of(cls, file: str, path: str, value: Any) -> Reader:
        """Wrap ``value``, which must be a mapping with string keys."""
        if not isinstance(value, Mapping):
            raise SpecError(_join(file, path), f"must be a mapping, found {kind_name(value)}")
        for key in value:
            if not isinstance(key, str):
                raise SpecError(_join(file, path), f"key {key!r} must be a string")
        return cls(file, path, value)

    def where(self, key: str | None = None) -> str:
        """The location of ``key`` in this mapping (of the mapping itself when None)."""
        if key is None:
            return _join(self.file, self.path)
        return _join(self.file, f"{self.path}.{key}" if self.path else key)

    def fail(self, key: str | None, message: str) -> NoReturn:
        """Raise a SpecError located at ``key``."""
        raise SpecError(self.where(key), message)

    def only(self, allowed: Collection[str], what: str = "") -> None:
        """Reject keys outside ``allowed``, listing the allowed ones."""
        for key in self.data:
            if key not in allowed:
                scope = f" for {what}" if what else ""
                self.fail(key, f"unknown key {key!r}{scope}; allowed: {', '.join(sorted(allowed))}")

    def has(self, key: str) -> bool:
        """True if ``key`` is present (even with a null value)."""
        return key in self.data

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        """The value of ``key``; a missing required key is an error."""
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            self.fail(key, "is required")
        return default

    def child(self, key: str, default: Any = _MISSING) -> Reader:
        """The mapping at ``key`` as a Reader (``default`` when absent, e.g. ``{}``)."""
        path = f"{self.path}.{key}" if self.path else key
        return Reader.of(self.file, path, self.raw(key, default))

    def text(
        self, key: str, default: Any = _MISSING, pattern: str | None = None, hint: str = ""
    ) -> str:
        """A non-empty string; with ``pattern`` it must match that regex (``hint`` says how)."""
        value = self.raw(key, default)
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, found {kind_name(value)} {value!r}")
        if pattern is not None and re.fullmatch(pattern, value) is None:
            self.fail(key, f"{value!r} is not allowed: {hint or 'it must match'} ({pattern})")
        return value

    def choice(self, key: str, allowed: Collection[str], default: Any = _MISSING) -> str:
        """One of ``allowed``."""
        value = self.raw(key, default)
        if value not in allowed:
            self.fail(key, f"{value!r} is not allowed; use one of: {', '.join(sorted(allowed))}")
        return str(value)

    def number(self, key: str, default: Any = _MISSING) -> float:
        """An int or float (booleans are not numbers here)."""
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"must be a number, found {kind_name(value)} {value!r}")
        if not math.isfinite(value):
            self.fail(key, f"must be a finite number, found {value!r}")
        return float(value)

    def duration(self, key: str, default: Any = _MISSING) -> str:
        """A Prometheus duration with one unit: 30s, 5m, 1h, 3d, 2w."""
        value = self.raw(key, default)
        if not _durations.is_duration(value):
            self.fail(key, f"{value!r} is not a duration; write e.g. 30s, 5m, 1h, 3d or 2w")
        return str(value)

    def url(self, key: str, default: Any = _MISSING) -> str:
        """An absolute http(s) URL."""
        value = self.raw(key, default)
        if not isinstance(value, str) or _URL_RE.match(value) is None:
            self.fail(key, f"{value!r} is not an http:// or https:// URL")
        return value

    def items(self) -> list[tuple[str, Any]]:
        """The key/value pairs, in file order."""
        return list(self.data.items())


def _join(file: str, path: str) -> str:
    return f"{file}: {path}" if path else file
