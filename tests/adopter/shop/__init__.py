"""A small service instrumented as the README's "Use it in your service" says.

It is not the kit's demo: an application package of its own (app factory, blueprint,
async view, streamed answer, thread-pool call), started as ``tests.adopter.shop:create_app()``
by the adopter tests under gunicorn, with and without the kit's config.
"""

from __future__ import annotations

from flask import Flask

from limone_obs.logging import configure_logging
from limone_obs.logging import init_app as init_logging
from tests.adopter.shop.extensions import metrics
from tests.adopter.shop.views import bp


def create_app() -> Flask:
    """The app factory: logging first (service/env from LIMONE_OBS_SERVICE/ENV), then the rest."""
    configure_logging()
    app = Flask(__name__)
    metrics.init_app(app)
    init_logging(app)
    app.register_blueprint(bp)
    return app
