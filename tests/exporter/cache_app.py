"""App served by the cache integration tests: ``tests.exporter.cache_app:create_app()``.

``/square/<n>`` is cached in the Redis at ``$CACHE_TEST_REDIS_URL``; ``/calls`` tells how
many times this worker computed a square (the function behind the cache).
"""

from __future__ import annotations

import os

from flask import Flask

from limone_obs.exporter import Metrics, RedisCache

CACHE_NAME = "squares"


def create_app() -> Flask:
    """Return an instrumented app whose one view is cached in Redis."""
    app = Flask("cache_app")
    metrics = Metrics(app)
    cache = RedisCache.from_url(os.environ["CACHE_TEST_REDIS_URL"], metrics, retry_after=0.5)
    computed = []

    @cache.cache_result(expire_time=300, name=CACHE_NAME)
    def square(n: int) -> dict[str, int]:
        computed.append(n)
        return {"n": n, "square": n * n}

    @app.get("/square/<int:n>")
    def get_square(n: int) -> dict[str, int]:
        return square(n)

    return app
