"""Logs (Loki): error lines, volume by level, and every line of one request.

Every name comes from the logging section of :mod:`limone_obs.conventions` (the fields of
``logging/log-event.schema.json``): the stream labels ``service`` and ``level`` (two of
``LOKI_LABELS``), the levels of ``LOG_LEVELS`` and the ``request_id`` field. The
``$service`` and ``$request_id`` variables are named after the label and the field.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from limone_obs import conventions as c
from limone_obs.dashboards import _grafana as gf
from limone_obs.dashboards._grafana import Look, Query

SERVICE = f'{c.LOG_SERVICE}="${c.LOG_SERVICE}"'
STREAM = f"{{{SERVICE}}}"
#: The levels from ``error`` up (``LOG_LEVELS`` is in increasing severity).
ERROR_LEVELS = "|".join(c.LOG_LEVELS[c.LOG_LEVELS.index("error") :])


def build() -> Dashboard:
    """The logs dashboard of the compose stack (uid ``conventions.DASHBOARD_UID_LOGS``)."""
    grid = gf.Grid()
    grid.row("Volume")
    volume = f"sum by ({c.LOG_LEVEL}) (count_over_time({STREAM} [$__auto]))"  # Loki's step
    grid.add(
        gf.loki_timeseries(
            "Lines by level",
            [Query(volume, "{{level}}")],
            Look("Log lines per interval, stacked by level.", "short"),
        ),
        24,
        7,
    )
    grid.row("Errors")
    errors = f'{{{SERVICE}, {c.LOG_LEVEL}=~"{ERROR_LEVELS}"}}'
    grid.add(gf.logs("Error lines", Query(errors), "Lines logged at error or critical."), 24, 10)
    grid.row("Request")
    by_request = f'{STREAM} | json | {c.LOG_REQUEST_ID}="${c.LOG_REQUEST_ID}"'
    description = (
        "Every line of the request whose id is in $request_id (copy it from an error line "
        "or the X-Request-ID response header)."
    )
    grid.add(gf.logs("Lines of one request", Query(by_request), description), 24, 10)
    return gf.dashboard(
        c.DASHBOARD_UID_LOGS,
        "LimoneIDE / Logs",
        "JSON log lines of the LimoneIDE service in Loki (compose stack).",
        grid,
        _variables(),
    )


def _variables() -> list[object]:
    query = f"label_values({c.LOG_SERVICE})"
    return [
        gf.datasource_variable(c.VAR_LOKI, c.DATASOURCE_TYPE_LOKI, "Loki", c.DATASOURCE_UID_LOKI),
        gf.query_variable(c.LOG_SERVICE, query, "Service", datasource=gf.LOKI),
        gf.textbox_variable(c.LOG_REQUEST_ID, "Request id"),
    ]
