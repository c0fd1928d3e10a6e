"""Build every dashboard: grafanalib builders -> :func:`_fixups.modernise` -> JSON bytes.

Output is deterministic: keys sorted, two-space indent, one trailing newline, panel ids
assigned in layout order, so two builds from the same sources are byte-identical.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from limone_obs import conventions as c
from limone_obs.dashboards import dependencies, endpoint, logs, overview, slos, ux
from limone_obs.dashboards._fixups import modernise
from limone_obs.dashboards.queries import Queries
from limone_obs.dashboards.slo_inputs import ServiceView, load_service
from limone_obs.errors import DashboardError

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
        "logs.json": logs.build(service),
        "ux.json": ux.build(queries, service),
    }
    for board in built.values():
        _check_uid(service, board.uid)
    return {name: modernise(board) for name, board in built.items()}


#: Grafana's rule for dashboard uids.
_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def _check_uid(service: ServiceView, uid: str) -> None:
    if not _UID.match(uid):
        raise DashboardError(
            f"service {service.service!r}: dashboard uid {uid!r} is not a Grafana uid (at "
            "most 40 letters, digits, '-' or '_'): shorten or rename `service` in the spec"
        )


def render(dashboard: Mapping[str, Any]) -> bytes:
    """The dashboard as deterministic JSON bytes."""
    text = json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode()


def build_from(root: Path) -> dict[str, dict[str, Any]]:
    """Every dashboard built from ``root/alerts/slo.yaml`` (or the default SLOs)."""
    return build_all(load_service(root))
