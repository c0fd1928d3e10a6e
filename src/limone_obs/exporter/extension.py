"""The Flask extension :class:`Metrics`."""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

from flask import Flask
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)

from limone_obs import conventions as c
from limone_obs import lifecycle
from limone_obs._config import flag, read_values, warn_changed, warn_unread_environment
from limone_obs.errors import ConfigError
from limone_obs.exporter import (
    _failsafe,
    exposition,
    health_series,
    multiprocess,
    name_clash,
    other_readers,
    process,
    rum,
    templates,
    workers,
)
from limone_obs.exporter import fast_path as _fast_path
from limone_obs.exporter._instruments import Instruments
from limone_obs.exporter._recorder import RequestRecorder
from limone_obs.exporter.tracking import Track, TrackLabels
from limone_obs.lifecycle import add_call

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

EXTENSION_KEY = "limone_obs"
_logger = logging.getLogger("limone_obs")
#: track()'s operation when none was given (a bare ``@metrics.track``): refused.
_NO_OPERATION = "\x00no operation"


@dataclass
class AppState:
    """Per-app state kept in ``app.extensions["limone_obs"]``."""

    metrics: Metrics
    recorder: RequestRecorder
    metrics_server: WSGIServer | None


class Metrics:
    """Prometheus metrics for a Flask app: requests, latency, in-flight, exceptions, dependencies.

    ``Metrics(app)`` or ``metrics = Metrics(); metrics.init_app(app)`` in an app factory.
    Series live in ``registry`` (a new private :class:`CollectorRegistry` by default, never
    the global one). Under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set, the metrics path
    serves every worker's samples; read them through :meth:`exposition_registry` then (the
    request series are written straight to the worker's files, and their in-process copies
    in ``registry`` are not kept current).

    Flask config keys read by :meth:`init_app` (defaults in brackets):

    - ``LIMONE_OBS_METRICS_PATH`` [``"/metrics"``]: path served by the app; ``None`` turns
      it off (e.g. when only the separate port should answer).
    - ``LIMONE_OBS_METRICS_PORT`` [``None``]: also serve metrics on this port, from a
      daemon thread (single-process servers; ConfigError in multiprocess mode, where the
      path serves every worker, and when the port is taken).
    - ``LIMONE_OBS_METRICS_ADDR`` [``"127.0.0.1"``]: address for the separate port.
    - ``LIMONE_OBS_METRICS_TOKEN`` [the environment variable of that name, else
      ``None``]: require ``Authorization: Bearer <token>``; set but empty is a
      ConfigError (not an open metrics path).
    - ``LIMONE_OBS_EXCLUDED_PATHS`` [``()``]: exact paths not recorded (the metrics path
      never is).
    - ``LIMONE_OBS_EXEMPLARS`` [``True``]: attach a ``trace_id`` exemplar from the W3C
      ``traceparent`` header to duration observations (ignored in multiprocess mode).
    - ``LIMONE_OBS_TEMPLATE_TIMING`` [``True``]: time Jinja rendering as dependency
      ``template``.
    - ``LIMONE_OBS_VERSION`` / ``LIMONE_OBS_REVISION`` [``version`` / ``revision``
      arguments]: labels of the build-info series.

    On/off keys take a bool, 0/1 or the text true/false, yes/no, on/off
    (:func:`limone_obs._config.flag`); anything else is a ConfigError.

    Request series are updated through prometheus-client's internals (and, under gunicorn,
    read by a flat collector that compacts dead workers' files) only on the releases
    that path was tested with, and unless ``LIMONE_OBS_FAST_PATH=0``; otherwise through
    its public API and ``MultiProcessCollector``, with one warning line. The counts are the
    same either way (:mod:`limone_obs.exporter.fast_path`).

    ``process_metrics``: add prometheus-client's process, platform and GC collectors to
    the registry; by default only when the registry is our own (``registry=None``), and
    never in multiprocess mode. Both bucket lists must contain every SLO latency
    threshold (0.6 s and 1 s), or ConfigError.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        namespace: str = c.DEFAULT_NAMESPACE,
        registry: CollectorRegistry | None = None,
        buckets: Sequence[float] = c.DEFAULT_BUCKETS,
        dependency_buckets: Sequence[float] = c.DEFAULT_DEPENDENCY_BUCKETS,
        version: str = "unknown",
        revision: str = "unknown",
        process_metrics: bool | None = None,
    ) -> None:
        try:
            self.names = c.MetricNames(namespace)
        except ValueError as exc:
            raise ConfigError(f"Metrics(namespace=...): {exc}") from None
        _check_buckets(buckets, "buckets")
        _check_buckets(dependency_buckets, "dependency_buckets")
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._mp_dir = multiprocess.multiprocess_dir()
        if process_metrics is None:
            # Default: only on our own registry (a passed one, e.g. the global registry,
            # may hold them already and would reject duplicates).
            process_metrics = registry is None
        if process_metrics and self._mp_dir is None:
            # Process, platform and GC metrics describe one process: meaningless when the
            # scrape merges many workers, so they are only added in single-process mode.
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        #: Why the public API is used, logged by init_app (fast_path.public_reason).
        self._public_reason = _fast_path.public_reason()
        #: The bounded label values of track() calls.
        self._track_labels = TrackLabels(_logger.warning)
        updaters = _fast_path.PUBLIC if self._public_reason else _fast_path.FAST
        try:
            self._instruments = Instruments(
                self.names, self.registry, buckets, dependency_buckets, updaters
            )
            health_series.attach(
                self.names.namespace, self.registry, self._mp_dir, multiprocess.check_at_scrape
            )
        except ValueError as exc:  # prometheus-client's "Duplicated timeseries in ..."
            raise _duplicate_error(self.names.namespace, self.registry, exc) from exc
        _REGISTERED.setdefault(self.registry, set()).add(self.names.namespace)
        self._version = version
        self._revision = revision
        self._exposition: CollectorRegistry | None = None
        #: True while recorded series may be unread: our own registry (nobody else was
        #: given it), one process, and no app yet (see _recorded_unserved).
        self.unserved = registry is None and self._mp_dir is None
        self._unserved_said = False
        self._default_registry_checked = False
        if app is not None:
            self.init_app(app)

    @property
    def multiprocess(self) -> bool:
        """True when samples are shared between processes (``PROMETHEUS_MULTIPROC_DIR``)."""
        return self._mp_dir is not None

    def exposition_registry(self) -> CollectorRegistry:
        """Return the registry a scrape renders: ours, or every worker's in multiprocess mode."""
        if self._mp_dir is None:
            return self.registry
        if self._exposition is None:
            # Before the files are read, this worker publishes its slots (so the scrape's
            # worker_threads and idle agree) and dead workers' live gauges go.
            self._exposition = multiprocess.exposition_registry(
                self._mp_dir,
                self.fast_path,
                self.names.namespace,
                before=workers.publish_slots,
                retire_dead=True,
                own=self._own_series,
            )
        return self._exposition

    def _own_series(self) -> name_clash.OwnSeries:
        """The kit's series of this namespace as the multiprocess files store them, and
        the workers gauge computed at scrape time: what a scrape tells other metrics of
        the same names apart by."""
        described = list(self._instruments.described())
        rum_instruments = rum.instruments_of(self)
        if rum_instruments is not None:
            described += rum_instruments.described()
        files = [name_clash.family_of(metric, labels) for metric, labels in described]
        files += health_series.families(self.names.namespace) + workers.families(self.names)
        # Every namespace's workers family: a multiprocess scrape computes them all.
        computed = [names.workers for names in workers.namespaces(self.names)]
        return name_clash.OwnSeries.of(self.names.namespace, files, computed)

    def _scraped_registry(self) -> CollectorRegistry:
        """:meth:`exposition_registry`, for the metrics path; the first scrape of a single
        process also says which default-registry metrics it does not serve."""
        if not self._default_registry_checked:
            self._default_registry_checked = True
            if self._mp_dir is None and self.registry is not REGISTRY:
                _warn_unserved_default_metrics(self._own_series())
        return self.exposition_registry()

    @property
    def fast_path(self) -> bool:
        """True when requests are recorded (and scrapes read) through the fast path."""
        return self._instruments.updaters.fast

    def init_app(self, app: Flask) -> None:
        """Instrument ``app``: join its request lifecycle, serve the metrics path, time templates.

        Raises ConfigError if ``app`` is already instrumented or a setting is invalid.
        """
        if EXTENSION_KEY in app.extensions:
            raise ConfigError(
                f"Metrics is already initialised on Flask app {app.name!r}: instrument "
                "each app once, with Metrics(app) or metrics.init_app(app) (an app "
                "factory creates a new app each time, that is fine)"
            )
        warn_unread_environment(app.config, FLASK_KEYS, app.name, "Metrics(app)")
        settings = _Settings.from_config(app, self._version, self._revision)
        metrics_app = exposition.MetricsApp(self._scraped_registry, settings.token)
        # The port first: one that cannot be had leaves the app as it was.
        server = self._serve_port(settings, metrics_app)
        try:
            recorder = self._instrument(app, settings, metrics_app)
        except BaseException:
            if server is not None:
                server.shutdown()
                server.server_close()
            raise
        app.extensions[EXTENSION_KEY] = AppState(self, recorder, server)
        self.unserved = False
        # Several worker processes without shared storage: say so, at start-up if it
        # can be told now, else on the first request (wsgi.multiprocess, the recorder).
        multiprocess.check_server(self.multiprocess)

    def _instrument(
        self, app: Flask, settings: _Settings, metrics_app: exposition.MetricsApp
    ) -> RequestRecorder:
        """init_app's changes to ``app``: the lifecycle, RUM, templates, build info."""
        if self._public_reason is not None:
            _fast_path.warn_once(self._public_reason)
        # User experience (limone_obs.exporter.rum/workers/process): beacon paths stay out
        # of the request series; worker and process collectors join the scrape.
        rum_paths = rum.init_app(app, self)
        workers.register(self)
        process.register(self)
        recorder = self._join_lifecycle(app, settings, metrics_app, rum_paths)
        if settings.template_timing:
            self._time_templates(app)
        self._instruments.set_build_info(settings.version, settings.revision)
        return recorder

    def _serve_port(
        self, settings: _Settings, metrics_app: exposition.MetricsApp
    ) -> WSGIServer | None:
        """The server of ``LIMONE_OBS_METRICS_PORT``, listening; None when it is unset.

        ConfigError in multiprocess mode (every worker would try to listen on it) and
        when the port cannot be had (in use: often a second worker process)."""
        port = settings.port
        if port is None:
            return None
        key = f"LIMONE_OBS_METRICS_PORT={port}"
        instead = (
            f"the metrics path {settings.path} on the app's own port"
            if settings.path
            else "a metrics path on the app's own port (LIMONE_OBS_METRICS_PATH)"
        )
        if self._mp_dir is not None:
            raise ConfigError(
                f"{key}: a port of its own is for a single-process server; in multiprocess "
                "mode (PROMETHEUS_MULTIPROC_DIR is set: gunicorn, uWSGI) every worker would "
                f"listen on it. Leave it None and scrape {instead}: any worker serves "
                "every worker's samples there"
            )
        try:
            return exposition.serve(metrics_app, port, settings.addr)
        except OSError as exc:
            raise ConfigError(
                f"{key}: cannot listen on {settings.addr}:{port} ({exc.strerror or exc}). "
                f"Choose a free port, or leave it None and scrape {instead}; under a "
                "server of several worker processes only one could listen on it"
            ) from exc

    def _join_lifecycle(
        self,
        app: Flask,
        settings: _Settings,
        metrics_app: exposition.MetricsApp,
        rum_paths: frozenset[str],
    ) -> RequestRecorder:
        """Add the request recorder to ``app``'s lifecycle and mount the metrics path.

        ``rum_paths`` (the beacon and its script) are not recorded, like the excluded paths.
        """
        excluded = settings.excluded | rum_paths
        # First requests: a worker publishes its slots and looks for an earlier server's
        # files; a single process checks its server.
        first = (
            partial(_first_worker_request, self.names.worker_threads)
            if self.multiprocess
            else multiprocess.check_environ
        )
        # Every key has been read by now (settings, RUM): one set or changed later is
        # said at the app's first request, not ignored without a word. SECRET_KEY too
        # where it signs the RUM page tokens (no LIMONE_OBS_RUM_KEY of their own).
        cfg = app.config
        signs = cfg.get("LIMONE_OBS_RUM") and not cfg.get("LIMONE_OBS_RUM_KEY")
        read = read_values(
            cfg, (*FLASK_KEYS, "LIMONE_OBS_METRICS_TOKEN", *(("SECRET_KEY",) if signs else ()))
        )
        # The kit answers these paths itself: a route of the app there is never served.
        kits = dict.fromkeys(rum_paths, "LIMONE_OBS_RUM_PATH")
        if settings.path is not None:
            kits[settings.path] = "LIMONE_OBS_METRICS_PATH"
        recorder = RequestRecorder(
            self._instruments,
            excluded=excluded,
            exemplars=settings.exemplars and not self.multiprocess,
            queue=self._instruments.queue,
            first_request=_checking_config(first, app, read, kits),
        )
        life = lifecycle.install(app)
        if settings.path is not None:
            life.mount(settings.path, metrics_app)
        life.add(recorder, excluded)
        return recorder

    def _time_templates(self, app: Flask) -> None:
        templates.install(app, self._template_rendered)

    def _template_rendered(
        self, name: str | None, elapsed: float, failed: bool, span: bool = True
    ) -> None:
        """One render of template ``name``: a call of the ``template`` dependency."""
        try:
            outcome = c.OUTCOME_ERROR if failed else c.OUTCOME_OK
            labels = (c.DEPENDENCY_TEMPLATE, name or "<string>", outcome)
            self._instruments.dependency.labels(*labels).observe(elapsed)
            add_call(c.DEPENDENCY_TEMPLATE, elapsed, span)
        except Exception as exc:  # metrics must never fail a rendered page
            _failsafe.report("template timing", exc)

    def track(self, dependency: str, operation: str = _NO_OPERATION) -> Track:
        """Time a dependency call: ``with metrics.track("ai_api", "complete"):`` or as decorator.

        The outcome is ``error`` when the block or function raises (or :meth:`Track.fail`
        was called), else ``ok``. Keep ``dependency`` and ``operation`` to a fixed set of
        names: every distinct value is a new series (bounded: see :class:`TrackLabels`).
        Raises TypeError without an operation (a bare ``@metrics.track``).
        """
        if operation is _NO_OPERATION:
            bare = callable(dependency) and not isinstance(dependency, str)
            raise TypeError(
                "metrics.track() takes a dependency and an operation name: "
                '@metrics.track("ai_api", "complete")'
                + (", not a bare @metrics.track" if bare else f", not only {dependency!r}")
            )
        dependency, operation = self._track_labels.admit(dependency, operation)
        return Track(self._instruments.dependency, dependency, operation, self)

    def recorded_unserved(self, what: str) -> None:
        """Say once that ``what`` was recorded where no scrape reads it (no app yet).

        Called by the recording methods while :attr:`unserved` is True: ``Metrics()`` in
        an extension module whose ``init_app(app)`` was never called would otherwise
        leave every dependency panel empty without a word.
        """
        if self._unserved_said or not self.unserved:
            return
        self._unserved_said = True
        _logger.warning(
            "limone-obs: %s was recorded by a Metrics object that has no app yet: no "
            "metrics path serves its series until metrics.init_app(app) is called (in "
            "your app factory; or pass registry= a registry you expose yourself).",
            what,
        )

    def cache_hit(self, cache: str) -> None:
        """Count a hit of the named cache."""
        self.cache_result(cache, hit=True)

    def cache_miss(self, cache: str) -> None:
        """Count a miss of the named cache."""
        self.cache_result(cache, hit=False)

    def cache_error(self, cache: str) -> None:
        """Count a lookup of the named cache that got no answer (down, slow, failing)."""
        try:
            if self.unserved:
                self.recorded_unserved(f"cache_error({cache!r})")
            self._instruments.cache.labels(cache, c.CACHE_ERROR).inc()
        except Exception as exc:  # metrics must never fail the caller's lookup
            _failsafe.report("cache counting", exc)

    def cache_result(self, cache: str, hit: bool) -> None:
        """Count a lookup of the named cache as a hit or a miss (never raises)."""
        try:
            if self.unserved:
                self.recorded_unserved(f"cache_result({cache!r})")
            self._instruments.cache.labels(cache, c.CACHE_HIT if hit else c.CACHE_MISS).inc()
        except Exception as exc:  # metrics must never fail the caller's lookup
            _failsafe.report("cache counting", exc)


