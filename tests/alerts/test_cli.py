"""`limone-obs check`: validates the spec, prints a summary, exit 0 or 2."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner, Result
from flask import Flask
from prometheus_client import CollectorRegistry

from limone_obs import Metrics
from limone_obs import conventions as c
from limone_obs.alerts import build
from limone_obs.alerts.cli import promtool_problems, sli_queries, tool_refusal
from limone_obs.alerts.spec import SPEC_DOCS, SPEC_PATH, load_spec
from limone_obs.cli import main
from limone_obs.exporter import rum
from limone_obs.stack import procs
from tests.alerts.helpers import edited, spec_text
from tests.support import ROOT, need, serve


def test_check_accepts_the_committed_spec() -> None:
    """The committed spec is valid: 7 SLOs, 26 SLO alert rules + 5 health alerts, and the
    sum is the number of alert rules the generated rule files hold (what promtool counts)."""
    result = CliRunner().invoke(main, ["check", "--spec", str(ROOT / "alerts" / "slo.yaml")])
    written = sum(
        len([rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]
             if "alert" in rule])
        for path in (ROOT / "alerts" / "rules").glob("*.yml")
    )  # fmt: skip
    expected = (
        f"{ROOT / 'alerts' / 'slo.yaml'}: valid, 7 SLOs, 26 SLO alert rules + 5 health alerts "
        f"= {written} alert rules\n"
    )
    assert (0, expected) == (result.exit_code, result.stdout)


BILLING = """\
version: 1
service: billing
job: billing
namespace: billing
period: 28d
grafana_url: https://grafana.billing.example
runbook_base_url: https://git.billing.example/ops/alerts/runbooks
alertmanager:
  receivers:
    page: {webhook_url: "https://hooks.billing.example/page"}
    ticket: {webhook_url: "https://hooks.billing.example/ticket"}
slos:
  - name: availability
    kind: ratio
    objective: 99.5
    total: billing_requests_total
    errors: billing_requests_total{status=~"5.."}
  - name: latency
    kind: latency
    objective: 95
    histogram: billing_request_duration_seconds
    threshold_seconds: 0.5
