"""PromQL series selectors (``name{label="v", other=~"re"}``) of the SLO spec.

The spec names its series with plain selectors; they are parsed once into :class:`Selector`
so the generators can add the ``job`` and ``le`` matchers, and the promtool test generator
can build sample series that the selector matches (or not).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from limone_obs.alerts._reader import shown

_METRIC_RE: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_MATCHER_RE: Final = re.compile(
    r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*'
)


@dataclass(frozen=True)
class Matcher:
    """One label matcher: ``name``, ``op`` (``=``, ``!=``, ``=~``, ``!~``), unescaped ``value``."""

    name: str
    op: str
    value: str

    def promql(self) -> str:
        """The matcher as PromQL text, the value escaped (``le=~"1(\\\\.0)?"``)."""
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'

    def matches(self, value: str) -> bool:
        """True if a series whose label has ``value`` ("" when absent) passes this matcher.

        Regexes are fully anchored like Prometheus'; Python's ``re`` stands in for RE2,
        which agrees on the simple patterns label matchers use.
        """
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = re.fullmatch(self.value, value) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Selector:
    """A series selector: a metric name and label matchers, in the order written."""

    metric: str
    matchers: tuple[Matcher, ...] = ()

    def promql(self, *extra: Matcher) -> str:
        """The selector as PromQL, with ``extra`` matchers appended."""
        matchers = (*self.matchers, *extra)
        if not matchers:
            return self.metric
        return f"{self.metric}{{{','.join(m.promql() for m in matchers)}}}"

    def with_metric(self, metric: str) -> Selector:
        """The same matchers on another metric (``x_bucket`` / ``x_count`` of a histogram)."""
        return replace(self, metric=metric)

    def with_default(self, matcher: Matcher) -> Selector:
        """This selector, with ``matcher`` put first unless a matcher on its label exists."""
        if any(m.name == matcher.name for m in self.matchers):
            return self
        return replace(self, matchers=(matcher, *self.matchers))

    def matches(self, metric: str, labels: Mapping[str, str]) -> bool:
        """True if the series ``metric{labels}`` is selected."""
        return metric == self.metric and all(
            m.matches(labels.get(m.name, "")) for m in self.matchers
        )

    def label_names(self) -> tuple[str, ...]:
        """The label names the matchers constrain, without repeats, in order."""
        return tuple(dict.fromkeys(m.name for m in self.matchers))


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw)


def _parse_matchers(body: str) -> tuple[Matcher, ...]:
    matchers = []
    for part in _split_top(body):
        found = _MATCHER_RE.fullmatch(part)
        if found is None:
            raise ValueError(
                f'matcher {shown(part.strip())} is not like label="value" or label=~"re"'
            )
        name, op, raw = found.groups()
        value = _unescape(raw)
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(
                    f"regex {shown(value)} of label {name!r} is invalid: {exc}"
                ) from None
        matchers.append(Matcher(name, op, value))
    return tuple(matchers)


def _split_top(body: str) -> list[str]:
    """Split ``body`` at commas outside double-quoted strings; drop one trailing empty part."""
    parts, current, quoted, escaped = [], "", False, False
    for char in body:
        if char == "," and not quoted:
            parts.append(current)
            current = ""
            continue
        current += char
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
    if current.strip() or parts:
        parts.append(current)
    if parts and not parts[-1].strip():
        parts.pop()
    return parts


def parse_selector(text: str) -> Selector:
    """Parse ``metric{matchers}``; raise ValueError saying what is wrong and what is allowed."""
    text = text.strip()
    name = _METRIC_RE.match(text)
    if name is None:
        raise ValueError("must start with a metric name like limoneide_requests_total")
    rest = text[name.end() :].strip()
    if not rest:
        return Selector(name.group(0))
    if not (rest.startswith("{") and rest.endswith("}")):
        raise ValueError("must be a metric name, optionally followed by {label matchers}")
    return Selector(name.group(0), _parse_matchers(rest[1:-1]))