#: The namespaces a Metrics registered its series under, per registry: a second Metrics
#: on the same registry and namespace is told apart from an app metric of the same name.
_REGISTERED: weakref.WeakKeyDictionary[CollectorRegistry, set[str]] = weakref.WeakKeyDictionary()


def _duplicate_error(namespace: str, registry: CollectorRegistry, exc: ValueError) -> ConfigError:
    """The ConfigError for prometheus-client's "Duplicated timeseries" on ``registry``."""
    if namespace in _REGISTERED.get(registry, ()):
        return ConfigError(
            f"Metrics(namespace={namespace!r}, registry=...): a Metrics of this namespace "
            "already registered its series on this registry (an app factory creating "
            "Metrics(app, registry=...) for every app, as a test suite does). Create "
            "Metrics once, at import (metrics = Metrics(registry=...)), and call "
            "metrics.init_app(app) in the factory; or leave registry unset: each Metrics "
            "then has a registry of its own"
        )
    return ConfigError(
        f"Metrics(namespace={namespace!r}): the registry already holds a metric named like "
        f"one of the kit's series ({exc}): rename that metric, or give Metrics another "
        "namespace"
    )


def _check_buckets(buckets: Sequence[float], field: str) -> None:
    """Buckets must be strictly increasing (a ConfigError). Without the kit's default
    latency targets (0.6 s, 1 s) one warning line says what reads them: a service's own
    SLO thresholds are its spec's, which ``limone-obs check`` holds against its
    ``buckets:`` (a team with thresholds of its own was refused at start)."""
    values = list(buckets)
    if not values or values != sorted(values) or len(set(values)) != len(values):
        raise ConfigError(f"Metrics({field}=...): {values!r} must be strictly increasing")
    missing = [t for t in c.SLO_LATENCY_THRESHOLDS if t not in values]
    if missing:
        _logger.warning(
            "Metrics(%s=...): %r lacks the kit's default latency targets %r: the "
            "dashboards and the report read them for a spec without a latency SLO of its "
            "own, and would count between buckets; an SLO's thresholds must be bucket "
            "boundaries too (list the buckets under `buckets:` in the spec: limone-obs "
            "check verifies them)",
            field, values, missing,
        )  # fmt: skip


