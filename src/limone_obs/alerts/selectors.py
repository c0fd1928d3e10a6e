"""PromQL series selectors (``name{label="v", other=~"re"}``) of the SLO spec.

The spec names its series with plain selectors; they are parsed once into :class:`Selector`
so the generators can add the ``job`` and ``le`` matchers, and the promtool test generator
can build sample series that the selector matches (or not).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final

from limone_obs import conventions as c
from limone_obs.alerts import _re2
from limone_obs.alerts._reader import did_you_mean, shown

_METRIC_RE: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_MATCHER_RE: Final = re.compile(
    r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"
    r'("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)\s*',
    re.DOTALL,
)
#: A PromQL string's escapes (Go's): one character, or a code in hex or octal.
_ESCAPE: Final = re.compile(
    r"\\(?:x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[0-7]{3}|(.))", re.DOTALL
)
_SIMPLE_ESCAPES: Final = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\",
}  # fmt: skip


@dataclass(frozen=True)
class Matcher:
    """One label matcher: ``name``, ``op`` (``=``, ``!=``, ``=~``, ``!~``), unescaped ``value``."""

    name: str
    op: str
    value: str

    def promql(self) -> str:
        """The matcher as PromQL text, the value escaped (``le=~"1(\\\\.0)?"``)."""
        return f"{self.name}{self.op}{c.promql_string(self.value)}"

    def matches(self, value: str) -> bool:
        """True if a series whose label has ``value`` ("" when absent) passes this matcher.

        Regexes are fully anchored like Prometheus'; Python's ``re`` stands in for RE2,
        with RE2's own forms rewritten (:mod:`limone_obs.alerts._re2`)
        """
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = re.fullmatch(_re2.to_python(self.value), value) is not None
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


def promql_unquote(literal: str) -> str:
    """The value of PromQL string ``literal`` (quotes included): a backquoted one as it
    is, a quoted one with Go's escapes read (``\\n``, ``\\x41``, ``\\\\``, its own quote);
    ValueError naming an escape PromQL refuses (``"\\d"``: write ``"\\\\d"``) or a line
    break inside quotes."""
    quote, body = literal[0], literal[1:-1]
    if quote == "`":
        return body
    if "\n" in body:
        raise ValueError(f"{shown(literal)} breaks its line inside quotes: write \\n")

    def unescape(match: re.Match[str]) -> str:
        char = match[1]
        if char is None:
            code = match[0][2:] if match[0][1] in "xuU" else match[0][1:]
            return chr(int(code, 16 if match[0][1] in "xuU" else 8))
        if char == quote:
            return char
        if char in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[char]
        raise ValueError(
            f"{shown(literal)} holds \\{char}, an escape PromQL strings do not have: "
            f"write \\\\{char} for a regex's \\{char}"
        )

    return _ESCAPE.sub(unescape, body)


def _parse_matchers(body: str) -> tuple[Matcher, ...]:
    matchers = []
    for part in _split_top(body):
        found = _MATCHER_RE.fullmatch(part)
        if found is None:
            raise ValueError(
                f'matcher {shown(part.strip())} is not like label="value" or label=~"re"'
            )
        name, op, literal = found.groups()
        value = promql_unquote(literal)
        if op in ("=~", "!~"):
            check_regex(name, value)
        matchers.append(Matcher(name, op, value))
    return tuple(matchers)


def check_regex(name: str, value: str) -> None:
    """ValueError (words) when ``value``, the regex of label ``name``, is one Prometheus
    refuses or reads otherwise than the kit: Python's ``re`` (reading its RE2 forms
    rewritten, :mod:`._re2`) must take it, and it must use nothing RE2 lacks."""
    try:
        python = _re2.to_python(value)
    except ValueError as exc:
        raise ValueError(f"regex {shown(value)} of label {name!r} has {exc}") from None
    try:
        with warnings.catch_warnings():
            # "Possible nested set": a [ inside a class, literal in RE2 and re alike.
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(python)
    except re.error as exc:
        raise ValueError(f"regex {shown(value)} of label {name!r} is invalid: {exc}") from None
    except RecursionError:
        raise ValueError(
            f"regex {shown(value)[:80]}... of label {name!r} nests its groups deeper than "
            "limone-obs can check (Python's re): flatten it"
        ) from None
    perl_only = re2_unsupported(value)
    if perl_only is not None:
        hint = " (a negative matcher !~ instead of a lookahead)" * ("look" in perl_only)
        raise ValueError(
            f"regex {shown(value)} of label {name!r} uses {perl_only}, which "
            "Prometheus' regexes (RE2) do not have: it would refuse the rules "
            f"or match otherwise; write it without{hint}"
        )


#: Constructs of Python's ``re`` (and Perl's) that RE2, Prometheus' regex engine, lacks.
_PERL_ONLY: Final = (
    ("(?=", "a lookahead"), ("(?!", "a negative lookahead"), ("(?<=", "a lookbehind"),
    ("(?<!", "a negative lookbehind"), ("(?>", "an atomic group"),
    ("(?P=", "a backreference"), ("(?(", "a conditional group"), ("(?#", "a comment"),
)  # fmt: skip
#: Escapes of Python's ``re`` RE2 refuses (it writes ``\x{...}`` for a code point).
_PYTHON_ESCAPES: Final = {
    "u": "a \\u escape (RE2 writes \\x{...})",
    "U": "a \\U escape (RE2 writes \\x{...})",
    "N": "a \\N{...} escape (RE2 writes \\x{...})",
    "Z": "\\Z (RE2 writes \\z)",
}
#: Python's inline flags RE2 lacks (it has i, m, s).
_PYTHON_FLAGS: Final = {"a": "ASCII", "L": "LOCALE", "u": "UNICODE", "x": "VERBOSE"}
#: A group's inline flags: ``(?ims)``, ``(?i-s:...)``.
_FLAGS = re.compile(r"\(\?([aiLmsux]*)(?:-([imsx]*))?[:)]")
#: A repeat ``{m}``, ``{m,}``, ``{m,n}``, ``{,n}``, ``{,}`` (Python's forms).
_REPEAT = re.compile(r"\{(\d*)(,?)(\d*)\}")
#: RE2's escapes of more than one character after the backslash (their text is no
#: construct): ``\x{2e}``, ``\Q...\E``, ``\p{Greek}``.
_RE2_ESCAPE = re.compile(r"\\x\{[^}]*\}|\\Q.*?(?:\\E|\Z)|\\[pP]\{[^}]*\}", re.DOTALL)
#: RE2's largest repeat count.
_RE2_MAX_REPEAT = 1000


def re2_unsupported(pattern: str) -> str | None:
    """What of ``pattern`` (valid for Python's ``re``) RE2 refuses or reads otherwise, in
    words, or None: lookarounds, atomic and conditional groups, comments, backreferences,
    possessive quantifiers, ``\\Z``, ``\\u``/``\\U``/``\\N`` escapes, the a/L/u/x
    flags, repeat counts above 1000 (also multiplied through nested groups), and ``{,n}``
    (RE2 reads it as text). Other escapes and character classes are skipped, as their
    text is literal."""
    i, in_class = 0, False
    repeats = _NestedRepeats()
    while i < len(pattern):
        char = pattern[i]
        words = None if in_class else repeats.read(pattern, i)
        if words is not None:
            return words
        if char == "\\":
            escaped = pattern[i + 1 : i + 2]
            skip = _RE2_ESCAPE.match(pattern, i)
            if skip is not None:  # RE2's own: a code point, literal text, a Unicode class
                i = skip.end()
                continue
            octal = _re2.OCTAL.match(pattern, i) is not None  # \101: Go's octal, no backreference
            if not in_class and escaped in "123456789" and escaped and not octal:
                return f"a backreference (\\{escaped})"
            if escaped in _PYTHON_ESCAPES and escaped:
                return _PYTHON_ESCAPES[escaped]
            i += 2
            continue
        if in_class:
            posix = _re2.POSIX_ITEM.match(pattern, i)  # [:digit:] inside a class
            i = posix.end() if posix is not None else i + 1
            in_class = posix is not None or char != "]"
            continue
        if char == "[":
            i += 1
            i += pattern.startswith("^", i)
            i += pattern.startswith("]", i)  # a ] first in a class is a literal
            in_class = True
            continue
        words = _construct_at(pattern, i)
        if words is not None:
            return words
        i += 1
    return None


class _NestedRepeats:
    """RE2's limit on repeat counts: at most 1000, also multiplied along any nesting of
    groups (``(a{100}){100}`` is refused). Fed each position outside a class and an
    escape (an escape's backslash stands for its atom)."""

    def __init__(self) -> None:
        #: Per open group (the pattern itself first): the largest product inside it.
        self.inside = [1]
        #: The largest product inside the atom just read (a group's, else 1).
        self.atom = 1

    def read(self, pattern: str, i: int) -> str | None:
        """Note what ``pattern[i]`` opens, closes or repeats; words when over the limit."""
        char = pattern[i]  # never an escaped one: the caller skips those
        if char == "(":
            self.inside.append(1)
        elif char == ")" and len(self.inside) > 1:
            self.atom = self.inside.pop()
            self.inside[-1] = max(self.inside[-1], self.atom)
        elif char == "{" and (repeat := _REPEAT.match(pattern, i)) and repeat[1]:
            low, _comma, high = repeat.groups()
            product = int(high or low) * self.atom
            if product > _RE2_MAX_REPEAT and self.atom == 1:
                return f"a repeat count above {_RE2_MAX_REPEAT} ({repeat[0]})"
            if product > _RE2_MAX_REPEAT:
                return f"repeat counts multiplying to {product} through nested groups ({repeat[0]})"
            self.inside[-1] = max(self.inside[-1], product)
            self.atom = 1
        elif char not in "*+?|":
            self.atom = 1
        return None


def _construct_at(pattern: str, i: int) -> str | None:
    """What RE2 lacks of the construct starting at ``pattern[i]`` (outside a class and an
    escape), in words, or None."""
    for opener, words in _PERL_ONLY:
        if pattern.startswith(opener, i):
            return words
    char = pattern[i]
    if char in "*+?}" and pattern.startswith("+", i + 1):
        return "a possessive quantifier"
    if char == "(" and (flags := _FLAGS.match(pattern, i)):
        named = flags[1] + (flags[2] or "")
        lacking = [f"{flag} ({_PYTHON_FLAGS[flag]})" for flag in named if flag in _PYTHON_FLAGS]
        if lacking:
            return f"the inline flag {', '.join(lacking)}"
    if char == "{" and (repeat := _REPEAT.match(pattern, i)):
        low, comma, high = repeat.groups()
        if not low and comma:
            return (
                f"a repeat without its least count ({repeat[0]}: RE2 reads it as text; "
                f"write {{0,{high}}})"
            )
    return None  # a repeat's count: _NestedRepeats


def _split_top(body: str) -> list[str]:
    """Split ``body`` at commas outside strings (quoted or backquoted); drop one trailing
    empty part."""
    parts, current, quote, escaped = [], "", "", False
    for char in body:
        if char == "," and not quote:
            parts.append(current)
            current = ""
            continue
        current += char
        if escaped:
            escaped = False
        elif char == "\\" and quote != "`":
            escaped = True
        elif char in "\"'`" and quote in ("", char):
            quote = "" if quote else char
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


# --- the exporter's catalogue (``limone-obs check``) ---------------------------------

#: The series names a family shows in PromQL: a histogram's base and its three parts.
_HISTOGRAM_PARTS: Final = ("", "_bucket", "_count", "_sum")
#: Family names common outside limone-obs (nginx_http_requests_total, celery_workers).
_GENERIC_SUFFIXES: Final = frozenset(
    {
        c.MetricNames("x").requests_total[2:],
        c.MetricNames("x").build_info[2:],
        c.SUFFIX_WORKERS,
        c.SUFFIX_WORKER_THREADS,
    }
)


@dataclass(frozen=True)
class Catalogue:
    """The series the exporter exposes under one namespace, by PromQL name.

    Built from :data:`limone_obs.conventions.EXPORTER_SERIES` (the generators never import
    the exporter package). ``names`` maps ``limoneide_request_duration_seconds_bucket`` to
    its family and the part (``""``, ``_bucket``, ``_count``, ``_sum``).
    """

    namespace: str
    names: Mapping[str, tuple[c.SeriesInfo, str]]

    @classmethod
    def of(cls, namespace: str) -> Catalogue:
        """The catalogue of ``namespace``."""
        names: dict[str, tuple[c.SeriesInfo, str]] = {}
        for info in c.EXPORTER_SERIES:
            parts = _HISTOGRAM_PARTS if info.type == c.TYPE_HISTOGRAM else ("",)
            for part in parts:
                names[f"{namespace}_{info.suffix}{part}"] = (info, part)
        return cls(namespace, names)

    def foreign_namespace(self, selector: Selector) -> str | None:
        """The other namespace ``selector`` seems written for, or None.

        A metric outside this namespace named like an exporter series
        (``billing_request_duration_seconds``) whose matchers use only that series' labels
        is the exporter's under another namespace. Names other software uses too
        (``*_requests_total``, ``*_workers``, ``*_worker_threads``, ``*_build_info``) count
        only when a matcher uses one of the exporter's own labels of that series
        (``status``, ``state``, ...), except under the kit's default namespace
        (``limoneide_requests_total`` in a spec copied from the kit's and given another
        namespace).
        Any other outside metric is the user's own and is not checked.
        """
        if selector.metric.startswith(f"{self.namespace}_"):
            return None
        default = f"{c.DEFAULT_NAMESPACE}_"
        if selector.metric.startswith(default):
            own_name = f"{self.namespace}_{selector.metric[len(default) :]}"
            if own_name in self.names:
                return c.DEFAULT_NAMESPACE
        used = set(selector.label_names())
        for name, (info, part) in self.names.items():
            tail = name[len(self.namespace) :]
            labels = {*info.labels, *c.TARGET_LABELS, *((c.LABEL_LE,) if part == "_bucket" else ())}
            if not selector.metric.endswith(tail) or not used <= labels:
                continue
            if info.suffix in _GENERIC_SUFFIXES and not used & set(info.labels):
                continue
            return selector.metric[: -len(tail)] or None
        return None

    def problems(
        self, selector: Selector, *, histogram: bool = False, counter: bool = False
    ) -> list[str]:
        """Why ``selector`` can never match a series of the exporter (empty if it can).

        Outside the namespace nothing is checked (see :meth:`foreign_namespace`). Inside:
        the name must be the exporter's (a histogram's base name when ``histogram``; a
        counter, or a histogram's ``_count``/``_bucket``/``_sum``, when ``counter``: an
        SLO's events are rates of counters), each matcher on a label the series lacks must
        accept the empty value, and a matcher on a label of known values (``status``,
        ``outcome``, ...) must accept one of them.
        """
        if not selector.metric.startswith(f"{self.namespace}_"):
            return []
        found = self.names.get(selector.metric)
        if found is None:
            return [self._unknown(selector.metric)]
        info, part = found
        if histogram and (info.type != c.TYPE_HISTOGRAM or part):
            return [
                f"{selector.metric} is a {info.type}{' series' if part else ''}, not a "
                f"histogram's base name; the exporter's histograms: {self._histograms()}"
            ]
        if counter and info.type == c.TYPE_GAUGE:
            return [
                f"{selector.metric} is a gauge: an SLO counts events as rates of counters "
                f"(rate() of a gauge means nothing); the exporter's counters: {self._counters()}"
            ]
        labels = (*info.labels, *c.TARGET_LABELS, *((c.LABEL_LE,) if part == "_bucket" else ()))
        return [p for m in selector.matchers if (p := _matcher_problem(selector, m, labels, info))]

    def _counters(self) -> str:
        return ", ".join(
            name for name, (info, part) in self.names.items()
            if info.type == c.TYPE_COUNTER or part in ("_count", "_bucket")
        )  # fmt: skip

    def _unknown(self, metric: str) -> str:
        hint = did_you_mean(metric, self.names)
        families = ", ".join(
            name[len(self.namespace) + 1 :]
            for name, (info, part) in self.names.items()
            if not part and info.suffix != metric[len(self.namespace) + 1 :]
        )
        return (
            f"{metric} is not a series of the exporter in namespace {self.namespace!r}: "
            f"{hint}its series are {self.namespace}_ + one of: {families} (histograms also "
            "as _bucket, _count, _sum)"
        )

    def _histograms(self) -> str:
        return ", ".join(
            name for name, (info, part) in self.names.items()
            if info.type == c.TYPE_HISTOGRAM and not part
        )  # fmt: skip

    def domain(self, metric: str) -> Callable[[str], tuple[str, ...] | None]:
        """The values each label of ``metric`` can have, where the exporter's are known
        (None for a label of unknown values, and for every label of a series not ours)."""
        found = self.names.get(metric)
        if found is None:
            return unknown_values
        info = found[0]
        return lambda label: info.values_of(label) if label in info.labels else None

    def buckets(self, selector: Selector) -> tuple[float, ...] | None:
        """The bucket bounds of the histogram ``selector`` names, when the catalogue has them."""
        found = self.names.get(selector.metric)
        return found[0].buckets if found is not None else None


def unknown_values(_label: str) -> tuple[str, ...] | None:
    """The domain of a series that is not the exporter's: no label's values are known."""
    return None


def _matcher_problem(
    selector: Selector, matcher: Matcher, labels: tuple[str, ...], info: c.SeriesInfo
) -> str:
    if matcher.name not in labels:
        if matcher.matches(""):
            return ""  # the label is absent, and the matcher accepts that
        return (
            f"{matcher.promql()}: {selector.metric} has no label {matcher.name!r} (its labels: "
            f"{', '.join(labels)}), so this matcher selects no series"
        )
    values = info.values_of(matcher.name)
    if values is None or any(matcher.matches(v) for v in values):
        return ""
    shown_values = ", ".join(values) if len(values) <= 12 else "3-digit HTTP codes such as 200"
    hint = (
        " (a regex needs =~)"
        if matcher.op == "=" and re.search(r"[.*+?|\[]", matcher.value)
        else ""
    )
    return (
        f"{matcher.promql()} matches no value the exporter writes for {matcher.name!r} "
        f"({shown_values}){hint}"
    )
