"""limone-obs: the observability kit of the LimoneIDE Flask service.

Public API: :class:`Metrics` (the Flask exporter). The logging, alerts, dashboards and
stack areas are used through their modules and the ``limone-obs`` command.
"""

from limone_obs.errors import (
    ArtifactError,
    ConfigError,
    DashboardError,
    LimoneObsError,
    ReportError,
    SpecError,
    StackError,
)
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