"""


def test_check_notes_a_page_that_reacts_to_a_total_slowdown_late(tmp_path: Path) -> None:
    """A 95 % latency SLO: with every request slow after a healthy hour, its 1h/5m page
    fires only once the hour's error ratio passes 13.44 x 5 % (about 42 minutes with the
    2m for): check says so and how to page sooner, and exits 0. The 99.5 % availability
    SLO pages within minutes (and has AllFailing): no note. A quantile page removes it."""
    spec = tmp_path / "slo.yaml"
    spec.write_text(BILLING)
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert result.exit_code == 0
    assert len(notes) == 1
    assert "slos[1] (latency)" in notes[0]
    assert "after about 42 minutes" in notes[0]
    assert "quantile_alert: {for: 5m, severity: page}" in notes[0]
    spec.write_text(BILLING + "    quantile_alert: {for: 5m, severity: page}\n")
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    assert (result.exit_code, result.stderr) == (0, "")


def test_check_notes_alert_links_left_at_the_kits_own(tmp_path: Path) -> None:
    """A spec of another service whose runbook and Grafana URLs are the defaults (the
    kit's repository, a Grafana on 127.0.0.1), or another view of that repository and a
    Grafana on localhost or ::1: one note each, exit 0; none once set, and none for the
    kit's own service."""
    spec = tmp_path / "slo.yaml"
    own = "grafana_url: https://grafana.billing.example\n"
    runbooks = "runbook_base_url: https://git.billing.example/ops/alerts/runbooks\n"
    spec.write_text(BILLING.replace(own, "").replace(runbooks, ""))
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert result.exit_code == 0
    assert [
        "note: runbook_base_url is https://github.com/limoneide/limone-obs/blob/main/alerts/"
        "runbooks, limone-obs' own repository: it has no runbooks of service 'billing', so "
        "every alert's runbook link is broken. Set it to where the built alerts/runbooks/ "
        "folder is published (alerts link to <runbook_base_url>/billing/<slo>.md#<alert>)",
        "note: the alerts' dashboard links open http://127.0.0.1:3000/d/billing-slos: a "
        "Grafana on the machine of whoever clicks them (grafana_url defaults to "
        "http://127.0.0.1:3000). Set grafana_url to your Grafana's URL",
    ] == [note for note in notes if "slos[" not in note]
    for grafana, runbooks_url in (
        ("http://localhost:3000", "https://github.com/limoneide/limone-obs/tree/main/x"),
        ("http://[::1]:3000", "https://github.com/limoneide/limone-obs/blob/v1/alerts/runbooks"),
    ):
        spec.write_text(
            BILLING.replace("https://grafana.billing.example", grafana).replace(
                "https://git.billing.example/ops/alerts/runbooks", runbooks_url
            )
        )
        result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
        linked = [line for line in result.stderr.splitlines() if "link" in line]
        assert 2 == len(linked), result.stderr
    spec.write_text(spec_text())
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    assert not [line for line in result.stderr.splitlines() if "link" in line]


def test_check_notes_a_runbook_base_url_ending_with_the_service(tmp_path: Path) -> None:
    """A trial set ``runbook_base_url: .../trialsvc`` for service trialsvc: its links
    read ``.../trialsvc/trialsvc/<slo>.md``. One note says so; a trailing slash too."""
    spec = tmp_path / "slo.yaml"
    for base in ("https://runbooks.example/billing", "https://runbooks.example/billing/"):
        spec.write_text(BILLING.replace("https://git.billing.example/ops/alerts/runbooks", base))
        result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
        notes = [line for line in result.stderr.splitlines() if "ends with the service" in line]
        assert result.exit_code == 0
        assert 1 == len(notes), result.stderr
        assert ".../billing/billing/<slo>.md" in notes[0]


def test_check_notes_receivers_left_at_the_demo_webhook(tmp_path: Path) -> None:
    """A spec of another service without its own receivers (a trial's spec left out
    ``receivers.ticket``): its tickets went to the demo stack's webhook on 127.0.0.1,
    without a word. One note per such severity; none once set."""
    spec = tmp_path / "slo.yaml"
    own = '    ticket: {webhook_url: "https://hooks.billing.example/ticket"}\n'
    spec.write_text(BILLING.replace(own, ""))
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    notes = [line for line in result.stderr.splitlines() if "receivers." in line]
    assert (0, 1) == (result.exit_code, len(notes)), result.stderr
    assert notes[0].startswith(
        "note: alertmanager.receivers.ticket sends its alerts to http://127.0.0.1:9095/alerts, "
        "the demo stack's webhook"
    )
    spec.write_text(BILLING)
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    assert "receivers." not in result.stderr
    # Extra blocks beside the default webhook: they are told, the demo webhook too.
    extra = "    ticket: {extra: {webhook_configs: [{url: 'https://x.example/t'}]}}\n"
    spec.write_text(BILLING.replace(own, extra))
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    assert "receivers.ticket also sends its alerts to http://127.0.0.1:9095/alerts" in (
        result.stderr
    ), result.stderr
    assert "webhook_url: null to send them only to its extra *_configs" in result.stderr


@pytest.mark.parametrize("check", [False, True], ids=["build", "build-check"])
def test_build_notes_receivers_left_at_the_demo_webhook(tmp_path: Path, check: bool) -> None:
    """build (and build --check) say what check notes: a receiver left out goes to the
    demo stack's webhook, where nobody is told (build wrote that URL without a word)."""
    root = tmp_path / "ops"
    (root / "alerts").mkdir(parents=True)
    own = '    ticket: {webhook_url: "https://hooks.billing.example/ticket"}\n'
    (root / "alerts" / "slo.yaml").write_text(BILLING.replace(own, ""))
    assert 0 == CliRunner().invoke(main, ["build", "--root", str(root)]).exit_code
    args = ["build", "--root", str(root), *(["--check"] if check else [])]
    result = CliRunner().invoke(main, args)
    notes = [line for line in result.stderr.splitlines() if "receivers." in line]
    assert (0, 1) == (result.exit_code, len(notes)), result.stderr
    assert notes[0].startswith("note: alertmanager.receivers.ticket sends its alerts to ")


THREE_ERRORS = """\
version: 1
service: ""
tiers:
  page-fast: {severity: page, long_window: 1h, short_window: 5m, budget_percent: 2, for: 2 minutes}
slos:
  - name: availability
    kind: ratio
    objectiv: 99.9
"""


def test_check_prints_every_independent_error_each_located(tmp_path: Path) -> None:
    """An empty service, a tier's `for: 2 minutes` and an SLO's typo `objectiv:` are three
    independent errors: check prints all of them, exit 2 (not a fourth that `objective`
    is missing: the typo's message already says "did you mean objective?")."""
    spec = tmp_path / "slo.yaml"
    spec.write_text(THREE_ERRORS)
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    located = [line.split(": ", 3)[2] for line in result.output.splitlines()]
    expected = [
        "service",
        "tiers.page-fast.for",
        "slos[0] (availability).objectiv",
    ]
    assert (2, expected) == (result.exit_code, located)
    assert "did you mean objective?" in result.output


def test_check_prints_catalogue_and_model_errors_together(tmp_path: Path) -> None:
    """A misspelt metric (the catalogue's error) does not hide an error of another field."""
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        edited("service: limoneide\n", "service: Limone IDE\n").replace(
            "total: limoneide_requests_total\n", "total: limoneide_request_total\n", 1
        )
    )
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    located = [line.split(": ", 3)[2] for line in result.output.splitlines()]
    assert (2, ["service", "slos[0] (availability).total"]) == (result.exit_code, located)


