"""The SLO kinds: one module each, bringing everything generated for an SLO of that kind.

A kind module (the shape of Sloth's SLI plugins) defines a frozen
:class:`~limone_obs.alerts.model.Sli` subclass holding the kind's spec fields and
providing everything generated or shown for an SLO of that kind:

- its recording rules, alerting rules, promtool scenarios, runbook sections and
  Alertmanager inhibit rules;
- its row on the SLO dashboard (``dashboard_row``: :class:`~limone_obs.alerts.model.Panel`
  data naming panels of the dashboards' vocabulary, ``PANEL_*``; a kind never imports
  grafanalib or :mod:`limone_obs.dashboards`) and what those panels read (the threshold,
  the next stages, the window of its plain alert);
- its row in ``limone-obs status`` (``status_sli``, ``status_progress``), the series
  ``check --prometheus`` looks for (``live_queries``) and the roadmap ``report`` compares;

plus ``KEYS`` (the spec fields it reads) and ``parse``. Adding a kind adds a module and one
line in :data:`PARSERS` (the registration point; a test may register a kind of its own
with ``monkeypatch.setitem(PARSERS, ...)``); nothing else branches on it.

- :mod:`.ratio` — bad over all events from two counters (availability), burn tiers;
- :mod:`.latency` — events of a histogram slower than a bucket boundary, burn tiers,
  quantile alert;
- :mod:`.threshold` — the error ratio over one window above a limit, a plain alert;
- :mod:`.up` — the scrape target down, gone, or without limone-obs metrics.
"""

from __future__ import annotations

from typing import Final

from limone_obs.alerts._parse import KindParser
from limone_obs.alerts.kinds import latency, ratio, threshold, up
from limone_obs.alerts.model import KIND_LATENCY, KIND_RATIO, KIND_THRESHOLD, KIND_UP

#: Every kind the spec accepts, in the order messages list them.
PARSERS: Final = {
    KIND_RATIO: KindParser(ratio.KEYS, ratio.parse),
    KIND_LATENCY: KindParser(latency.KEYS, latency.parse),
    KIND_THRESHOLD: KindParser(threshold.KEYS, threshold.parse),
    KIND_UP: KindParser(up.KEYS, up.parse),
}
