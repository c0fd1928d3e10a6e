"""``limone-obs status``: table rendering and errors (the live table is tested in test_up)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask, request

from limone_obs.alerts import build
from limone_obs.alerts.spec import load_spec, parse_spec
from limone_obs.cli import main
from limone_obs.errors import StackError
from limone_obs.stack import procs
from limone_obs.stack.status import (
    HealthAlert,
    SloStatus,
    base_url,
    has_values,
    history_note,
    no_data_hint,
    render,
    render_health,
    rules_hint,
)
from tests.support import ROOT, need, serve


def test_render_formats_ratios_burns_and_missing_values() -> None:
    """Ratios print as percent, burn rates as multiples, missing and NaN values as '-'."""
    rows = [
        SloStatus(
            "availability",
            "ratio",
            99.9,
            0.9995,
            0.5,
            {"5m": 14.4, "1h": float("nan"), "6h": None, "3d": 0.5},
            ("AvailabilityErrorBudgetBurn(page)",),
        ),
        SloStatus("up", "up", None, 1.0, None),
    ]
    lines = render(rows).splitlines()
    assert lines[0].split()[:4] == ["SLO", "kind", "objective", "SLI"]
    assert [
        "availability", "ratio", "99.9", "%", "99.950", "%", "50.0", "%",
        "14.40x", "-", "-", "0.50x", "-", "AvailabilityErrorBudgetBurn(page)",
    ] == lines[1].split()  # fmt: skip
    assert ["up", "up", "-", "100.000", "%", "-", "-", "-", "-", "-", "-", "-"] == lines[2].split()


def test_render_shows_the_progress_of_each_next_stage() -> None:
    """A staged latency SLO lists the share of events within each next stage."""
    row = SloStatus("latency", "latency", 95.0, 0.99, 0.8, progress={"<=1s": 0.25, "<=0.6s": None})
    line = render([row]).splitlines()[1]
    assert "<=1s 25.0 %, <=0.6s -" in line


def test_render_health_lists_each_alert_firing_with_its_labels() -> None:
    """A kit-health alert firing is ``Name(severity)`` as in the firing column, then the
    labels that tell it from another firing; a service-wide one shows "-"."""
    alerts = [
        HealthAlert("ExporterProblem", "ticket", (("instance", "10.0.0.5:8000"), ("problem", "x"))),
        HealthAlert("TrafficStopped", "page"),
    ]
    expected = [
        "kit health               labels",
        "ExporterProblem(ticket)  instance=10.0.0.5:8000, problem=x",
        "TrafficStopped(page)     -",
    ]
    assert expected == (render_health(parse_spec(SHOP), alerts) or "").splitlines()


def test_render_health_says_none_firing_unless_the_spec_switches_them_off() -> None:
    """None firing is said in so many words; with ``health: "off"`` (no such rule) and
    none firing, the section is left out."""
    off = parse_spec(f'{SHOP}health: "off"\n')
    expected = ("kit health: none firing", None)
    assert expected == (render_health(parse_spec(SHOP), []), render_health(off, []))


def test_the_errors_slo_reads_100_percent_without_any_5xx() -> None:
    """The threshold SLO's status query counts a missing error series as no errors."""
    spec = load_spec(ROOT / "alerts" / "slo.yaml")
    slo = spec.slo("errors")
    expr = slo.sli.status_sli(spec, slo)
    assert expr is not None
    expected = (
        '1 - (sum(rate(limoneide_requests_total{job="limoneide",status=~"5.."}[5m])) '
        'or vector(0)) / sum(rate(limoneide_requests_total{job="limoneide"}[5m]))'
    )
    assert expected == expr


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:9090", "http://127.0.0.1:9090"),
        ("http://127.0.0.1:9090/", "http://127.0.0.1:9090"),
        ("https://prom.example.com", "https://prom.example.com"),
    ],
)
def test_a_url_without_scheme_gets_http(given: str, expected: str) -> None:
    """No scheme means http://; a trailing slash is dropped."""
    assert expected == base_url(given)