ORDERS_LATENCY = """\
version: 1
service: orders-api
job: orders
namespace: orders
buckets:
  orders_request_duration_seconds: [0.1, 0.3, 0.6, 1, 2.5]
slos:
  - name: latency
    kind: latency
    objective: 95
    histogram: HISTOGRAM
    threshold_seconds: 0.3
    stages: [0.1]
"""


@pytest.mark.parametrize(
    "histogram", ["orders_request_duration", "orders_request_duration_seconds_bucket"]
)
def test_a_bad_histogram_is_the_only_error_of_its_slo(tmp_path: Path, histogram: str) -> None:
    """A misspelt histogram: only its own error, not a threshold "not a bucket boundary"
    of the misspelt name's guessed buckets with advice to declare buckets for a metric
    that does not exist (the buckets declared for the real one were ignored)."""
    spec = tmp_path / "slo.yaml"
    spec.write_text(ORDERS_LATENCY.replace("HISTOGRAM", histogram))
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    located = [line.split(": ", 3)[2] for line in result.output.splitlines()]
    assert (2, ["slos[0] (latency).histogram"]) == (result.exit_code, located), result.output
    assert "bucket boundary" not in result.output


def test_build_refuses_the_kits_default_namespace_in_another_namespaces_spec(
    tmp_path: Path,
) -> None:
    """A spec of namespace orders whose total is limoneide_requests_total (copied from the
    kit's): its SLI selects nothing, so the SLO could never page. check refused it while
    build wrote 38 files and build --check passed; now build refuses it with the name to
    write, and writes nothing."""
    root = tmp_path / "ops"
    (root / "alerts").mkdir(parents=True)
    text = ORDERS_LATENCY.replace("HISTOGRAM", "orders_request_duration_seconds") + (
        "  - name: availability\n    kind: ratio\n    objective: 99.5\n"
        "    total: limoneide_requests_total\n"
        '    errors: orders_requests_total{status=~"5.."}\n'
    )
    (root / "alerts" / "slo.yaml").write_text(text)
    result = CliRunner().invoke(main, ["build", "--root", str(root)])
    assert 2 == result.exit_code, result.output
    assert "slos[1] (availability).total: limoneide_requests_total" in result.output
    assert "write orders_requests_total" in result.output
    assert ["alerts"] == sorted(path.name for path in root.iterdir())
    assert ["slo.yaml"] == sorted(path.name for path in (root / "alerts").iterdir())


