"""The package's public API, and the import order the packaged gunicorn config relies on."""

from __future__ import annotations

import os
import subprocess
import sys

import limone_obs
from tests.support import ROOT


def _python(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_every_public_name_resolves() -> None:
    """Each name of ``__all__`` is an attribute of the package (imported lazily or not)."""
    missing = [name for name in limone_obs.__all__ if getattr(limone_obs, name, None) is None]
    assert [] == missing
    assert set(limone_obs.__all__) <= set(dir(limone_obs))


def test_importing_the_package_does_not_import_prometheus_client() -> None:
    """``import limone_obs`` leaves prometheus-client unimported (gunicorn imports it first)."""
    code = "import sys, limone_obs; print('prometheus_client' in sys.modules)"
    assert "False" == _python(code)


def test_the_packaged_gunicorn_config_sets_multiprocess_storage_first() -> None:
    """Importing limone_obs.gunicorn_conf (as ``-c python:`` does) gives multiprocess values."""
    code = (
        "import limone_obs.gunicorn_conf, os\n"
        "from prometheus_client import values\n"
        "print(values.ValueClass is not values.MutexValue,"
        " bool(os.environ.get('PROMETHEUS_MULTIPROC_DIR')))"
    )
    assert "True True" == _python(code)
