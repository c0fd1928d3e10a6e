"""Template rendering timed as the ``template`` dependency: each render times itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from flask import Flask, Response, render_template, stream_template
from jinja2 import DictLoader
from prometheus_client import CollectorRegistry

from limone_obs import Metrics
from limone_obs import conventions as c
from tests.exporter.helpers import value

N = c.MetricNames()
SLOW = 0.02
TEMPLATES = {
    "page.html": "{% for i in range(3) %}{{ i|slow }}{% endfor %}",
    "boom.html": "{{ 1|boom }}",
    # Loops, not constants: Jinja calls a filter on a constant when it compiles.
    "outer.html": (
        "{% for i in range(1) %}{{ i|slow }}{% endfor %}{{ try_widget() }}"
        "{% for i in range(1) %}{{ i|slow }}{% endfor %}"
    ),
}


def slow(item: object) -> str:
    time.sleep(SLOW)
    return str(item)


def boom(_item: object) -> str:
    raise ValueError("widget broke")


def try_widget() -> str:
    """A template's helper rendering another template, whose failure it hides."""
    try:
        return render_template("boom.html")
    except ValueError:
        return ""


def make_app(*, env_first: bool = False) -> tuple[Flask, Metrics]:
    """An app with a slow page, a failing widget inside a page, and a streamed page.

    ``env_first``: the app creates its Jinja environment (adds its filters through
    ``app.jinja_env``) before ``Metrics(app)``, as many factories do.
    """
    app = Flask("template_tests")
    app.jinja_loader = DictLoader(TEMPLATES)
    if env_first:
        app.jinja_env.filters.update(slow=slow, boom=boom)
    metrics = Metrics(app, registry=CollectorRegistry())
    app.add_template_filter(slow)
    app.add_template_filter(boom)
    app.add_template_global(try_widget)

    @app.get("/page")
    def page() -> str:
        return render_template("page.html")

    @app.get("/outer")
    def outer() -> str:
        return render_template("outer.html")

    @app.get("/streamed")
    def streamed() -> Response:
        return Response(stream_template("page.html"))

    return app, metrics


def template(metrics: Metrics, name: str, outcome: str, what: str = "count") -> float | None:
    labels = {"dependency": c.DEPENDENCY_TEMPLATE, "operation": name, "outcome": outcome}
    sample = N.dependency_duration_count if what == "count" else N.dependency_duration_sum
    return value(metrics, sample, labels)


def test_a_render_is_timed_whole_and_counts_in_its_request() -> None:
    """page.html (three slow items): one call of about 3 x SLOW, also in the request's
    calls per dependency and dependency seconds."""
    app, metrics = make_app()
    app.test_client().get("/page", buffered=True)
    assert template(metrics, "page.html", c.OUTCOME_OK) == 1
    seconds = template(metrics, "page.html", c.OUTCOME_OK, "sum")
    assert seconds is not None
    assert 3 * SLOW <= seconds < 3 * SLOW + 1.0
    per_request = {"endpoint": "/page", "dependency": c.DEPENDENCY_TEMPLATE}
    assert value(metrics, N.dependency_calls_per_request_sum, per_request) == 1
    tallied = value(metrics, N.request_dependency_seconds_total, per_request)
    assert tallied == seconds


def test_a_failed_nested_render_is_an_error_and_leaves_the_outer_time_whole() -> None:
    """outer.html calls a helper that renders boom.html, which raises and is caught: the
    failed render is one ``error`` call, and outer.html keeps its whole time (both slow
    items), not the inner render's start."""
    app, metrics = make_app()
    for _ in range(2):
        assert app.test_client().get("/outer", buffered=True).status_code == 200
    assert template(metrics, "boom.html", c.OUTCOME_ERROR) == 2
    assert template(metrics, "boom.html", c.OUTCOME_OK) is None
    assert template(metrics, "outer.html", c.OUTCOME_OK) == 2
    outer = template(metrics, "outer.html", c.OUTCOME_OK, "sum")
    assert outer is not None
    assert outer >= 2 * 2 * SLOW
    per_request = {"endpoint": "/outer", "dependency": c.DEPENDENCY_TEMPLATE}
    assert value(metrics, N.dependency_calls_per_request_sum, per_request) == 4


