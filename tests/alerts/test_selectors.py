"""PromQL selector parsing and the sample label sets of the generated tests."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from limone_obs import conventions as c
from limone_obs.alerts import samples
from limone_obs.alerts.selectors import Catalogue, Matcher, parse_selector
from limone_obs.exporter._instruments import Instruments
from limone_obs.exporter.fast_path import PUBLIC
from limone_obs.exporter.rum import RumInstruments
from tests.support import need


def test_round_trip_keeps_escapes() -> None:
    """A regex with an escaped dot renders exactly as written."""
    text = 'x_bucket{le=~"1(\\\\.0)?",job="a"}'
    assert text == parse_selector(text).promql()


def test_matchers_are_unescaped() -> None:
    """The model holds the regex itself: 1(\\.0)? matches both 1 and 1.0."""
    matcher = parse_selector('x{le=~"1(\\\\.0)?"}').matchers[0]
    assert (True, True, False) == (
        matcher.matches("1"),
        matcher.matches("1.0"),
        matcher.matches("10"),
    )


def test_commas_inside_values_do_not_split() -> None:
    """status=~"5..|4,29" is one matcher."""
    assert 2 == len(parse_selector('x{a="1,2", b!~"c"}').matchers)


def test_a_bare_metric_has_no_matchers() -> None:
    """limoneide_requests_total alone is a selector."""
    assert () == parse_selector("limoneide_requests_total").matchers


@pytest.mark.parametrize("text", ["{a='1'}", "x{a=1}", 'x{a~"1"}', 'x{a="1"', "x y"])
def test_invalid_selectors_raise(text: str) -> None:
    """Malformed selectors raise ValueError."""
    with pytest.raises(ValueError, match=r"."):
        parse_selector(text)


#: Regexes Python's ``re`` takes and RE2 refuses, with the words naming what.
RE2_REFUSES = [
    (r"/invoices(?!/drafts).*", "a negative lookahead"),
    (r"(?<=/)x", "a lookbehind"),
    (r"(a)\1", "a backreference"),
    (r"a++", "a possessive quantifier"),
    (r"(?>a)", "an atomic group"),
    (r"abc\Z", "\\Z (RE2 writes"),
    (r"(?x)a b", "the inline flag x (VERBOSE)"),
    (r"(?ai)\w", "the inline flag a (ASCII)"),
    (r"(?u)\w", "the inline flag u (UNICODE)"),
    (r"(?#note)a", "a comment"),
    (r"\u0041", "a \\u escape"),
    (r"[\u0041-\u005A]", "a \\u escape"),
    (r"\U00000041", "a \\U escape"),
    (r"\N{DIGIT ONE}", "a \\N{...} escape"),
    (r"a{1001}", "a repeat count above 1000"),
    (r"a{2,1001}", "a repeat count above 1000"),
    (r"(a{100}){100}", "repeat counts multiplying to 10000 through nested groups"),
    (r"(?:a{30}){40}", "repeat counts multiplying to 1200"),
    (r"(a|b{10}){200}", "repeat counts multiplying to 2000"),
    (r"(?-x:a)", "the inline flag x (VERBOSE)"),
    (r"(?i-x:a)", "the inline flag x (VERBOSE)"),
]
#: Regexes both take, but RE2 reads otherwise (as text): refused too.
RE2_READS_OTHERWISE = [
    (r"a{,3}", "a repeat without its least count"),
    (r"a{,}", "a repeat without its least count ({,}"),
]
#: Regexes RE2 has too.
RE2_HAS = [
    "5..", "(?i)get|post", "[(?!]x", r"\(?x", "[]a]+", "(?P<name>a)b+?", "a{2,3}",
    "(?i-s:a)", "(?s).", "(?m)^a", r"\x41", r"[\w.]x", "a{1000}", "a{2,}", r"\A\bx\B",
    "a{}", "(?:x)", "((a{10}){10}){10}", "(a{3}){333}", r"\(a{100}\){100}",
]  # fmt: skip


def _selector(regex: str) -> str:
    """A selector matching label endpoint with ``regex``, escaped as a PromQL string."""
    escaped = regex.replace("\\", "\\\\").replace('"', '\\"')
    return f'x{{endpoint=~"{escaped}"}}'


@pytest.mark.parametrize(("regex", "words"), RE2_REFUSES + RE2_READS_OTHERWISE)
def test_a_regex_prometheus_refuses_is_refused_by_name(regex: str, words: str) -> None:
    """Python's re takes lookarounds, backreferences, the x flag, \\u escapes, RE2
    (Prometheus) does not: a trial's spec with a lookahead passed check and build, and
    Prometheus refused the rules; ``{,3}`` RE2 reads as text. The error names it."""
    re.compile(regex)  # valid for Python: RE2 is what refuses it
    with pytest.raises(ValueError, match=f"uses {re.escape(words)}.*RE2"):
        parse_selector(_selector(regex))


@pytest.mark.parametrize("regex", RE2_HAS)
def test_regexes_re2_has_pass(regex: str) -> None:
    """Groups, flags, lazy quantifiers and the same characters inside a class or after
    a backslash are RE2's too."""
    (matcher,) = parse_selector(_selector(regex)).matchers
    assert "=~" == matcher.op


