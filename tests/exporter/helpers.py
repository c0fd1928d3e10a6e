"""Test helpers for the exporter: a small instrumented app and sample lookup."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

from flask import Blueprint, Flask, Response, abort, render_template_string, stream_with_context
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from limone_obs import Metrics

STREAM_CHUNKS = 3
STREAM_PAUSE = 0.05


class BoomError(RuntimeError):
    """Raised by the /boom view; tests check it arrives untouched."""


def make_app(**config: object) -> tuple[Flask, Metrics]:
    """Return an app with projects, streaming, failing, template and blueprint routes."""
    app = Flask("exporter_tests")
    app.config.update(config)
    metrics = Metrics(app, registry=CollectorRegistry())

    @app.get("/projects/<int:project_id>")
    def project(project_id: int) -> dict[str, int]:
        return {"id": project_id}

    @app.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[str]:
            for i in range(STREAM_CHUNKS):
                time.sleep(STREAM_PAUSE)
                yield f"token{i} "

        return Response(stream_with_context(chunks()))

    @app.get("/broken-stream")
    def broken_stream() -> Response:
        def chunks() -> Iterator[str]:
            yield "first "
            raise BoomError("stream broke")

        return Response(chunks())

    @app.get("/boom")
    def boom() -> str:
        raise BoomError("view failed")

    @app.get("/forbidden")
    def forbidden() -> str:
        abort(403)

    @app.get("/page")
    def page() -> str:
        return render_template_string("<p>{{ name }}</p>", name="limone")

    @app.get("/health")
    def health() -> str:
        return "ok"

    bp = Blueprint("api", __name__, url_prefix="/api/v1")

    @bp.get("/files/<path:name>")
    def file(name: str) -> str:
        return name

    app.register_blueprint(bp)
    return app, metrics


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Return every sample of the exposition as ``{(name, labels): value}``."""
    text = metrics_text(metrics)
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def metrics_text(metrics: Metrics) -> str:
    """Render the exposition the way /metrics does (text format)."""
    return generate_latest(metrics.exposition_registry()).decode()


def value(metrics: Metrics, name: str, labels: Mapping[str, str]) -> float | None:
    """Return one sample's value, or None when the series does not exist."""
    return samples(metrics).get((name, frozenset(labels.items())))


def label_values(metrics: Metrics, name: str, label: str) -> set[str]:
    """Return every value ``label`` takes in series ``name``."""
    return {
        dict(labels)[label]
        for (sample_name, labels) in samples(metrics)
        if sample_name == name and label in dict(labels)
    }
