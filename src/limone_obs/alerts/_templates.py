"""What Prometheus refuses in a text it expands as a Go template (alert descriptions and
annotations), found before the rule file is written.

Prometheus parses each annotation of an alerting rule with Go's ``text/template`` when it
loads the rules; a parse error refuses the whole file. Checked here: every ``{{`` closed
by ``}}`` before the next one opens (strings inside an action skipped), no empty action,
and the control structures nested as Go requires (``if``/``range``/``with``/``define``/
``block`` closed by ``end``; ``else`` inside an ``if``, ``range`` or ``with``, once
unless followed by another condition; ``break``/``continue`` inside a ``range``). What an
action computes (a function's name, its arguments) is Prometheus' to judge: promtool
tells.
"""

from __future__ import annotations

import re

#: Actions that open a block closed by ``{{ end }}``.
_OPENERS = frozenset({"if", "range", "with", "define", "block"})
#: Blocks that take an ``{{ else }}``.
_WITH_ELSE = frozenset({"if", "range", "with"})
#: The action's first two words (``else if``).
_WORDS = re.compile(r"([A-Za-z_]\w*)?\s*([A-Za-z_]\w*)?")


def problem(text: str) -> str | None:
    """What makes Prometheus refuse ``text`` as a template (a sentence), else None."""
    blocks: list[list[str]] = []  # [opener, "else" once a plain else closed its chain]
    at = 0
    while True:
        opened = text.find("{{", at)  # a }} outside an action is text
        if opened == -1:
            break
        closed = action_end(text, opened + 2)
        if closed == -1:
            return "opens a template action {{ it never closes with }}"
        said = _step(blocks, text[opened + 2 : closed])
        if said is not None:
            return said
        at = closed + 2
    if blocks:
        return f"opens {{{{ {blocks[-1][0]} }}}} and never closes it with {{{{ end }}}}"
    return None


def _step(blocks: list[list[str]], action: str) -> str | None:
    """Follow one action's effect on the open ``blocks``; what is wrong with it, if anything."""
    body = _trimmed(action)
    if not body:
        return "holds an empty template action {{ }}"
    first, second = _WORDS.match(body).groups()  # type: ignore[union-attr]
    if body.startswith("/*") or first is None:
        return None  # a comment, or a value ({{ $value }}, {{ .Labels.x }})
    if first in _OPENERS:
        blocks.append([first, ""])
    elif first == "else":
        return _else(blocks, second)
    elif first == "end":
        if not blocks:
            return "has {{ end }} without an {{ if }}, {{ range }} or {{ with }} to close"
        blocks.pop()
    elif first in ("break", "continue") and not any(b[0] == "range" for b in blocks):
        return f"has {{{{ {first} }}}} outside a {{{{ range }}}}"
    return None


def _trimmed(action: str) -> str:
    """The action without its trim markers (``{{- x -}}``: a dash right inside the
    braces, beside a space, which ``{{- -}}`` shares)."""
    if action.endswith("-") and action[-2:-1].isspace():
        action = action[:-1]
    if action.startswith("-") and action[1:2].isspace():
        action = action[1:]
    return action.strip()


def _else(blocks: list[list[str]], then: str | None) -> str | None:
    """An ``{{ else }}`` (``then``: the word after it, ``if`` in ``{{ else if x }}``)."""
    if not blocks or blocks[-1][0] not in _WITH_ELSE:
        return "has {{ else }} outside an {{ if }}, {{ range }} or {{ with }}"
    if blocks[-1][1]:
        return f"has a second {{{{ else }}}} in one {{{{ {blocks[-1][0]} }}}}"
    if then not in _WITH_ELSE:  # a plain else ends the chain
        blocks[-1][1] = "else"
    return None


def action_end(text: str, at: int) -> int:
    """Where the action opened before ``at`` closes (its ``}}``), past the strings inside
    it (``{{ "{{" }}``, a raw ``{{`{{`}}``); -1 when it does not, or a ``{{`` opens first."""
    while at < len(text):
        char = text[at]
        if text.startswith("}}", at):
            return at
        if text.startswith("{{", at):
            return -1
        if char in '"`':
            end = at + 1
            while end < len(text) and text[end] != char:
                end += 2 if char == '"' and text[end] == "\\" else 1
            at = end + 1
            continue
        at += 1
    return -1
