"""Logs (Loki): volume by level, error lines, slow or 5xx requests, every line of one request.

Every name comes from the logging section of :mod:`limone_obs.conventions` (the fields of
``logging/log-event.schema.json``): the stream labels ``service``, ``env`` and ``level``
(``LOKI_LABELS``), the levels of ``LOG_LEVELS``, and the fields the shippers keep as
structured metadata (``request_id``, ``endpoint``), filtered without parsing the line.
Only the "slow or 5xx requests" panel parses JSON, and only the access lines.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from limone_obs import conventions as c
from limone_obs.dashboards import _grafana as gf
from limone_obs.dashboards import common
from limone_obs.dashboards._grafana import Look, Query
from limone_obs.dashboards.slo_inputs import ServiceView

SERVICE = f'{c.LOG_SERVICE}="${c.LOG_SERVICE}", {c.LOG_ENV}=~"${c.LOG_ENV}"'
STREAM = f"{{{SERVICE}}}"
#: Structured-metadata filter on ``$endpoint`` (a regex: ``.*`` is every line).
ENDPOINT = f'| {c.LOG_ENDPOINT}=~"${c.LOG_ENDPOINT}"'
#: The levels from ``error`` up (``LOG_LEVELS`` is in increasing severity).
ERROR_LEVELS = "|".join(c.LOG_LEVELS[c.LOG_LEVELS.index("error") :])


def build(service: ServiceView) -> Dashboard:
    """The logs dashboard of ``service`` (uid ``dashboard_uid(service, "logs")``)."""
    grid = gf.Grid()
    grid.row("Volume")
    grid.add(_volume(), 24, 7)
    grid.row("Errors")
    grid.add(_errors(), 12, 10)
    grid.add(slow_or_failed(service), 12, 10)
    grid.row("Request")
    grid.add(one_request(), 24, 10)
    return common.board(
        service,
        common.LOGS,
        "Logs",
        f"JSON log lines of {service.service} in Loki: volume, errors, slow or failed "
        "requests and every line of one request.",
        grid,
        variables=_variables(service),
        annotations=[common.alert_annotation(service)],
    )


def _volume() -> object:
    # A per-second rate keeps the scale when zooming; a count per $__auto step does not.
    expr = f"sum by ({c.LOG_LEVEL}) (rate({STREAM} {ENDPOINT} [$__auto]))"
    return gf.loki_timeseries(
        "Lines per second by level",
        [Query(expr, "{{level}}")],
        Look("Log lines per second, stacked by level.", "cps"),
    )


def _errors() -> object:
    errors = f'{{{SERVICE}, {c.LOG_LEVEL}=~"{ERROR_LEVELS}"}} {ENDPOINT}'
    return gf.logs("Error lines", Query(errors), "Lines logged at error or critical.")


def slow_threshold(service: ServiceView) -> float:
    """Seconds above which a request is slow: the committed threshold of the latency SLO
    on the request duration (not a dependency's), else the kit's 1 s."""
    names = c.MetricNames(service.namespace)
    return common.latency_targets(service, names.request_duration).seconds[-1]


def slow_or_failed(service: ServiceView) -> object:
    """Access lines of requests that failed (5xx) or took longer than the latency target."""
    limit = slow_threshold(service)
    access = f'|= "{c.ACCESS_LOGGER}" | json | {c.LOG_LOGGER}="{c.ACCESS_LOGGER}"'
    bad = f"{c.LOG_STATUS_CODE} >= 500 or {c.LOG_DURATION} > {limit:g}"
    expr = f"{STREAM} {ENDPOINT} {access} | {bad}"
    description = (
        f"Access lines of requests answered with a 5xx or slower than {limit:g} s: from a "
        "latency spike or an error burst to the request ids (open one in the panel below)."
    )
    return gf.logs("Slow or 5xx requests", Query(expr), description)


def one_request() -> object:
    """Every line of ``$request_id``; nothing while it is empty (not every line)."""
    request = f'| {c.LOG_REQUEST_ID}!="" | {c.LOG_REQUEST_ID}="${c.LOG_REQUEST_ID}"'
    expr = f'{{{c.LOG_SERVICE}="${c.LOG_SERVICE}"}} {request}'
    description = (
        "Every line of the request whose id is in $request_id (click a request_id in a log "
        "line, or copy it from the X-Request-ID response header). Empty: no lines."
    )
    return gf.logs("Lines of one request", Query(expr), description)


def _variables(service: ServiceView) -> list[object]:
    env = gf.query_variable(
        c.LOG_ENV, f"label_values({c.LOG_ENV})", "Env", datasource=gf.LOKI, multi=True
    )
    return [
        gf.datasource_variable(c.VAR_LOKI, c.DATASOURCE_TYPE_LOKI, "Loki", c.DATASOURCE_UID_LOKI),
        # Prometheus only for the alert annotations on the volume graph.
        gf.datasource_variable(
            c.VAR_DATASOURCE,
            c.DATASOURCE_TYPE_PROMETHEUS,
            "Prometheus (alerts)",
            c.DATASOURCE_UID_PROMETHEUS,
        ),
        # The spec's service selected (the logs' service label, LIMONE_OBS_SERVICE):
        # Grafana would pick the first of every service's in a shared Loki.
        gf.query_variable(
            c.LOG_SERVICE,
            f"label_values({c.LOG_SERVICE})",
            "Service",
            datasource=gf.LOKI,
            default=service.service,
        ),
        env,
        gf.textbox_variable(c.LOG_ENDPOINT, "Endpoint (regex)", default=".*"),
        gf.textbox_variable(c.LOG_REQUEST_ID, "Request id"),
    ]
