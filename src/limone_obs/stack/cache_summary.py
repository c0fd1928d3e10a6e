"""Lines of ``limone-obs up``'s summary about the seed's fixes: cache hit ratio, calls per
request.

The hit ratio is read from the service's ``/metrics`` (exact counts of the run); the
change of calls per request from Prometheus (average calls per request of each endpoint
and dependency over 30-second windows, lowest and highest during the run), so an N+1
fault switched on and off shows as ``1 -> 21``. Nothing here raises: a source that does
not answer gives a line saying so.
"""

from __future__ import annotations

from collections import defaultdict

import requests
from prometheus_client.parser import text_string_to_metric_families

from limone_obs import conventions as c

#: How many endpoint/dependency pairs the summary lists (the highest counts first).
MAX_PAIRS = 8


#: What the summary says when the demo counted no cache lookup.
DEMO_NO_CACHE = "no cache lookups (no Redis: the demo ran without a cache)"


def hit_ratio_lines(app_url: str, names: c.MetricNames, *, none: str = DEMO_NO_CACHE) -> list[str]:
    """``cache     <name>: 91 % hits (...)`` per cache, from one scrape of the service;
    ``cache     <none>`` when it counted no cache lookup."""
    counts: dict[str, dict[str, float]] = defaultdict(dict)
    try:
        text = requests.get(f"{app_url}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == names.cache_requests_total:
                    cache, result = sample.labels[c.LABEL_CACHE], sample.labels[c.LABEL_RESULT]
                    counts[cache][result] = sample.value
    except (requests.RequestException, ValueError, KeyError) as exc:
        return [f"cache     not read ({type(exc).__name__} from {app_url}/metrics)"]
    if not counts:
        return [f"cache     {none}"]
    return [f"cache     {_ratio(cache, counts[cache])}" for cache in sorted(counts)]


def _ratio(cache: str, results: dict[str, float]) -> str:
    total = sum(results.values())
    parts = ", ".join(f"{int(results.get(r, 0))} {r}" for r in c.CACHE_RESULTS)
    share = 100 * results.get(c.CACHE_HIT, 0) / total if total else 0.0
    return f"{cache}: {share:.0f} % hits ({parts})"


def calls_per_request_lines(
    prometheus_url: str, names: c.MetricNames, start: float, end: float
) -> list[str]:
    """``calls/req <endpoint> <dependency>: lowest -> highest`` over the run, from Prometheus."""
    by = f"{c.LABEL_ENDPOINT}, {c.LABEL_DEPENDENCY}"
    expr = c.calls_per_request_mean(
        f"sum by ({by}) (rate({names.dependency_calls_per_request_sum}[30s]))",
        f"(sum by ({c.LABEL_ENDPOINT}) (rate({names.request_duration_count}[30s])) > 0)",
        f"(sum by ({by}) (rate({names.dependency_calls_per_request_count}[30s])) > 0)",
    )
    params: dict[str, str | float] = {"query": expr, "start": start, "end": end, "step": 5}
    try:
        resp = requests.get(f"{prometheus_url}/api/v1/query_range", params=params, timeout=10)
        series = resp.json()["data"]["result"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        return [f"calls/req not read from Prometheus ({type(exc).__name__})"]
    ranges = []
    for item in series:
        values = [float(v) for _, v in item["values"] if v not in ("NaN", "+Inf", "-Inf")]
        if values:
            labels = item["metric"]
            ranges.append((max(values), min(values), labels[c.LABEL_ENDPOINT], labels))
    ranges.sort(key=lambda r: (-r[0], r[2]))
    return [
        f"calls/req {endpoint} {labels[c.LABEL_DEPENDENCY]}: {low:.1f} -> {high:.1f} "
        "(lowest -> highest average per request, 30 s windows)"
        for high, low, endpoint, labels in ranges[:MAX_PAIRS]
    ]