def test_a_url_with_another_scheme_is_named() -> None:
    """ftp://... is refused with a message naming the value and an example."""
    with pytest.raises(StackError, match="'ftp://x' is not an http"):
        base_url("ftp://x")


def test_unreachable_prometheus_is_exit_2_with_the_url() -> None:
    """No Prometheus at the URL: exit 2 and a message naming it and --prometheus."""
    spec = str(ROOT / "alerts" / "slo.yaml")
    args = ["status", "--prometheus", "http://127.0.0.1:9", "--spec", spec]
    result = CliRunner().invoke(main, args)
    assert 2 == result.exit_code
    assert "cannot query Prometheus at http://127.0.0.1:9" in result.output


def _not_prometheus() -> Flask:
    """A web app on the port given as Prometheus (the trial pointed status at the app)."""
    app = Flask(__name__)
    app.add_url_rule("/", "index", lambda: "hello")
    return app


def test_a_server_that_is_not_prometheus_is_named_as_such() -> None:
    """Something answers, but not as Prometheus: exit 2, the message says it answered, with
    the HTTP status and content type, and to check the URL and port (no JSONDecodeError)."""
    spec = str(ROOT / "alerts" / "slo.yaml")
    with serve(_not_prometheus(), quiet=True) as url:
        result = CliRunner().invoke(main, ["status", "--prometheus", url, "--spec", spec])
    expected = (
        f"error: {url} answered /api/v1/query with HTTP 404 (text/html; charset=utf-8), not as "
        "Prometheus's HTTP API: something else listens there; check the URL and port given "
        "to --prometheus"
    )
    assert (2, expected) == (result.exit_code, result.output[: len(expected)])


SHOP = """
service: shop
slos:
  - name: availability
    kind: ratio
    objective: 99.5
"""
OPS_SPEC = Path("ops/alerts/slo.yaml")
OPS_RULES = "ops/alerts/rules/slo-recording.yml and ops/alerts/rules/slo-alerts.yml"


def _group(
    service: str, last: str = "2026-01-01T00:00:00Z", slos: tuple[str, ...] = ("availability",)
) -> dict[str, Any]:
    """One recording rule group as /api/v1/rules lists it, a rule for each of ``slos``."""
    rules = [
        {"name": "slo:objective:ratio", "labels": {"slo": slo, "slo_service": service}}
        for slo in slos
    ]
    return {
        "name": "slo-sli-availability",
        "file": "/etc/prometheus/rules/slo-recording.yml",
        "interval": 15,
        "lastEvaluation": last,
        "rules": rules,
    }


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (SloStatus("a", "ratio", 99.9, None, None, {"5m": None}), False),
        (SloStatus("a", "ratio", 99.9, float("nan"), None, {"5m": float("nan")}), False),
        (SloStatus("a", "latency", 95.0, None, None, progress={"<=1s": None}), False),
        (SloStatus("a", "ratio", 99.9, None, None, {"5m": 0.0}), True),
        (SloStatus("a", "ratio", 99.9, None, None, firing=("ASliAbsent(ticket)",)), True),
        (SloStatus("a", "latency", 95.0, None, None, progress={"<=1s": 0.5}), True),
    ],
)
def test_has_values_is_false_only_when_every_cell_is_a_dash(row: SloStatus, expected: bool) -> None:
    """None and NaN print as "-"; any number or firing alert is a value."""
    assert expected == has_values([row])


def test_the_hint_names_the_rule_files_when_no_rule_of_the_service_is_loaded() -> None:
    """No rule group carries the spec's service: add these rule files to rule_files."""
    hint = no_data_hint(parse_spec(SHOP), OPS_SPEC, "http://p:9090", [])
    expected = (
        "no SLO of ops/alerts/slo.yaml (service 'shop') has a value in Prometheus at "
        "http://p:9090: Prometheus has no recording rule of service 'shop': add "
        f"{OPS_RULES} (written from this spec by `limone-obs build`) to rule_files in "
        "Prometheus's configuration and reload it (SIGHUP or a restart)"
    )
    assert expected == hint


