"""Label sets that a selector matches (or not), for the generated promtool input series.

The generated tests must feed the rules series that the spec's own selectors pick up: a
"good" series counted in ``total`` but not in ``errors``, a "bad" one counted in both. The
values come from the matchers themselves (``status="500"``), a short list of usual label
values, then for a regex the shortest strings it spells out (``/invoices/.*`` ->
``/invoices/``, ``GET|POST`` -> ``GET``, ``POST``), tried in that order; a selector none
of them satisfies cannot be tested, which the spec validation reports. For a label of an
exporter series whose values are known (``result`` of the RUM beacons, ``status``), only
those values are tried: a series the exporter never writes proves nothing, and a typo
(``result!="acceptd"``) then shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from limone_obs.alerts._re2 import to_python
from limone_obs.alerts.selectors import Matcher, Selector, unknown_values

#: Values tried for a label whose matchers are not plain equalities ("" = label absent).
CANDIDATES: Final = ("500", "503", "200", "404", "ok", "error", "true", "false", "x", "")
#: The values a label of the series can have (None: not known, any value may occur).
Domain = Callable[[str], "tuple[str, ...] | None"]


def _candidates(matchers: Iterable[Matcher], known: tuple[str, ...] | None) -> list[str]:
    given = [m.value for m in matchers if m.op in ("=", "!=")]
    # After the usual values (status 500 rather than the 5xx "5.." spells out).
    spelt = [
        ex for m in matchers if m.op in ("=~", "!~") for ex in regex_examples(to_python(m.value))
    ]
    if known is None:
        return list(dict.fromkeys([*given, *CANDIDATES, *spelt]))
    # The usual values first (status 500 and 200 rather than 100), then the rest.
    ordered = [*given, *CANDIDATES, *spelt, *known]
    return [v for v in dict.fromkeys(ordered) if v in known]


def _pick(
    matchers: Sequence[Matcher], violate: Matcher | None, known: tuple[str, ...] | None
) -> str | None:
    """A value passing every matcher in ``matchers`` and failing ``violate`` (if given)."""
    for value in _candidates([*matchers, *([violate] if violate else [])], known):
        if all(m.matches(value) for m in matchers) and (
            violate is None or not violate.matches(value)
        ):
            return value
    return None


def solve(
    required: Sequence[Matcher], violate: Matcher | None = None, domain: Domain = unknown_values
) -> dict[str, str] | None:
    """Labels passing all ``required`` matchers and failing ``violate``; None if none found.

    Labels whose chosen value is "" are left out (an absent label reads as "").
    ``domain`` gives the values a label can have, where they are known.
    """
    names = dict.fromkeys([m.name for m in required] + ([violate.name] if violate else []))
    labels = {}
    for name in names:
        own = [m for m in required if m.name == name]
        other = violate if violate is not None and violate.name == name else None
        value = _pick(own, other, domain(name))
        if value is None:
            return None
        if value:
            labels[name] = value
    return labels


def bad_labels(
    errors: Selector, total: Selector, domains: Callable[[str], Domain] | None = None
) -> dict[str, str] | None:
    """Labels of an error series: selected by ``errors`` and, on the same metric, by ``total``.

    ``domains(metric)`` gives a metric's :data:`Domain` (the exporter's catalogue).
    """
    required = list(errors.matchers)
    if errors.metric == total.metric:
        required.extend(total.matchers)
    return solve(required, domain=domains(errors.metric) if domains else unknown_values)


def good_labels(
    errors: Selector, total: Selector, domains: Callable[[str], Domain] | None = None
) -> dict[str, str] | None:
    """Labels of a series selected by ``total`` but not by ``errors`` (``domains``: as
    :func:`bad_labels`)."""
    domain = domains(total.metric) if domains else unknown_values
    if errors.metric != total.metric:
        return solve(total.matchers, domain=domain)
    for matcher in errors.matchers:
        if matcher in total.matchers:
            continue
        found = solve(total.matchers, violate=matcher, domain=domain)
        if found is not None and not errors.matches(total.metric, found):
            return found
    return None


#: What a shorthand class (``\d``) stands for in an example string (``.`` is ``x``).
_CLASS_EXAMPLES: Final = {"d": "0", "w": "a", "s": " ", "D": "a", "W": "-", "S": "a"}
#: Characters tried for a negated class (``[^/]``) until one is outside it.
_NEGATED_TRIES: Final = "xa0-_/. "


def regex_examples(pattern: str) -> list[str]:
    """Strings ``pattern`` may match in full, one per top-level alternative, each the
    shortest its own text spells out (a repeat taken its least number of times).

    A best effort over the syntax label matchers use (literals, escapes, ``.``, classes,
    groups, ``|``, ``* + ? {m,n}``): the caller checks each against the matcher, so an
    example of a pattern this misreads is merely not used.
    """
    try:
        return list(dict.fromkeys(_Spell(pattern).alternatives()))
    except (IndexError, ValueError, StopIteration, RecursionError):  # a pattern this misreads
        return []


class _Spell:
    """The recursive walk of :func:`regex_examples` over one pattern."""

    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.pos = 0

    def alternatives(self) -> list[str]:
        """The example of each alternative, up to the end or the closing parenthesis."""
        found = [self.sequence()]
        while self.pos < len(self.text) and self.text[self.pos] == "|":
            self.pos += 1
            found.append(self.sequence())
        return found

    def sequence(self) -> str:
        """The example of one alternative: its atoms, each repeated its least count."""
        out = ""
        while self.pos < len(self.text) and self.text[self.pos] not in "|)":
            atom = self.atom()
            out += atom * self.repeats()
            if len(out) > _MAX_EXAMPLE:  # a{1000}{1000}: no label value is that long
                raise ValueError("example too long")
        return out

    def atom(self) -> str:
        """One character, class or group, as an example string."""
        char = self.text[self.pos]
        self.pos += 1
        if char == "\\":
            escaped = self.text[self.pos]
            self.pos += 1
            return _CLASS_EXAMPLES.get(escaped, escaped)
        if char == ".":
            return "x"
        if char in "^$":
            return ""
        if char == "[":
            return self.char_class()
        if char == "(":
            self.skip_group_head()
            first = self.alternatives()[0]
            if self.text[self.pos] != ")":
                raise ValueError("unclosed group")
            self.pos += 1
            return first
        return char

    def skip_group_head(self) -> None:
        """Step over ``?:``, ``?P<name>`` or flags (``?i:``, ``?i-s:``) after an opening
        parenthesis (a flag's case is the caller's: it checks each example)."""
        if (flags := _FLAG_HEAD.match(self.text, self.pos)) is not None:
            self.pos = flags.end()
        elif self.text.startswith("?P<", self.pos):
            self.pos = self.text.index(">", self.pos) + 1

    def char_class(self) -> str:
        """A member of the class after "[" (a character outside it when negated)."""
        start = self.pos
        end = start + 1 if self.text.startswith("^", start) else start
        end += 1  # a "]" right after "[" or "[^" is a member, not the end
        while self.text[end] != "]":
            end += 2 if self.text[end] == "\\" else 1
        body = self.text[start:end]
        self.pos = end + 1
        if body.startswith("^"):
            return next(ch for ch in _NEGATED_TRIES if re.fullmatch(f"[{body}]", ch))
        if body.startswith("\\"):
            return _CLASS_EXAMPLES.get(body[1], body[1])
        return body[0]

    def repeats(self) -> int:
        """The least count of the quantifier after an atom (1 without one)."""
        if self.pos >= len(self.text):
            return 1
        char = self.text[self.pos]
        if char in "*?+":
            self.pos += 1
            least = 1 if char == "+" else 0
        elif char == "{" and (found := _BOUNDS.match(self.text, self.pos)) is not None:
            self.pos = found.end()
            least = min(int(found.group(1)), _MAX_EXAMPLE + 1)
        else:
            return 1
        if self.pos < len(self.text) and self.text[self.pos] == "?":  # lazy: same least
            self.pos += 1
        return least


_BOUNDS: Final = re.compile(r"\{(\d+)(?:,\d*)?\}")
#: A group head of flags (Python's scoped form, as ``_re2.to_python`` writes them).
_FLAG_HEAD: Final = re.compile(r"\?[aiLmsux]*(?:-[imsx]*)?:")
#: Longest example made (longer ones are given up: the caller finds no value then).
_MAX_EXAMPLE: Final = 256