def test_the_refused_regexes_are_those_prometheus_refuses(tmp_path: Path) -> None:
    """Ground truth from Prometheus' own parser (promtool check rules): each regex
    refused for RE2 fails there, each passed one loads."""
    promtool = need("promtool")
    verdicts = {}
    for regex in [r for r, _ in RE2_REFUSES] + RE2_HAS:
        rules = tmp_path / "rules.yml"
        expr = f"up{{job=~{json.dumps(regex)}}}"
        rules.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
            {"record": "x:y", "expr": expr}]}]}))  # fmt: skip
        done = subprocess.run(
            [promtool, "check", "rules", str(rules)], capture_output=True, timeout=60, check=False
        )
        verdicts[regex] = done.returncode == 0
    assert {r: False for r, _ in RE2_REFUSES} | dict.fromkeys(RE2_HAS, True) == verdicts


def test_sample_labels_of_a_series_with_known_values_use_them() -> None:
    """The beacons' result: the bad series is a result the exporter writes (not 500), and the
    request series still get the usual 500 / 200 among the HTTP codes."""
    domains = Catalogue.of("limoneide").domain
    beacons = parse_selector("limoneide_rum_beacons_total")
    failed = parse_selector('limoneide_rum_beacons_total{result!="accepted"}')
    requests = parse_selector("limoneide_requests_total")
    five_xx = parse_selector('limoneide_requests_total{status=~"5.."}')
    assert (
        {"result": "malformed"},
        {"result": "accepted"},
        {"status": "500"},
        {"status": "200"},
    ) == (
        samples.bad_labels(failed, beacons, domains),
        samples.good_labels(failed, beacons, domains),
        samples.bad_labels(five_xx, requests, domains),
        samples.good_labels(five_xx, requests, domains),
    )


def test_with_default_keeps_an_explicit_matcher() -> None:
    """A selector naming job keeps its own job matcher."""
    sel = parse_selector('x{job="other"}').with_default(Matcher("job", "=", "limoneide"))
    assert 'x{job="other"}' == sel.promql()


def test_good_and_bad_sample_labels() -> None:
    """For errors status=~"5..", a bad series gets status 500 and a good one status 200."""
    errors = parse_selector('r{job="a",status=~"5.."}')
    total = parse_selector('r{job="a"}')
    assert ({"job": "a", "status": "500"}, {"job": "a", "status": "200"}) == (
        samples.bad_labels(errors, total),
        samples.good_labels(errors, total),
    )


