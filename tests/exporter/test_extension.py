"""The Flask extension: series, labels, grouping, exceptions, streaming, settings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Blueprint, Flask, Response, render_template_string, send_file
from prometheus_client import CollectorRegistry, Counter
from werkzeug.test import EnvironBuilder

from limone_obs import ConfigError, Metrics, metrics_for
from limone_obs import conventions as c
from limone_obs.exporter import _failsafe, extension
from limone_obs.logging import init_app as log_init_app
from tests.exporter.helpers import (
    STREAM_CHUNKS,
    STREAM_PAUSE,
    BoomError,
    label_values,
    make_app,
    samples,
    value,
)

N = c.MetricNames()


def test_every_series_has_exactly_the_architecture_labels() -> None:
    """After traffic, each of the seven series exists with the labels of the table."""
    app, metrics = make_app()
    client = app.test_client()
    client.get("/projects/1", buffered=True)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client.get("/boom", buffered=True)
    with metrics.track("db", "select"):
        pass
    metrics.cache_hit("projects")
    expected = {
        N.requests_total: set(c.REQUESTS_LABELS),
        N.request_duration_count: set(c.DURATION_LABELS),
        N.requests_in_progress: set(c.IN_PROGRESS_LABELS),
        N.request_exceptions_total: set(c.EXCEPTIONS_LABELS),
        N.dependency_duration_count: set(c.DEPENDENCY_LABELS),
        N.cache_requests_total: set(c.CACHE_LABELS),
        N.build_info: set(c.BUILD_INFO_LABELS),
    }
    found: dict[str, set[str]] = {}
    for name, labels in samples(metrics):
        if name in expected:
            found.setdefault(name, set()).update(k for k, _ in labels)
    assert expected == found


def test_endpoint_label_is_the_url_rule_not_the_path() -> None:
    """Two project ids share one series labelled with the rule."""
    app, metrics = make_app()
    client = app.test_client()
    for pid in (1, 2, 3):
        client.get(f"/projects/{pid}", buffered=True)
    assert {"/projects/<int:project_id>"} == label_values(metrics, N.requests_total, "endpoint")
    labels = {"method": "GET", "endpoint": "/projects/<int:project_id>", "status": "200"}
    assert value(metrics, N.requests_total, labels) == 3


@pytest.mark.parametrize("with_logging", [False, True])
def test_only_wsgi_app_is_set_on_the_app_instance(with_logging: bool) -> None:
    """Flask's public API only: init_app sets ``wsgi_app``, ``request_class`` (a subclass
    of the app's own, the routing hook) and ``jinja_environment`` (a subclass of the app's
    own: the RUM global and template timing), replaces nothing else, and does not create
    the Jinja environment (options the app sets afterwards must still apply)."""
    app = Flask("instance_check")
    before = dict(vars(app))
    Metrics(app, registry=CollectorRegistry())
    if with_logging:
        log_init_app(app)
    after = vars(app)
    assert {"wsgi_app", "request_class", "jinja_environment"} == set(after) - set(before)
    assert issubclass(app.request_class, Flask.request_class)
    assert issubclass(app.jinja_environment, Flask.jinja_environment)
    assert [] == [name for name, obj in before.items() if after[name] is not obj]


def test_blueprint_routes_carry_their_prefix() -> None:
    """A blueprint's rule includes its url_prefix."""
    app, metrics = make_app()
    app.test_client().get("/api/v1/files/a/b.txt", buffered=True)
    assert {"/api/v1/files/<path:name>"} == label_values(metrics, N.requests_total, "endpoint")


def test_404_and_405_share_the_unmatched_endpoint() -> None:
    """Unknown paths and wrong methods are counted under one endpoint value."""
    app, metrics = make_app()
    client = app.test_client()
    assert client.get("/nope/1", buffered=True).status_code == 404
    assert client.get("/nope/2", buffered=True).status_code == 404
    assert client.post("/projects/1", buffered=True).status_code == 405
    got_404 = {"method": "GET", "endpoint": c.ENDPOINT_UNMATCHED, "status": "404"}
    got_405 = {"method": "POST", "endpoint": c.ENDPOINT_UNMATCHED, "status": "405"}
    assert value(metrics, N.requests_total, got_404) == 2
    assert value(metrics, N.requests_total, got_405) == 1


