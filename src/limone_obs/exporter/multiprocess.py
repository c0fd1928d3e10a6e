"""prometheus-client multiprocess mode for gunicorn (``PROMETHEUS_MULTIPROC_DIR``).

Each worker writes its samples to memory-mapped files in the directory; a scrape of any
worker reads them all (:class:`~limone_obs.exporter._mp_collector.FlatCollector`, the
same samples as prometheus-client's ``MultiProcessCollector`` at a flat cost).
:func:`child_exit` is the gunicorn hook that merges a dead worker's files into the
compaction archive (:mod:`limone_obs.exporter.compaction`), so scrape time does not grow
with worker churn (``exporter/gunicorn.conf.py`` wires it).
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from limone_obs.errors import ConfigError
from limone_obs.exporter import compaction, fast_path
from limone_obs.exporter._mp_collector import FlatCollector

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


def exposition_registry(path: str, fast: bool = True) -> CollectorRegistry:
    """Return a registry that reads every worker's files below ``path`` at each scrape.

    ``fast`` (the fast path is on): the flat collector, which also reads the compaction
    archive; else prometheus-client's own ``MultiProcessCollector``.
    """
    registry = CollectorRegistry(auto_describe=True)
    if fast:
        registry.register(FlatCollector(path))
    else:
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn ``child_exit`` hook (runs in the master): retire the dead worker's files.

    Its counters, histograms and non-live gauges go into the archive, its live gauges are
    dropped. With the fast path off (:mod:`.fast_path`) only its live gauges are removed,
    as prometheus-client's ``mark_process_dead`` does: its other files stay and are read.
    Files of other dead processes left by an earlier failure are retired too.
    A failure is logged and leaves the files in place, where scrapes still count them.
    """
    try:
        path = multiprocess_dir()
        if path is not None and not fast_path.enabled():
            mark_process_dead(worker.pid, path)  # type: ignore[no-untyped-call]
        elif path is not None:
            live = set(getattr(server, "WORKERS", None) or ()) - {worker.pid}
            compaction.compact(path, compaction.dead_pids(path, live) | {worker.pid})
    except Exception as exc:  # a metrics hook must never take the gunicorn master down
        log = getattr(server, "log", None)
        if log is not None:
            log.error("limone-obs: could not compact the files of worker %s: %s", worker.pid, exc)