def test_the_hint_names_the_service_whose_rules_prometheus_has() -> None:
    """Rules of another service only: --spec likely names the wrong spec."""
    hint = no_data_hint(parse_spec(SHOP), OPS_SPEC, "http://p:9090", [_group("billing")])
    assert hint.endswith(
        "; it has rules of service 'billing': for that service, pass its spec with --spec"
    )


def test_the_hint_says_to_wait_for_rules_not_evaluated_yet() -> None:
    """The service's rules are loaded but no group has been evaluated: wait an interval."""
    groups = [_group("shop", last="0001-01-01T00:00:00Z")]
    hint = no_data_hint(parse_spec(SHOP), OPS_SPEC, "http://p:9090", groups)
    assert hint.endswith(
        ": its rules are loaded (/etc/prometheus/rules/slo-recording.yml) but not evaluated "
        "yet: wait one evaluation interval (15 s), then run status again"
    )


def test_the_hint_points_at_the_scrape_when_rules_run_but_find_nothing() -> None:
    """Rules loaded and evaluated, still nothing: the job name or traffic, and check."""
    hint = no_data_hint(parse_spec(SHOP), OPS_SPEC, "http://p:9090", [_group("shop")])
    assert hint.endswith(
        ": its rules are loaded and evaluated but find no series: does Prometheus scrape "
        "the job 'shop' (the spec's job), and did the service get requests in the last 5 "
        "minutes? `limone-obs check --spec ops/alerts/slo.yaml --prometheus http://p:9090` "
        "names each SLI query that finds nothing"
    )


def test_the_hint_says_to_wait_for_a_first_scrape_when_the_job_has_none() -> None:
    """Rules run, but no up series of the job: Prometheus just started (or no job of that
    name is scraped), not a service without requests."""
    hint = no_data_hint(parse_spec(SHOP), OPS_SPEC, "http://p:9090", [_group("shop")], False)
    assert hint.endswith(
        ": its rules run, but Prometheus has no scrape of the job 'shop' (no up{job='shop'} "
        "series): right after Prometheus starts, wait for its first scrapes and run status "
        "again; if it stays so, no scrape_configs job is named 'shop' (the spec's job)"
    )


def test_without_the_rules_api_the_hint_lists_every_likely_cause() -> None:
    """Prometheus does not tell its rules: the three causes, one per line."""
    lines = no_data_hint(parse_spec(SHOP), Path("t/my-slos.yaml"), "http://p", None).splitlines()
    assert [
        "no SLO of t/my-slos.yaml (service 'shop') has a value in Prometheus at http://p; "
        "likely causes:",
        "  - the spec's recording rules are not loaded: add alerts/rules/slo-recording.yml and "
        "alerts/rules/slo-alerts.yml below the --root you build with (written from this spec "
        "by `limone-obs build`) to rule_files in Prometheus's configuration and reload it "
        "(SIGHUP or a restart)",
        "  - Prometheus has not evaluated them yet: wait one evaluation interval, then retry",
        "  - --spec names another service's spec than the one whose rules Prometheus has",
    ] == lines


def _fake_prometheus(value: str | None, groups: list[dict[str, Any]]) -> Flask:
    """Answers every query with one sample of ``value`` for the SLO availability (none
    when None) and /api/v1/rules with ``groups``."""
    app = Flask(__name__)
    sample = {"metric": {"slo": "availability", "slo_service": "shop"}, "value": [0, value]}
    result = [sample] if value is not None else []
    vector = {"status": "success", "data": {"resultType": "vector", "result": result}}
    app.add_url_rule("/api/v1/query", "query", lambda: vector)
    rules = {"status": "success", "data": {"groups": groups}}
    app.add_url_rule("/api/v1/rules", "rules", lambda: rules)
    return app