@pytest.mark.parametrize("check", [False, True], ids=["build", "build-check"])
def test_build_warns_of_another_namespaces_series_that_check_refuses(
    tmp_path: Path, check: bool
) -> None:
    """A service renamed (namespace orders -> orders_api) with its selectors left behind:
    the rules, tests and dashboards agree with each other, so build wrote them and build
    --check passed without a word while check refused the spec. Both now say it (a
    warning, not an error: a series of other software may look like the exporter's)."""
    root = tmp_path / "ops"
    (root / "alerts").mkdir(parents=True)
    text = ORDERS_LATENCY.replace("HISTOGRAM", "orders_request_duration_seconds") + (
        "  - name: availability\n    kind: ratio\n    objective: 99.5\n"
        "    total: orders_requests_total\n"
        '    errors: orders_requests_total{status=~"5.."}\n'
    )
    renamed = text.replace("namespace: orders\n", "namespace: orders_api\n").replace(
        "  orders_request_duration_seconds: [", "  orders_api_request_duration_seconds: ["
    )
    (root / "alerts" / "slo.yaml").write_text(
        renamed.replace(
            "histogram: orders_request_duration_seconds",
            "histogram: orders_api_request_duration_seconds",
        )
    )
    assert 0 == CliRunner().invoke(main, ["build", "--root", str(root)]).exit_code
    args = ["build", "--root", str(root), *(["--check"] if check else [])]
    result = CliRunner().invoke(main, args)
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert 0 == result.exit_code, result.output
    # errors (a status matcher makes it the exporter's); total has none: other
    # software's *_requests_total looks the same, and check leaves it alone too.
    assert 1 == len(warnings), result.output
    assert "(availability).errors: orders_requests_total" in warnings[0]
    assert "write orders_api_requests_total" in warnings[0]
    assert "`limone-obs check` refuses this" in warnings[0]


def test_build_refuses_a_misspelt_histogram_even_with_buckets_declared(tmp_path: Path) -> None:
    """build named only the threshold ("not a bucket boundary ... list its buckets"), and
    once buckets were declared for the misspelt name it wrote rules on a series that does
    not exist. It now refuses the histogram itself, with the name to write."""
    root = tmp_path / "ops"
    (root / "alerts").mkdir(parents=True)
    text = ORDERS_LATENCY.replace("HISTOGRAM", "orders_request_duration").replace(
        "  orders_request_duration_seconds: [", "  orders_request_duration: ["
    )
    (root / "alerts" / "slo.yaml").write_text(text)
    result = CliRunner().invoke(main, ["build", "--root", str(root)])
    located = [line.split(": ", 3)[2] for line in result.output.splitlines()]
    assert (2, ["slos[0] (latency).histogram"]) == (result.exit_code, located), result.output
    assert "did you mean orders_request_duration_seconds?" in result.output
    assert ["slo.yaml"] == sorted(path.name for path in (root / "alerts").iterdir())


def test_check_says_a_yaml_syntax_error_stops_the_checks(tmp_path: Path) -> None:
    """Invalid YAML: the located syntax error, then a note that nothing else was checked."""
    spec = tmp_path / "slo.yaml"
    spec.write_text("service: shop\nslos: [\n")
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    lines = result.output.splitlines()
    assert (2, f"error: {spec}: line 3: invalid YAML", "note: nothing else is checked") == (
        result.exit_code,
        lines[0][: len(f"error: {spec}: line 3: invalid YAML")],
        lines[1][:29],
    )


@pytest.mark.parametrize(
    ("text", "line", "hint"),
    [
        ("service: shop\nslos:\n  - name: a\n    kind: ratio\n   total: shop_total\n", 5,
         "this line or the one above is indented wrongly"),
        ("service: shop\nslos:\n  - name: a\n    kind: ratio objective: 99\n", 4,
         "a second `key:` on this line"),
    ],
    ids=["indented-wrongly", "two-keys-on-a-line"],
)  # fmt: skip
def test_a_yaml_error_says_what_it_most_likely_is(
    tmp_path: Path, text: str, line: int, hint: str
) -> None:
    """PyYAML names a token ("expected <block end>, but found '?'"), not the mistake: the
    error adds the likely one and the line as written."""
    spec = tmp_path / "slo.yaml"
    spec.write_text(text)
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    first = result.output.splitlines()[0]
    written = text.splitlines()[line - 1]
    assert (2, True, True) == (
        result.exit_code,
        hint in first,
        f"(line {line}: {written!r})" in first,
    ), first


