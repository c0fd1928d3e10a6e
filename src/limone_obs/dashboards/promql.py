"""PromQL of a dashboard, read with a real parser (``promql-parser``, Prometheus' grammar).

Grafana queries are not PromQL until Grafana expands their variables: ``[$__rate_interval]``
does not parse. :func:`parse` first replaces every variable outside a string literal
(``$__rate_interval`` and ``$__range`` by durations no dashboard writes, so the linter can
still tell them from a hard-coded window; any other variable by ``1``) and leaves
variables inside string literals (``job="$job"``) as they are. What the linter needs is
then read from the syntax tree: vector selectors, range windows and what ``rate()`` is
applied to. A syntax error raises :class:`PromQLSyntaxError` with the parser's message.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

import promql_parser

from limone_obs.alerts.selectors import check_regex, promql_unquote

#: Stand-ins for Grafana's range variables: durations no dashboard would type by hand.
RANGE_STAND_INS: dict[str, str] = {
    "__rate_interval": "7777777ms",
    "__range": "8888888ms",
    "__interval": "9999999ms",
}
#: Stand-in of every other variable outside a string (``offset ${baseline}s``).
OTHER_STAND_IN = "1"
_COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
_RANGE_FUNCTIONS = frozenset({"rate", "irate", "increase"})
#: ``$name``, ``${name}``, ``${name:format}``, ``${__value.raw}``, ``[[name]]``.
VARIABLE = re.compile(r"\$\{(\w+)[^}]*\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")
_STRING_OR_VARIABLE = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)|' + VARIABLE.pattern,
    re.DOTALL,
)


class PromQLSyntaxError(ValueError):
    """The expression is not PromQL (after variable expansion); the message says why."""


@dataclass(frozen=True)
class Selector:
    """A vector selector: its metric ``name`` (may be empty) and ``(label, op, value)``."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]

    @property
    def recording_rule(self) -> bool:
        """Recording rules have a colon in their name (``slo:sli_error:ratio_rate5m``)."""
        return ":" in self.name

    def value_of(self, label: str) -> str | None:
        """The value of the first matcher on ``label``, or None."""
        return next((value for name, _, value in self.matchers if name == label), None)

    def __str__(self) -> str:
        inner = ", ".join(f'{name}{op}"{value}"' for name, op, value in self.matchers)
        return f"{self.name}{{{inner}}}"


@dataclass(frozen=True)
class Reading:
    """What the linter reads in one expression."""

    selectors: tuple[Selector, ...]
    #: Every range window and subquery range, as written (``$__rate_interval``, ``5m``),
    #: but the lookbacks of :data:`_LOOKBACK_FUNCTIONS` (how far back a value counts as
    #: seen: no rate, so no reason to follow the scrape interval).
    ranges: tuple[str, ...]
    #: ``(function, series)`` of every rate/irate/increase applied to a series directly.
    rate_arguments: tuple[tuple[str, str], ...]


def substitute(expr: str) -> str:
    """``expr`` with every variable outside a string literal replaced by its stand-in."""

    def sub(match: re.Match[str]) -> str:
        if match.group("string") is not None:
            return match.group()
        name = next(g for g in match.groups()[1:] if g)
        if name.isdigit():
            return match.group()
        return RANGE_STAND_INS.get(name, OTHER_STAND_IN)

    return _STRING_OR_VARIABLE.sub(sub, expr)


#: A regex matcher's string (``=~"..."``, ``!~'...'``): checked as Prometheus' RE2, not
#: by the parser's own regex engine (Rust's, which lacks ``\Q...\E`` and octal escapes).
_REGEX_MATCHER = re.compile(
    r'(\w*)(\s*)(=~|!~)(\s*)("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)', re.DOTALL
)
_REGEX_STAND_IN = "__limone_obs_regex_{}__"


def parse(expr: str) -> promql_parser.Expr:
    """The syntax tree of dashboard query ``expr``; PromQLSyntaxError if it is not PromQL."""
    return _parse(expr)[0]


