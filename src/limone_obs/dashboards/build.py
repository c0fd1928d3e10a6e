"""Artifacts of the dashboards area for ``limone-obs build``."""

from __future__ import annotations

from pathlib import Path

from limone_obs.artifacts import Generated


def artifacts(root: Path) -> Generated:
    """Return the dashboards artifacts generated from the sources below ``root``."""
    del root
    return Generated(files={})
