"""Runbooks generated from the spec: what the spec knows is filled in, never left as a
``<placeholder>``, and the SliAbsent runbook of a browser SLO says why its series may not
exist yet."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

from limone_obs import conventions as c
from limone_obs.alerts import runbooks, unittests
from limone_obs.alerts.alertmanager import render_config
from limone_obs.alerts.spec import load_spec, parse_spec
from limone_obs.stack.webhook import WebhookReceiver
from tests.alerts.helpers import (
    SPEC_FILE,
    edited,
    evaluate,
    promql_blocks,
    runbook_section,
)
from tests.alerts.test_inhibition import _alertmanager
from tests.support import need

SPEC = load_spec(SPEC_FILE)
#: The browser (RUM) SLOs of the kit's spec: they read <ns>_page_load_seconds.
BROWSER = ("page-load", "ai-answer-shown")
#: The kit's SLOs reading the server's own series.
SERVER = ("availability", "latency", "errors", "ai-latency")
BEACONS_QUERY = 'sum by (result) (limoneide_rum_beacons_total{job="limoneide"})'


def _absent_section(name: str, text: str | None = None) -> str:
    spec = SPEC if text is None else parse_spec(text)
    alert = c.slo_alert_name(name, c.ALERT_SUFFIX_SLI_ABSENT)
    return runbook_section(runbooks.runbook(spec, spec.slo(name)), alert)


def _grep(section: str) -> list[str]:
    """The grep commands the section pipes the service's /metrics into."""
    return re.findall(r"/metrics \| (grep [^`]+)`", section)


def test_sli_absent_runbooks_grep_for_the_metric_each_slo_reads() -> None:
    """Each SliAbsent runbook greps /metrics for its SLO's own metric, not `<metric>`."""
    assert {
        "availability": ["grep limoneide_requests_total"],
        "latency": ["grep limoneide_request_duration_seconds"],
        "errors": ["grep limoneide_requests_total"],
        "ai-latency": ["grep limoneide_dependency_duration_seconds"],
        "page-load": ["grep limoneide_page_load_seconds"],
        "ai-answer-shown": ["grep limoneide_page_load_seconds"],
    } == {name: _grep(_absent_section(name)) for name in SERVER + BROWSER}


def test_an_sli_of_two_metrics_greps_for_both() -> None:
    """A ratio SLO counting errors and all events in two counters of the service's own
    greps for either name."""
    text = edited(
        'total: limoneide_requests_total\n    errors: limoneide_requests_total{status=~"5.."}',
        "total: orders_total\n    errors: orders_failed_total",
    )
    assert ["grep -E 'orders_failed_total|orders_total'"] == _grep(
        _absent_section("availability", text)
    )


def test_only_browser_sli_absent_runbooks_say_a_browser_must_send_beacons() -> None:
    """A browser SLO's series count only what browsers send (they appear at 0 when a
    page renders the tag): its SliAbsent runbook says so and shows what became of the
    beacons, instead of "send one request"; an SLO on the server's series keeps "send
    one request", with no browser note."""
    says = (
        "no page that includes `limone_obs_rum()` was rendered (or loaded in a browser) "
        "since the server started, or the beacon endpoint is off or blocked"
    )
    expected = {
        **dict.fromkeys(BROWSER, (True, True, False)),
        **dict.fromkeys(SERVER, (False, False, True)),
    }
    assert expected == {
        name: (
            says in section,
            BEACONS_QUERY in promql_blocks(section),
            "send one request" in section,
        )
        for name in BROWSER + SERVER
        for section in [_absent_section(name)]
    }


def test_no_runbook_leaves_a_placeholder_the_spec_can_fill() -> None:
    """The only `<...>` left in any runbook is `<instance>`, the service's host:port,
    which the spec does not know (the reader fills it in)."""
    texts = [body.decode() for body in runbooks.files(SPEC, "alerts/runbooks").values()]
    found = {p for text in texts for p in re.findall(r"<[a-z_-]+>", text)}
    assert {"<instance>"} == found


@pytest.mark.integration
def test_the_beacons_query_reads_the_beacon_counter(tmp_path: Path) -> None:
    """The browser note's query is valid PromQL that reads the exporter's beacon counter
    by result (evaluated by promtool, Prometheus' engine)."""
    (query,) = [q for q in promql_blocks(_absent_section("page-load")) if "beacons" in q]
    labels = unittests.base_labels(SPEC)
    series = [
        unittests.constant(
            SPEC.names.rum_beacons_total, {**labels, c.LABEL_RESULT: c.RUM_ACCEPTED}, "0", 5
        ),
        unittests.counter(
            {**labels, c.LABEL_RESULT: c.RUM_BAD_PAGE}, SPEC.names.rum_beacons_total, 1, 5
        ),
    ]
    samples = [
        {"labels": f'{{result="{c.RUM_ACCEPTED}"}}', "value": 0},
        {"labels": f'{{result="{c.RUM_BAD_PAGE}"}}', "value": 5},
    ]
    result = evaluate(
        tmp_path, series, [{"expr": query, "eval_time": "5m", "exp_samples": samples}]
    )
    assert 0 == result.returncode, result.stdout + result.stderr