def _exporter_families() -> dict[str, tuple[str, tuple[str, ...]]]:
    """PromQL base name -> (type, label names) of every family the exporter registers."""
    registry = CollectorRegistry()
    inst = Instruments(
        c.MetricNames(), registry, c.DEFAULT_BUCKETS, c.DEFAULT_DEPENDENCY_BUCKETS, PUBLIC
    )
    rum = RumInstruments(c.MetricNames(), registry)  # registered by Metrics beside them
    # The metrics held directly, and those of the groups it holds (queue time, per request).
    groups = [
        vars(inst),
        vars(rum),
        *(vars(v) for v in vars(inst).values() if hasattr(v, "__dict__")),
    ]
    found = {}
    for metric in (m for group in groups for m in group.values()):
        if isinstance(metric, MetricWrapperBase):
            [family] = metric.describe()
            name = family.name + ("_total" if family.type == "counter" else "")
            found[name] = (family.type, tuple(metric._labelnames))  # no public accessor
    return found


def test_the_catalogue_lists_every_family_of_the_exporter() -> None:
    """conventions.EXPORTER_SERIES agrees with the exporter's instruments: names, types, labels.

    ``check`` reads the catalogue from conventions (the generators never import the
    exporter); this keeps the two from drifting apart.
    """
    families = _exporter_families()
    listed = {
        f"{c.DEFAULT_NAMESPACE}_{info.suffix}": (info.type, info.labels)
        for info in c.EXPORTER_SERIES
        if f"{c.DEFAULT_NAMESPACE}_{info.suffix}" in families
    }
    assert (families, True) == (listed, len(families) >= 7)


def test_label_values_are_those_of_the_series() -> None:
    """``result`` of the RUM beacons is not a cache result: each series' own values count."""
    catalogue = Catalogue.of("limoneide")
    assert [] == catalogue.problems(
        parse_selector('limoneide_rum_beacons_total{result="accepted"}')
    )
    assert [] == catalogue.problems(parse_selector('limoneide_cache_requests_total{result="hit"}'))
    [problem] = catalogue.problems(parse_selector('limoneide_rum_beacons_total{result="hit"}'))
    assert "accepted, malformed, too_large, bad_page, rate_limited" in problem
    [problem] = catalogue.problems(
        parse_selector('limoneide_cache_requests_total{result="bad_page"}')
    )
    assert "hit, miss, error" in problem


def test_catalogue_histogram_buckets_are_the_exporters() -> None:
    """The catalogue's request and dependency buckets are the exporter's defaults."""
    catalogue = Catalogue.of("limoneide")
    assert (c.DEFAULT_BUCKETS, c.DEFAULT_DEPENDENCY_BUCKETS) == (
        catalogue.buckets(parse_selector("limoneide_request_duration_seconds")),
        catalogue.buckets(parse_selector("limoneide_dependency_duration_seconds")),
    )


def test_the_users_own_metrics_are_not_checked() -> None:
    """A series outside the namespace with its own labels is the user's: no problem, no guess."""
    catalogue = Catalogue.of("limoneide")
    selector = parse_selector('celery_tasks_total{state="FAILURE"}')
    assert ([], None) == (catalogue.problems(selector), catalogue.foreign_namespace(selector))


def test_a_matcher_accepting_the_empty_value_is_fine_on_an_absent_label() -> None:
    """status!="500" on the duration histogram matches every series: not a problem."""
    catalogue = Catalogue.of("limoneide")
    selector = parse_selector('limoneide_request_duration_seconds{status!="500"}')
    assert [] == catalogue.problems(selector)


def test_job_instance_and_le_are_known_labels() -> None:
    """Prometheus' target labels everywhere, le on a histogram's _bucket series."""
    catalogue = Catalogue.of("limoneide")
    selector = parse_selector(
        'limoneide_request_duration_seconds_bucket{job="a",instance="b:1",le="1.0"}'
    )
    assert [] == catalogue.problems(selector)