def test_unknown_methods_become_other() -> None:
    """A junk method is labelled OTHER, not by its own name."""
    app, metrics = make_app()
    client = app.test_client()
    client.open("/projects/1", method="BREW", buffered=True)
    client.open("/projects/1", method="X" * 50, buffered=True)
    assert {c.METHOD_OTHER} == label_values(metrics, N.requests_total, "method")


def test_http_exception_keeps_its_status_and_counts_no_exception() -> None:
    """abort(403) is an answer, not a crash: status 403, no exception series."""
    app, metrics = make_app()
    app.test_client().get("/forbidden", buffered=True)
    labels = {"method": "GET", "endpoint": "/forbidden", "status": "403"}
    assert value(metrics, N.requests_total, labels) == 1
    assert set() == label_values(metrics, N.request_exceptions_total, "exception")


def test_propagated_exception_is_reraised_untouched_and_counted_as_500() -> None:
    """With PROPAGATE_EXCEPTIONS the same exception object reaches the caller."""
    app, metrics = make_app(TESTING=True)
    with pytest.raises(BoomError, match="view failed"):
        app.test_client().get("/boom")
    count = {"method": "GET", "endpoint": "/boom", "status": "500"}
    exc = {"method": "GET", "endpoint": "/boom", "exception": "BoomError"}
    assert value(metrics, N.requests_total, count) == 1
    assert value(metrics, N.request_exceptions_total, exc) == 1


def test_handled_exception_is_counted_once_with_status_500() -> None:
    """Flask turns the exception into a 500 page; it is counted exactly once."""
    app, metrics = make_app(PROPAGATE_EXCEPTIONS=False)
    response = app.test_client().get("/boom", buffered=True)
    assert response.status_code == 500
    exc = {"method": "GET", "endpoint": "/boom", "exception": "BoomError"}
    assert value(metrics, N.request_exceptions_total, exc) == 1
    count = {"method": "GET", "endpoint": "/boom", "status": "500"}
    assert value(metrics, N.requests_total, count) == 1


def test_streamed_response_is_timed_to_its_last_chunk() -> None:
    """A generator sleeping between chunks is timed until it is exhausted."""
    app, metrics = make_app()
    response = app.test_client().get("/stream", buffered=True)
    assert response.data.count(b"token") == STREAM_CHUNKS
    labels = {"method": "GET", "endpoint": "/stream"}
    total = value(metrics, N.request_duration_sum, labels)
    assert total is not None
    assert total >= STREAM_CHUNKS * STREAM_PAUSE


def test_request_is_recorded_when_body_is_closed_not_before() -> None:
    """While the client has not consumed the stream, the request is still in flight."""
    app, metrics = make_app()
    response = app.test_client().get("/stream")
    in_flight = {"method": "GET", "endpoint": "/stream"}
    assert value(metrics, N.requests_in_progress, in_flight) == 1
    assert value(metrics, N.request_duration_count, in_flight) == 0
    response.close()
    assert value(metrics, N.requests_in_progress, in_flight) == 0
    assert value(metrics, N.request_duration_count, in_flight) == 1


def test_exception_inside_a_stream_is_counted_with_the_sent_status() -> None:
    """The status line went out as 200; the broken stream still counts an exception."""
    app, metrics = make_app()
    with pytest.raises(BoomError):
        app.test_client().get("/broken-stream", buffered=True)
    count = {"method": "GET", "endpoint": "/broken-stream", "status": "200"}
    exc = {"method": "GET", "endpoint": "/broken-stream", "exception": "BoomError"}
    assert value(metrics, N.requests_total, count) == 1
    assert value(metrics, N.request_exceptions_total, exc) == 1


