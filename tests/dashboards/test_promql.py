"""The linter's PromQL reading (a real parser): selectors, ranges, rate() arguments, variables."""

from __future__ import annotations

import pytest

from limone_obs.dashboards import promql
from limone_obs.dashboards.queries import le_matcher


def test_selectors_skip_functions_keywords_and_grouping_labels() -> None:
    """Only series are selectors: not sum/rate, not by (...) labels, not on/group_left."""
    expr = (
        'sum by (le, endpoint) (rate(a_bucket{job="$job"}[5m]))\n'
        "/ on () group_left\nsum(rate(b_count[5m]))"
    )
    found = [(s.name, s.matchers) for s in promql.selectors(expr)]
    assert [("a_bucket", (("job", "=", "$job"),)), ("b_count", ())] == found


def test_braces_inside_strings_do_not_end_a_selector() -> None:
    """label_replace's "${1}xx" is a string, not a matcher block."""
    expr = (
        'label_replace(sum by (status) (rate(x_total{job="$job"}[1m])), "c", "${1}xx", "s", "(.)")'
    )
    assert ["x_total"] == [s.name for s in promql.selectors(expr)]


def test_recording_rules_are_recognised() -> None:
    """Names with a colon are recording rules."""
    found = [s.recording_rule for s in promql.selectors("slo:x:ratio / plain_total")]
    assert [True, False] == found


def test_ranges_are_listed() -> None:
    """Every [...] window is returned; Grafana's range variables by their own name."""
    expr = "rate(a[$__rate_interval]) + rate(b[5m]) + rate(c[$__range]) + max_over_time(d[1h:])"
    assert ["$__rate_interval", "5m", "$__range", "1h"] == promql.ranges(expr)


def test_rate_arguments_name_the_series() -> None:
    """rate/irate/increase report the series they are applied to, not nested calls."""
    expr = "rate(a_total[1m]) + increase(b[1m]) + rate(sum(c)[1m:])"
    assert [("rate", "a_total"), ("increase", "b")] == list(promql.rate_arguments(expr))


def test_an_unbalanced_parenthesis_is_a_syntax_error() -> None:
    """The parser rejects what the old tokenizer let through: a missing ``)``."""
    with pytest.raises(promql.PromQLSyntaxError, match="parenthesis"):
        promql.read('sum(rate(x_total{job="$job"}[$__rate_interval])')


def test_variables_outside_strings_are_substituted_inside_kept() -> None:
    """``offset ${baseline}s`` and ``[$__rate_interval]`` parse; ``"$job"`` stays a value."""
    expr = 'rate(x_total{job="$job"}[$__rate_interval] offset ${baseline}s) and vector($baseline)'
    (selector,) = promql.read(expr).selectors
    assert "$job" == selector.value_of("job")


def test_a_selector_named_by_its_name_matcher_is_read() -> None:
    """``{__name__="x_total", job="$job"}`` is the series x_total."""
    (selector,) = promql.selectors('{__name__="x_total", job="$job"}')
    assert ("x_total", "$job") == (selector.name, selector.value_of("job"))


@pytest.mark.parametrize(
    ("name", "counter"),
    [("x_total", True), ("x_bucket", True), ("x_count", True), ("x_in_progress", False)],
)
def test_is_counter(name: str, counter: bool) -> None:
    """Counter-like names end in _total, _count, _sum or _bucket."""
    assert counter == promql.is_counter(name)


def test_variables_finds_every_syntax_and_skips_regex_groups() -> None:
    """$a, ${b}, ${c:csv}, [[d]] are variables; ${1} is a regex group."""
    assert {"a", "b", "c", "d"} == promql.variables('$a ${b} ${c:csv} [[d]] "${1}xx"')


def test_expand_replaces_variables() -> None:
    """Expansion substitutes every form and keeps regex groups."""
    text = promql.expand(
        'x{job="$job"}[${__rate_interval}] "${1}"', {"job": "j", "__rate_interval": "10s"}
    )
    assert 'x{job="j"}[10s] "${1}"' == text


def test_expand_rejects_an_unknown_variable() -> None:
    """An undefined variable cannot be expanded silently."""
    with pytest.raises(KeyError):
        promql.expand("$nope", {})


@pytest.mark.parametrize(
    ("threshold", "matcher"),
    [(1.0, 'le=~"1(\\\\.0)?"'), (0.6, 'le="0.6"'), (2, 'le=~"2(\\\\.0)?"')],
)
def test_le_matcher_accepts_both_spellings_of_whole_seconds(threshold: float, matcher: str) -> None:
    """Whole seconds match le="1.0" (Prometheus 2) and le="1" (Prometheus 3)."""
    assert matcher == le_matcher(threshold)


@pytest.mark.parametrize(
    ("regex", "literal"),
    [(r"\Q/api/v1\E.*", r'"\\Q/api/v1\\E.*"'), (r"\0655.", r"`\0655.`"), ("5..|x", "'5..|x'")],
)
def test_regexes_are_read_as_prometheus_reads_them(regex: str, literal: str) -> None:
    """A trial's ``endpoint=~"\\\\Q/api/v1\\\\E.*"`` (valid for Prometheus, and taken by
    check) failed ``dashboards lint`` as "illegal regex": the parser's own engine lacks
    RE2's ``\\Q...\\E`` and octal escapes. Regex matchers are checked as RE2 and keep their
    value, in any of PromQL's quotes."""
    (selector,) = promql.read(f"rate(x_total{{endpoint=~{literal}}}[5m])").selectors
    assert (("endpoint", "=~", regex),) == selector.matchers


def test_a_regex_prometheus_refuses_is_a_syntax_error_naming_it() -> None:
    """What RE2 lacks (a lookahead) is said as check says it."""
    with pytest.raises(promql.PromQLSyntaxError, match="uses a negative lookahead"):
        promql.read('x_total{endpoint!~"(?!/health)"}')
