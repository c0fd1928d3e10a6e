"""Configuration files of the local stack, rendered as text (pure functions, no I/O).

The rules come from the alerts area (generated from ``alerts/slo.yaml``); :func:`fast_rules`
caps their ``for:`` for a demo that shows a page within a minute instead of after the
production ``for: 2m``/``5m``. The committed artifacts stay untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from limone_obs.errors import ConfigError

_DURATION_RE = re.compile(r"^(?:(\d+)ms)?$|^((?:\d+[ywdhms])+)$")
_PART_RE = re.compile(r"(\d+)([ywdhms])")
_UNIT_SECONDS = {"y": 365 * 86400, "w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def duration_seconds(text: str, where: str = "duration") -> float:
    """Seconds of a Prometheus duration (``15s``, ``1h30m``, ``500ms``); ConfigError if bad."""
    if text.endswith("ms") and text[:-2].isdigit():
        return int(text[:-2]) / 1000
    match = _DURATION_RE.match(text)
    if not text or match is None or match.group(2) is None:
        raise ConfigError(f"{where} {text!r}: use a Prometheus duration like 5s, 1m, 1h30m")
    return float(sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART_RE.findall(text)))


def prometheus_config(
    *,
    job: str,
    app_target: str,
    alertmanager_target: str | None,
    scrape_interval: str,
    rule_files: list[str],
) -> str:
    """prometheus.yml scraping ``app_target`` as ``job`` and evaluating ``rule_files``.

    Rules are evaluated at the scrape interval; alerts go to ``alertmanager_target``
    (``host:port``) when given.
    """
    config: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": rule_files,
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [app_target]}]},
        ],
    }
    if alertmanager_target is not None:
        targets = [{"targets": [alertmanager_target]}]
        config["alerting"] = {"alertmanagers": [{"static_configs": targets}]}
    return yaml.safe_dump(config, sort_keys=False)


def _rules(doc: Any) -> Iterator[dict[str, Any]]:
    for group in doc.get("groups", []) if isinstance(doc, dict) else []:
        yield from group.get("rules", [])


#: Shortest ``for:`` kept on alerts about missing series (``absent()``, and ``or on ()
#: vector(0)``: no request yet reads as none): right after start Prometheus has not scraped
#: yet, and such an alert, capped, would page for the stack's own startup.
ABSENT_FLOOR = "1m"
#: What marks those alerts' expressions.
_ABSENT_MARKS = ("absent(", "vector(0)")


def _retell_for(rule: dict[str, Any], old: str, new: str) -> None:
    """Replace ``for <old>`` by ``for <new>`` in ``rule``'s text annotations."""
    said = re.compile(rf"\bfor {re.escape(old)}\b")
    annotations = rule.get("annotations")
    if isinstance(annotations, dict):
        for key, value in annotations.items():
            if isinstance(value, str):
                annotations[key] = said.sub(f"for {new}", value)


def fast_rules(text: str, max_for: str) -> str:
    """Return the rule file ``text`` with every ``for:`` capped at ``max_for``.

    Alerts on missing series (``absent(...)``, ``vector(0)``) keep at least
    :data:`ABSENT_FLOOR`. Group ``interval:``
    settings are dropped too, so rules follow the (short) global evaluation interval.
    Expressions are unchanged; an annotation saying ``for <the old duration>`` says the
    new one (a page must describe the rule that fired).
    """
    doc = yaml.safe_load(text)
    cap = duration_seconds(max_for, "--alert-for")
    for rule in _rules(doc):
        if "for" not in rule:
            continue
        limit, limit_text = cap, max_for
        expr = str(rule.get("expr", ""))
        if any(mark in expr for mark in _ABSENT_MARKS):
            floor = duration_seconds(ABSENT_FLOOR)
            limit, limit_text = (floor, ABSENT_FLOOR) if floor > cap else (cap, max_for)
        old = str(rule["for"])
        if duration_seconds(old, "rule for") > limit:
            rule["for"] = limit_text
            _retell_for(rule, old, limit_text)
    for group in doc.get("groups", []) if isinstance(doc, dict) else []:
        group.pop("interval", None)
    return yaml.safe_dump(doc, sort_keys=False, width=1000)
