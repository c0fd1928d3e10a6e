"""The log line schema as data, the generator of ``logging/log-event.schema.json``, and
a small checker of exactly the rules it uses.

The schema is built from the field names in :mod:`limone_obs.conventions`, so the
document, the code and the tests cannot drift apart; ``limone-obs build`` writes it.
:func:`problems` checks an event against it without jsonschema (``log-check`` works on a
plain install); it knows the keywords this schema uses and refuses any other, so a
schema change can never be skipped silently (the tests compare it with jsonschema).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from limone_obs import conventions as c
from limone_obs.artifacts import Generated

SCHEMA_PATH = "logging/log-event.schema.json"
SCHEMA_ID = "https://limoneide.dev/schemas/log-event.schema.json"
_NON_EMPTY = {"type": "string", "minLength": 1}


def _properties() -> dict[str, Any]:
    return {
        c.LOG_TIMESTAMP: {
            "type": "string",
            "description": "UTC, RFC 3339 with milliseconds",
            "pattern": (
                r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
                r"T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)\.\d{3}Z$"
            ),
        },
        c.LOG_LEVEL: {"enum": list(c.LOG_LEVELS)},
        c.LOG_LOGGER: {**_NON_EMPTY, "description": "stdlib logger or structlog logger name"},
        c.LOG_MESSAGE: {"type": "string"},
        c.LOG_SERVICE: _NON_EMPTY,
        c.LOG_ENV: _NON_EMPTY,
        c.LOG_REQUEST_ID: {"type": "string", "pattern": r"^[A-Za-z0-9._:\-]{1,128}$"},
        c.LOG_TRACE_ID: {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        c.LOG_SPAN_ID: {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        c.LOG_METHOD: {"type": "string"},
        c.LOG_ENDPOINT: {"type": "string", "description": "Flask URL rule, <unmatched> if none"},
        c.LOG_PATH: {"type": "string"},
        c.LOG_STATUS_CODE: {"type": "integer", "minimum": 100, "maximum": 599},
        c.LOG_DURATION: {"type": "number", "minimum": 0, "description": "seconds"},
        c.LOG_USER_ID: {"type": "string", "maxLength": 256},
        c.LOG_CLIENT_ABORTED: {
            "const": True,
            "description": (
                "access line only: the server stopped sending the body before its end "
                "(the client went away mid-body); duration is the time until then"
            ),
        },
        c.LOG_EXCEPTION: _exception_schema(),
        c.LOG_TRUNCATED: {"const": True, "description": "the line was cut to the size cap"},
        c.LOG_ORIGINAL_BYTES: {"type": "integer", "minimum": 0},
    }


def _exception_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "message"],
        "properties": {
            "type": {"type": "string"},
            "message": {"type": "string"},
            "traceback": {
                "type": "string",
                "description": (
                    "the whole traceback, one string; left out of an access line when an "
                    "earlier line of the same request (same request_id: Flask's 'Exception "
                    "on ...' error line) carries it"
                ),
            },
        },
    }


def name_pattern() -> str:
    """The pattern every top-level field name matches: names Elasticsearch takes (it
    refuses the whole line otherwise). No part between dots (or the name's ends) that is
    empty or blank: not empty or blank itself, no dot first or last, no ``..``, no
    ``a. .b``; not starting with ``_`` (its metadata fields: ``_id``, ``_index``) or ``@``
    (``@timestamp``, which the shippers write); and no dotted name under a field of this
    schema (``service.name`` is read as an object where ``service`` is text). Written
    for both regex dialects a validator may use (ECMA-262's and Python's): the end of the
    name is ``(?![\\s\\S])``, not ``$``."""
    own = "|".join(re.escape(name) for name in _properties())
    end = r"(?![\s\S])"
    return rf"^(?!(?:[\s\S]*\.)?\s*(?:\.|{end}))(?![_@])(?!(?:{own})\.)"


#: What a name that does not match :func:`name_pattern` is told (log-check, the schema).
NAME_RULE = (
    "a name Elasticsearch refuses (empty or blank, or a blank part between dots; starting "
    "with _, @ or a dot; ending with a dot or holding two in a row; or a dotted name under "
    "a field of the schema): the kit writes such a name as extra_<name, dots as _>"
)


def field_rules() -> dict[str, Any]:
    """The schema of each named field (what :func:`problems` checks a field's value by)."""
    return _properties()


def schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) every log line validates against."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "limone-obs log event",
        "description": (
            "One JSON object per line, written by limone_obs.logging for app events "
            "(structlog), stdlib records and gunicorn. Generated by `limone-obs build` from "
            "limone_obs/logging/schema.py; do not edit. Other fields (extra=, keyword "
            "arguments) are allowed."
        ),
        "type": "object",
        "required": list(c.LOG_CORE_FIELDS),
        "propertyNames": {"pattern": name_pattern(), "description": NAME_RULE},
        "properties": _properties(),
        "additionalProperties": True,
    }


