"""gunicorn settings for a Flask app instrumented with limone-obs, shipped in the package.

Use: ``gunicorn -c python:limone_obs.gunicorn_conf 'yourapp:create_app()'``.

Every worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` and any worker's
``/metrics`` serves them all. The variable is set here, at config load, because
prometheus-client chooses its storage when first imported: gunicorn imports the
``limone_obs`` package before this module, and that import does not load
prometheus-client (its exporter names are imported lazily). Without the variable, a
private directory on ``/dev/shm`` is made for this master and removed when it exits (or,
if it was killed, by the next server of this config to start on the machine).

Importing this module (gunicorn does it once per master) also makes the directory this
server's (:func:`limone_obs.exporter.multiprocess.claim_directory`): a directory in use
by another running server is refused with an error and exit status 2, and files left by
dead processes are cleared. On exit, the server removes its files.

Environment overrides: GUNICORN_BIND, GUNICORN_WORKERS, GUNICORN_THREADS,
GUNICORN_MAX_REQUESTS, GUNICORN_TIMEOUT, GUNICORN_ACCESSLOG, PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from typing import Any

#: The gunicorn settings and hooks defined here (``from limone_obs.gunicorn_conf import *``
#: in a config file of your own takes them all; override below that line).
__all__ = [
    "accesslog", "bind", "child_exit", "control_socket_disable", "graceful_timeout",
    "logconfig_dict", "logger_class", "max_requests", "max_requests_jitter", "on_exit",
    "post_worker_init", "threads", "timeout", "workers",
]  # fmt: skip

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# Recycling workers bounds memory leaks; their counts are kept by child_exit below.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
# AI calls take up to 30 s; leave headroom before gunicorn kills a busy worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30

# Every request writes its samples into memory-mapped files there: on a tmpfs (/dev/shm)
# those writes never reach a disk, and the merge of a dead worker's files costs no fsync.
_tmp_base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
_default_dir = os.path.join(_tmp_base, f"limone-obs-{os.getpid()}")
_multiproc_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", _default_dir)
_master_pid = os.getpid()

# Only now, with the variable set, may prometheus-client be imported.
from limone_obs.errors import ConfigError  # noqa: E402
from limone_obs.exporter import multiprocess  # noqa: E402

if _multiproc_dir == _default_dir:
    # What servers of this config killed with SIGKILL left (nothing could remove it).
    multiprocess.remove_abandoned(_tmp_base, "limone-obs-")

try:
    multiprocess.claim_directory(_multiproc_dir)
except ConfigError as _exc:
    # gunicorn prints a traceback for an exception raised by its config: say it plainly.
    print(f"limone-obs: error: {_exc}", file=sys.stderr, flush=True)
    raise SystemExit(2) from None


#: Set when this master exits for a new one (USR2 upgrade), which goes on using the files.
_handed_over = False


def _remove_default_dir() -> None:
    # Workers inherit this handler when they fork: only the master removes the directory.
    if os.getpid() == _master_pid and not _handed_over:
        shutil.rmtree(_multiproc_dir, ignore_errors=True)


if _multiproc_dir == _default_dir:
    # The directory this config chose itself (never one the user set) lives in RAM on
    # /dev/shm: remove it however the master ends (shutdown, --check-config, bind error).
    atexit.register(_remove_default_dir)

# gunicorn >= 27 binds a control socket shared by every server of the user; several
# servers (tests, benchmarks, the local stack) run side by side here. Older versions
# ignore the setting.
control_socket_disable = True


def child_exit(server: Any, worker: Any) -> None:
    """Retire a dead worker's metric files into the compaction archive (in the master)."""
    multiprocess.child_exit(server, worker)


def post_worker_init(worker: Any) -> None:
    """Publish the worker's request slots (threads) for ``<ns>_workers{state="idle"}``, and
    note gunicorn's listeners (a worker looks for other servers of its master)."""
    from limone_obs.exporter.workers import post_worker_init as publish_slots  # noqa: PLC0415

    publish_slots(worker)


def on_exit(server: Any) -> None:
    """Remove this server's files from the multiprocess directory (no orphaned files).

    Not when a new master took over (USR2 upgrade): its workers go on using the directory.
    """
    global _handed_over  # noqa: PLW0603 - read by the atexit handler above
    if multiprocess.handing_over(server):
        _handed_over = True
        return
    try:
        multiprocess.clear_directory(_multiproc_dir)
    except OSError as exc:  # never turn a clean stop into a failed one
        server.log.error("limone-obs: could not clear %s: %s", _multiproc_dir, exc)


# --- logging (limone_obs.logging) ---------------------------------------------------
# The master, error and (if enabled) access lines become JSON objects in the limone-obs
# log schema. gunicorn's access log is off unless GUNICORN_ACCESSLOG is set ("-" for
# stdout): the app's own access line (limone_obs.logging.init_app) carries the endpoint,
# user and trace ids, and two lines per request would double the volume.
logger_class = "limone_obs.logging.gunicorn.Logger"
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
# gunicorn reads the name as its logconfig_dict setting.
from limone_obs.logging.gunicorn import logconfig_dict  # noqa: E402
