"""Build every dashboard: grafanalib builders -> :func:`_fixups.modernise` -> JSON bytes.

Output is deterministic: keys sorted, two-space indent, one trailing newline, panel ids
assigned in layout order, so two builds from the same sources are byte-identical.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from limone_obs import conventions as c
from limone_obs.dashboards import dependencies, endpoint, logs, overview, slos, ux
from limone_obs.dashboards._fixups import modernise
from limone_obs.dashboards.queries import Queries
from limone_obs.dashboards.slo_inputs import ServiceView, load_service

#: Folder (relative to the project root) holding the generated dashboards.
OUTPUT_DIR = "dashboards"


def build_all(service: ServiceView) -> dict[str, dict[str, Any]]:
    """Return ``{file name: dashboard JSON}`` for ``service``'s namespace and SLOs."""
    queries = Queries(c.MetricNames(service.namespace))
    built = {
        "overview.json": overview.build(queries, service),
        "slos.json": slos.build(queries, service),
        "dependencies.json": dependencies.build(queries, service),
        "endpoint.json": endpoint.build(queries, service),
        "logs.json": logs.build(),
        "ux.json": ux.build(queries, service),
    }
    return {name: modernise(board) for name, board in built.items()}


def render(dashboard: Mapping[str, Any]) -> bytes:
    """The dashboard as deterministic JSON bytes."""
    text = json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode()


def build_from(root: Path) -> dict[str, dict[str, Any]]:
    """Every dashboard built from ``root/alerts/slo.yaml`` (or the default SLOs)."""
    return build_all(load_service(root))
