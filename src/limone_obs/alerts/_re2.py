"""RE2 syntax (Prometheus' regexes, Go's ``regexp``) that Python's ``re`` lacks, rewritten
the way ``re`` reads it: the kit checks a selector's regex and matches label values with
``re`` (to pick the series of generated tests), and must read what Prometheus reads.

Rewritten: ``\\x{2e}`` (a code point), ``\\Q...\\E`` (literal text), ``\\z`` (the end of
the text), ``[[:digit:]]`` (ASCII classes inside a bracket, also ``[[:^alpha:]]`` alone
in its bracket). Refused with words: Unicode classes (``\\pL``, ``\\p{Greek}``), which
``re`` cannot read (Prometheus takes them), and the forms Prometheus refuses itself (a
``\\Q`` without its ``\\E``, an unknown ``[:name:]``, a code point past U+10FFFF). Other
text is passed on as it is; :func:`limone_obs.alerts.selectors.re2_unsupported` tells
what of Python's syntax RE2 lacks.
"""

from __future__ import annotations

import functools
import re
from typing import Final

#: Go's ASCII classes (regexp/syntax), as the members of a Python class.
POSIX: Final = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}  # fmt: skip
POSIX_ITEM: Final = re.compile(r"\[:(\^?)([a-z]*):\]")
_CODE_POINT: Final = re.compile(r"\\x\{([0-9A-Fa-f]{1,8})\}")
#: Characters literal in both syntaxes inside a class that ``re`` warns about there
#: (a nested set or a set operation it may read one day): written escaped.
_CLASS_ESCAPED: Final = frozenset("[&~|")


@functools.lru_cache(maxsize=256)
def to_python(pattern: str) -> str:
    """``pattern`` (RE2) as Python's ``re`` reads the same; ValueError (words) for what
    cannot be written so, or Prometheus refuses."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "[":
            text, i = _bracket(pattern, i)
        elif char == "\\":
            text, i = _escape(pattern, i)
        else:
            text, i = char, i + 1
        out.append(text)
    return "".join(out)


def _escape(pattern: str, i: int) -> tuple[str, int]:
    """The escape at ``pattern[i]`` (outside a class) rewritten, and where it ends."""
    escaped = pattern[i + 1 : i + 2]
    if escaped == "Q":
        end = pattern.find("\\E", i + 2)
        if end == -1:
            raise ValueError("\\Q without its \\E (Prometheus refuses it)")
        return re.escape(pattern[i + 2 : end]), end + 2
    if escaped == "z":
        return "\\Z", i + 2
    return _class_escape(pattern, i)


def _class_escape(pattern: str, i: int) -> tuple[str, int]:
    """An escape read the same way inside and outside a class: a code point rewritten,
    a Unicode class refused, any other passed on."""
    escaped = pattern[i + 1 : i + 2]
    if escaped == "x" and (point := _CODE_POINT.match(pattern, i)) is not None:
        code = int(point[1], 16)
        if code > 0x10FFFF:
            raise ValueError(f"the code point {point[0]} past U+10FFFF (Prometheus refuses it)")
        return re.escape(chr(code)), point.end()
    if escaped and escaped in "pP":
        close = pattern.find("}", i) if pattern.startswith("{", i + 2) else -1
        shown = pattern[i : close + 1] if close != -1 else pattern[i : i + 3]
        raise ValueError(
            f"a Unicode class ({shown}), which Prometheus takes but limone-obs cannot check "
            "(Python's re lacks it): list the characters instead"
        )
    return pattern[i : i + 2], i + 2


def _bracket(pattern: str, i: int) -> tuple[str, int]:
    """The class opened at ``pattern[i]`` rewritten, and where it ends (after ``]``)."""
    negated = pattern.startswith("^", i + 1)
    j = i + 1 + negated
    items: list[str] = []
    opposite: list[str] = []  # the members of each negated ASCII class ([:^alpha:])
    if pattern.startswith("]", j):  # a ] first in a class is a literal
        items.append("\\]")
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        if (posix := POSIX_ITEM.match(pattern, j)) is not None:
            members = POSIX.get(posix[2])
            if members is None:
                raise ValueError(f"an unknown class {posix[0]} (Prometheus refuses it)")
            (opposite if posix[1] else items).append(members)
            j = posix.end()
        elif pattern[j] == "\\":
            text, j = _class_escape(pattern, j)
            items.append(text)
        else:
            items.append("\\" + pattern[j] if pattern[j] in _CLASS_ESCAPED else pattern[j])
            j += 1
    if j >= len(pattern):
        return pattern[i:], len(pattern)  # unclosed: re's own error names it
    if opposite:
        # Alone in its bracket, Python writes it as a negated class; beside other
        # members it cannot.
        if items or len(opposite) > 1:
            raise ValueError(
                f"a negated ASCII class beside other members ({pattern[i : j + 1]}), which "
                "limone-obs cannot check (Python's re lacks it): write the class out"
            )
        items, negated = opposite, not negated
    return "[" + "^" * negated + "".join(items) + "]", j + 1
