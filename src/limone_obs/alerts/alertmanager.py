"""The Alertmanager configuration generated from the spec (``alerts/alertmanager.yml``).

One receiver per service and severity (``<service>-page``, ``<service>-ticket``), each a
webhook by default plus any raw ``*_configs`` blocks of the spec (Slack, email,
PagerDuty); one route per service (``slo_service``), then by ``severity``, grouped by
``slo_service`` and ``slo``; a firing page of one of the spec's SLOs inhibits the ticket
of the same SLO, and the kinds add their one-page-per-incident rules.
:func:`render_shared_config` puts several services into one Alertmanager.
:func:`render_config` can point every receiver at another webhook and shorten the timers,
which the local stack and the end-to-end tests do; the committed file uses the spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from limone_obs import conventions as c
from limone_obs.alerts import render
from limone_obs.alerts.model import SEVERITIES, Receiver, ServiceSpec

#: Labels alerts are grouped by: one notification per SLO and severity.
GROUP_BY = ("alertname", c.LABEL_SLO_SERVICE, c.LABEL_SLO, c.LABEL_SEVERITY)
#: Labels a page and a ticket must share for the page to silence the ticket.
INHIBIT_EQUAL = (c.LABEL_SLO_SERVICE, c.LABEL_SLO)


def receiver_name(spec: ServiceSpec, severity: str) -> str:
    """The receiver of ``spec``'s alerts of ``severity``: ``<service>-<severity>``."""
    return f"{spec.service}-{severity}"


def _receiver(name: str, receiver: Receiver, webhook_url: str | None) -> dict[str, Any]:
    block: dict[str, Any] = {"name": name, **{k: list(v) for k, v in receiver.extra.items()}}
    url = webhook_url or receiver.webhook_url
    if url is not None:
        # The spec's webhook comes first; the extra's own webhook_configs are kept after it.
        own = {"url": url, "send_resolved": receiver.send_resolved}
        block["webhook_configs"] = [own, *block.get("webhook_configs", [])]
    return block


def _route(spec: ServiceSpec, severity: str, repeat_interval: str | None) -> dict[str, Any]:
    return {
        "receiver": receiver_name(spec, severity),
        "matchers": [f'{c.LABEL_SEVERITY}="{severity}"'],
        "repeat_interval": repeat_interval or spec.alertmanager.repeat_interval[severity],
    }


def service_route(
    spec: ServiceSpec,
    *,
    group_wait: str | None = None,
    group_interval: str | None = None,
    repeat_interval: str | None = None,
) -> dict[str, Any]:
    """The route of ``spec``'s alerts (``slo_service="<service>"``), one child per
    severity; an alert of the service without a known severity goes to its ticket.

    It carries the kit's grouping and the spec's timers itself, not only the root route
    (an alert of no known severity repeats as a ticket): copied into an Alertmanager of
    the user's own, under a root whose ``group_by`` is another (``[alertname, job]``: the
    SLO alerts have no ``job``), its alerts are still grouped one notification per SLO
    and severity.
    """
    am = spec.alertmanager
    return {
        "receiver": receiver_name(spec, c.SEVERITY_TICKET),
        "matchers": [f'{c.LABEL_SLO_SERVICE}="{spec.service}"'],
        "group_by": list(GROUP_BY),
        "group_wait": group_wait or am.group_wait,
        "group_interval": group_interval or am.group_interval,
        "repeat_interval": repeat_interval or am.repeat_interval[c.SEVERITY_TICKET],
        "routes": [_route(spec, severity, repeat_interval) for severity in SEVERITIES],
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
    """The Alertmanager configuration of one service as data; keyword arguments override
    the spec (see :func:`shared_config`)."""
    return shared_config(
        [spec],
        webhook_url=webhook_url,
        group_wait=group_wait,
        group_interval=group_interval,
        repeat_interval=repeat_interval,
    )


def shared_config(
    specs: Sequence[ServiceSpec],
    *,
    webhook_url: str | None = None,
    group_wait: str | None = None,
    group_interval: str | None = None,
    repeat_interval: str | None = None,
) -> dict[str, Any]:
    """One Alertmanager configuration for several services: a route per service (matched
    on ``slo_service``), receivers ``<service>-page`` / ``<service>-ticket``, each
    service's inhibit rules scoped to it. Each service's route has its spec's timers;
    the root route (alerts of no listed service) the first spec's.

    ``webhook_url`` replaces every receiver's webhook (receivers without one get it);
    ``repeat_interval`` replaces the per-severity repeat intervals. ValueError when two
    specs name the same service.
    """
    services = [spec.service for spec in specs]
    if not specs or len(set(services)) != len(services):
        raise ValueError(f"services must be distinct and at least one: {services}")
    first = specs[0]
    am = first.alertmanager
    root = {
        # An alert of no known service is not lost: the first service's tickets get it.
        "receiver": receiver_name(first, c.SEVERITY_TICKET),
        "group_by": list(GROUP_BY),
        "group_wait": group_wait or am.group_wait,
        "group_interval": group_interval or am.group_interval,
        "repeat_interval": repeat_interval or am.repeat_interval[c.SEVERITY_TICKET],
        "routes": [
            service_route(
                spec,
                group_wait=group_wait,
                group_interval=group_interval,
                repeat_interval=repeat_interval,
            )
            for spec in specs
        ],
    }
    return {
        "global": {"resolve_timeout": am.resolve_timeout},
        "route": root,
        "inhibit_rules": [rule for spec in specs for rule in inhibit_rules(spec)],
        "receivers": [
            _receiver(receiver_name(spec, s), spec.alertmanager.receivers[s], webhook_url)
            for spec in specs
            for s in SEVERITIES
        ],
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


def render_shared_config(
    specs: Sequence[ServiceSpec],
    *,
    webhook_url: str | None = None,
    group_wait: str | None = None,
    group_interval: str | None = None,
    repeat_interval: str | None = None,
    header: str = render.HEADER,
) -> str:
    """:func:`shared_config` as YAML text: one Alertmanager for several services, after
    ``header`` (a comment line saying what generated it)."""
    data = shared_config(
        specs,
        webhook_url=webhook_url,
        group_wait=group_wait,
        group_interval=group_interval,
        repeat_interval=repeat_interval,
    )
    return render.to_yaml(data, header=header)