def _status_at(tmp_path: Path, url: str, *extra: str) -> Result:
    """``limone-obs status`` of the shop spec (``tmp_path/alerts/slo.yaml``) at ``url``."""
    spec = tmp_path / "alerts" / "slo.yaml"
    spec.parent.mkdir(exist_ok=True)
    spec.write_text(SHOP)
    return CliRunner().invoke(main, ["status", "--prometheus", url, "--spec", str(spec), *extra])


def _status(tmp_path: Path, prometheus: Flask, *extra: str) -> Result:
    with serve(prometheus, quiet=True) as url:
        return _status_at(tmp_path, url, *extra)


def test_status_without_any_data_exits_1_with_the_hint_on_stderr(tmp_path: Path) -> None:
    """Every cell "-": the table still prints, then the hint on stderr, exit 1."""
    result = _status(tmp_path, _fake_prometheus(None, []))
    rules = f"{tmp_path}/alerts/rules/slo-recording.yml"
    assert (1, True, True) == (
        result.exit_code,
        result.stdout.startswith("SLO "),
        f"Prometheus has no recording rule of service 'shop': add {rules}" in result.stderr,
    ), result.output


def test_status_ends_with_the_kit_health_line_and_a_newline(tmp_path: Path) -> None:
    """The table, then the kit-health line, each ending in a newline: the message on
    stderr that follows starts a line of its own."""
    result = _status(tmp_path, _fake_prometheus(None, []))
    assert (True, True) == (
        result.stdout.endswith("\n\nkit health: none firing\n"),
        "\nkit health: none firing\nerror: no SLO of " in result.output,
    ), result.output


def test_status_right_after_prometheus_starts_says_no_scrape_yet(tmp_path: Path) -> None:
    """Rules evaluated, every query empty, up of the job too (Prometheus has not scraped
    yet): the hint says to wait for a scrape, not to look for a missing job or traffic."""
    result = _status(tmp_path, _fake_prometheus(None, [_group("shop")]))
    assert (1, True) == (
        result.exit_code,
        "Prometheus has no scrape of the job 'shop' (no up{job='shop'} series)" in result.stderr,
    ), result.output


def test_status_with_data_exits_0_and_says_nothing_more(tmp_path: Path) -> None:
    """The normal case is unchanged: a value in the table, exit 0, nothing on stderr."""
    result = _status(tmp_path, _fake_prometheus("0.5", [_group("shop")]))
    assert (0, "") == (result.exit_code, result.stderr), result.output


def test_status_watch_exits_by_its_last_table(tmp_path: Path) -> None:
    """With --watch the hint comes with each empty table; the last one decides: exit 1."""
    result = _status(
        tmp_path, _fake_prometheus(None, []), "--watch", "--count", "2", "--interval", "0.5"
    )
    assert (1, 2) == (result.exit_code, result.stderr.count("error: no SLO of ")), result.output


@pytest.mark.integration
def test_status_against_a_real_prometheus_with_another_services_rules(tmp_path: Path) -> None:
    """A real Prometheus loading the kit's rules (service limoneide), status with a shop
    spec: exit 1, the hint names the shop rule files and the service Prometheus has."""
    binary = need("prometheus")
    rules = ROOT / "alerts" / "rules" / "slo-recording.yml"
    config = tmp_path / "prometheus.yml"
    config.write_text(f"rule_files: [{json.dumps(str(rules))}]\n")
    port = procs.free_port()
    argv = procs.prometheus_argv(binary, config, tmp_path / "data", port)
    proc = procs.start("prometheus", argv, tmp_path / "prometheus.log")
    try:
        url = f"http://{procs.LOOPBACK}:{port}"
        procs.wait_http(proc, f"{url}/-/ready")
        result = _status_at(tmp_path, url)
    finally:
        proc.stop()
    assert (1, True, True) == (
        result.exit_code,
        "Prometheus has no recording rule of service 'shop'" in result.stderr,
        "it has rules of service 'limoneide': for that service, pass its spec" in result.stderr,
    ), result.output


SHOP_TWO = (
    SHOP
    + """
  - name: errors
    kind: threshold
    objective: 99
"""
)
#: The shop table with the threshold SLO read and the budget SLO empty.
PARTIAL = [
    SloStatus("availability", "ratio", 99.5, None, None, {"5m": None}),
    SloStatus("errors", "threshold", 99.0, 1.0, None),
]


