"""limone_obs.logging: every log line of the service as one JSON object.

App events go through structlog to orjson bytes (the fast path); stdlib records
(werkzeug, gunicorn, requests, any library) through a python-json-logger formatter; both
produce the schema of ``logging/log-event.schema.json``, with request context and secrets
masked. Quick start::

    from limone_obs.logging import configure_logging, get_logger, init_app

    configure_logging(service="limoneide", env="production")  # LIMONE_OBS_* env vars win
    init_app(app, user_id=lambda: getattr(g, "user_id", None))
    log = get_logger(__name__)
    log.info("completion finished", model="gpt", tokens=812)

Work handed to a thread pool keeps the request's context with :func:`submit`,
:func:`run_in_executor` or :func:`wrap` (from :mod:`limone_obs.context`).
"""

from limone_obs.context import run_in_executor, submit, wrap
from limone_obs.logging.flask_ext import init_app
from limone_obs.logging.redaction import Redactor
from limone_obs.logging.setup import (
    bind,
    clear_context,
    configure_logging,
    get_context,
    get_logger,
    unbind,
)
from limone_obs.logging.stdlib import JsonFormatter, JsonLineHandler

__all__ = [
    "JsonFormatter",
    "JsonLineHandler",
    "Redactor",
    "bind",
    "clear_context",
    "configure_logging",
    "get_context",
    "get_logger",
    "init_app",
    "run_in_executor",
    "submit",
    "unbind",
    "wrap",
]
