"""The LimoneIDE-shaped demo service: ``create_app()``, instrumented as a user would.

Routes: ``/health``; ``/projects`` and ``/projects/<int:project_id>`` (SQLite, timed as
dependency ``db``); ``/languages/<language>`` (cached in Redis in front of the DB, counted
as cache hits, misses and errors); ``/editor/<int:project_id>`` (a Jinja page, timed as
``template`` by the exporter); ``POST /ai/complete`` (a simulated AI API call timed as
``ai_api``, its answer cached in Redis; streamed token by token with ``{"stream": true}``,
never cached); ``/admin/faults`` (the fault switches, see :mod:`limone_obs.demo.faults`;
with an admin token set, only requests carrying it; without one, only direct loopback
clients, no proxy headers).

Flask config keys, each also read from the environment variable of the same name:

- ``LIMONE_DEMO_DATA_DIR`` [a new temporary directory]: holds ``demo.sqlite3`` and
  ``faults.json``; give every gunicorn worker the same one.
- ``LIMONE_DEMO_AI_LATENCY`` [``"1.5-2.0"``]: seconds an AI call takes, ``min-max``
  (uniform), or a ``(min, max)`` tuple.
- ``LIMONE_DEMO_REDIS_URL`` [unset]: the Redis that caches languages and AI answers
  (``limone-obs up`` starts one); unset, the demo says so and runs without a cache.
- ``LIMONE_DEMO_CACHE_TTL`` [``30``]: seconds a language stays cached (below 1: no cache).
- ``LIMONE_DEMO_AI_CACHE_TTL`` [``10``]: seconds an AI answer stays cached (below 1: no
  cache); short, so the demo keeps calling its AI API and the latency scenarios show.
- ``LIMONE_DEMO_ADMIN_TOKEN`` [unset]: when set, ``/admin/faults`` answers any client
  that sends ``Authorization: Bearer <token>`` and refuses every other request (401).
  Unset, it answers direct loopback clients only and refuses requests carrying
  ``Forwarded``/``X-Forwarded-*``/``X-Real-IP`` (a reverse proxy on the same host would
  make every client look local).
- ``LIMONE_DEMO_LOG_LEVEL`` [``"info"``]: level of the JSON log lines
  (:func:`limone_obs.logging.configure_logging`; one access line per request from
  :func:`limone_obs.logging.init_app`).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, request
from prometheus_client import CollectorRegistry

from limone_obs import conventions as c
from limone_obs.demo import db, faults, routes
from limone_obs.errors import ConfigError
from limone_obs.exporter import Metrics, RedisCache, Track
from limone_obs.logging import configure_logging, get_logger, init_app

STATE_KEY = "limone_demo"
P = ParamSpec("P")
R = TypeVar("R")
log = get_logger(__name__)
_ENV_KEYS = (
    "LIMONE_DEMO_DATA_DIR",
    "LIMONE_DEMO_AI_LATENCY",
    "LIMONE_DEMO_CACHE_TTL",
    "LIMONE_DEMO_AI_CACHE_TTL",
    "LIMONE_DEMO_LOG_LEVEL",
    c.DEMO_REDIS_URL_ENV,
    c.DEMO_ADMIN_TOKEN_ENV,
)


@dataclass(frozen=True)
class Settings:
    """The demo's validated settings (see the module docstring)."""

    data_dir: Path
    ai_latency: tuple[float, float]
    cache_ttl: float
    log_level: str
    admin_token: str | None = None
    redis_url: str | None = None
    ai_cache_ttl: float = 10.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Validate the ``LIMONE_DEMO_*`` keys; raise ConfigError naming a bad one."""
        data_dir = config.get("LIMONE_DEMO_DATA_DIR") or tempfile.mkdtemp(prefix="limone-demo-")
        return cls(
            data_dir=Path(data_dir),
            ai_latency=parse_latency_range(config.get("LIMONE_DEMO_AI_LATENCY", "1.5-2.0")),
            cache_ttl=_seconds(config.get("LIMONE_DEMO_CACHE_TTL", 30), "LIMONE_DEMO_CACHE_TTL"),
            log_level=str(config.get("LIMONE_DEMO_LOG_LEVEL", "info")),
            admin_token=str(config.get(c.DEMO_ADMIN_TOKEN_ENV) or "") or None,
            redis_url=str(config.get(c.DEMO_REDIS_URL_ENV) or "") or None,
            ai_cache_ttl=_seconds(
                config.get("LIMONE_DEMO_AI_CACHE_TTL", 10), "LIMONE_DEMO_AI_CACHE_TTL"
            ),
        )


def _seconds(value: Any, name: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r}: not a number of seconds") from None
    if not 0 <= seconds <= 3600:
        raise ConfigError(f"{name}={value!r}: use seconds from 0 to 3600")
    return seconds


def parse_latency_range(value: Any) -> tuple[float, float]:
    """``"1.5-2.0"``, ``"0.5"`` or ``(1.5, 2.0)`` as (min, max) seconds; ConfigError if bad."""
    name = "LIMONE_DEMO_AI_LATENCY"
    parts = value.split("-") if isinstance(value, str) else list(value)
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        raise ConfigError(f"{name}={value!r}: use 'min-max' seconds, e.g. '1.5-2.0'")
    low, high = (_seconds(p, name) for p in parts)
    if low > high:
        raise ConfigError(f"{name}={value!r}: min is above max")
    return low, high


class _FaultyRedis:
    """The Redis client seen by the cache: adds the latency fault's ``redis`` delay."""

    def __init__(self, client: Any, store: faults.FaultStore) -> None:
        self._client = client
        self._faults = store

    def _delay(self) -> None:
        extra = self._faults.current().latency.get(c.DEPENDENCY_REDIS, 0.0)
        if extra:
            time.sleep(extra)

    def get(self, key: str) -> Any:
        self._delay()
        return self._client.get(key)

    def set(self, key: str, value: str, ex: Any = None) -> Any:
        self._delay()
        return self._client.set(key, value, ex=ex)