#: The exporter's Flask config keys (``LIMONE_OBS_METRICS_TOKEN`` is also read from the
#: environment; these are not).
FLASK_KEYS = (
    "LIMONE_OBS_METRICS_PATH", "LIMONE_OBS_METRICS_PORT", "LIMONE_OBS_METRICS_ADDR",
    "LIMONE_OBS_EXCLUDED_PATHS", "LIMONE_OBS_EXEMPLARS", "LIMONE_OBS_TEMPLATE_TIMING",
    "LIMONE_OBS_VERSION", "LIMONE_OBS_REVISION", "LIMONE_OBS_RUM", "LIMONE_OBS_RUM_PATH",
    "LIMONE_OBS_RUM_MARKS", "LIMONE_OBS_RUM_KEY", "LIMONE_OBS_RUM_MAX_AGE",
    "LIMONE_OBS_RUM_RATE",
)  # fmt: skip


@dataclass(frozen=True)
class _Settings:
    path: str | None
    port: int | None
    addr: str
    token: str | None
    excluded: frozenset[str]
    exemplars: bool
    template_timing: bool
    version: str
    revision: str

    @classmethod
    def from_config(cls, app: Flask, version: str, revision: str) -> _Settings:
        cfg = app.config
        path = cfg.setdefault("LIMONE_OBS_METRICS_PATH", "/metrics")
        if path is not None and (not isinstance(path, str) or not path.startswith("/")):
            raise ConfigError(
                f"LIMONE_OBS_METRICS_PATH={path!r}: use a path starting with '/' or None"
            )
        port = cfg.setdefault("LIMONE_OBS_METRICS_PORT", None)
        if port is not None and (not isinstance(port, int) or not 0 <= port <= 65535):
            raise ConfigError(f"LIMONE_OBS_METRICS_PORT={port!r}: use an int 0-65535 or None")
        excluded = cfg.setdefault("LIMONE_OBS_EXCLUDED_PATHS", ())
        return cls(
            path=path,
            port=port,
            addr=cfg.setdefault("LIMONE_OBS_METRICS_ADDR", "127.0.0.1"),
            token=_token(cfg),
            excluded=_excluded_paths(excluded, path),
            exemplars=flag(cfg, "LIMONE_OBS_EXEMPLARS", True),
            template_timing=flag(cfg, "LIMONE_OBS_TEMPLATE_TIMING", True),
            version=str(cfg.setdefault("LIMONE_OBS_VERSION", version)),
            revision=str(cfg.setdefault("LIMONE_OBS_REVISION", revision)),
        )


