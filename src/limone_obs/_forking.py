"""Servers that fork the app's process without running Python's fork hooks.

The kit keeps per-process state that must not cross a fork: the exporter's direct
bindings to a worker's multiprocess files, the logging integration's batch of request
ids, fresh locks. It resets them in ``os.register_at_fork`` hooks, which CPython runs
around ``os.fork()``. gunicorn forks through ``os.fork()``; uWSGI forks from C and runs
those hooks only with ``py-call-uwsgi-fork-hooks`` (or ``py-call-osafterfork``). Its
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

#: What the warnings tell a uWSGI user to add (either option makes the kit's fast paths safe).
UWSGI_FIX = "start uWSGI with --py-call-uwsgi-fork-hooks (or lazy-apps = true)"
_HOOK_OPTIONS = ("py-call-uwsgi-fork-hooks", "py-call-osafterfork")
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

    Known today: uWSGI with a master or several processes, the app imported before the
    fork (no ``lazy-apps``), and neither ``py-call-uwsgi-fork-hooks`` nor
    ``py-call-osafterfork``. Read from uWSGI's ``uwsgi`` module, which exists only inside
    a uWSGI process; None everywhere else (gunicorn, werkzeug, tests).
    """
    uwsgi = sys.modules.get("uwsgi")
    options = getattr(uwsgi, "opt", None)
    if not isinstance(options, Mapping):
        return None
    if any(_is_set(options, name) for name in (*_HOOK_OPTIONS, *_LAZY_OPTIONS)):
        return None
    processes = getattr(uwsgi, "numproc", 1)
    forks = _is_set(options, "master") or (isinstance(processes, int) and processes > 1)
    if not forks:
        return None
    return "uWSGI forks its workers from the app's process without Python's fork hooks"