def test_in_progress_gauge_counts_the_running_request() -> None:
    """Inside the view the gauge is 1; afterwards it is back to 0."""
    app, metrics = make_app()
    seen: list[float | None] = []

    @app.get("/inside")
    def inside() -> str:
        seen.append(
            value(metrics, N.requests_in_progress, {"method": "GET", "endpoint": "/inside"})
        )
        return "ok"

    app.test_client().get("/inside", buffered=True)
    assert seen == [1.0]
    assert value(metrics, N.requests_in_progress, {"method": "GET", "endpoint": "/inside"}) == 0


def test_metrics_path_and_excluded_paths_are_not_recorded() -> None:
    """Scrapes and health checks listed in LIMONE_OBS_EXCLUDED_PATHS add no series."""
    app, metrics = make_app(LIMONE_OBS_EXCLUDED_PATHS=["/health"])
    client = app.test_client()
    client.get("/metrics", buffered=True)
    assert client.get("/health", buffered=True).status_code == 200
    assert set() == label_values(metrics, N.requests_total, "endpoint")


def test_template_rendering_is_timed_as_a_dependency() -> None:
    """render_template_string is observed under dependency="template"."""
    app, metrics = make_app()
    app.test_client().get("/page", buffered=True)
    labels = {"dependency": c.DEPENDENCY_TEMPLATE, "operation": "<string>", "outcome": "ok"}
    assert value(metrics, N.dependency_duration_count, labels) == 1


def test_template_timing_can_be_switched_off() -> None:
    """LIMONE_OBS_TEMPLATE_TIMING=False records no template series."""
    app, metrics = make_app(LIMONE_OBS_TEMPLATE_TIMING=False)
    app.test_client().get("/page", buffered=True)
    assert set() == label_values(metrics, N.dependency_duration_count, "dependency")


def test_cache_helpers_count_hits_and_misses() -> None:
    """cache_hit, cache_miss and cache_result feed one counter by result."""
    _, metrics = make_app()
    metrics.cache_hit("projects")
    metrics.cache_result("projects", hit=True)
    metrics.cache_miss("projects")
    metrics.cache_result("projects", hit=False)
    hits = value(metrics, N.cache_requests_total, {"cache": "projects", "result": c.CACHE_HIT})
    misses = value(metrics, N.cache_requests_total, {"cache": "projects", "result": c.CACHE_MISS})
    assert (hits, misses) == (2, 2)


def test_build_info_carries_configured_version() -> None:
    """LIMONE_OBS_VERSION / _REVISION become labels of the build-info series."""
    app, metrics = make_app(LIMONE_OBS_VERSION="1.2.3", LIMONE_OBS_REVISION="abc123")
    del app
    assert {"1.2.3"} == label_values(metrics, N.build_info, "version")
    assert {"abc123"} == label_values(metrics, N.build_info, "revision")


def test_double_init_is_a_clear_error() -> None:
    """Instrumenting an app twice raises ConfigError naming the app and both ways in
    (a second ``Metrics(app)`` never called ``init_app`` by that name)."""
    app, metrics = make_app()
    with pytest.raises(
        ConfigError, match="already initialised on Flask app 'exporter_tests'"
    ) as err:
        Metrics(app, registry=CollectorRegistry())
    assert "Metrics(app) or metrics.init_app(app)" in str(err.value)
    with pytest.raises(ConfigError, match="instrument each app once"):
        metrics.init_app(app)


def test_app_factory_pattern_with_one_metrics_object() -> None:
    """One Metrics created first, init_app on each new app: no duplicate-series error."""
    metrics = Metrics(registry=CollectorRegistry())

    def create_app() -> Flask:
        app = Flask("factory")
        metrics.init_app(app)
        app.add_url_rule("/", "index", lambda: "ok")
        return app

    first, second = create_app(), create_app()
    first.test_client().get("/", buffered=True)
    second.test_client().get("/", buffered=True)
    assert metrics_for(first) is metrics
    assert (
        value(metrics, N.requests_total, {"method": "GET", "endpoint": "/", "status": "200"}) == 2
    )


def test_default_registry_is_private_not_global() -> None:
    """Two Metrics() without a registry never collide (no global registry)."""
    first, second = Metrics(), Metrics()
    assert first.registry is not second.registry


