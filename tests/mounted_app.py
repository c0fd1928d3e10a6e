"""Two Flask apps in one gunicorn server: ``tests.mounted_app:create()``.

``notes`` (namespace ``limoneide``) with ``admin`` (its own ``Metrics``, namespace
``admin``) mounted at ``/admin`` by werkzeug's ``DispatcherMiddleware`` inside notes' kit
wrapper, as tests/test_mounted_apps.py describes.
"""

from __future__ import annotations

import time

from flask import Flask, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from limone_obs import Metrics


def create() -> Flask:
    """Return notes, serving admin under /admin; both have a slow route."""
    notes, admin = Flask("notes"), Flask("admin")
    for app in (notes, admin):

        @app.get("/slow")
        def slow() -> str:
            time.sleep(float(request.args.get("seconds", "3")))
            return "slow"

    notes.wsgi_app = DispatcherMiddleware(notes.wsgi_app, {"/admin": admin})  # type: ignore[method-assign]
    Metrics(notes)
    Metrics(admin, namespace="admin")
    return notes
