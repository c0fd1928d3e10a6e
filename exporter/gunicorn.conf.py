"""gunicorn settings for a Flask app instrumented with limone-obs.

Use: ``gunicorn -c exporter/gunicorn.conf.py 'yourapp:create_app()'``.

Every worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` and any worker's
``/metrics`` serves them all. The variable is set here, at config load, because
prometheus-client chooses its storage when first imported: nothing in this file imports
it at module level. Environment overrides: GUNICORN_BIND, GUNICORN_WORKERS,
GUNICORN_THREADS, GUNICORN_MAX_REQUESTS, GUNICORN_TIMEOUT, PROMETHEUS_MULTIPROC_DIR.
"""

import atexit
import os
import shutil
import tempfile

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

# Start every server run with no samples of an earlier run (they would add up). This runs
# at config load, before a preloaded app writes its first sample, and only once per
# master: a reload (SIGHUP) executes this file again, and must keep the live counts.
if os.environ.get("LIMONE_OBS_MULTIPROC_CLEARED") != _multiproc_dir:
    os.makedirs(_multiproc_dir, exist_ok=True)
    # Worker files (*.db) and the archive of retired workers (limone_archive.json, plus a
    # temporary copy a crashed merge may have left) go; the lock file may stay.
    for _name in os.listdir(_multiproc_dir):
        if _name.endswith(".db") or _name.startswith("limone_archive.json"):
            os.remove(os.path.join(_multiproc_dir, _name))
    os.environ["LIMONE_OBS_MULTIPROC_CLEARED"] = _multiproc_dir

_master_pid = os.getpid()


def _remove_default_dir() -> None:
    # Workers inherit this handler when they fork: only the master removes the directory.
    if os.getpid() == _master_pid:
        shutil.rmtree(_multiproc_dir, ignore_errors=True)


if _multiproc_dir == _default_dir:
    # The directory this config chose itself (never one the user set) lives in RAM on
    # /dev/shm: remove it however the master ends (shutdown, --check-config, bind error).
    atexit.register(_remove_default_dir)

# gunicorn >= 27 binds a control socket shared by every server of the user; several
# servers (tests, benchmarks, the local stack) run side by side here. Older versions
# ignore the setting.
control_socket_disable = True


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Retire a dead worker's metric files; imported here, after the variable is set."""
    from limone_obs.exporter.multiprocess import child_exit as retire  # noqa: PLC0415

    retire(server, worker)


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Publish the worker's request slots (threads) for ``<ns>_workers{state="idle"}``."""
    from limone_obs.exporter.workers import post_worker_init as publish_slots  # noqa: PLC0415

    publish_slots(worker)


# --- logging (limone_obs.logging) ---------------------------------------------------
# JSON lines for the master, error and access logs are wired here by the logging area.
# The master, error and (if enabled) access lines become JSON objects in the limone-obs
# log schema. gunicorn's access log is off unless GUNICORN_ACCESSLOG is set ("-" for
# stdout): the app's own access line (limone_obs.logging.init_app) carries the endpoint,
# user and trace ids, and two lines per request would double the volume.
logger_class = "limone_obs.logging.gunicorn.Logger"
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
# Imported after PROMETHEUS_MULTIPROC_DIR is set above (limone_obs imports prometheus_client);
# gunicorn reads the name as its logconfig_dict setting.
from limone_obs.logging.gunicorn import logconfig_dict  # noqa: E402, F401
