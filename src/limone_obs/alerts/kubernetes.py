"""Outputs for larger setups: prometheus-operator objects and a Mimir ruler namespace file.

- ``alerts/kubernetes/prometheusrule.yaml``: a ``monitoring.coreos.com/v1``
  ``PrometheusRule`` wrapping the same groups as ``alerts/rules/`` (promtool cannot read
  it, so the plain files are the ones tested);
- ``alerts/kubernetes/servicemonitor.yaml``: scrapes ``/metrics`` of the Service labelled
  ``app.kubernetes.io/name: <service>`` and sets ``job`` to the spec's job, so the rules'
  selectors match;
- ``alerts/mimir/<service>.yml``: the groups under ``namespace:``, the file format of
  ``mimirtool rules load`` (Grafana Mimir / Cortex ruler). Thanos Ruler reads the plain
  files in ``alerts/rules/``.
"""

from __future__ import annotations

from typing import Any

from limone_obs.alerts import alerting, render, rules
from limone_obs.alerts.model import ServiceSpec

#: Label of the Kubernetes Service (and the ServiceMonitor) naming the app.
APP_LABEL = "app.kubernetes.io/name"


def _metadata(spec: ServiceSpec, name: str) -> dict[str, Any]:
    return {"name": name, "labels": {APP_LABEL: spec.service, "prometheus": "k8s"}}


def _groups(spec: ServiceSpec) -> list[dict[str, Any]]:
    return rules.recording_groups(spec) + alerting.alert_groups(spec)


def prometheus_rule(spec: ServiceSpec) -> dict[str, Any]:
    """The PrometheusRule object holding every recording and alerting group."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _metadata(spec, f"{spec.service}-slos"),
        "spec": {"groups": _groups(spec)},
    }


def service_monitor(spec: ServiceSpec) -> dict[str, Any]:
    """A ServiceMonitor whose scrapes carry ``job="<spec.job>"``, as the rules expect."""
    relabel = {"targetLabel": "job", "replacement": spec.job, "action": "replace"}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _metadata(spec, spec.service),
        "spec": {
            "selector": {"matchLabels": {APP_LABEL: spec.service}},
            "endpoints": [
                {"port": "http", "path": "/metrics", "interval": "30s", "relabelings": [relabel]}
            ],
        },
    }


def mimir_namespace(spec: ServiceSpec) -> dict[str, Any]:
    """The rule groups in ``mimirtool rules load`` format, namespace = the service."""
    return {"namespace": spec.service, "groups": _groups(spec)}


def files(spec: ServiceSpec, kube_dir: str, mimir_dir: str) -> dict[str, bytes]:
    """The Kubernetes and Mimir files below ``kube_dir`` and ``mimir_dir``."""
    return {
        f"{kube_dir}/prometheusrule.yaml": render.to_bytes(prometheus_rule(spec)),
        f"{kube_dir}/servicemonitor.yaml": render.to_bytes(service_monitor(spec)),
        f"{mimir_dir}/{spec.service}.yml": render.to_bytes(mimir_namespace(spec)),
    }
