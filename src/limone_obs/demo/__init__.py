"""A LimoneIDE-shaped demo service instrumented with limone-obs (see :mod:`.app`).

Run it under gunicorn: ``gunicorn -c exporter/gunicorn.conf.py 'limone_obs.demo:create_app()'``.
"""

from limone_obs.demo.app import create_app
from limone_obs.demo.faults import Faults

__all__ = ["Faults", "create_app"]