def _redis_cache(
    settings: Settings, metrics: Metrics, store: faults.FaultStore
) -> RedisCache | None:
    """The demo's RedisCache, or None (logged) when no Redis is configured."""
    if settings.redis_url is None:
        log.warning(
            f"{c.DEMO_REDIS_URL_ENV} is not set: the demo runs without a cache (languages "
            "and AI answers are computed on every request); `limone-obs up` starts a Redis"
        )
        return None
    cache = RedisCache.from_url(settings.redis_url, metrics, prefix="limone-demo:")
    client: Any = cache.client  # the redis.Redis that from_url made
    try:
        client.ping()
    except Exception as exc:  # the demo starts anyway: every lookup counts as an error
        log.warning(
            "Redis does not answer: the demo calls through and counts cache errors until it does",
            redis_url=_without_password(settings.redis_url),
            error=f"{type(exc).__name__}: {exc}",
        )
    cache.client = _FaultyRedis(client, store)
    return cache


def _without_password(url: str) -> str:
    """``url`` with any user and password replaced by ``***`` (for log lines)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


class DemoState:
    """Per-app state in ``app.extensions["limone_demo"]``: settings, metrics, faults, cache."""

    #: Set by :func:`limone_obs.demo.routes.register`: the lookups, cached when possible.
    language_settings: Callable[[str], dict[str, Any] | None]
    ai_answer: Callable[[str, str], dict[str, Any]]

    def __init__(self, settings: Settings, metrics: Metrics, store: faults.FaultStore) -> None:
        self.settings = settings
        self.metrics = metrics
        self.faults = store
        #: The Redis cache, or None when the demo runs without one.
        self.cache: RedisCache | None = _redis_cache(settings, metrics, store)
        self.random = random.Random()
        self.db_path = settings.data_dir / "demo.sqlite3"

    def cached(self, func: Callable[P, R], name: str, ttl: float) -> Callable[P, R]:
        """``func`` cached in Redis as cache ``name`` for ``ttl`` s; ``func`` itself when
        there is no Redis or ``ttl`` is below one second."""
        if self.cache is None or ttl < 1:
            return func
        return self.cache.cache_result(expire_time=int(ttl), name=name)(func)

    @contextmanager
    def dependency(self, name: str, operation: str) -> Iterator[Track]:
        """Time a call to dependency ``name``, adding the latency fault's delay if set."""
        with self.metrics.track(name, operation) as call:
            extra = self.faults.current().latency.get(name, 0.0)
            if extra:
                time.sleep(extra)
            yield call

    def ai_latency(self) -> float:
        """Seconds the next simulated AI call takes."""
        return self.random.uniform(*self.settings.ai_latency)


def create_app(
    config: Mapping[str, Any] | None = None,
    *,
    registry: CollectorRegistry | None = None,
    log_stream: IO[Any] | None = None,
) -> Flask:
    """Build the demo app; ``config`` overrides the environment's ``LIMONE_DEMO_*`` values.

    ``registry`` is passed to :class:`limone_obs.Metrics` (tests give a fresh one); JSON
    log lines go to ``log_stream`` (stdout by default; service and env names come from
    ``LIMONE_OBS_SERVICE`` / ``LIMONE_OBS_ENV``). Raises ConfigError on an invalid
    setting or fault switch.
    """
    app = Flask(__name__)
    app.config.update({k: os.environ[k] for k in _ENV_KEYS if k in os.environ})
    app.config.update(config or {})
    settings = Settings.from_config(app.config)
    configure_logging(level=settings.log_level, stream=log_stream)
    metrics = Metrics(app, registry=registry, version=_version())
    # The demo's users are anonymous; a client may say who it is with X-User-ID.
    init_app(app, user_id=lambda: request.headers.get(c.DEMO_USER_HEADER))
    store = faults.FaultStore(settings.data_dir / "faults.json", faults.from_env(os.environ))
    state = DemoState(settings, metrics, store)
    db.seed(state.db_path)
    app.extensions[STATE_KEY] = state
    routes.register(app, state)
    return app


def _version() -> str:
    try:
        return version("limone-obs")
    except PackageNotFoundError:
        return "unknown"
