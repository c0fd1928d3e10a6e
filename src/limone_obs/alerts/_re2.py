"""RE2 syntax (Prometheus' regexes, Go's ``regexp``) that Python's ``re`` lacks or reads
otherwise, rewritten the way ``re`` reads it: the kit checks a selector's regex and
matches label values with ``re`` (to pick the series of generated tests), and must read
what Prometheus reads.

Rewritten: ``\\x{2e}`` (a code point, any number of hex digits), octal escapes (``\\101``,
``\\0``), ``\\Q...\\E`` (literal text), ``\\z``, ``[[:digit:]]`` (ASCII classes inside a
bracket, also ``[[:^alpha:]]`` alone in its bracket), ``\\d``/``\\s``/``\\w`` and their
negations outside a bracket (ASCII in Go, Unicode in ``re``), ``$`` (the text's end in
Go unless ``(?m)``; ``re``'s also matches before a last newline), and flags: ``(?U)``
(ungreedy: a full match does not depend on it) dropped, ``(?i)`` in mid-pattern and
``(?-s)`` scoped to the rest of their group. Refused with words: Unicode classes
(``\\pL``), which ``re`` cannot read (Prometheus takes them), and forms Prometheus refuses
itself (``\\Q`` without ``\\E``, an unknown ``[:name:]``, an unclosed bracket, ``\\b``
inside a bracket, a code point past U+10FFFF). Other text is passed on as it is;
:func:`limone_obs.alerts.selectors.re2_unsupported` tells what of Python's syntax RE2
lacks. Not matched alike: non-ASCII letters under ``(?i)`` (the two fold case
differently). Also refused: a negated class (``[:^alpha:]``, ``\\D``) beside other
members of a bracket, which Python cannot write.
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
#: Go's Perl classes inside a bracket (``\\D`` and the others: their complement).
_CLASS_PERL: Final = {"d": "0-9", "s": "\\t\\n\\f\\r ", "w": "0-9A-Za-z_"}
#: The same outside a bracket: ``\\d`` is ``[0-9]``, ``\\D`` is ``[^0-9]``.
_PERL: Final = {
    **{name: f"[{members}]" for name, members in _CLASS_PERL.items()},
    **{name.upper(): f"[^{members}]" for name, members in _CLASS_PERL.items()},
}
#: A named class as Go finds one inside a bracket: ``[:`` up to the next ``:]``.
POSIX_ITEM: Final = re.compile(r"\[:(\^?)(.*?):\]", re.DOTALL)
_CODE_POINT: Final = re.compile(r"\\x\{([0-9A-Fa-f]+)\}")
#: Go's octal escape: \\0 and up to two more digits, or \\1-\\7 and one or two more
#: (``\\1`` alone is a backreference, which Go refuses).
OCTAL: Final = re.compile(r"\\(0[0-7]{0,2}|[1-7][0-7]{1,2})")
#: A group's flags: ``(?i)``, ``(?i-s:``, ``(?U)`` (Go has i, m, s, U).
_FLAGS: Final = re.compile(r"\(\?([imsU]*)(?:-([imsU]*))?([:)])")
#: A named group's head as Go takes it (ASCII word characters).
_GROUP_NAME: Final = re.compile(r"\(\?P<[A-Za-z0-9_]+>")
#: Go's word boundaries: ASCII word characters on one side only (``\b``), or on both or
#: neither (``\B``, also in an empty text); Python's count any letter.
_WORD = "[0-9A-Za-z_]"
_BOUNDARIES: Final = {
    "b": f"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))",
    "B": f"(?:(?<={_WORD})(?={_WORD})|(?<!{_WORD})(?!{_WORD}))",
}
#: Characters literal in both syntaxes inside a class that ``re`` warns about there
#: (a nested set or a set operation it may read one day): written escaped.
_CLASS_ESCAPED: Final = frozenset("[&~|-")


@functools.lru_cache(maxsize=256)
def to_python(pattern: str) -> str:
    """``pattern`` (RE2) as Python's ``re`` reads the same; ValueError (words) for what
    cannot be written so, or Prometheus refuses."""
    return _Rewrite(pattern).run()


class _Group:
    """An open group: flag scopes opened in it (closed at its end and around each ``|``),
    and whether ``$`` means a line's end in it (``m``)."""

    __slots__ = ("multiline", "scopes")

    def __init__(self, multiline: bool) -> None:
        self.scopes: list[str] = []
        self.multiline = multiline


