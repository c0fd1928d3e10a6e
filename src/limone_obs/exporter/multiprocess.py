"""prometheus-client multiprocess mode for gunicorn (``PROMETHEUS_MULTIPROC_DIR``).

Each worker writes its samples to memory-mapped files in the directory; a scrape of any
worker reads them all. :func:`child_exit` is the gunicorn hook that retires a dead
worker's files (``exporter/gunicorn.conf.py`` wires it).
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, multiprocess, values

from limone_obs.errors import ConfigError

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """Return the multiprocess directory from the environment, or None in single-process mode.

    Raises ConfigError when the variable names a directory that does not exist, since
    prometheus-client would otherwise fail inside the first request.
    """
    path = os.environ.get(ENV_VAR) or os.environ.get(ENV_VAR.lower())
    if not path:
        return None
    if not os.path.isdir(path):
        raise ConfigError(
            f"{ENV_VAR}={path!r} is not a directory: create it (empty) before the server "
            "starts, or unset the variable for single-process mode"
        )
    if values.ValueClass is values.MutexValue:
        # prometheus-client picks its value storage once, at import time.
        raise ConfigError(
            f"{ENV_VAR} was set after prometheus_client was imported, so this process "
            "keeps its samples in memory and scrapes would miss them: set the variable "
            "before the app (or gunicorn.conf.py) imports anything from prometheus_client"
        )
    return path


def exposition_registry(path: str) -> CollectorRegistry:
    """Return a registry that reads every worker's files below ``path`` at each scrape."""
    registry = CollectorRegistry(auto_describe=True)
    multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn ``child_exit`` hook: drop the dead worker's live gauges."""
    del server
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(worker.pid, path)  # type: ignore[no-untyped-call]
