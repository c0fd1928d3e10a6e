"""Kind ``ratio``: bad events over all events from two counters (availability).

Spec fields: ``objective``, ``total``, ``errors`` (selectors on the same or another
counter; errors a subset of total), ``tiers``, ``min_rate``. Alerts:
``<Slo>ErrorBudgetBurn`` per enabled burn tier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from limone_obs.alerts import _parse, runbooks
from limone_obs.alerts._reader import Reader
from limone_obs.alerts.kinds._rated import BudgetSli, counter_rates, counter_series
from limone_obs.alerts.model import KIND_RATIO, Rule, ServiceSpec, Slo
from limone_obs.alerts.selectors import Selector
from limone_obs.alerts.unittests import Traffic

KEYS: Final = ("objective", "errors", "total", "tiers", "min_rate")


@dataclass(frozen=True, kw_only=True)
class RatioSli(BudgetSli):
    """``errors`` over ``total`` (both carry the job matcher), with burn tiers."""

    kind = KIND_RATIO
    errors: Selector
    total: Selector

    def selectors(self) -> Mapping[str, Selector]:
        """``errors`` and ``total``."""
        return {"errors": self.errors, "total": self.total}

    def rates(self, window: str) -> tuple[str, str]:
        """Error counter rate (0 when missing) and total counter rate."""
        return counter_rates(self.errors, self.total, window)

    def sample_series(self, spec: ServiceSpec, load: Traffic, length: int) -> list[dict[str, str]]:
        """A good and (when ``load`` has errors) a bad counter series."""
        return counter_series(spec, self.errors, self.total, load, length)

    def alerts(self, spec: ServiceSpec, slo: Slo) -> list[Rule]:
        """One burn alert per tier."""
        return self.burn_alerts(spec, slo)

    def runbook(self, spec: ServiceSpec, slo: Slo) -> str:
        """A burn section per alert, with the errors diagnosis."""
        return runbooks.burn_sections(spec, slo, runbooks.errors_diagnosis(spec, self.errors))


def parse(ctx: _parse.Context, item: Reader) -> RatioSli:
    """Read the ``ratio`` fields of the SLO at ``item``."""
    objective = _parse.objective(item)
    errors, total = _parse.counters(ctx, item)
    return RatioSli(
        objective=objective,
        errors=errors,
        total=total,
        tiers=_parse.slo_tiers(ctx, item, objective),
    )
