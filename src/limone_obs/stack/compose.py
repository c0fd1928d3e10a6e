"""Generated files of the compose stack (``compose/``), for ``limone-obs build``.

``compose/alertmanager.yml`` is the spec's Alertmanager config with every webhook pointed
at the compose stack's ``webhook`` service instead of 127.0.0.1, so it never drifts from
``alerts/alertmanager.yml`` apart from that URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from limone_obs import conventions as c
from limone_obs.alerts.alertmanager import render_config
from limone_obs.alerts.spec import SPEC_PATH, load_spec
from limone_obs.artifacts import Generated

ALERTMANAGER_FILE: Final = "compose/alertmanager.yml"
#: The webhook receiver service of compose/docker-compose.yml.
WEBHOOK_URL: Final = f"http://webhook:{c.WEBHOOK_DEFAULT_PORT}/alerts"


def alertmanager_config(root: Path) -> bytes:
    """compose/alertmanager.yml generated from ``root``/alerts/slo.yaml."""
    spec = load_spec(root / SPEC_PATH)
    return render_config(spec, webhook_url=WEBHOOK_URL).encode("utf-8")


def artifacts(root: Path) -> Generated:
    """The compose stack's generated files (pure: reads the spec, writes nothing)."""
    return Generated(files={ALERTMANAGER_FILE: alertmanager_config(root)})