def test_a_status_class_regex_matches_known_codes() -> None:
    """status=~"5.." accepts 500..599: fine; status=~"6.." accepts none: a problem."""
    catalogue = Catalogue.of("limoneide")
    good = parse_selector('limoneide_requests_total{status=~"5.."}')
    bad = parse_selector('limoneide_requests_total{status=~"6.."}')
    assert (0, 1) == (len(catalogue.problems(good)), len(catalogue.problems(bad)))


def test_another_softwares_requests_total_is_not_a_namespace_mismatch() -> None:
    """nginx_http_requests_total (no exporter label) is someone else's series: not flagged."""
    catalogue = Catalogue.of("limoneide")
    assert None is catalogue.foreign_namespace(parse_selector("nginx_http_requests_total"))


def test_another_softwares_worker_threads_is_not_a_namespace_mismatch() -> None:
    """celery_worker_threads has no label to tell it from the exporter's: it is not flagged."""
    catalogue = Catalogue.of("limoneide")
    assert None is catalogue.foreign_namespace(parse_selector("celery_worker_threads"))


def test_the_exporters_series_under_another_prefix_is_a_namespace_mismatch() -> None:
    """A distinctive exporter name, or a generic one with an exporter label, names its prefix."""
    catalogue = Catalogue.of("limoneide")
    assert ("billing", "billing") == (
        catalogue.foreign_namespace(parse_selector("billing_request_duration_seconds")),
        catalogue.foreign_namespace(parse_selector('billing_requests_total{status=~"5.."}')),
    )


def test_the_kits_default_namespace_in_another_namespaces_spec_is_a_mismatch() -> None:
    """limoneide_requests_total with no matcher (a spec copied from the kit's, given
    namespace: ledger) is flagged although the name is generic; ledger's own is not."""
    catalogue = Catalogue.of("ledger")
    assert ("limoneide", None, None) == (
        catalogue.foreign_namespace(parse_selector("limoneide_requests_total")),
        catalogue.foreign_namespace(parse_selector("ledger_requests_total")),
        catalogue.foreign_namespace(parse_selector("limoneide_orders_total")),
    )


def test_an_unknown_exporter_name_lists_the_exporters_series() -> None:
    """A name in the namespace the exporter lacks: the message lists the valid names
    (a pip user has no exporter/METRICS.md to look at)."""
    catalogue = Catalogue.of("shop")
    [problem] = catalogue.problems(parse_selector("shop_request_total"))
    listed = [f"{info.suffix}" for info in c.EXPORTER_SERIES if info.suffix != "request_total"]
    assert (True, "METRICS.md" in problem) == (all(name in problem for name in listed), False)


@pytest.mark.parametrize(
    ("pattern", "examples"),
    [
        ("/invoices/.*", ["/invoices/"]),
        ("GET|POST", ["GET", "POST"]),
        ("(GET|POST)", ["GET"]),
        ("/a/[0-9]+/b", ["/a/0/b"]),
        ("[^/]+", ["x"]),
        ("a{2,3}b", ["aab"]),
        (r"\d+\.json", ["0.json"]),
        (r"/x/(?P<id>\d+)", ["/x/0"]),
        ("(?:a|b)c?", ["a"]),
        ("[]a]", ["]"]),
        ("(unclosed", []),
        ("(a{1000000}){1000000}", []),  # given up, not built
    ],
)
def test_regex_examples_are_the_shortest_strings_the_pattern_spells(
    pattern: str, examples: list[str]
) -> None:
    """Each example is what the pattern's text spells with every repeat at its least."""
    assert examples == samples.regex_examples(pattern)