def _token(cfg: MutableMapping[str, Any]) -> str | None:
    """``LIMONE_OBS_METRICS_TOKEN`` (else the environment variable of that name), without
    surrounding whitespace: None when neither is set. Set but empty is a ConfigError, not
    an open metrics path: a secret that failed to mount must not turn authentication off
    without a word. Stripped because a secret file usually ends with a newline, which
    Prometheus trims from its ``credentials_file`` (and no header value can carry it):
    kept, every scrape would be refused."""
    key = "LIMONE_OBS_METRICS_TOKEN"
    where = "in the app's config"
    if key not in cfg:
        where = "in the environment"
        cfg[key] = os.environ.get(c.ENV_METRICS_TOKEN)
    token = cfg[key]
    if token is None:
        return None
    if not isinstance(token, str):
        # The type only: the value may be the secret itself (bytes read from a file).
        raise ConfigError(
            f"{key} ({where}) is a {type(token).__name__}: set it to a string (decode "
            "bytes read from a secret file), or leave it unset to serve the metrics path "
            "without a token"
        )
    if not token.strip():
        raise ConfigError(
            f"{key}={token!r} ({where}): set a token (scrapes then send Authorization: "
            "Bearer <token>), or leave it unset to serve the metrics path without one; "
            "an empty token would leave it open"
        )
    return token.strip()