#: Rules of both SLOs of SHOP_TWO, evaluated.
BOTH = ("availability", "errors")


def test_slos_without_rules_are_named_with_the_build_to_run() -> None:
    """The spec renamed an SLO and gained one after Prometheus loaded its rules (here:
    only the rules of the old name): both are named, the one whose SLI the table reads
    from the raw series too (its alert is missing), with the build and the reload."""
    groups = [_group("shop", slos=("old-availability",))]
    hint = rules_hint(parse_spec(SHOP_TWO), OPS_SPEC, "http://p:9090", PARTIAL, groups)
    assert (
        "SLOs 'availability', 'errors' of ops/alerts/slo.yaml (service 'shop') have no "
        "recording rule in Prometheus at http://p:9090: the rule files Prometheus loaded "
        "come from an older build of this spec, or from another spec. Run `limone-obs build "
        f"--root ops`, then make Prometheus load {OPS_RULES} again (SIGHUP or a restart)"
    ) == hint
    full = [replace(PARTIAL[0], sli=0.999), PARTIAL[1]]  # a full table changes nothing
    groups = [_group("shop")]  # only the errors SLO's rules missing
    hint = rules_hint(parse_spec(SHOP_TWO), Path("t/my.yaml"), "http://p", full, groups)
    assert hint is not None
    assert hint.startswith("SLO 'errors' of t/my.yaml (service 'shop') has no recording")
    assert "Run `limone-obs build --root DIR` (DIR: the folder holding alerts/slo.yaml)" in hint


def test_a_spec_named_from_inside_its_alerts_folder_gets_the_root_above(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """status --spec slo.yaml run in ops/alerts/: the advice builds --root .. and names
    the rule files under it."""
    (tmp_path / "ops" / "alerts").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "ops" / "alerts")
    groups = [_group("shop", slos=("availability",))]
    hint = rules_hint(parse_spec(SHOP_TWO), Path("slo.yaml"), "http://p", PARTIAL, groups)
    rules = " and ".join(f"../{path}" for path in (build.RECORDING_RULES, build.ALERTING_RULES))
    assert hint is not None
    assert f"Run `limone-obs build --root ..`, then make Prometheus load {rules} again" in hint


def test_an_slo_whose_rules_are_not_evaluated_yet_says_to_wait() -> None:
    """Right after a start or a reload: an SLO whose SLI or budget shows "-" while one of
    its groups never ran (the long group, every minute) is named, with that interval."""
    never = "0001-01-01T00:00:00Z"
    groups = [_group("shop", slos=BOTH), {**_group("shop", never, BOTH), "interval": 60}]
    half = [replace(PARTIAL[0], burn={"5m": 0.0}), PARTIAL[1]]  # 5m burn read, SLI not yet
    for rows in (PARTIAL, half):
        hint = rules_hint(parse_spec(SHOP_TWO), OPS_SPEC, "http://p:9090", rows, groups)
        assert (
            "SLO 'availability' of ops/alerts/slo.yaml (service 'shop'): some of the rules are "
            "loaded but not evaluated yet: wait up to one evaluation interval (60 s), then run "
            "status again"
        ) == hint


def test_an_slo_whose_rules_ran_but_counted_no_event_is_named() -> None:
    """Rules loaded and evaluated, the SLI still "-": no event of it yet (an AI API not
    called since Prometheus started), or none before its slower group last ran (a trial
    read the message a minute into its load, events flowing); the check command names the
    empty SLI queries."""
    groups = [{**_group("shop", slos=BOTH), "interval": 60}]
    hint = rules_hint(parse_spec(SHOP_TWO), OPS_SPEC, "http://p:9090", PARTIAL, groups)
    assert (
        "SLO 'availability' of ops/alerts/slo.yaml (service 'shop'): its rules run but count "
        "no event of its SLI yet (no request or call of the kind its SLI counts since "
        "Prometheus began scraping, or none before the rules' last run: run status again "
        "after 60 s): the SLI and budget show - until the first one; if there "
        "was such traffic, `limone-obs check --spec ops/alerts/slo.yaml --prometheus "
        "http://p:9090` names each SLI query that finds nothing"
    ) == hint