def test_a_regex_scoped_selector_gets_sample_labels_it_matches() -> None:
    """An endpoint prefix and a set of methods: the sample series is one they select."""
    selector = parse_selector('x{endpoint=~"/invoices/.*",method=~"GET|POST",path!~"/health"}')
    labels = samples.solve(selector.matchers)
    assert labels is not None
    assert selector.matches("x", labels)
    assert {"endpoint": "/invoices/", "method": "GET"} == {
        k: v for k, v in labels.items() if k != "path"
    }


#: RE2's own forms, which Python's re lacks or reads otherwise: taken, and matched as
#: Prometheus matches them (a trial's [[:digit:]] was read as a nested set, \x{35} refused).
RE2_OWN = [
    "[[:digit:]]+", r"\x{35}", r"a\z", r"\Qa.b\E", "[[:^alpha:]]+", "[^[:alpha:]]+",
    r"[\d[:upper:]]+", "[[a]+", r"[\x{41}-\x{43}]", r"\Q{2000}\E", "[[:punct:]]",
    r"\x{000000041}", r"\101", r"a\12", r"(?U)a+", r"a(?i)B", r"(?-i)a", r"x|(?i)A|z",
    r"a(?i)B|d", r"a$", r"(?m)a$", r"\d+", r"\s", r"\w+", r"[!-[:digit:]]+",
    r"(?i:a)b|B", r"[\D]+", r"[^\s]+", r"[\w.]+", r"[\w-.]+", r"[[:word:]-a]+", r"[\s-a]",
    r".\b.", r"\b.", r"\B.", r"(?m-m:a$)", r"(?m)(?-m:a$)",
]  # fmt: skip
#: Label values matched against each of RE2_OWN (non-ASCII digits, letters and spaces:
#: Go's \d, \s and \w are ASCII).
VALUES = [
    "123", "a", "5", "a.b", "axb", "12", "ab", "[", "A", "B", "D", "{2000}", ".", "a\n",
    "aB", "X", "z", "d", "Z", "a\u00e9", "`", "-", "$", "a-b.c", "\u0661\u0662", "\u00e9",
    "\u00a0", "\v", "5]", "!", "Ab",
]  # fmt: skip
#: What Prometheus takes and the kit cannot read (Python's re lacks it), and what
#: Prometheus refuses: refused, with words.
RE2_UNCHECKABLE = [
    (r"\pL", "a Unicode class (\\pL), which Prometheus takes but limone-obs cannot check"),
    (r"x\p{Greek}", "a Unicode class (\\p{Greek})"),
    (r"[x[:^alpha:]]", "a negated class beside other members"),
    (r"[x\D]", "a negated class beside other members"),
]
RE2_REFUSED_OWN = [
    ("[[:foo:]]", "an unknown class [:foo:] (Prometheus refuses it)"),
    ("[[:DIGIT:]]", "an unknown class [:DIGIT:]"),
    ("[[: digit:]]", "an unknown class [: digit:]"),
    ("[[:alpha:]", "an unclosed ["),
    ("x[[:digit:]", "an unclosed ["),
    (r"[\b]", "\\b inside a [...] class"),
    (r"\Qa", "\\Q without its \\E (Prometheus refuses it)"),
    (r"(?-)a", "no flag after - (Prometheus refuses it)"),
    (r"[\1]", "\\1 inside a [...] class (Prometheus refuses it)"),
    ("\\\u00e9", "Prometheus refuses a backslash before a non-ASCII character"),
    ("(?P<\u00e9>a)", "a group name other than letters, digits and _"),
    (r"\x{110000}", "past U+10FFFF (Prometheus refuses it)"),
]


@pytest.mark.parametrize(("regex", "words"), RE2_UNCHECKABLE + RE2_REFUSED_OWN)
def test_re2_forms_the_kit_cannot_read_are_refused_by_name(regex: str, words: str) -> None:
    """Said as what it is: Prometheus' own refusal, or the kit's limit (not "invalid")."""
    with pytest.raises(ValueError, match=re.escape(words)):
        parse_selector(_selector(regex))