def test_a_streamed_template_is_timed_over_its_iteration() -> None:
    """stream_template: the render is timed until the last item was produced."""
    app, metrics = make_app()
    response = app.test_client().get("/streamed")
    assert response.get_data(as_text=True) == "012"
    response.close()
    seconds = template(metrics, "page.html", c.OUTCOME_OK, "sum")
    assert seconds is not None
    assert seconds >= 3 * SLOW


def test_an_environment_created_before_metrics_is_timed_too() -> None:
    """A factory that used ``app.jinja_env`` before ``Metrics(app)``: its renders are
    timed as well."""
    app, metrics = make_app(env_first=True)
    app.test_client().get("/page", buffered=True)
    assert template(metrics, "page.html", c.OUTCOME_OK) == 1


def test_jinja_options_set_after_metrics_still_apply() -> None:
    """Metrics(app) does not create the Jinja environment: options the factory sets
    afterwards (Flask reads them when it creates it) still take effect."""
    app = Flask("template_options")
    Metrics(app, registry=CollectorRegistry())
    app.jinja_options = {**app.jinja_options, "line_statement_prefix": "%"}

    @app.get("/lines")
    def lines() -> str:
        return app.jinja_env.from_string("% for i in range(2)\n{{ i }}\n% endfor\n").render()

    assert app.test_client().get("/lines", buffered=True).get_data(as_text=True) == "0\n1\n"


def test_iterating_items_of_a_streamed_template() -> None:
    """A consumer that stops early: the render is recorded as ``ok`` (the template did
    not fail), once."""
    app, metrics = make_app()
    with app.test_request_context("/"):
        stream: Iterator[str] = app.jinja_env.get_template("page.html").generate()
        assert next(stream) == "0"
        stream.close()  # type: ignore[attr-defined]
    assert template(metrics, "page.html", c.OUTCOME_OK) == 1
    assert template(metrics, "page.html", c.OUTCOME_ERROR) is None


def test_a_template_loaded_before_metrics_is_timed_too() -> None:
    """A factory that loaded (or rendered) a template before ``Metrics(app)``: Jinja's
    cache would keep it in the class it was loaded with; it is timed all the same."""
    app = Flask("template_early")
    app.jinja_loader = DictLoader(TEMPLATES)
    app.jinja_env.filters.update(slow=slow)
    app.jinja_env.get_template("page.html")
    metrics = Metrics(app, registry=CollectorRegistry())

    @app.get("/page")
    def page() -> str:
        return render_template("page.html")

    app.test_client().get("/page", buffered=True)
    assert template(metrics, "page.html", c.OUTCOME_OK) == 1


def test_async_renders_are_timed_once() -> None:
    """An environment with ``enable_async``: ``render_async`` and ``generate_async`` are
    timed, and ``render`` (which Jinja runs through ``render_async``) counts once."""
    app = Flask("template_async")
    app.jinja_options = {**app.jinja_options, "enable_async": True}
    app.jinja_loader = DictLoader(TEMPLATES)
    metrics = Metrics(app, registry=CollectorRegistry())
    app.add_template_filter(slow)

    async def both() -> list[str]:
        page = app.jinja_env.get_template("page.html")
        text = await page.render_async()
        items = [item async for item in page.generate_async()]
        return [text, "".join(items)]

    with app.app_context():
        assert asyncio.run(both()) == ["012", "012"]
        assert render_template("page.html") == "012"
        assert "".join(app.jinja_env.get_template("page.html").generate()) == "012"
    assert template(metrics, "page.html", c.OUTCOME_OK) == 4