def _excluded_paths(paths: Iterable[str] | str, metrics_path: str | None) -> frozenset[str]:
    if isinstance(paths, str):
        raise ConfigError(
            f"LIMONE_OBS_EXCLUDED_PATHS={paths!r}: use a list of paths, not one string"
        )
    excluded = set(paths)
    if metrics_path is not None:
        excluded.add(metrics_path)
    return frozenset(excluded)


def metrics_for(app: Flask) -> Metrics:
    """Return the :class:`Metrics` that instruments ``app``; raise ConfigError if none does."""
    state = app.extensions.get(EXTENSION_KEY)
    if state is None:
        raise ConfigError(f"Flask app {app.name!r} is not instrumented: call Metrics(app)")
    metrics: Metrics = state.metrics
    return metrics


def _checking_config(
    first: Callable[[WSGIEnvironment], bool],
    app: Flask,
    read: dict[str, Any],
    kits: dict[str, str],
) -> Callable[[WSGIEnvironment], bool]:
    """``first``, with the app's config compared once against what init_app ``read``
    (:func:`warn_changed`) and its routes against the paths the kit answers (``kits``:
    path -> the setting that moves it) at the first request this process serves."""
    unchecked = [True]

    def check(environ: WSGIEnvironment) -> bool:
        if unchecked:
            unchecked.clear()
            warn_changed(app.config, read, app.name, "Metrics(app) or metrics.init_app(app)")
            _warn_shadowed_routes(app, kits)
        return first(environ)

    return check


