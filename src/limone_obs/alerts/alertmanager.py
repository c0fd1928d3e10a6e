"""The Alertmanager configuration generated from the spec (``alerts/alertmanager.yml``).

One receiver per severity (``page``, ``ticket``), each a webhook by default plus any raw
``*_configs`` blocks of the spec (Slack, email, PagerDuty); routes by ``severity``,
grouped by ``slo_service`` and ``slo``; a firing page of one of the spec's SLOs inhibits
the ticket of the same SLO and no other alert.
:func:`render_config` can point every receiver at another webhook and shorten the timers,
which the local stack and the end-to-end tests do; the committed file uses the spec.
"""

from __future__ import annotations

from typing import Any

from limone_obs import conventions as c
from limone_obs.alerts import render
from limone_obs.alerts.model import SEVERITIES, Receiver, ServiceSpec

#: Labels alerts are grouped by: one notification per SLO and severity.
GROUP_BY = ("alertname", c.LABEL_SLO_SERVICE, c.LABEL_SLO, c.LABEL_SEVERITY)
#: Labels a page and a ticket must share for the page to silence the ticket.
INHIBIT_EQUAL = (c.LABEL_SLO_SERVICE, c.LABEL_SLO)


def _receiver(name: str, receiver: Receiver, webhook_url: str | None) -> dict[str, Any]:
    block: dict[str, Any] = {"name": name, **{k: list(v) for k, v in receiver.extra.items()}}
    url = webhook_url or receiver.webhook_url
    if url is not None:
        block["webhook_configs"] = [{"url": url, "send_resolved": receiver.send_resolved}]
    return block


def _route(spec: ServiceSpec, severity: str) -> dict[str, Any]:
    return {
        "receiver": severity,
        "matchers": [f'{c.LABEL_SEVERITY}="{severity}"'],
        "repeat_interval": spec.alertmanager.repeat_interval[severity],
    }


def inhibit_rules(spec: ServiceSpec) -> list[dict[str, Any]]:
    """A firing page of an SLO of ``spec`` silences the ticket of the same SLO; then each
    kind's rules for one page per incident (the availability burn page silences
    ``ErrorsHigh`` and ``AvailabilityAllFailing``).

    Both sides must carry ``slo_service="<service>"`` and a non-empty ``slo``: Alertmanager
    treats an ``equal`` label missing on both alerts as equal, so without these matchers
    any page lacking the SLO labels (another team's, in a shared Alertmanager) would
    silence every ticket lacking them too.
    """
    own = [f'{c.LABEL_SLO_SERVICE}="{spec.service}"', f'{c.LABEL_SLO}=~".+"']
    tickets = {
        "source_matchers": [f'{c.LABEL_SEVERITY}="{c.SEVERITY_PAGE}"', *own],
        "target_matchers": [f'{c.LABEL_SEVERITY}="{c.SEVERITY_TICKET}"', *own],
        "equal": list(INHIBIT_EQUAL),
    }
    return [tickets, *(rule for slo in spec.slos for rule in slo.sli.inhibit_rules(spec, slo))]


def config(
    spec: ServiceSpec,
    *,
    webhook_url: str | None = None,
    group_wait: str | None = None,
    group_interval: str | None = None,
    repeat_interval: str | None = None,
) -> dict[str, Any]:
    """The Alertmanager configuration as data; keyword arguments override the spec.

    ``webhook_url`` replaces every receiver's webhook (receivers without one get it);
    ``repeat_interval`` replaces the per-severity repeat intervals.
    """
    am = spec.alertmanager
    routes = [_route(spec, severity) for severity in SEVERITIES]
    if repeat_interval is not None:
        routes = [{**route, "repeat_interval": repeat_interval} for route in routes]
    root = {
        "receiver": c.SEVERITY_TICKET,  # an alert without a known severity is not lost
        "group_by": list(GROUP_BY),
        "group_wait": group_wait or am.group_wait,
        "group_interval": group_interval or am.group_interval,
        "repeat_interval": repeat_interval or am.repeat_interval[c.SEVERITY_TICKET],
        "routes": routes,
    }
    return {
        "global": {"resolve_timeout": am.resolve_timeout},
        "route": root,
        "inhibit_rules": inhibit_rules(spec),
        "receivers": [_receiver(s, am.receivers[s], webhook_url) for s in SEVERITIES],
    }


def render_config(
    spec: ServiceSpec,
    *,
    webhook_url: str | None = None,
    group_wait: str | None = None,
    group_interval: str | None = None,
    repeat_interval: str | None = None,
) -> str:
    """The Alertmanager configuration as YAML text (see :func:`config` for the overrides)."""
    data = config(
        spec,
        webhook_url=webhook_url,
        group_wait=group_wait,
        group_interval=group_interval,
        repeat_interval=repeat_interval,
    )
    return render.to_yaml(data)
