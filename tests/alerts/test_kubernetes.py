"""Outputs for larger setups: PrometheusRule, ServiceMonitor, Mimir namespace file."""

from __future__ import annotations

from limone_obs.alerts import alerting, kubernetes, rules
from limone_obs.alerts.spec import load_spec
from tests.alerts.helpers import SPEC_FILE

SPEC = load_spec(SPEC_FILE)
GROUPS = rules.recording_groups(SPEC) + alerting.alert_groups(SPEC)


def test_prometheus_rule_wraps_the_same_groups() -> None:
    """The PrometheusRule's spec.groups are exactly the plain rule files' groups."""
    obj = kubernetes.prometheus_rule(SPEC)
    assert ("monitoring.coreos.com/v1", "PrometheusRule", GROUPS) == (
        obj["apiVersion"],
        obj["kind"],
        obj["spec"]["groups"],
    )


def test_service_monitor_sets_the_job_the_rules_select() -> None:
    """Scrapes carry job=<spec.job>, whatever the Service is called."""
    endpoint = kubernetes.service_monitor(SPEC)["spec"]["endpoints"][0]
    relabel = endpoint["relabelings"][0]
    assert ("job", "limoneide", "/metrics") == (
        relabel["targetLabel"],
        relabel["replacement"],
        endpoint["path"],
    )


def test_service_monitor_selects_the_service_by_app_label() -> None:
    """The selector matches app.kubernetes.io/name=<service>."""
    selector = kubernetes.service_monitor(SPEC)["spec"]["selector"]
    assert {"matchLabels": {"app.kubernetes.io/name": "limoneide"}} == selector


def test_mimir_file_is_one_namespace_with_every_group() -> None:
    """mimirtool's format: namespace = service, groups = the rule groups."""
    assert {"namespace": "limoneide", "groups": GROUPS} == kubernetes.mimir_namespace(SPEC)
