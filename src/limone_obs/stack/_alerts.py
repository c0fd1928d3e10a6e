"""What the local stack takes from the alerts area: the scrape job, rules, Alertmanager config.

All of it is generated from ``alerts/slo.yaml`` by :mod:`limone_obs.alerts`, exactly as
``limone-obs build`` does; only the webhook URL and (for a quick demo) the grouping times
differ from the committed ``alerts/alertmanager.yml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from limone_obs.alerts import alertmanager, build
from limone_obs.alerts.spec import SPEC_PATH, load_spec
from limone_obs.errors import StackError


@dataclass(frozen=True)
class AlertInputs:
    """The service and scrape job of the spec, rule files (file name -> YAML) and
    Alertmanager config (YAML)."""

    service: str
    job: str
    rules: dict[str, str]
    alertmanager: str


def inputs(root: Path, webhook_url: str, *, fast: bool, spec: Path | None = None) -> AlertInputs:
    """Generate the stack's alerting inputs from ``spec`` (default ``root``/alerts/slo.yaml).

    ``fast`` sets Alertmanager's group_wait to 1s and group_interval to 5s, so a demo
    alert is delivered at once. Raises StackError if the spec file is missing; an
    invalid spec raises the alerts area's SpecError.
    """
    path = spec if spec is not None else root / SPEC_PATH
    if not path.is_file():
        where = f"--spec {spec}" if spec is not None else f"{SPEC_PATH} under {root.resolve()}"
        raise StackError(
            f"{where} not found: run from the limone-obs checkout, pass --root <checkout>, "
            "or --spec <your slo.yaml>"
        )
    model = load_spec(path)
    rules = {Path(rel).name: text.decode() for rel, text in build.rule_files(model).items()}
    grouping = {"group_wait": "1s", "group_interval": "5s"} if fast else {}
    config = alertmanager.render_config(model, webhook_url=webhook_url, **grouping)
    return AlertInputs(service=model.service, job=model.job, rules=rules, alertmanager=config)