def test_metrics_for_an_uninstrumented_app_is_a_clear_error() -> None:
    """metrics_for says which app is missing the extension."""
    with pytest.raises(ConfigError, match="'bare' is not instrumented"):
        metrics_for(Flask("bare"))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"LIMONE_OBS_METRICS_PATH": "metrics"}, "LIMONE_OBS_METRICS_PATH='metrics'"),
        ({"LIMONE_OBS_METRICS_PORT": "9100"}, "LIMONE_OBS_METRICS_PORT='9100'"),
        ({"LIMONE_OBS_EXCLUDED_PATHS": "/health"}, "use a list of paths"),
        ({"LIMONE_OBS_EXEMPLARS": "maybe"}, "LIMONE_OBS_EXEMPLARS='maybe': use True or False"),
        ({"LIMONE_OBS_TEMPLATE_TIMING": 2}, "LIMONE_OBS_TEMPLATE_TIMING=2: use True or False"),
        ({"LIMONE_OBS_RUM": "nope"}, "LIMONE_OBS_RUM='nope': use True or False"),
    ],
)
def test_invalid_settings_name_the_key_and_value(config: dict[str, object], message: str) -> None:
    """Each bad config value is rejected with its key and value in the message."""
    app = Flask("bad")
    app.config.update(config)
    with pytest.raises(ConfigError, match=message):
        Metrics(app, registry=CollectorRegistry())