def test_check_reads_alerts_slo_yaml_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --spec, check reads alerts/slo.yaml below the working directory."""
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["check"])
    assert (0, "alerts/slo.yaml: valid") == (result.exit_code, result.output[:22])


def test_check_on_a_missing_file_exits_2(tmp_path: Path) -> None:
    """A missing spec is reported with its path, exit 2, no traceback."""
    missing = tmp_path / "nope.yaml"
    result = CliRunner().invoke(main, ["check", "--spec", str(missing)])
    expected = (
        f"error: {missing}: file not found: give the path of yours with --spec PATH, or write "
        f"your spec there; its format is documented at {SPEC_DOCS} (the kit's commented "
        "alerts/slo.yaml beside it is an example)\n"
    )
    assert (2, expected) == (result.exit_code, result.output)


def test_build_without_a_spec_names_root_and_the_docs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`build` in a folder without alerts/slo.yaml says how to point it at one (--root) and
    where the format is documented: a user's project has no alerts/README.md."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["build"])
    expected = (
        "error: alerts/slo.yaml: file not found: `limone-obs build` reads alerts/slo.yaml "
        f"below --root (here {tmp_path.resolve()}): pass --root DIR if yours is "
        f"DIR/alerts/slo.yaml (e.g. --root ops), or write your spec there; its format is "
        f"documented at {SPEC_DOCS}"
    )
    assert (2, expected) == (result.exit_code, result.output[: len(expected)])


def test_check_reads_no_more_than_the_limit() -> None:
    """An endless file (/dev/zero) is refused after the limit, not read to the end."""
    result = CliRunner().invoke(main, ["check", "--spec", "/dev/zero"])
    assert (2, "error: /dev/zero: is over the") == (result.exit_code, result.output[:29])


def test_check_on_a_file_that_is_not_utf8_exits_2(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 (a spec saved as Latin-1): the error names the line and
    says to save it as UTF-8 (it gave Python's byte offset), exit 2; so does build."""
    spec = tmp_path / "alerts" / "slo.yaml"
    spec.parent.mkdir()
    spec.write_bytes(b"version: 1\nservice: caf\xe9\n")
    expected = (
        f"{spec}: line 2: byte 0xe9 is not UTF-8 (a file saved as Latin-1 or "
        "Windows-1252?): save the file as UTF-8"
    )
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    assert (2, f"error: {expected}") == (result.exit_code, result.output.strip())
    result = CliRunner().invoke(main, ["build", "--root", str(tmp_path)])
    assert 0 != result.exit_code
    assert expected in result.output, result.output


# --- check --prometheus: a real Prometheus scraping a small instrumented app ---------


