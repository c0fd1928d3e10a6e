"""What the local stack takes from the alerts area: the spec, the rules, the Alertmanager config.

The alerts area generates them from ``alerts/slo.yaml``. When its functions are not
available (a trimmed install), the committed files under ``alerts/`` are used, and failing
those a minimal built-in Alertmanager config that sends everything to the webhook.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limone_obs import conventions as c
from limone_obs.stack import configs

RULES_DIR = "alerts/rules"
SPEC_FILE = "alerts/slo.yaml"


@dataclass(frozen=True)
class AlertInputs:
    """The scrape job, rule files (name -> text) and Alertmanager config for the stack."""

    job: str
    rules: dict[str, str]
    alertmanager: str
    notes: tuple[str, ...]


def _optional(module: str, name: str) -> Any | None:
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def load_spec(root: Path) -> Any | None:
    """The parsed SLO spec (``limone_obs.alerts.spec.load_spec``), or None if unavailable.

    An invalid spec raises the alerts area's SpecError: the stack must not run on it.
    """
    loader = _optional("limone_obs.alerts.spec", "load_spec")
    path = root / SPEC_FILE
    if loader is None or not path.is_file():
        return None
    return loader(path)


def rule_texts(root: Path) -> dict[str, str]:
    """Rule files generated from the spec (file name -> YAML), else those on disk."""
    generate = _optional("limone_obs.alerts.build", "artifacts")
    files = dict(generate(root).files) if generate is not None else {}
    rules = {
        Path(rel).name: content.decode()
        for rel, content in files.items()
        if rel.startswith(RULES_DIR + "/") and rel.endswith((".yml", ".yaml"))
    }
    if not rules and (root / RULES_DIR).is_dir():
        rules = {p.name: p.read_text() for p in sorted((root / RULES_DIR).glob("*.y*ml"))}
    return rules


def alertmanager_text(spec: Any | None, webhook_url: str) -> tuple[str, str | None]:
    """The Alertmanager config routed to ``webhook_url`` and a note when it is the fallback."""
    render = _optional("limone_obs.alerts.alertmanager", "render_config")
    if spec is not None and render is not None:
        return str(render(spec, webhook_url=webhook_url)), None
    note = "the alerts area's render_config is unavailable: every alert goes to the webhook"
    return configs.fallback_alertmanager(webhook_url), note


def inputs(root: Path, webhook_url: str) -> AlertInputs:
    """Everything the stack needs from the alerts area, with notes on what was missing."""
    spec = load_spec(root)
    rules = rule_texts(root)
    notes = [] if rules else [f"no rule files in {root / RULES_DIR}: Prometheus only scrapes"]
    am_text, am_note = alertmanager_text(spec, webhook_url)
    notes.extend([am_note] if am_note else [])
    job = getattr(spec, "job", None) or c.DEFAULT_NAMESPACE
    return AlertInputs(job=job, rules=rules, alertmanager=am_text, notes=tuple(notes))
