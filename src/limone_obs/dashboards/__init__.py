"""Grafana dashboards of the LimoneIDE service, generated with grafanalib.

Layers: :mod:`~limone_obs.dashboards.slo_inputs` (the SLO spec as the dashboards see it)
-> :mod:`~limone_obs.dashboards.queries` (PromQL from ``conventions``) -> one builder per
dashboard (``overview``, ``slos``, ``dependencies``, ``endpoint``, ``logs``) over the thin
helpers of ``_grafana`` -> ``_fixups.modernise`` (the one place correcting grafanalib's
outdated JSON) -> :func:`render` (deterministic bytes). The spec's service name drives
every uid, title, tag, link and folder (``common``), so :func:`tree` can put several
services into one Grafana provisioning tree. :func:`lint` checks any dashboard JSON
(PromQL read by a real parser); :func:`push` saves dashboards through Grafana's HTTP API.
"""

from limone_obs.dashboards.build import tree
from limone_obs.dashboards.generate import build_all, build_from, render
from limone_obs.dashboards.lint import Finding, lint
from limone_obs.dashboards.push import Target, push

__all__ = ["Finding", "Target", "build_all", "build_from", "lint", "push", "render", "tree"]
