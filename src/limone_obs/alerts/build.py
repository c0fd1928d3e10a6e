"""Artifacts of the alerts area for ``limone-obs build`` (pure: reads the spec, returns bytes).

Paths, relative to the project root (every file below an :data:`OWNED` folder is
generated; ``alerts/tests/*.yml`` outside ``generated/`` are hand-written):

- :data:`RECORDING_RULES`, :data:`ALERTING_RULES`: Prometheus rule files (also Thanos Ruler);
- :data:`ALERTMANAGER`: the Alertmanager configuration;
- ``alerts/tests/generated/<slo>.yml``: promtool unit tests of every alert;
- ``alerts/runbooks/<slo>.md``: a runbook section per alert;
- ``alerts/kubernetes/``: prometheus-operator ``PrometheusRule`` and ``ServiceMonitor``;
- ``alerts/mimir/<service>.yml``: the rules as a Mimir / Cortex ruler namespace file.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Final

from limone_obs.alerts import (
    alerting,
    alertmanager,
    health,
    kubernetes,
    render,
    rules,
    runbooks,
    unittests,
)
from limone_obs.alerts.model import ServiceSpec
from limone_obs.alerts.spec import SPEC_PATH, load_spec
from limone_obs.artifacts import Generated

RULES_DIR: Final = "alerts/rules"
RECORDING_RULES: Final = f"{RULES_DIR}/slo-recording.yml"
ALERTING_RULES: Final = f"{RULES_DIR}/slo-alerts.yml"
ALERTMANAGER: Final = "alerts/alertmanager.yml"
GENERATED_TESTS_DIR: Final = "alerts/tests/generated"
RUNBOOKS_DIR: Final = "alerts/runbooks"
KUBERNETES_DIR: Final = "alerts/kubernetes"
MIMIR_DIR: Final = "alerts/mimir"
#: Folders whose every file is generated (a file the build no longer makes is removed).
OWNED: Final = (RULES_DIR, GENERATED_TESTS_DIR, RUNBOOKS_DIR, KUBERNETES_DIR, MIMIR_DIR)


def rule_files(spec: ServiceSpec) -> dict[str, bytes]:
    """The two Prometheus rule files."""
    return {
        RECORDING_RULES: render.to_bytes({"groups": rules.recording_groups(spec)}),
        ALERTING_RULES: render.to_bytes({"groups": alerting.alert_groups(spec)}),
    }


def test_files(spec: ServiceSpec) -> dict[str, bytes]:
    """One promtool test file per SLO and one of the kit-health tickets, loading both rule
    files."""
    loads = [posixpath.relpath(p, GENERATED_TESTS_DIR) for p in (RECORDING_RULES, ALERTING_RULES)]
    found = {
        f"{GENERATED_TESTS_DIR}/{slo.name}.yml": render.to_bytes(
            unittests.document(spec, slo.sli.scenarios(spec, slo), loads)
        )
        for slo in spec.slos
    }
    kit = health.scenarios(spec)
    if kit:
        path = f"{GENERATED_TESTS_DIR}/{health.GROUP}.yml"
        found[path] = render.to_bytes(unittests.document(spec, kit, loads))
    return found


def generate(spec: ServiceSpec) -> dict[str, bytes]:
    """Every file of the alerts area for ``spec``, by path relative to the project root."""
    files = rule_files(spec)
    files[ALERTMANAGER] = alertmanager.render_config(spec).encode("utf-8")
    files.update(test_files(spec))
    files.update(runbooks.files(spec, RUNBOOKS_DIR))
    files.update(kubernetes.files(spec, KUBERNETES_DIR, MIMIR_DIR))
    return files


def artifacts(root: Path) -> Generated:
    """Read ``alerts/slo.yaml`` below ``root`` and return the alerts artifacts.

    A missing spec is a SpecError saying how ``build`` finds it (``--root``).
    """
    how = (
        f"`limone-obs build` reads {SPEC_PATH.as_posix()} below --root (here "
        f"{root.resolve()}): pass --root DIR if yours is DIR/{SPEC_PATH.as_posix()} (e.g. "
        "--root ops)"
    )
    spec = load_spec(root / SPEC_PATH, missing=how)
    return Generated(files=generate(spec), owned=OWNED)
