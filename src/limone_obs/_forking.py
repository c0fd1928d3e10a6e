"""Servers that fork the app's process without running Python's fork hooks.

The kit keeps per-process state that must not cross a fork: the exporter's direct
bindings to a worker's multiprocess files, the logging integration's batch of request
ids, fresh locks. It resets them in ``os.register_at_fork`` hooks, which CPython runs
around ``os.fork()``. gunicorn forks through ``os.fork()``; uWSGI forks from C and runs
all of those hooks only with ``py-call-uwsgi-fork-hooks`` (``py-call-osafterfork`` runs
the child's alone, not the ones that keep a lock from being copied while held). Its
default is to import the app in the master and fork the workers from it (unless
``lazy-apps``), so there a worker would start with its master's state: the exporter
would write into the master's files and workers could hand out the same request ids.
:func:`unhooked_fork` tells; the exporter and the logging integration then use their
fork-safe paths and say so.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

#: What the warnings tell a uWSGI user to add (either makes the kit's fast paths safe).
UWSGI_FIX = "start uWSGI with --py-call-uwsgi-fork-hooks --enable-threads (or lazy-apps = true)"
_LAZY_OPTIONS = ("lazy-apps", "lazy")
#: The values uWSGI itself reads as "off" for a flag (``uwsgi_opt_true``).
_FALSE = frozenset({"0", "false", "no", "off"})


def _is_set(options: Mapping[str, Any], name: str) -> bool:
    """True when uWSGI option ``name`` is on (``--name``, ``name = true``, ``name = 1``).

    uWSGI keeps a flag given without a value as ``True`` and a value as bytes (or a list
    of them when repeated); the last one given wins.
    """
    value = options.get(name)
    if isinstance(value, list):
        value = value[-1] if value else None
    if value is None or value is False:
        return False
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return not (isinstance(value, str) and value.lower() in _FALSE)


def unhooked_fork() -> str | None:
    """Describe the server if it forks this process without Python's fork hooks, else None.

    Known today: uWSGI importing the app before it forks the workers (a master, which
    many options turn on besides ``master``, or several processes; no ``lazy-apps``) and
    not running the hooks (no ``py-call-uwsgi-fork-hooks``, which before uWSGI 2.0.31
    also took threads). Read from uWSGI's ``uwsgi`` module, which exists only inside a
    uWSGI process; None everywhere else (gunicorn, werkzeug, tests).
    """
    uwsgi = sys.modules.get("uwsgi")
    options = getattr(uwsgi, "opt", None)
    if not isinstance(options, Mapping):
        return None
    try:
        in_worker = uwsgi.worker_id() > 0  # type: ignore[union-attr]
        master = uwsgi.masterpid() != 0  # type: ignore[union-attr]
    except Exception:  # not uWSGI's module after all
        return None
    if in_worker or any(_is_set(options, name) for name in _LAZY_OPTIONS):
        return None  # the app is imported after the fork (lazy apps, or a worker's own app)
    hooks = _is_set(options, "py-call-uwsgi-fork-hooks") and bool(
        getattr(uwsgi, "has_threads", True)
    )
    processes = getattr(uwsgi, "numproc", 1)
    forks = master or (isinstance(processes, int) and processes > 1)
    if hooks or not forks:
        return None
    return "uWSGI forks its workers from the app's process without Python's fork hooks"
