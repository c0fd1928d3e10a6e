"""Just enough PromQL reading for the linter: selectors, range windows, rate() arguments.

This is not a parser (promtool and Prometheus are, and the tests use them): it splits an
expression into strings, ``{...}`` matcher blocks, identifiers and other characters,
which is enough to find every vector selector and what ``rate()`` is applied to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

_TOKEN = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)'
    r'|(?P<braces>\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*\})'
    r"|(?P<range>\[[^\]]*\])"
    r"|(?P<ident>[A-Za-z_:][\w:]*)"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)",
    re.DOTALL,
)
#: Words that look like identifiers but are not series names.
_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "atan2",
        "start",
        "end",
    }
)
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
_RANGE_FUNCTIONS = frozenset({"rate", "irate", "increase"})
#: ``$name``, ``${name}``, ``${name:format}``, ``${__value.raw}``, ``[[name]]``.
VARIABLE = re.compile(r"\$\{(\w+)[^}]*\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")


@dataclass(frozen=True)
class Token:
    """One lexical piece of an expression (``kind`` is a group name of ``_TOKEN``)."""

    kind: str
    text: str


@dataclass(frozen=True)
class Selector:
    """A vector selector: ``name`` (may be empty) and its ``{...}`` block (may be empty)."""

    name: str
    matchers: str

    @property
    def recording_rule(self) -> bool:
        """Recording rules have a colon in their name (``slo:sli_error:ratio_rate5m``)."""
        return ":" in self.name


def tokens(expr: str) -> list[Token]:
    """Split ``expr`` into tokens, whitespace dropped."""
    out = []
    for match in _TOKEN.finditer(expr):
        kind = match.lastgroup or "other"
        if kind != "space":
            out.append(Token(kind, match.group()))
    return out


def _grouping_labels(toks: list[Token]) -> set[int]:
    """Indexes of the label names inside ``by (...)``, ``on (...)``... lists."""
    inside: set[int] = set()
    for i, tok in enumerate(toks):
        if tok.kind == "ident" and tok.text in _GROUPING and i + 1 < len(toks):
            j = i + 2 if toks[i + 1].text == "(" else len(toks)
            while j < len(toks) and toks[j].text != ")":
                inside.add(j)
                j += 1
    return inside


def selectors(expr: str) -> Iterator[Selector]:
    """Every vector selector of ``expr``, in order."""
    toks = tokens(expr)
    labels = _grouping_labels(toks)
    for i, tok in enumerate(toks):
        after = toks[i + 1] if i + 1 < len(toks) else Token("end", "")
        if tok.kind == "ident" and i not in labels and tok.text not in _KEYWORDS:
            if after.text != "(" and after.text not in _GROUPING:  # sum by (...) (...)
                yield Selector(tok.text, after.text if after.kind == "braces" else "")
        elif tok.kind == "braces" and (i == 0 or toks[i - 1].kind != "ident"):
            yield Selector("", tok.text)


def ranges(expr: str) -> list[str]:
    """The text inside every ``[...]`` range or subquery of ``expr``."""
    return [t.text[1:-1].strip() for t in tokens(expr) if t.kind == "range"]


def rate_arguments(expr: str) -> Iterator[tuple[str, str]]:
    """``(function, series name)`` for every ``rate``/``irate``/``increase`` of a selector."""
    toks = tokens(expr)
    for i, tok in enumerate(toks[:-2]):
        if tok.kind == "ident" and tok.text in _RANGE_FUNCTIONS and toks[i + 1].text == "(":
            arg = toks[i + 2]
            follows = toks[i + 3] if i + 3 < len(toks) else Token("end", "")
            if arg.kind == "ident" and follows.text != "(":
                yield tok.text, arg.text


def is_counter(name: str) -> bool:
    """True for names a counter or histogram exposes (``_total``, ``_count``...)."""
    return name.endswith(_COUNTER_SUFFIXES)


def variables(text: str) -> set[str]:
    """Names of the dashboard variables ``text`` refers to (builtins ``__*`` included)."""
    found = set()
    for match in VARIABLE.finditer(text):
        name = next(g for g in match.groups() if g)
        if not name.isdigit():
            found.add(name)
    return found


def expand(expr: str, values: Mapping[str, str]) -> str:
    """Replace every ``$var``/``${var}``/``[[var]]`` of ``values`` in ``expr``.

    Raise KeyError naming a variable that ``values`` does not define.
    """

    def sub(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name.isdigit():
            return match.group()
        return values[name]

    return VARIABLE.sub(sub, expr)