def _warn_shadowed_routes(app: Flask, kits: dict[str, str]) -> None:
    """One warning line per route of ``app`` on a path the kit answers (``kits``: path ->
    the setting that moves it). A route on the metrics path is never served, whether it
    was registered before ``init_app`` or after (a blueprint's ``/metrics``): the kit
    serves that path ahead of Flask. A route on a RUM path is matched by Flask like the
    kit's own (:func:`_rum_collision` says which one answers)."""
    for rule in app.url_map.iter_rules():
        setting = kits.get(rule.rule)
        if setting is None or rule.endpoint.startswith(f"{rum.BLUEPRINT}."):
            continue
        if setting == "LIMONE_OBS_METRICS_PATH":
            what = "is never served: limone-obs answers that path itself (its metrics)"
        else:
            what = _rum_collision(app, rule.rule)
        _logger.warning(
            "limone-obs: Flask app %r: its route %s (endpoint %r) %s. Move the kit's path "
            "with %s, or the route.",
            app.name,
            rule.rule,
            rule.endpoint,
            what,
            setting,
        )


def _rum_collision(app: Flask, path: str) -> str:
    """What becomes of the requests to ``path``, a RUM path an app route also has: the
    route answers the kit's method there (then the kit's beacon or script there is never
    reached), or only its other methods; either way the path's requests are left out of
    the request series and the access log (the path is the kit's)."""
    prefix = f"{rum.BLUEPRINT}."
    kits = [r for r in app.url_map.iter_rules() if r.rule == path and r.endpoint.startswith(prefix)]
    method = min((kits[0].methods or {"GET"}) - {"HEAD", "OPTIONS"}) if kits else "GET"
    part = "script" if kits and kits[0].endpoint == f"{prefix}script" else "beacon"
    try:
        answering = app.url_map.bind("localhost").match(path, method=method)[0]
    except Exception:  # host matching, a redirect: cannot tell here
        answering = None
    if not isinstance(answering, str):
        return (
            f"shares the path of limone-obs's real-user timing ({method} {path}): one of "
            "them answers there, and requests to that path are left out of the request "
            "series and the access log"
        )
    if not answering.startswith(prefix):
        return (
            f"answers {method} {path} in place of limone-obs's real-user timing (its "
            f"{part}): no page timing is recorded, and the route's own requests there are "
            "left out of the request series and the access log"
        )
    return (
        f"shares the path of limone-obs's real-user timing, which answers {method} there: "
        "the route's other requests are served, but left out of the request series and "
        "the access log"
    )


