"""gunicorn settings for a Flask app instrumented with limone-obs: a pointer.

The settings ship in the package; prefer
``gunicorn -c python:limone_obs.gunicorn_conf 'yourapp:create_app()'``. This file is kept
so that ``gunicorn -c exporter/gunicorn.conf.py ...`` goes on working: it loads the same
settings and hooks (see ``src/limone_obs/gunicorn_conf.py`` for what they do and the
environment variables they read).
"""

from limone_obs.gunicorn_conf import *  # noqa: F403