class _Rewrite:
    """One pass over a pattern (see :func:`to_python`)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.out: list[str] = []
        self.groups = [_Group(multiline=False)]

    def run(self) -> str:
        i = 0
        pattern = self.pattern
        while i < len(pattern):
            char = pattern[i]
            if char == "[":
                text, i = _bracket(pattern, i)
                self.out.append(text)
            elif char == "\\":
                i = self._escape(i)
            elif char == "(":
                i = self._open(i)
            elif char == ")":
                self._close()
                self.out.append(")")
                i += 1
            elif char == "|":
                self._alternative()
                i += 1
            else:
                multiline = self.groups[-1].multiline
                self.out.append(("$" if multiline else "\\Z") if char == "$" else char)
                i += 1
        self._close()
        return "".join(self.out)

    def _escape(self, i: int) -> int:
        """The escape at ``i`` (outside a class) rewritten; where it ends."""
        pattern = self.pattern
        escaped = pattern[i + 1 : i + 2]
        if escaped == "Q":
            end = pattern.find("\\E", i + 2)
            if end == -1:
                raise ValueError("\\Q without its \\E (Prometheus refuses it)")
            self.out.append(re.escape(pattern[i + 2 : end]))
            return end + 2
        if escaped == "z":
            self.out.append("\\Z")
            return i + 2
        if escaped in _PERL and escaped:
            self.out.append(_PERL[escaped])
            return i + 2
        if escaped in _BOUNDARIES and escaped:
            self.out.append(_BOUNDARIES[escaped])
            return i + 2
        text, end = _class_escape(pattern, i)
        self.out.append(text)
        return end

    def _open(self, i: int) -> int:
        """A group opening at ``i``: flags rewritten (a group of its own, or the rest of
        the current one); where its head ends."""
        group = self.groups[-1]
        if self.pattern.startswith("(?<", i) and self.pattern[i + 3 : i + 4] not in ("=", "!"):
            raise ValueError(
                "a named group (?<name>...), which only Prometheus built with Go 1.22 or "
                "later takes: write (?P<name>...)"
            )
        if self.pattern.startswith("(?P<", i) and not _GROUP_NAME.match(self.pattern, i):
            raise ValueError(
                "a group name other than letters, digits and _ (Prometheus refuses it)"
            )
        flags = _FLAGS.match(self.pattern, i)
        if flags is None:
            self.out.append("(")
            self.groups.append(_Group(group.multiline))
            return i + 1
        on, off, end = flags[1], flags[2] or "", flags[3]
        scoped = _python_flags(on, off)
        if flags[2] == "":
            raise ValueError(f"{flags[0]}: no flag after - (Prometheus refuses it)")
        multiline = "m" not in off and ("m" in on or group.multiline)
        if end == ":":
            self.out.append(f"(?{scoped}:")
            self.groups.append(_Group(multiline))
        else:  # (?i): the rest of the current group
            self.out.append(f"(?{scoped}:")
            group.scopes.append(scoped)
            group.multiline = multiline
        return flags.end()

    def _close(self) -> None:
        """Close the flag scopes of the innermost group (at its end)."""
        group = self.groups.pop() if len(self.groups) > 1 else self.groups[0]
        self.out.append(")" * len(group.scopes))
        group.scopes = []

    def _alternative(self) -> None:
        """``|``: the current group's flag scopes end before it and open again after."""
        scopes = self.groups[-1].scopes
        self.out.append(")" * len(scopes) + "|" + "".join(f"(?{s}:" for s in scopes))


def _python_flags(on: str, off: str) -> str:
    """Go's flags as Python's scoped flags (``i-s``), ``U`` dropped (ungreedy: a full
    match does not depend on it)."""
    off = off.replace("U", "")
    on = "".join(flag for flag in on if flag not in off and flag != "U")  # (?s-s): off
    return on + (f"-{off}" if off else "")


def _class_escape(pattern: str, i: int) -> tuple[str, int]:
    """An escape read the same way inside and outside a class: a code point or an octal
    escape rewritten, a Unicode class refused, any other passed on."""
    escaped = pattern[i + 1 : i + 2]
    if escaped == "x" and (point := _CODE_POINT.match(pattern, i)) is not None:
        code = int(point[1], 16)
        if code > 0x10FFFF:
            raise ValueError(f"the code point {point[0]} past U+10FFFF (Prometheus refuses it)")
        return re.escape(chr(code)), point.end()
    if escaped.isdigit() and (octal := OCTAL.match(pattern, i)) is not None:
        return re.escape(chr(int(octal[1], 8))), octal.end()
    if escaped and not escaped.isascii():
        raise ValueError(
            f"\\{escaped}: Prometheus refuses a backslash before a non-ASCII character"
        )
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
    first = True  # a ] first in a class is a literal
    while j < len(pattern) and (pattern[j] != "]" or first):
        first = False
        if (posix := POSIX_ITEM.match(pattern, j)) is not None:
            members = POSIX.get(posix[2])
            if members is None:
                raise ValueError(f"an unknown class {posix[0]} (Prometheus refuses it)")
            (opposite if posix[1] else items).append(members)
            j = posix.end()
            continue
        perl = pattern[j + 1 : j + 2] if pattern[j] == "\\" else ""
        if perl and perl.lower() in _CLASS_PERL:  # \d inside a class: ASCII too
            (opposite if perl.isupper() else items).append(_CLASS_PERL[perl.lower()])
            j += 2
            continue
        text, j = _class_char(pattern, j)
        if pattern.startswith("-", j) and not pattern.startswith("-]", j):
            high, j = _class_char(pattern, j + 1)  # a range's end is one character
            text += "-" + high
        items.append(text)
    if j >= len(pattern):
        raise ValueError(f"an unclosed [ ({pattern[i : i + 20]}...: Prometheus refuses it)")
    if opposite:
        # Alone in its bracket, Python writes it as a negated class; beside other
        # members it cannot.
        if items or len(opposite) > 1:
            raise ValueError(
                f"a negated class beside other members ({pattern[i : j + 1]}), which "
                "limone-obs cannot check (Python's re lacks it): write the class out"
            )
        items, negated = opposite, not negated
    return "[" + "^" * negated + "".join(items) + "]", j + 1


def _class_char(pattern: str, j: int) -> tuple[str, int]:
    """One member of a class at ``j`` (a character or an escape), as Python writes it."""
    if j >= len(pattern):
        raise ValueError("an unclosed [ (Prometheus refuses it)")
    if pattern[j] == "\\":
        if pattern.startswith("\\b", j):
            raise ValueError("\\b inside a [...] class (Prometheus refuses it)")
        text, end = _class_escape(pattern, j)
        if text[1:].isdigit():  # \1 inside a class: Python reads octal, Go refuses
            raise ValueError(f"{text} inside a [...] class (Prometheus refuses it)")
        return text, end
    char = pattern[j]
    return ("\\" + char if char in _CLASS_ESCAPED else char), j + 1
