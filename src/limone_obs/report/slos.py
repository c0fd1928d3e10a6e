"""What the report reads from the SLO spec (pure, no I/O).

- :func:`roadmap`: the latency thresholds whose share of requests the report shows and
  the p95 chart draws: the committed threshold of the SLO on the request histogram, then
  its next stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from limone_obs import conventions as c
from limone_obs.alerts.model import ServiceSpec

#: The seed's latency roadmap (2 s -> 1 s -> 0.6 s), for a spec without a request latency SLO.
ROADMAP_THRESHOLDS: Final = (2.0, 1.0, 0.6)


@dataclass(frozen=True)
class Roadmap:
    """Latency thresholds in seconds, the committed one first, then the next stages; ``slo``
    names the spec's SLO they come from (None: the seed's roadmap, no such SLO)."""

    thresholds: tuple[float, ...]
    slo: str | None


def roadmap(spec: ServiceSpec | None, namespace: str) -> Roadmap:
    """The roadmap of the spec's first SLO on the request histogram of ``namespace``
    (the seed's 2 s -> 1 s -> 0.6 s without a spec or without such an SLO)."""
    histogram = c.MetricNames(namespace).request_duration
    for slo in spec.slos if spec is not None else ():
        steps = slo.sli.roadmap(histogram)
        if steps:
            return Roadmap(steps, slo.name)
    return Roadmap(ROADMAP_THRESHOLDS, None)
