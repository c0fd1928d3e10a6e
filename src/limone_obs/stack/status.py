"""``limone-obs status``: every SLO of the spec as a terminal table, read from Prometheus.

Budget SLOs (``ratio``, ``latency``) come from the recording rules the alerts area
generates: the period SLI (request-weighted), the error budget left and burn rates over
several windows. Other kinds show the SLI their kind module gives
(:meth:`~limone_obs.alerts.model.Sli.status_sli`): ``threshold`` the good share over its
window (100 % with requests and no error series), ``up`` the share of targets up. Every
row lists the alerts firing for that SLO (``ALERTS``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import requests

from limone_obs import conventions as c
from limone_obs._prometheus_api import api_body, not_the_api
from limone_obs.alerts.model import ServiceSpec
from limone_obs.errors import StackError

#: Burn-rate windows shown in the table (a subset of conventions.SLI_WINDOWS).
BURN_WINDOWS = ("5m", "1h", "6h", "3d")


@dataclass(frozen=True)
class SloStatus:
    """One row of the table. Ratios are 0..1; None means Prometheus has no value yet."""

    name: str
    kind: str
    objective: float | None
    sli: float | None
    budget_left: float | None
    burn: Mapping[str, float | None] = field(default_factory=dict)
    firing: tuple[str, ...] = ()
    #: Share of events within each next stage of a staged latency SLO (``<=1s`` -> 0.25).
    progress: Mapping[str, float | None] = field(default_factory=dict)


class Prometheus:
    """A minimal client of Prometheus' instant-query API."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        """``url`` without a scheme (``127.0.0.1:9090``) is taken as ``http://``; another
        scheme than http or https is a StackError naming it."""
        self.url = base_url(url)
        self.timeout = timeout

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector for ``expr``; raise StackError if nothing answers at the URL,
        something that is not Prometheus's HTTP API answers (its status and content type
        named), or Prometheus refuses the query."""
        path = "/api/v1/query"
        try:
            resp = requests.get(f"{self.url}{path}", params={"query": expr}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise StackError(
                f"cannot query Prometheus at {self.url} ({type(exc).__name__}): is it running? "
                "pass its URL with --prometheus"
            ) from None
        body = api_body(resp)
        if body is None:
            raise StackError(not_the_api(self.url, path, resp))
        if body.get("status") != "success":
            raise StackError(f"Prometheus refused {expr!r}: {body.get('error', resp.text)}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def by_slo(self, expr: str) -> dict[str, float]:
        """``expr``'s values keyed by their ``slo`` label (NaN when 0/0, i.e. no traffic)."""
        return {s["metric"].get(c.LABEL_SLO, ""): float(s["value"][1]) for s in self.query(expr)}

    def scalar(self, expr: str) -> float | None:
        """The value of a one-element result, else None."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


def base_url(url: str) -> str:
    """``url`` with ``http://`` added when it has no scheme, without a trailing slash."""
    text = url.strip().rstrip("/")
    if "://" not in text:
        text = f"http://{text}"
    scheme = text.split("://", 1)[0].lower()
    if scheme not in ("http", "https") or text == f"{scheme}://":
        raise StackError(
            f"--prometheus {url!r} is not an http(s) URL: give e.g. http://127.0.0.1:9090 "
            "(or 127.0.0.1:9090, http:// is assumed)"
        )
    return text


def _service(spec: ServiceSpec) -> str:
    return f'{c.LABEL_SLO_SERVICE}="{spec.service}"'


def _firing(prom: Prometheus, spec: ServiceSpec) -> dict[str, list[str]]:
    firing: dict[str, list[str]] = {}
    for sample in prom.query(f'ALERTS{{alertstate="firing",{_service(spec)}}}'):
        labels = sample["metric"]
        text = f"{labels.get('alertname')}({labels.get(c.LABEL_SEVERITY, '?')})"
        firing.setdefault(labels.get(c.LABEL_SLO, ""), []).append(text)
    return {slo: sorted(set(names)) for slo, names in firing.items()}


def _burn_rates(prom: Prometheus, spec: ServiceSpec) -> dict[str, dict[str, float]]:
    sel = f"{{{_service(spec)}}}"
    rates = {}
    for window in BURN_WINDOWS:
        expr = (
            f"{c.sli_error_ratio_rule(window)}{sel} / on ({c.LABEL_SLO}, {c.LABEL_SLO_SERVICE}) "
            f"{c.RULE_ERROR_BUDGET}{sel}"
        )
        rates[window] = prom.by_slo(expr)
    return rates


def collect(prom: Prometheus, spec: ServiceSpec) -> list[SloStatus]:
    """Read every SLO of ``spec`` from Prometheus, in spec order."""
    sel = f"{{{_service(spec)}}}"
    sli_error = prom.by_slo(f"{c.RULE_PERIOD_SLI_ERROR}{sel}")
    budget = prom.by_slo(f"{c.RULE_PERIOD_BUDGET_REMAINING}{sel}")
    burns = _burn_rates(prom, spec)
    firing = _firing(prom, spec)
    rows = []
    for slo in spec.slos:
        plain = slo.sli.status_sli(spec, slo)
        sli = None if plain is None else prom.scalar(plain)
        row = SloStatus(slo.name, slo.kind, slo.objective, sli, None)
        if plain is None:
            error = sli_error.get(slo.name)
            row = replace(
                row,
                sli=None if error is None else 1 - error,
                budget_left=budget.get(slo.name),
                burn={w: burns[w].get(slo.name) for w in BURN_WINDOWS},
            )
        progress = {t: prom.scalar(e) for t, e in slo.sli.status_progress(spec, slo).items()}
        rows.append(replace(row, firing=tuple(firing.get(slo.name, ())), progress=progress))
    return rows


def _pct(value: float | None, digits: int = 3) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value * 100:.{digits}f} %"


def _burn(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.2f}x"


def _progress(progress: Mapping[str, float | None]) -> str:
    """``<=1s 25.0 %, <=0.6s 12.5 %``: the share of events within each next stage."""
    return ", ".join(f"{title} {_pct(value, 1)}" for title, value in progress.items()) or "-"


def render(rows: Sequence[SloStatus]) -> str:
    """The table as text: one line per SLO, ``-`` where Prometheus has no value yet; a
    staged latency SLO lists the share of events within each next stage (last hour)."""
    header = ["SLO", "kind", "objective", "SLI", "budget left"]
    header += [f"burn {w}" for w in BURN_WINDOWS] + ["next stages", "firing"]
    table = [header]
    for row in rows:
        objective = "-" if row.objective is None else f"{row.objective:g} %"
        cells = [row.name, row.kind, objective, _pct(row.sli), _pct(row.budget_left, 1)]
        cells += [_burn(row.burn.get(w)) for w in BURN_WINDOWS]
        cells.append(_progress(row.progress))
        cells.append(", ".join(row.firing) or "-")
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) for r in table]
    lines = [f"{line}  {r[-1]}".rstrip() for line, r in zip(lines, table, strict=True)]
    return "\n".join(lines)