def test_the_sli_queries_of_the_committed_spec() -> None:
    """Each SLO's series selections, located at SLO and field, with the job matcher."""
    spec = load_spec(ROOT / "alerts" / "slo.yaml")
    job = 'job="limoneide"'
    le, le2 = 'le="2.5"', 'le=~"2(\\\\.0)?"'
    load, shown = 'phase="load"', 'phase="ai_answer_shown"'
    assert [
        ("slos[0] (availability).total", f"limoneide_requests_total{{{job}}}"),
        ("slos[0] (availability).errors", f'limoneide_requests_total{{{job},status=~"5.."}}'),
        ("slos[1] (latency).histogram", f"limoneide_request_duration_seconds_count{{{job}}}"),
        ("slos[1] (latency).histogram", f"limoneide_request_duration_seconds_bucket{{{job},{le}}}"),
        ("slos[2] (errors).total", f"limoneide_requests_total{{{job}}}"),
        ("slos[2] (errors).errors", f'limoneide_requests_total{{{job},status=~"5.."}}'),
        (
            "slos[3] (ai-latency).histogram",
            f'limoneide_dependency_duration_seconds_count{{{job},dependency="ai_api"}}',
        ),
        (
            "slos[3] (ai-latency).histogram",
            f'limoneide_dependency_duration_seconds_bucket{{{job},dependency="ai_api",{le}}}',
        ),
        (
            "slos[3] (ai-latency).good",
            f'limoneide_dependency_duration_seconds_count{{{job},dependency="ai_api",outcome="ok"}}',
        ),
        (
            "slos[3] (ai-latency).good",
            "limoneide_dependency_duration_seconds_bucket"
            f'{{{job},dependency="ai_api",outcome="ok",{le}}}',
        ),
        ("slos[4] (up).job", f"up{{{job}}}"),
        ("slos[5] (page-load).histogram", f"limoneide_page_load_seconds_count{{{job},{load}}}"),
        (
            "slos[5] (page-load).histogram",
            f"limoneide_page_load_seconds_bucket{{{job},{load},{le2}}}",
        ),
        (
            "slos[6] (ai-answer-shown).histogram",
            f"limoneide_page_load_seconds_count{{{job},{shown}}}",
        ),
        (
            "slos[6] (ai-answer-shown).histogram",
            f"limoneide_page_load_seconds_bucket{{{job},{shown},{le}}}",
        ),
    ] == [(q.location.split(": ", 1)[1], q.promql) for q in sli_queries(spec, "f")]


def _app() -> Flask:
    """An instrumented app: ``/`` answers 200 after one AI call; no 5xx ever. One page view
    was reported by a browser (the RUM series exist, as they do once real users came)."""
    app = Flask("limoneide-check")
    metrics = Metrics(app, registry=CollectorRegistry(), process_metrics=False)
    page_load = rum.instruments_for(metrics).page_load
    for phase in (c.PHASE_LOAD, c.MARK_AI_ANSWER_SHOWN):
        page_load.labels("/", phase).observe(0.8)

    @app.get("/")
    def index() -> str:
        with metrics.track(c.DEPENDENCY_AI, "complete"):
            return "ok"

    return app