def _first_worker_request(marker: str, environ: WSGIEnvironment) -> bool:
    """The recorder's first-request check in multiprocess mode (see workers.first_request):
    once this process is known to be a worker, it also looks for an earlier server's
    files, and under the kit's gunicorn config for another server of its master serving
    the directory (``marker``: a series name every worker writes, see other_readers)."""
    if not workers.first_request(environ):
        return False  # a server's master: its workers will ask
    path = multiprocess.multiprocess_dir()
    if path is not None and workers.known_slots() is not None:  # a worker, slots published
        # This server's start: its master's (gunicorn's or uWSGI's), this worker's parent.
        multiprocess.check_leftovers(path, process.started(os.getppid()))
        multiprocess.check_retiring(path)
        listeners = workers.gunicorn_listeners()
        if listeners is not None and multiprocess.compacting():
            other_readers.check(listeners, marker)
    return True


#: Families prometheus-client's default registry holds by itself (process, GC, platform).
_STOCK_FAMILIES = ("process_", "python_gc_", "python_info")


def _warn_unserved_default_metrics(own: name_clash.OwnSeries) -> None:
    """One warning line naming the app's own metrics on prometheus-client's default
    registry, which the metrics path of a single process does not serve (a team moving
    from prometheus-flask-exporter would otherwise see them vanish without a word), and
    those of them named like the kit's series (``own``), which it could not serve."""
    try:
        families = [f for f in REGISTRY.collect() if not f.name.startswith(_STOCK_FAMILIES)]
    except Exception:  # an app's own collector failing: its scrape would say so
        return
    names = sorted({_exposed(f.name, f.type) for f in families})
    if not names:
        return
    clashing = sorted(
        {_exposed(f.name, f.type) for f in families if f.name in own.families}
        | {name for name in names if name in own.sample_names}
    )
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    advice = (
        f"; first rename {', '.join(clashing)}, named like the kit's series" if clashing else ""
    )
    _logger.warning(
        "limone-obs: prometheus-client's default registry holds metrics the metrics path "
        "does not serve (%s): in one process Metrics serves its own registry; pass "
        "Metrics(app, registry=prometheus_client.REGISTRY) to serve them too%s (under "
        "gunicorn with the kit's config they are served from the multiprocess directory, "
        "but for those named like the kit's series)",
        shown,
        advice,
    )


def _exposed(name: str, kind: str) -> str:
    """The name a family's samples are written under (a counter's with ``_total``)."""
    return f"{name}_total" if kind == "counter" else name