def _parse(expr: str) -> tuple[promql_parser.Expr, dict[str, str]]:
    """:func:`parse`, and the regexes its matchers hold by their stand-ins' names: each
    is checked as Prometheus reads it (:func:`limone_obs.alerts.selectors.check_regex`)
    and parsed as a stand-in."""
    regexes: dict[str, str] = {}

    def stand_in(match: re.Match[str]) -> str:
        label, space, op, gap, literal = match.groups()
        try:
            value = promql_unquote(literal)
            check_regex(label, value)
        except ValueError as exc:
            raise PromQLSyntaxError(str(exc)) from None
        name = _REGEX_STAND_IN.format(len(regexes))
        regexes[name] = value
        return f'{label}{space}{op}{gap}"{name}"'

    try:
        tree = promql_parser.parse(substitute(_REGEX_MATCHER.sub(stand_in, expr)))
    except ValueError as exc:
        raise PromQLSyntaxError(str(exc)) from None
    return tree, regexes


_STAND_IN_NAMES = {
    promql_parser.parse_duration(duration): f"${name}" for name, duration in RANGE_STAND_INS.items()
}


def _window(delta: timedelta) -> str:
    return _STAND_IN_NAMES.get(delta) or promql_parser.display_duration(delta)


def _selector(node: promql_parser.VectorSelector, regexes: Mapping[str, str]) -> Selector:
    found = tuple(
        (m.name, _OPS.get(str(m.op), str(m.op)), regexes.get(m.value, m.value))
        for m in node.matchers.matchers
    )
    name = node.name or next((v for n, _, v in found if n == "__name__"), "")
    return Selector(name, tuple(m for m in found if m[0] != "__name__"))


_OPS = {
    "MatchOp.Equal": "=",
    "MatchOp.NotEqual": "!=",
    "MatchOp.Re": "=~",
    "MatchOp.NotRe": "!~",
}


#: Functions whose window is a lookback (the last value seen within it), not a rate.
_LOOKBACK_FUNCTIONS = frozenset({"last_over_time", "present_over_time"})


def _window_key(node: object, regexes: Mapping[str, str]) -> tuple[str, str] | None:
    """(series name, or "" for a subquery; window) of a range selector or subquery node,
    None for any other node or one without a window."""
    if isinstance(node, promql_parser.MatrixSelector) and node.range is not None:
        return _selector(node.vector_selector, regexes).name, _window(node.range)
    if isinstance(node, promql_parser.SubqueryExpr) and node.range is not None:
        return "", _window(node.range)
    return None


def read(expr: str) -> Reading:
    """Selectors, windows and rate() arguments of ``expr`` (PromQLSyntaxError if invalid)."""
    selectors: list[Selector] = []
    ranges: list[str] = []
    rates: list[tuple[str, str]] = []

    tree, regexes = _parse(expr)
    # The windows of lookback calls, by what they hold: the walk visits a call, then at
    # once its argument (depth first), so that argument is the next window of its key. The
    # nodes themselves cannot be told apart: the parser hands out new wrappers each time.
    lookbacks: Counter[tuple[str, str]] = Counter()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append(_selector(node, regexes))
        elif isinstance(node, promql_parser.MatrixSelector | promql_parser.SubqueryExpr):
            key = _window_key(node, regexes)
            if key is not None and lookbacks[key]:
                lookbacks[key] -= 1
            elif key is not None:
                ranges.append(key[1])
        elif isinstance(node, promql_parser.Call) and node.func.name in _LOOKBACK_FUNCTIONS:
            keys = (_window_key(arg, regexes) for arg in node.args)
            lookbacks.update(key for key in keys if key is not None)
        elif isinstance(node, promql_parser.Call) and node.func.name in _RANGE_FUNCTIONS:
            arg = node.args[0] if node.args else None
            if isinstance(arg, promql_parser.MatrixSelector):
                rates.append((node.func.name, _selector(arg.vector_selector, regexes).name))

    promql_parser.walk(tree, pre_visit=visit)
    return Reading(tuple(selectors), tuple(ranges), tuple(rates))


def selectors(expr: str) -> Iterator[Selector]:
    """Every vector selector of ``expr``, in order."""
    yield from read(expr).selectors


def ranges(expr: str) -> list[str]:
    """Every range window and subquery range of ``expr`` (Grafana's variables by name)."""
    return list(read(expr).ranges)


def rate_arguments(expr: str) -> Iterator[tuple[str, str]]:
    """``(function, series name)`` for every ``rate``/``irate``/``increase`` of a selector."""
    yield from read(expr).rate_arguments


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
