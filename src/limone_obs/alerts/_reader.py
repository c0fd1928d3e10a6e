"""Reading the SLO spec's YAML: strict, bounded loading and typed field access with located errors.

Every error raised here is a :class:`SpecError` whose location names the file and the
field path (``alerts/slo.yaml: slos[1] (latency).objective``) and whose message gives the
value found (cut to :data:`SHOWN_CHARS` characters) and what is allowed.

Loading is bounded whatever the input: a text over :data:`MAX_SPEC_BYTES` is refused
before parsing, anchors and aliases (``&x`` / ``*x``, the "billion laughs" expansion) are
refused where they appear, nesting deeper than :data:`MAX_DEPTH` is refused before the
parser recurses, and a key must be a plain scalar (``? [a, b]`` is refused).
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import re
import reprlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn

import yaml

from limone_obs.alerts import _durations
from limone_obs.errors import SpecError

_URL_RE: Final = re.compile(r"^https?://[^\s/]+(/\S*)?$")
#: The shortest window of a rate: the generated tests sample once a minute, and the rules
#: allow a scrape interval up to 1m (a window holding under two samples has no rate).
SHORTEST_WINDOW: Final = "1m"
#: The longest ``for`` outside a burn tier (whose limit is its short window): the
#: generated tests evaluate every minute through it (a tier's 1d took promtool 7 minutes).
LONGEST_WAIT: Final = "6h"
_MISSING: Final[Any] = object()
#: Largest spec accepted, in bytes (UTF-8): real specs are a few kilobytes (about 400
#: bytes per SLO), and pure-Python YAML reads roughly 50-100 KB per second.
MAX_SPEC_BYTES: Final = 256 * 1024
#: Deepest nesting of lists and mappings accepted; the spec itself needs 5 levels.
MAX_DEPTH: Final = 50
#: Longest rendering of a value inside an error message.
SHOWN_CHARS: Final = 80
#: Longest error message (the value parts are already cut; this bounds the rest).
MAX_MESSAGE_CHARS: Final = 600

_SHOWN = reprlib.Repr()
_SHOWN.maxstring = SHOWN_CHARS
_SHOWN.maxother = SHOWN_CHARS
_SHOWN.maxlist = _SHOWN.maxdict = _SHOWN.maxtuple = _SHOWN.maxset = 4
_SHOWN.maxlevel = 2


def shown(value: Any) -> str:
    """``repr(value)`` cut to about :data:`SHOWN_CHARS` characters, for error messages.

    reprlib stops at a few items and two levels, so the cost does not grow with the value.
    """
    text = _SHOWN.repr(value)
    return text if len(text) <= SHOWN_CHARS + 10 else text[:SHOWN_CHARS] + "..."


def cut(message: str) -> str:
    """``message`` cut to :data:`MAX_MESSAGE_CHARS`, saying how much was left out."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return f"{message[:MAX_MESSAGE_CHARS]}... ({len(message) - MAX_MESSAGE_CHARS} characters cut)"


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader without aliases, complex keys, deep nesting or repeated keys.

    pyyaml keeps the last of two equal keys and expands aliases into shared objects that
    blow up when printed; both are refused here at the node that shows them.
    """

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """pyyaml's hook for every node: refuse aliases, anchors and deep nesting first."""
        event = self.peek_event()  # type: ignore[no-untyped-call]  # pyyaml is untyped
        if isinstance(event, yaml.AliasEvent):
            raise _refused(
                "an alias (*name) is not allowed in the spec: write the value out", event
            )
        if getattr(event, "anchor", None) is not None:
            raise _refused("an anchor (&name) is not allowed in the spec: write values out", event)
        if self.depth >= MAX_DEPTH:
            raise _refused(f"nesting deeper than {MAX_DEPTH} levels is not allowed", event)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _refused(problem: str, event: Any) -> yaml.composer.ComposerError:
    return yaml.composer.ComposerError(None, None, problem, event.start_mark)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a key must be a plain word or string, not a list or mapping (? [a, b])",
                key_node.start_mark,
            )
        key = loader.construct_object(key_node)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {shown(key)} appears twice (lines {seen[key]} and {line})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node))


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


@functools.lru_cache(maxsize=4)
def _parsed(text: str) -> Any:
    """The YAML data of ``text``, kept for the next caller of the same text.

    ``limone-obs build`` reads the spec once per area (alerts, dashboards, compose): the
    text is parsed once; each caller gets its own deep copy.
    """
    return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass


def load_yaml(text: str, file: str) -> Any:
    """Parse ``text``; any YAML problem becomes a SpecError naming the line.

    Refused with a located error: more than :data:`MAX_SPEC_BYTES` (before parsing),
    anchors and aliases, nesting deeper than :data:`MAX_DEPTH`, non-scalar keys and
    a key written twice in one mapping. The same text is parsed only once per process
    (the result is cached; each call returns a fresh copy).
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SPEC_BYTES:
        raise SpecError(
            file, f"is {size} bytes, over the {MAX_SPEC_BYTES}-byte limit of a spec: not parsed"
        )
    try:
        return copy.deepcopy(_parsed(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}: line {mark.line + 1}" if mark else file
        problem = f"invalid YAML: {exc.problem or exc.context}"
        hint = _hint(str(exc.problem or exc.context))
        if mark is not None and hint is not None:
            problem += f": {hint} (line {mark.line + 1}: {_line(text, mark.line)!r})"
        raise SpecError(where, cut(problem)) from None
    except yaml.YAMLError as exc:
        raise SpecError(file, cut(f"invalid YAML: {exc}")) from None


#: What PyYAML's words (they name a token, not the mistake) most likely mean.
_HINTS = (
    ("expected <block end>", "most likely this line or the one above is indented wrongly "
     "(spaces only; the keys of one mapping at one depth)"),
    ("mapping values are not allowed", "most likely a second `key:` on this line (quote a "
     "value holding ': '), or a line indented deeper than the key above it"),
)  # fmt: skip


def _hint(problem: str) -> str | None:
    return next((hint for words, hint in _HINTS if words in problem), None)


def _line(text: str, index: int) -> str:
    """Line ``index`` (0-based) of ``text``, cut to 80 characters."""
    lines = text.splitlines()
    return lines[index][:80] if 0 <= index < len(lines) else ""


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
                raise SpecError(_join(file, path), f"key {shown(key)} must be a string")
        return cls(file, path, value)

    def where(self, key: str | None = None) -> str:
        """The location of ``key`` in this mapping (of the mapping itself when None)."""
        if key is None:
            return _join(self.file, self.path)
        return _join(self.file, f"{self.path}.{key}" if self.path else key)

    def fail(self, key: str | None, message: str) -> NoReturn:
        """Raise a SpecError located at ``key``; ``message`` is cut to a bounded length."""
        raise SpecError(self.where(key), cut(message))

    def only(self, allowed: Collection[str], what: str = "") -> None:
        """Reject keys outside ``allowed``, listing the allowed ones (the first one found)."""
        for error in self.unknown(allowed, what):
            raise error

    def unknown(self, allowed: Collection[str], what: str = "") -> list[SpecError]:
        """One located error per key outside ``allowed``, each listing the allowed ones
        after the closest of them, if one is close (``did you mean threshold_seconds?``)."""
        scope = f" for {what}" if what else ""
        listed = ", ".join(sorted(allowed))
        return [
            SpecError(
                self.where(key),
                cut(
                    f"unknown key {shown(key)}{scope}; {did_you_mean(key, allowed)}"
                    f"allowed: {listed}"
                ),
            )
            for key in self.data
            if key not in allowed
        ]

    def meant(self, allowed: Collection[str]) -> set[str]:
        """The keys of ``allowed`` that a key outside them is a close misspelling of (what
        :meth:`unknown` suggests: ``treshold_seconds`` -> ``threshold_seconds``)."""
        meant = (closest(str(key), allowed) for key in self.data if key not in allowed)
        return {key for key in meant if key is not None}

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
            self.fail(key, f"must be a non-empty string, found {kind_name(value)} {shown(value)}")
        if pattern is not None and re.fullmatch(pattern, value) is None:
            self.fail(key, f"{shown(value)} is not allowed: {hint or 'it must match'} ({pattern})")
        return value

    def choice(self, key: str, allowed: Collection[str], default: Any = _MISSING) -> str:
        """One of ``allowed`` (a misspelt word is told the closest one)."""
        value = self.raw(key, default)
        if value not in allowed:
            hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
            listed = ", ".join(sorted(allowed))
            self.fail(key, f"{shown(value)} is not allowed; {hint}use one of: {listed}")
        return str(value)

    def number(self, key: str, default: Any = _MISSING) -> float:
        """An int or float (booleans are not numbers here)."""
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            found = f"{kind_name(value)} {shown(value)}"
            # A time in seconds written with its unit (threshold_seconds: 300ms).
            seconds = key.endswith("_seconds")
            hint = plain_number_hint(value, seconds)
            if key in _RATE_KEYS and isinstance(value, str) and value.strip().endswith("%"):
                # "write 5" would set 5 events per second: most services' alerts quiet.
                hint = (
                    f": {key} is events per second (below it the rate alerts stay quiet), "
                    "not a share: write a rate such as 0.1 (one event every 10 s)"
                )
            self.fail(key, f"must be a number, found {found}{hint}")
        if not math.isfinite(value):
            self.fail(key, f"must be a finite number, found {shown(value)}")
        return float(value)

    def duration(
        self, key: str, default: Any = _MISSING, examples: str = "30s, 5m, 1h, 3d or 2w"
    ) -> str:
        """A Prometheus duration with one unit, greater than zero: 30s, 5m, 1h, 3d, 2w.

        ``examples`` are the values a message suggests (``28d or 30d`` for a period).
        """
        value = self.raw(key, default)
        if _durations.is_zero(value):
            self.fail(key, f"{shown(value)} must be greater than zero; write e.g. {examples}")
        if not _durations.is_duration(value):
            self.fail(key, f"{shown(value)} is not a duration; write e.g. {examples}")
        if _durations.seconds(str(value)) > _LONGEST_SECONDS:
            self.fail(
                key,
                f"{shown(value)} is beyond what Prometheus' durations reach (about 292 "
                f"years: it would refuse the rules); write e.g. {examples}",
            )
        return str(value)

    def window(self, key: str, default: Any = _MISSING) -> str:
        """:meth:`duration` of a rate's window: at least :data:`SHORTEST_WINDOW`."""
        value = self.duration(key, default)
        if _durations.seconds(value) < _durations.seconds(SHORTEST_WINDOW):
            self.fail(
                key,
                f"{shown(value)} is shorter than {SHORTEST_WINDOW}: a rate over it holds "
                "fewer than two samples at the 1m scrape interval the rules allow (and in "
                "the generated tests), so its alert never fires; use at least "
                f"{SHORTEST_WINDOW} (5m is usual)",
            )
        return value

    def wait(self, key: str, default: Any = _MISSING, longest: str = LONGEST_WAIT) -> str:
        """:meth:`duration` of an alert's ``for``: at most ``longest``."""
        value = self.duration(key, default)
        if _durations.seconds(value) > _durations.seconds(longest):
            self.fail(
                key,
                f"{shown(value)} is longer than {longest}: the alert would wait longer than "
                f"it can be of use; use at most {longest}",
            )
        return value

    def url(self, key: str, default: Any = _MISSING) -> str:
        """An absolute http(s) URL."""
        value = self.raw(key, default)
        if not isinstance(value, str) or _URL_RE.match(value) is None:
            self.fail(key, f"{shown(value)} is not an http:// or https:// URL")
        return value

    def items(self) -> list[tuple[str, Any]]:
        """The key/value pairs, in file order."""
        return list(self.data.items())