def _sh_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", text, flags=re.DOTALL)


@pytest.mark.integration
def test_the_silence_command_of_a_runbook_silences_its_alert(tmp_path: Path) -> None:
    """The amtool line of the availability runbook, run by a shell with
    ``ALERTMANAGER_URL`` set, adds a silence to that Alertmanager matching the alert."""
    burn = c.slo_alert_name("availability", c.ALERT_SUFFIX_BURN)
    section = runbook_section(runbooks.runbook(SPEC, SPEC.slo("availability")), burn)
    (command,) = [block for block in _sh_blocks(section) if "silence add" in block]
    amtool = need("amtool")
    with WebhookReceiver() as receiver:
        config = render_config(SPEC, webhook_url=f"{receiver.url}/unused")
        for url in _alertmanager(tmp_path, config):
            env = {**os.environ, "ALERTMANAGER_URL": url, "PATH": str(Path(amtool).parent)}
            done = subprocess.run(
                ["bash", "-c", command],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert 0 == done.returncode, done.stderr
            (silence,) = requests.get(f"{url}/api/v2/silences", timeout=5).json()
    matchers = {m["name"]: m["value"] for m in silence["matchers"]}
    assert burn == matchers["alertname"]
    assert SPEC.service == matchers[c.LABEL_SLO_SERVICE]


def test_a_latency_runbook_diagnoses_with_the_quantile_its_alert_reads() -> None:
    """A 99 % latency SLO's quantile alert reads the p99: its runbook's diagnosis gives
    the p99 by endpoint and of each dependency (an incident trial's gave the p95, which
    stayed under the threshold while the p99 paged)."""
    spec = parse_spec(edited("    objective: 95\n    description: Requests served",
                             "    objective: 99\n    description: Requests served"))  # fmt: skip
    section = runbook_section(runbooks.runbook(spec, spec.slo("latency")), "LatencyP99High")
    assert "The p99 latency of the requests of SLO latency is above 2.5 s." in section
    assert "2. The p99 by the same label:" in section
    assert "3. Where the time goes: the p99 of each dependency" in section
    quantiles = re.findall(r"histogram_quantile\(([\d.]+),", section)
    assert ["0.99", "0.99"] == quantiles


@pytest.mark.integration
def test_the_first_diagnose_query_reads_the_share_the_sli_counts_bad(tmp_path: Path) -> None:
    """ai-latency counts a failed AI call bad however fast: its runbook's share of bad
    events by operation reads 0.5 for an operation failing half its fast calls and 1 for
    one whose every call failed (no ``ok`` series at all). It ignored ``good`` and read 0
    for both, beside an alert reading 0.21 (a trial's SLO of its own)."""
    section = runbook_section(runbooks.runbook(SPEC, SPEC.slo("ai-latency")),
                              "AiLatencyErrorBudgetBurn")  # fmt: skip
    query = promql_blocks(section)[0]
    base = {**unittests.base_labels(SPEC), c.LABEL_DEPENDENCY: c.DEPENDENCY_AI}
    series = []
    for operation, outcomes in (("complete", ("ok", "error")), ("embed", ("error",))):
        for outcome in outcomes:
            labels = {**base, c.LABEL_OPERATION: operation, c.LABEL_OUTCOME: outcome}
            metric = SPEC.names.dependency_duration
            series += [
                unittests.counter({**labels, c.LABEL_LE: le}, f"{metric}_bucket", 60, 10)
                for le in ("2.5", "+Inf")
            ]
            series.append(unittests.counter(labels, f"{metric}_count", 60, 10))
    samples = [
        {"labels": '{operation="complete"}', "value": 0.5},
        {"labels": '{operation="embed"}', "value": 1},
    ]
    result = evaluate(
        tmp_path, series, [{"expr": query, "eval_time": "5m", "exp_samples": samples}]
    )
    assert 0 == result.returncode, result.stdout + result.stderr


def test_an_objective_of_many_nines_is_written_whole() -> None:
    """99.999999 % was written "100 %" in the runbook and the alert texts."""
    spec = parse_spec(edited("    objective: 99.9\n", "    objective: 99.999999\n"))
    text = runbooks.runbook(spec, spec.slo("availability"))
    assert "objective 99.999999 %" in text
    assert "100 %" not in text