@pytest.fixture(scope="module")
def live_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus on 127.0.0.1 scraping ``_app`` as job "limoneide" every second; its URL."""
    binary = need("prometheus")
    folder = tmp_path_factory.mktemp("check-prometheus")
    with serve(_app(), quiet=True) as app_url:
        for _ in range(5):
            requests.get(f"{app_url}/", timeout=5).raise_for_status()
        config = folder / "prometheus.yml"
        target = app_url.removeprefix("http://")
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                    "scrape_configs": [
                        {"job_name": "limoneide", "static_configs": [{"targets": [target]}]}
                    ],
                }
            )
        )
        port = procs.free_port()
        argv = procs.prometheus_argv(binary, config, folder / "data", port)
        proc = procs.start("prometheus", argv, folder / "prometheus.log")
        url = f"http://{procs.LOOPBACK}:{port}"
        try:
            procs.wait_http(proc, f"{url}/-/ready")
            _wait_for_series(url, 'limoneide_dependency_duration_seconds_count{job="limoneide"}')
            yield url
        finally:
            proc.stop()


def _wait_for_series(url: str, promql: str, attempts: int = 120) -> None:
    """Poll until ``promql`` has a series (the first scrapes happened); fail after the limit."""
    for _ in range(attempts):
        body = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5).json()
        if body["data"]["result"]:
            return
        time.sleep(0.5)
    pytest.fail(f"Prometheus at {url} never scraped {promql}")


def _check(spec_text: str, tmp_path: Path, url: str) -> Result:
    spec = tmp_path / "slo.yaml"
    spec.write_text(spec_text, encoding="utf-8")
    return CliRunner().invoke(main, ["check", "--spec", str(spec), "--prometheus", url])


@pytest.mark.integration
def test_check_prometheus_accepts_the_committed_spec_against_a_live_app(
    live_prometheus: str, tmp_path: Path
) -> None:
    """Every SLI query of the committed spec returns series, but the errors' (no 5xx yet):
    exit 0, that one a note, and the summary line counts it (it said "every SLI query
    answered" above the note saying one was not)."""
    result = _check(spec_text(), tmp_path, live_prometheus)
    notes = [line for line in result.output.splitlines() if line.startswith("note: ")]
    empty = [note for note in notes if "returns no series" in note]
    total = len(sli_queries(load_spec(ROOT / SPEC_PATH), "slo.yaml"))
    assert (0, True, False) == (
        result.exit_code,
        any("(availability).errors" in note for note in notes),
        "every SLI query answered" in result.output,
    ), result.output
    answered = f"{total - len(empty)} of {total} SLI queries answered by {live_prometheus}"
    assert answered in result.output


@pytest.mark.integration
def test_check_prometheus_names_each_query_without_series(
    live_prometheus: str, tmp_path: Path
) -> None:
    """A user's own metric that Prometheus does not have is named at its SLO and field."""
    text = edited("    total: limoneide_requests_total\n", "    total: shop_orders_total\n")
    text = text.replace(
        'errors: limoneide_requests_total{status=~"5.."}', "errors: shop_orders_failed_total", 1
    )
    result = _check(text, tmp_path, live_prometheus)
    where = f"error: {tmp_path / 'slo.yaml'}: slos[0] (availability).total: "
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert (2, [f'{where}shop_orders_total{{job="limoneide"}} returns no series']) == (
        result.exit_code,
        [line.split(" from ")[0] for line in errors],
    ), result.output


@pytest.mark.integration
def test_check_prometheus_notes_real_user_timing_not_reported_yet(
    live_prometheus: str, tmp_path: Path
) -> None:
    """A page-load SLO on a phase no page reported since the app started (after every
    restart, until a page with the tag is rendered): a note saying so, exit 0 (it was an
    error telling to check the job and the metric name, both right). With a wrong job it
    stays an error (next test)."""
    text = edited(
        'histogram: limoneide_page_load_seconds{phase="load"}',
        'histogram: limoneide_page_load_seconds{phase="lcp"}',
    )
    result = _check(text, tmp_path, live_prometheus)
    notes = [line for line in result.output.splitlines() if "(page-load).histogram" in line]
    assert (0, 2) == (result.exit_code, len(notes)), result.output  # its count and bucket
    for note in notes:
        assert note.startswith("note: ")
        assert "real-user timing: none until the app has rendered a page" in note


@pytest.mark.integration
def test_check_prometheus_names_every_query_of_a_wrong_job(
    live_prometheus: str, tmp_path: Path
) -> None:
    """job: billing (not what Prometheus scrapes): every required SLI query is named."""
    result = _check(edited("job: limoneide", "job: billing"), tmp_path, live_prometheus)
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    fields = sorted({line.split(": ")[2] for line in errors})
    assert (2, True) == (
        result.exit_code,
        fields
        == sorted(
            {
                "slos[0] (availability).total",
                "slos[1] (latency).histogram",
                "slos[2] (errors).total",
                "slos[3] (ai-latency).histogram",
                "slos[4] (up).job",
                "slos[5] (page-load).histogram",
                "slos[6] (ai-answer-shown).histogram",
            }
        ),
    ), result.output


def test_check_prometheus_at_a_server_that_is_not_prometheus(tmp_path: Path) -> None:
    """--prometheus pointed at a web app: exit 2, the message says something answered but
    not as Prometheus's HTTP API (status, content type) and to check the URL and port."""
    app = Flask(__name__)
    app.add_url_rule("/api/v1/query", "query", lambda: {"hello": "world"})
    with serve(app, quiet=True) as url:
        result = _check(spec_text(), tmp_path, url)
    expected = (
        f"error: {url} answered /api/v1/query with HTTP 200 (application/json), not as "
        "Prometheus's HTTP API: something else listens there; check the URL and port given "
        "to --prometheus"
    )
    assert (2, expected) == (result.exit_code, result.output[: len(expected)])


def test_check_prometheus_unreachable_exits_2(tmp_path: Path) -> None:
    """A Prometheus that does not answer: one error line naming the URL, exit 2."""
    url = f"http://{procs.LOOPBACK}:{procs.free_port()}"
    result = _check(spec_text(), tmp_path, url)
    assert (2, f"error: --prometheus {url}: cannot query it") == (
        result.exit_code,
        result.output.split(" (")[0],
    )


def test_check_runs_amtool_on_the_receivers_extra_blocks(tmp_path: Path) -> None:
    """A Slack block without ``api_url`` (a trial's): check and build took it and amtool
    refused the built config. check runs amtool on it and names the receiver at fault,
    also beside another receiver's blocks that amtool takes; a block amtool takes passes."""
    need("amtool")
    spec = tmp_path / "slo.yaml"
    slack = "    ticket: {extra: {slack_configs: [{channel: '#billing'%s}]}}\n"
    own = '    ticket: {webhook_url: "https://hooks.billing.example/ticket"}\n'
    page = '    page: {webhook_url: "https://hooks.billing.example/page"}\n'
    fine = "    page: {extra: {webhook_configs: [{url: 'https://x.example/p'}]}}\n"
    for text in (BILLING, BILLING.replace(page, fine)):
        spec.write_text(text.replace(own, slack % ""))
        result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
        assert 2 == result.exit_code, result.output
        assert f"error: {spec}: alertmanager.receivers.ticket: amtool refuses" in result.stderr
        assert "Slack API URL" in result.stderr
    spec.write_text(BILLING.replace(own, slack % ", api_url: 'https://hooks.slack.com/x'"))
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    assert 0 == result.exit_code, result.output


def test_a_receiver_url_that_is_no_url_is_refused_by_name(tmp_path: Path) -> None:
    """``url: not a url`` in a webhook block: refused where it is written."""
    spec = tmp_path / "slo.yaml"
    own = '    ticket: {webhook_url: "https://hooks.billing.example/ticket"}\n'
    block = "    ticket: {extra: {webhook_configs: [{url: not a url}]}}\n"
    spec.write_text(BILLING.replace(own, block))
    result = CliRunner().invoke(main, ["check", "--spec", str(spec)])
    assert 2 == result.exit_code
    assert (
        "alertmanager.receivers.ticket.extra.webhook_configs[0].url: 'not a url' is not an "
        "http:// or https:// URL"
    ) in result.stderr, result.stderr


def test_check_asks_promtool_of_the_built_rule_files() -> None:
    """The last check: promtool's own verdict on rule files (here, one with a broken
    expression and one the kit builds). Its refusal is one line naming the file, in the
    folder's relative names; a spec the kit builds passes it."""
    need("promtool")
    broken = {"rules/x.yml": b"groups: [{name: g, rules: [{record: 'a:b', expr: 'sum('}]}]\n"}
    said = tool_refusal("promtool", ["check", "rules"], broken)
    assert said is not None
    assert ("rules/x.yml" in said, "\n" in said) == (True, False)
    spec = load_spec(ROOT / "alerts" / "slo.yaml")
    assert tool_refusal("promtool", ["check", "rules"], build.rule_files(spec)) is None
    assert [] == promtool_problems(spec, "alerts/slo.yaml")


def test_tiers_naming_some_of_the_defaults_are_noted(tmp_path: Path) -> None:
    """A top-level tiers: with page-fast alone (a drill's shorter for:) replaces the four
    defaults: check and build say the three left out are not used."""
    root = tmp_path / "ops"
    (root / "alerts").mkdir(parents=True)
    tiers = (
        "tiers:\n  page-fast: {severity: page, long_window: 1h, short_window: 5m, "
        "budget_percent: 2, for: 1m}\n"
    )
    spec = root / "alerts" / "slo.yaml"
    spec.write_text(tiers + BILLING)
    for args in (["check", "--spec", str(spec)], ["build", "--root", str(root)]):
        result = CliRunner().invoke(main, args)
        notes = [line for line in result.stderr.splitlines() if line.startswith("note: tiers:")]
        assert 1 == len(notes), result.output
        assert "not the default page-slow, ticket-fast, ticket-slow" in notes[0]