#: Prometheus' longest duration: a Go time.Duration, 2**63 - 1 nanoseconds.
_LONGEST_SECONDS = (2**63 - 1) // 10**9


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``did you mean <choice>? `` for the choice closest to a misspelt ``word``, or ``""``
    when none is close; put it before the rest of the message."""
    close = closest(word, choices)
    return f"did you mean {close}? " if close else ""


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to a misspelt ``word``, or None when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


#: A duration written with its unit where seconds are asked for (``300ms``, ``2 s``).
_WITH_UNIT = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|sec|secs|seconds?)", re.I)
_UNIT_SECONDS = {"ms": 0.001, "m": 60.0}


#: Keys whose number is a rate of events per second: a % sign there is no share to drop.
_RATE_KEYS = frozenset({"min_rate"})


def plain_number_hint(value: Any, seconds: bool = False) -> str:
    """``: write 99.9 ...`` for a string that is a number once its % sign or quotes go
    (``objective: 99.9%`` is a string in YAML), and where ``seconds`` are asked for,
    ``: write 0.3 ...`` for a time with its unit (``300ms``); empty for any other value."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    with_unit = _WITH_UNIT.fullmatch(text) if seconds else None
    if with_unit is not None:
        unit = with_unit.group(2).lower()
        amount = float(with_unit.group(1)) * _UNIT_SECONDS.get(unit, 1.0)
        return f": write {amount:g}, a plain number of seconds without a unit"
    bare = text.removesuffix("%").strip()
    try:
        number = float(bare)
    except ValueError:
        return ""
    if not math.isfinite(number):
        return f": {bare} is beyond any finite number (YAML reads it as text); write a finite one"
    if not isinstance(yaml.safe_load(bare), int | float):
        # YAML 1.1 reads 1e6 or 2.5e3 (no dot, or no sign in the exponent) as text.
        shown_number = (
            f"{number:f}".rstrip("0").rstrip(".") if 1e-4 <= abs(number) < 1e15 else f"{number:.1e}"
        )
        return f": YAML reads {bare} as text, quoted or not; write {shown_number}"
    return f": write {bare}, a plain number without {'%' if text.endswith('%') else 'quotes'}"


def _join(file: str, path: str) -> str:
    return f"{file}: {path}" if path else file
