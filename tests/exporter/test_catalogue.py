"""exporter/METRICS.md lists every family a real app's /metrics serves under the namespace."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from limone_obs import conventions as c
from limone_obs.alerts.spec import SPEC_PATH
from limone_obs.exporter import catalogue
from tests.exporter.helpers import make_app
from tests.support import ROOT


def _row_names() -> set[str]:
    rows = [line for line in catalogue.render().splitlines() if line.startswith("| `")]
    return {row.split("`")[1] for row in rows}


def test_every_served_family_has_a_row() -> None:
    """Each ``limoneide_*`` family of a scrape (after a request) is a row of the table
    (``<ns>_worker_threads`` is served only under gunicorn; the next test covers it)."""
    app, _ = make_app()
    client = app.test_client()
    client.get("/projects/1")
    text = client.get("/metrics").get_data(as_text=True)
    served = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in text_string_to_metric_families(text)
        if family.name.startswith(f"{c.DEFAULT_NAMESPACE}_")
        and not family.name.endswith("_created")  # the text parser's split-off timestamps
    }
    assert (set(), True) == (served - _row_names(), len(served) >= 10)


def test_the_worker_series_have_rows() -> None:
    """``<ns>_workers`` and ``<ns>_worker_threads`` are rows, not only prose."""
    names = c.MetricNames(c.DEFAULT_NAMESPACE)
    assert {names.workers, names.worker_threads} <= _row_names()


def test_a_services_build_lists_the_series_under_its_specs_namespace(tmp_path: Path) -> None:
    """``build --root ops`` for a spec with ``namespace: billing``: the catalogue names
    ``billing_requests_total``, not the default prefix, and says whose namespace it is."""
    spec = tmp_path / SPEC_PATH
    spec.parent.mkdir(parents=True)
    spec.write_text(
        (ROOT / SPEC_PATH)
        .read_text()
        .replace("namespace: limoneide", "namespace: billing")
        .replace("limoneide_", "billing_")  # the spec's series are the namespace's
    )
    text = catalogue.artifacts(tmp_path).files[catalogue.CATALOGUE_PATH].decode()
    found = ("| `billing_requests_total`" in text, "limoneide_" in text, "spec's namespace" in text)
    assert (True, False, True) == found


def test_without_a_spec_the_catalogue_has_the_default_namespace(tmp_path: Path) -> None:
    """No alerts/slo.yaml below the root: the default prefix, said to be the default."""
    text = catalogue.artifacts(tmp_path).files[catalogue.CATALOGUE_PATH].decode()
    assert text == catalogue.render()
    assert f"default namespace `{c.DEFAULT_NAMESPACE}`" in text


SHOP = """
service: shop
buckets:
  limoneide_request_duration_seconds: [0.1, 0.3, 1]
slos:
  - name: latency
    kind: latency
    objective: 95
    threshold_seconds: 0.3
"""


def test_the_catalogue_lists_the_buckets_the_spec_declares(tmp_path: Path) -> None:
    """A spec declaring the request histogram's buckets (0.3 s among them): the catalogue
    lists those for it, says they are the spec's, and the defaults for the dependency one."""
    spec = tmp_path / SPEC_PATH
    spec.parent.mkdir(parents=True)
    spec.write_text(SHOP)
    text = catalogue.artifacts(tmp_path).files[catalogue.CATALOGUE_PATH].decode()
    request = "Buckets of the request histogram (seconds, the spec's `buckets:`): 0.1, 0.3, 1."
    default = ", ".join(f"{b:g}" for b in c.DEFAULT_DEPENDENCY_BUCKETS)
    dependency = f"Buckets of the dependency histogram (seconds): {default}."
    assert (True, True) == (request in text, dependency in text)
