"""A small client of Prometheus' query API for the report (instant and range queries)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from limone_obs import conventions as c
from limone_obs._prometheus_api import api_body, base_url, not_the_api
from limone_obs.errors import ReportError

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(text: str) -> float | None:
    """Prometheus' ``15s`` / ``1m`` / ``500ms`` as seconds; None if not of that form."""
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            try:
                return float(text.removesuffix(unit)) * _UNIT_SECONDS[unit]
            except ValueError:
                return None
    return None


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector: its labels and its value (NaN kept as NaN)."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One element of a range-query matrix: labels and ``(time, value)`` points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


class Prometheus:
    """Runs PromQL at a given time; every failure is a ReportError naming the URL."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = base_url(url)
        self.timeout = timeout

    def _get(self, path: str, params: Mapping[str, Any]) -> Any:
        try:
            resp = requests.get(f"{self.url}{path}", params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ReportError(
                f"cannot reach Prometheus at {self.url} ({type(exc).__name__}): is it running? "
                "pass its URL with --prometheus"
            ) from None
        body = api_body(resp)
        if body is None:  # another server: its page, or JSON of its own (an app's API)
            raise ReportError(not_the_api(self.url, path, resp))
        if body.get("status") != "success":
            error = str(body.get("error", ""))[:300]
            raise ReportError(f"Prometheus at {self.url} refused {params['query']!r}: {error}")
        return body["data"]

    def instant(self, expr: str, at: float) -> list[Sample]:
        """The instant vector of ``expr`` evaluated at Unix time ``at``."""
        data = self._get("/api/v1/query", {"query": expr, "time": at})
        if data.get("resultType") == "scalar":
            return [Sample({}, float(data["result"][1]))]
        return [Sample(s["metric"], float(s["value"][1])) for s in data["result"]]

    def scalar(self, expr: str, at: float) -> float | None:
        """The value of a one-element result at ``at``; None when empty or NaN (no traffic)."""
        result = self.instant(expr, at)
        if not result or math.isnan(result[0].value):
            return None
        return result[0].value

    def by_label(self, expr: str, label: str, at: float) -> dict[str, float]:
        """``expr``'s values at ``at`` keyed by ``label``; NaN values (0/0) are left out."""
        samples = self.instant(expr, at)
        return {s.labels.get(label, ""): s.value for s in samples if not math.isnan(s.value)}

    def scrape_interval(self, job: str) -> float | None:
        """Seconds between scrapes of ``job``'s targets (the shortest), or None if unknown."""
        try:
            data = self._get("/api/v1/targets", {"query": "targets", "state": "active"})
            intervals = [
                _seconds(t.get("scrapeInterval", ""))
                for t in data.get("activeTargets", [])
                if t.get("labels", {}).get("job") == job
            ]
        except (ReportError, AttributeError, TypeError):
            return None
        known = [i for i in intervals if i is not None]
        return min(known) if known else None

    def rule_interval(self, service: str) -> float | None:
        """Seconds between evaluations of the rule groups alerting for ``service`` (their
        ``slo_service`` label; the shortest), or None if unknown."""
        try:
            data = self._get("/api/v1/rules", {"query": "rules", "type": "alert"})
            intervals = [
                float(group["interval"])
                for group in data.get("groups", [])
                if any(
                    rule.get("labels", {}).get(c.LABEL_SLO_SERVICE) == service
                    for rule in group.get("rules", [])
                )
            ]
        except (ReportError, AttributeError, TypeError, KeyError, ValueError):
            return None
        return min(intervals) if intervals else None

    def range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """The matrix of ``expr`` from ``start`` to ``end`` every ``step`` seconds."""
        params = {"query": expr, "start": start, "end": end, "step": max(step, 0.001)}
        data = self._get("/api/v1/query_range", params)
        return [
            Series(s["metric"], tuple((float(t), float(v)) for t, v in s["values"]))
            for s in data["result"]
        ]