def render() -> bytes:
    """Return the schema document as committed: 2-space JSON, newline ended."""
    return (json.dumps(schema(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def artifacts(root: Path) -> Generated:  # noqa: ARG001 - the generator signature
    """``limone-obs build`` generator: ``logging/log-event.schema.json``."""
    return Generated(files={SCHEMA_PATH: render()})


#: Keywords :func:`problems` checks; ``$schema``, ``$id``, ``title`` and ``description``
#: are annotations.
_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description"})
_CHECKED = frozenset(
    {"type", "required", "properties", "additionalProperties", "enum", "const", "pattern",
     "minLength", "maxLength", "minimum", "maximum", "propertyNames"}
)  # fmt: skip


def problems(value: Any, node: dict[str, Any] | None = None, path: str = "") -> Iterator[str]:
    """Yield ``"<field path>: <message>"`` for each rule of the schema ``value`` breaks
    (``node`` defaults to the log event schema). Raises ValueError on a keyword it does
    not implement: a rule that is not checked must not pass silently."""
    node = schema() if node is None else node
    unknown = set(node) - _CHECKED - _ANNOTATIONS
    if unknown or node.get("additionalProperties", True) is not True:
        raise ValueError(f"log-check cannot check the schema keyword(s) {sorted(unknown)}")
    where = path or "(line)"
    if "type" in node and not _has_type(value, node["type"]):
        yield f"{where}: {value!r:.80} is not of type {node['type']!r}"
        return
    for message in _value_problems(value, node):
        yield f"{where}: {message}"
    if isinstance(value, dict):
        yield from _object_problems(value, node, path)


def checker(node: dict[str, Any]) -> Callable[[Any], bool]:
    """A test of one value against ``node`` that says what :func:`problems` would (True:
    no problem), made once: per log line, walking the schema costs microseconds a field.

    Fast for the scalar rules the request fields use (type, pattern, length, minimum,
    maximum); a node with any other keyword, and a dict value, are left to
    :func:`problems`.
    """
    rules = set(node) - _ANNOTATIONS
    if not rules <= {"type", "pattern", "minLength", "maxLength", "minimum", "maximum"}:
        return lambda value: next(problems(value, node), None) is None
    expected = node.get("type", ())
    types = tuple(_TYPES[name] for name in ([expected] if isinstance(expected, str) else expected))
    search = re.compile(node["pattern"]).search if "pattern" in node else None
    shortest, longest = node.get("minLength", 0), node.get("maxLength")
    low, high = node.get("minimum"), node.get("maximum")

    def check(value: Any) -> bool:
        if isinstance(value, dict) or (types and not any(t(value) for t in types)):
            return isinstance(value, dict) and next(problems(value, node), None) is None
        if isinstance(value, str):
            if len(value) < shortest or (longest is not None and len(value) > longest):
                return False
            if search is not None and not search(value):
                return False
        if not _is_number(value):
            return True
        # As problems() compares (NaN is neither below nor above a bound).
        return not ((low is not None and value < low) or (high is not None and value > high))

    if expected in ("integer", "number") and search is None:

        def check_int(value: Any) -> bool:
            """``check`` for a numeric rule, with a plain ``int`` (the usual value) first."""
            if type(value) is not int:
                return check(value)
            return not ((low is not None and value < low) or (high is not None and value > high))

        return check_int
    if expected != "string" or low is not None or high is not None:
        return check

    def check_text(value: Any) -> bool:
        """``check`` for a string rule, with a plain ``str`` (the usual value) tested first."""
        if type(value) is not str:
            return check(value)
        size = len(value)
        if size < shortest or (longest is not None and size > longest):
            return False
        return search is None or search(value) is not None

    return check_text


def _value_problems(value: Any, node: dict[str, Any]) -> Iterator[str]:
    if "enum" in node and not any(_same(value, option) for option in node["enum"]):
        yield f"{value!r:.80} is not one of {node['enum']!r}"
    if "const" in node and not _same(value, node["const"]):
        yield f"{node['const']!r} was expected"
    if isinstance(value, str):
        if len(value) < node.get("minLength", 0):
            yield f"{value!r:.80} is too short"
        if len(value) > node.get("maxLength", len(value)):
            yield f"{value!r:.80} is longer than {node['maxLength']} characters"
        if "pattern" in node and not re.search(node["pattern"], value):
            yield f"{value!r:.80} does not match {node['pattern']!r}"
    if _is_number(value):
        if "minimum" in node and value < node["minimum"]:
            yield f"{value!r} is less than the minimum of {node['minimum']!r}"
        if "maximum" in node and value > node["maximum"]:
            yield f"{value!r} is greater than the maximum of {node['maximum']!r}"


def _object_problems(value: dict[str, Any], node: dict[str, Any], path: str) -> Iterator[str]:
    names = node.get("propertyNames")
    if names is not None:
        unknown = set(names) - {"pattern"} - _ANNOTATIONS
        if unknown:
            raise ValueError(f"log-check cannot check the schema keyword(s) {sorted(unknown)}")
        for name in value:
            if not re.search(names["pattern"], name):
                told = names.get("description") or f"does not match {names['pattern']!r}"
                yield f"{path or '(line)'}: field name {name!r:.80}: {told}"
    for name in node.get("required", ()):
        if name not in value:
            yield f"{path or '(line)'}: {name!r} is a required property"
    for name, sub in node.get("properties", {}).items():
        if name in value:
            yield from problems(value[name], sub, f"{path}.{name}" if path else name)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    # JSON Schema: a number with a zero fractional part (200.0) is an integer.
    "integer": lambda v: _is_number(v) and (isinstance(v, int) or float(v).is_integer()),
}


def _has_type(value: Any, expected: str | list[str]) -> bool:
    names = [expected] if isinstance(expected, str) else expected
    return any(_TYPES[name](value) for name in names)


def _same(value: Any, option: Any) -> bool:
    """JSON equality: ``true`` is not ``1``."""
    if isinstance(value, bool) or isinstance(option, bool):
        return value is option
    return bool(value == option)