def test_re2_own_forms_match_what_prometheus_matches(tmp_path: Path) -> None:
    """Ground truth from promtool: for each of RE2's own forms, the series of VALUES the
    kit's matcher passes are exactly those Prometheus selects; and the forms refused as
    Prometheus' own refusals fail promtool check rules."""
    promtool = need("promtool")
    series = [{"series": f"x{{v={json.dumps(v)}}}", "values": "1"} for v in VALUES]
    tests = []
    for regex in RE2_OWN:
        (matcher,) = parse_selector(_selector(regex)).matchers
        labels = [v for v in VALUES if matcher.matches(v)]
        tests.append({
            "expr": f"x{{v=~{json.dumps(regex)}}}", "eval_time": "0m",
            "exp_samples": [{"labels": f"x{{v={json.dumps(v)}}}", "value": 1} for v in labels],
        })  # fmt: skip
    (tmp_path / "empty.yml").write_text("groups: []\n")
    test_file = tmp_path / "test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": ["empty.yml"], "tests": [
        {"interval": "1m", "input_series": series, "promql_expr_test": tests}]}))  # fmt: skip
    done = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert 0 == done.returncode, done.stdout + done.stderr
    for regex, _ in RE2_REFUSED_OWN:
        rules = tmp_path / "rules.yml"
        rules.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
            {"record": "x:y", "expr": f"up{{job=~{json.dumps(regex)}}}"}]}]}))  # fmt: skip
        refused = subprocess.run(
            [promtool, "check", "rules", str(rules)], capture_output=True, timeout=60, check=False
        )
        assert refused.returncode != 0, regex


def test_deeply_nested_groups_are_refused_not_a_traceback() -> None:
    """A review's 600 nested groups (Prometheus takes up to 1000) crashed check and build
    with a RecursionError from Python's re; refused with words instead."""
    regex = "(" * 600 + "5.." + ")" * 600
    with pytest.raises(ValueError, match="nests its groups deeper than limone-obs can check"):
        parse_selector(_selector(regex))


def test_a_named_group_of_new_go_releases_is_refused_with_its_spelling() -> None:
    """``(?<name>...)``: Prometheus built with Go 1.22+ takes it, older ones (2.x here)
    refuse it; Python's re error was no help."""
    with pytest.raises(ValueError, match=re.escape("write (?P<name>...)")):
        parse_selector(_selector("(?<code>5).."))


@pytest.mark.parametrize(
    ("selector", "value"),
    [(r'x{v=~"a\nb"}', "a\nb"), (r'x{v=~"\x41"}', "A"), (r'x{v="\101\u00e9\""}', 'A\u00e9"'),
     ("x{v=~'5..|a,b'}", "5..|a,b"), (r"x{v=~`\d+`}", r"\d+"), (r'x{v="a\\b"}', "a\\b")],
)  # fmt: skip
def test_promql_strings_are_read_as_promql_reads_them(selector: str, value: str) -> None:
    """A review: every ``\\X`` was read as ``X`` (``"a\\nb"`` became ``anb``, ``"\\d"`` a
    ``d`` Prometheus refuses), and single quotes and backquotes were refused. Go's escapes
    are read; a backquoted string is as written; the kit writes the value back as one."""
    (matcher,) = parse_selector(selector).matchers
    assert value == matcher.value
    (again,) = parse_selector(f"x{{{matcher.promql()}}}").matchers
    assert matcher == again


@pytest.mark.parametrize(
    ("selector", "words"),
    [(r'x{v=~"\d+"}', "holds \\d, an escape PromQL strings do not have"),
     ('x{v="a\nb"}', "breaks its line inside quotes")],
)  # fmt: skip
def test_a_string_promql_refuses_is_refused_by_name(selector: str, words: str) -> None:
    """What Prometheus refuses in a string: an unknown escape, a raw line break."""
    with pytest.raises(ValueError, match=re.escape(words)):
        parse_selector(selector)
