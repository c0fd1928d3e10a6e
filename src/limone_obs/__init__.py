"""limone-obs: the observability kit of the LimoneIDE Flask service.

Public API: :class:`Metrics` (the Flask exporter). The logging, alerts, dashboards and
stack areas are used through their modules and the ``limone-obs`` command.

The exporter's names are imported on first use (PEP 562 ``__getattr__``), not here:
``gunicorn -c python:limone_obs.gunicorn_conf`` imports this package before the config
module sets ``PROMETHEUS_MULTIPROC_DIR``, and prometheus-client chooses its storage once,
when it is first imported. Importing ``limone_obs`` therefore never imports
prometheus-client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from limone_obs.errors import (
    ArtifactError,
    ConfigError,
    DashboardError,
    LimoneObsError,
    ReportError,
    SpecError,
    StackError,
)

if TYPE_CHECKING:
    from limone_obs.exporter import Metrics, Track, metrics_for

__all__ = [
    "ArtifactError",
    "ConfigError",
    "DashboardError",
    "LimoneObsError",
    "Metrics",
    "ReportError",
    "SpecError",
    "StackError",
    "Track",
    "metrics_for",
]

#: Public names imported lazily -> the module that defines them.
_LAZY = {"Metrics": "limone_obs.exporter", "Track": "limone_obs.exporter",
         "metrics_for": "limone_obs.exporter"}  # fmt: skip


def __getattr__(name: str) -> Any:
    """Import an exporter name on first access (see the module docstring for why)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'limone_obs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