def test_buckets_without_the_default_targets_warn_and_serve(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A service's own buckets without 0.6 s and 1 s (its SLO thresholds are its spec's,
    checked by `limone-obs check`): one warning naming the missing targets, and Metrics
    works (a trial's team with thresholds of its own was refused at start)."""
    with caplog.at_level(logging.WARNING, logger="limone_obs"):
        metrics = Metrics(buckets=(0.1, 0.3, 0.85, 2.0), registry=CollectorRegistry())
    (record,) = [r for r in caplog.records if "default latency targets" in r.getMessage()]
    assert "[0.6, 1.0]" in record.getMessage()
    assert metrics.names.request_duration


def test_unsorted_buckets_are_rejected() -> None:
    """Buckets must be strictly increasing."""
    with pytest.raises(ConfigError, match="strictly increasing"):
        Metrics(buckets=(1.0, 0.6, 2.0))


def test_invalid_namespace_is_rejected() -> None:
    """A namespace that is not a metric-name prefix is a ConfigError."""
    with pytest.raises(ConfigError, match="namespace '9bad'"):
        Metrics(namespace="9bad")


def test_custom_namespace_prefixes_every_series() -> None:
    """namespace="ide" yields ide_requests_total."""
    app = Flask("ns")
    metrics = Metrics(app, namespace="ide", registry=CollectorRegistry())
    app.add_url_rule("/", "index", lambda: "ok")
    app.test_client().get("/", buffered=True)
    labels = {"method": "GET", "endpoint": "/", "status": "200"}
    assert value(metrics, "ide_requests_total", labels) == 1


def test_a_failing_metrics_backend_never_fails_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """If recording raises (e.g. a full multiprocess disk), the user still gets the 200."""
    app, metrics = make_app()
    _failsafe._last.clear()  # the log is rate-limited per place; start from a clean slate

    def broken(*_args: object) -> None:
        raise OSError("No space left on device")

    metrics._instruments.request_children = broken  # type: ignore[method-assign,assignment]
    response = app.test_client().get("/projects/1", buffered=True)
    assert response.status_code == 200
    with pytest.raises(RuntimeError), metrics.track("db", "select"):
        raise RuntimeError("the caller's own error still propagates")
    messages = [r.getMessage() for r in caplog.records if r.name == "limone_obs.exporter"]
    assert any("No space left on device" in m for m in messages)


def test_dependency_buckets_without_the_default_targets_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The warning names the argument it is about."""
    with caplog.at_level(logging.WARNING, logger="limone_obs"):
        Metrics(dependency_buckets=(0.1, 0.5, 2.0), registry=CollectorRegistry())
    assert [r for r in caplog.records if "Metrics(dependency_buckets=...)" in r.getMessage()]


def test_process_metrics_on_a_passed_registry_when_asked() -> None:
    """process_metrics=True registers the process collectors on the given registry."""
    registry = CollectorRegistry()
    Metrics(registry=registry, process_metrics=True)
    assert registry.get_sample_value("process_cpu_seconds_total") is not None


def test_no_process_metrics_on_a_passed_registry_by_default() -> None:
    """By default a passed registry (maybe the global one) gets no duplicate collectors."""
    registry = CollectorRegistry()
    Metrics(registry=registry)
    assert registry.get_sample_value("process_cpu_seconds_total") is None


def test_failing_cache_and_template_metrics_never_fail_the_request() -> None:
    """Cache counting and template timing errors are logged, the page still renders."""
    app, metrics = make_app()
    _failsafe._last.clear()

    def broken(*_args: object) -> None:
        raise OSError("No space left on device")

    metrics._instruments.cache.labels = broken  # type: ignore[method-assign,assignment]
    metrics._instruments.dependency.labels = broken  # type: ignore[method-assign,assignment]
    metrics.cache_hit("projects")
    metrics.cache_result("projects", hit=False)
    assert app.test_client().get("/page", buffered=True).status_code == 200


def test_server_file_wrapper_is_returned_as_is_and_recorded_on_close(tmp_path: Path) -> None:
    """send_file's body stays the server's file_wrapper (sendfile path) and still counts."""
    from gunicorn.http.wsgi import FileWrapper  # noqa: PLC0415 (the server's own class)

    app, metrics = make_app()
    (tmp_path / "a.txt").write_text("hello")

    @app.get("/file")
    def file() -> Response:
        return send_file(tmp_path / "a.txt")

    statuses: list[str] = []

    def start_response(status: str, *_rest: object) -> Callable[[bytes], object]:
        statuses.append(status)
        return lambda _data: None

    environ = EnvironBuilder(path="/file").get_environ()
    environ["wsgi.file_wrapper"] = FileWrapper
    body = app.wsgi_app(environ, start_response)
    assert isinstance(body, FileWrapper)
    labels = {"method": "GET", "endpoint": "/file", "status": "200"}
    assert value(metrics, N.requests_total, labels) is None
    body.close()
    assert value(metrics, N.requests_total, labels) == 1
    assert statuses == ["200 OK"]


def test_default_registry_metrics_a_single_process_does_not_serve_are_named_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one process the metrics path serves the kit's registry: the app's own metrics on
    prometheus-client's default registry are named (as written: a counter with _total) in
    one warning line at the first scrape, with the argument that serves them, and the one
    named like a kit series is to be renamed first; with that argument, no line. Passing
    the default registry while it holds that metric is a ConfigError saying so."""
    # A default registry of this test's own: the process's stays as other tests left it.
    default = CollectorRegistry()
    monkeypatch.setattr(extension, "REGISTRY", default)
    Counter("trial_entries", "entries posted", registry=default)
    Counter("trial_requests", "the old request counter", ["route"], registry=default)
    unserved, served = Flask("unserved"), Flask("served")
    Metrics(unserved, registry=CollectorRegistry(), namespace="trial")
    for _ in range(2):
        unserved.test_client().get("/metrics").close()
    Metrics(served, registry=default, namespace="served", process_metrics=False)
    served.test_client().get("/metrics").close()
    with pytest.raises(ConfigError, match="rename that metric"):
        Metrics(Flask("refused"), registry=default, namespace="trial")
    said = [r.getMessage() for r in caplog.records if "default registry" in r.getMessage()]
    assert 1 == len(said)
    assert "(trial_entries_total, trial_requests_total)" in said[0]
    assert "first rename trial_requests_total" in said[0]
    assert "registry=prometheus_client.REGISTRY" in said[0]


@pytest.mark.parametrize("text", ["false", "False", "0", "no", "off", " OFF "])
def test_on_off_settings_read_from_text_mean_what_they_say(text: str) -> None:
    """Settings from the environment arrive as text (``from_mapping(os.environ)``): "false"
    turns RUM, exemplars and template timing off (``bool("false")`` had kept them on),
    and the config then holds the bool."""
    app = Flask("flags")
    keys = ("LIMONE_OBS_RUM", "LIMONE_OBS_EXEMPLARS", "LIMONE_OBS_TEMPLATE_TIMING")
    app.config.update(dict.fromkeys(keys, text))

    @app.get("/page")
    def page() -> str:
        return "ok"

    Metrics(app, registry=CollectorRegistry())
    client = app.test_client()
    assert [False, False, False] == [app.config[key] for key in keys]
    assert 404 == client.get(c.rum_script_path(c.RUM_DEFAULT_PATH)).status_code
    with app.test_request_context("/page"):  # RUM off: the tag renders nothing
        assert "" == render_template_string("{{ limone_obs_rum() }}")
    assert not app.extensions[extension.EXTENSION_KEY].recorder.exemplars


def test_a_second_metrics_on_the_same_registry_is_told_apart() -> None:
    """An app factory creating Metrics(app, registry=REGISTRY) per app (a test suite): the
    error says a Metrics already registered there and how to share one, not that an app
    metric is named like the kit's; an app metric of that name still gets that message."""
    registry = CollectorRegistry()
    Metrics(Flask("first"), registry=registry)
    with pytest.raises(ConfigError, match="a Metrics of this namespace already registered"):
        Metrics(Flask("second"), registry=registry)
    own = CollectorRegistry()
    Counter("limoneide_requests", "the app's own", registry=own)
    with pytest.raises(ConfigError, match="already holds a metric named like one"):
        Metrics(Flask("third"), registry=own)


def test_an_app_route_on_a_path_the_kit_answers_is_said_at_the_first_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A blueprint's own /metrics (registered before or after init_app) is never served
    (the kit answers that path ahead of Flask); an app route on the RUM beacon path is
    said as it is: registered after init_app, the kit answers POST there. The first
    request says so, once each."""
    app = Flask("shadowed")
    app.config["LIMONE_OBS_RUM"] = True
    app.config["SECRET_KEY"] = "x" * 32
    early = Blueprint("early", __name__)
    early.add_url_rule("/metrics", "metrics", lambda: "the app's own")
    app.register_blueprint(early)
    Metrics(app, registry=CollectorRegistry())
    late = Blueprint("late", __name__)
    late.add_url_rule("/rum", "beacon", lambda: "the app's beacon", methods=["POST"])
    late.add_url_rule("/status", "status", lambda: "ok")
    app.register_blueprint(late)
    with caplog.at_level("WARNING", logger="limone_obs"):
        client = app.test_client()
        assert b"ok" == client.get("/status").data
        assert b"ok" == client.get("/status").data
        assert 400 == client.post("/rum", data="x").status_code  # the kit's beacon view
    lines = [r.getMessage() for r in caplog.records if "its route" in r.getMessage()]
    assert 2 == len(lines), lines
    assert "/metrics (endpoint 'early.metrics') is never served" in lines[0]
    assert "LIMONE_OBS_METRICS_PATH" in lines[0]
    assert "/rum (endpoint 'late.beacon') shares the path" in lines[1]
    assert "answers POST there" in lines[1]
    assert "LIMONE_OBS_RUM_PATH" in lines[1]


def test_an_app_route_that_takes_the_rum_beacon_path_is_said_as_such(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An app's own POST /rum registered before init_app answers the browsers' beacons
    (Flask matches it first): the first request says no page timing is recorded, not
    that the route is never served."""
    app = Flask("taken")
    app.config["SECRET_KEY"] = "x" * 32
    app.add_url_rule("/rum", "cocktails", lambda: "our rum cocktails", methods=["GET", "POST"])
    app.add_url_rule("/status", "status", lambda: "ok")
    Metrics(app, registry=CollectorRegistry())
    with caplog.at_level("WARNING", logger="limone_obs"):
        assert b"ok" == app.test_client().get("/status").data
        assert b"our rum cocktails" == app.test_client().post("/rum", data="{}").data
    lines = [r.getMessage() for r in caplog.records if "its route" in r.getMessage()]
    assert 1 == len(lines), lines
    assert "/rum (endpoint 'cocktails') answers POST /rum in place of" in lines[0]
    assert "no page timing is recorded" in lines[0]