@pytest.mark.parametrize(
    ("rows", "groups"),
    [
        (PARTIAL, None),  # Prometheus does not tell its rules
        # Rules not evaluated yet, but every SLO has a value: nothing to wait for.
        (
            [replace(PARTIAL[0], sli=0.999, budget_left=0.5), PARTIAL[1]],
            [_group("shop", "0001-01-01T00:00:00Z", BOTH)],
        ),
    ],
)
def test_no_rules_hint_without_a_sure_cause(
    rows: list[SloStatus], groups: list[dict[str, Any]] | None
) -> None:
    assert None is rules_hint(parse_spec(SHOP_TWO), OPS_SPEC, "http://p", rows, groups)


def _recording_rules_empty(groups: list[dict[str, Any]], *, only: bool = False) -> Flask:
    """Queries of recorded series (``slo:...``) find nothing and any other query one
    sample; with ``only``, the other way round: recorded series answer (the service's
    rules, built from another spec) and the job's own series (``up``, counters) do not."""
    app = Flask(__name__)
    sample = {"metric": {"slo": "availability", "slo_service": "shop"}, "value": [0, "0.5"]}

    def query() -> dict[str, Any]:
        recorded = "slo:" in request.args.get("query", "")
        result = [sample] if recorded == only else []
        return {"status": "success", "data": {"resultType": "vector", "result": result}}

    app.add_url_rule("/api/v1/query", "query", query)
    rules = {"status": "success", "data": {"groups": groups}}
    app.add_url_rule("/api/v1/rules", "rules", lambda: rules)
    return app


def test_status_warns_of_missing_rules_and_exits_0(tmp_path: Path) -> None:
    """The threshold SLO has a value, the budget SLO none, and neither has rules: the
    table, then one warning naming them; exit 0 (the table shows something)."""
    spec = tmp_path / "alerts" / "slo.yaml"
    spec.parent.mkdir()
    spec.write_text(SHOP_TWO)
    groups = [_group("shop", slos=("old-availability",))]
    with serve(_recording_rules_empty(groups), quiet=True) as url:
        result = CliRunner().invoke(main, ["status", "--prometheus", url, "--spec", str(spec)])
    assert (0, True, 1) == (
        result.exit_code,
        result.stderr.startswith(
            f"warning: SLOs 'availability', 'errors' of {spec} (service 'shop') have no "
            "recording rule"
        ),
        result.stderr.count("\n"),
    ), result.output


def test_status_warns_when_the_specs_job_is_not_scraped(tmp_path: Path) -> None:
    """Some rows show values (the service's rules) while Prometheus scrapes no target of
    the spec's job (a copy of the spec with another `job:`): a warning names the job and
    what to set; exit 0. It printed the partial table without a word."""
    result = _status(tmp_path, _recording_rules_empty([_group("shop")], only=True))
    assert (0, True) == (
        result.exit_code,
        "warning: Prometheus scrapes no target of job 'shop'" in result.stderr,
    ), result.output


@pytest.mark.parametrize(
    ("seconds", "held"),
    [(None, None), (float("nan"), None), (30 * 86400, None), (29 * 86400, None),
     (20 * 86400, "20.0 d"), (18 * 60 + 20, "18 min"), (20, "1 min"), (2 * 3600, "2.0 h")],
)  # fmt: skip
def test_the_history_note_says_how_much_of_the_period_prometheus_holds(
    seconds: float | None, held: str | None
) -> None:
    """Less than the 30d period: a note naming about how long; the period or more
    (or no scrape): none."""
    note = history_note(parse_spec(SHOP), seconds)
    if held is None:
        assert note is None
    else:
        assert note is not None
        assert note.startswith(f"note: Prometheus holds about {held} of job 'shop', less ")
