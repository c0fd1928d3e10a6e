"""The report's restart note: which instances restarted within the window and about
when. The query runs on Prometheus' own engine (promtool); the times come from a range
query's points (:func:`restart_times`); the note from canned answers of both."""

from __future__ import annotations

import calendar
import math
import re
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml
from flask import Flask
from werkzeug.serving import make_server

from limone_obs import Metrics
from limone_obs import conventions as c
from limone_obs.report import queries as q
from limone_obs.report.collect import _restart_notes, _Source, restart_times
from limone_obs.report.prometheus import Prometheus, Sample, Series
from limone_obs.report.window import Span
from limone_obs.stack import procs
from tests.dashboards.test_zero_fallback import N, _assert_holds, _evaluate, _series
from tests.report.test_collect_canned import Canned
from tests.support import _QuietHandler, need

#: 2027-01-15 08:00:00 UTC, an hour long.
WINDOW = Span(1_800_000_000.0, 1_800_003_600.0)


@pytest.mark.integration
def test_the_query_counts_each_instances_restarts(tmp_path: Path) -> None:
    """a:1's counters fell once (a restart at minute 3), b:1's never did: 1 and 0. The
    most of an instance's series, not their sum (a restart makes each of them fall)."""
    labels = {c.LABEL_METHOD: "GET", c.LABEL_STATUS: "200"}
    series = [
        _series(N.requests_total, {**labels, c.LABEL_ENDPOINT: "/x"}, "0 60 120 10 70 130"),
        _series(N.requests_total, {**labels, c.LABEL_ENDPOINT: "/y"}, "0 60 120 5 65 125"),
        _series(N.requests_total, {**labels, c.LABEL_ENDPOINT: "/x", c.LABEL_INSTANCE: "b:1"},
                "0+60x5"),
    ]  # fmt: skip
    expected = {'{instance="a:1"}': 1.0, '{instance="b:1"}': 0.0}
    _assert_holds(_evaluate(tmp_path, series, q.restarts(N, "limoneide", 300), expected))


def test_restart_times_take_each_restart_once() -> None:
    """Ranges of 90 s every 30 s: a restart seen by three overlapping ranges is one, at
    the first of them; one seen again after a step at 0 is another."""
    points = ((30.0, 0.0), (60.0, 1.0), (90.0, 1.0), (120.0, 1.0), (150.0, 0.0), (180.0, 1.0))
    assert [(-30.0, 60.0), (90.0, 180.0)] == restart_times(points, 30.0, 90.0)
    assert [] == restart_times(((30.0, 0.0), (60.0, 0.0)), 30.0, 90.0)


def test_a_gap_in_the_points_starts_another_restart() -> None:
    """No point for a while (no sample in the range): the next one above 0 is new."""
    points = ((30.0, 1.0), (300.0, 1.0))
    assert [(-60.0, 30.0), (210.0, 300.0)] == restart_times(points, 30.0, 90.0)


class _Restarted(Canned):
    """Canned instant answers, and one range answer for the restart times."""

    def __init__(self, instant: dict[str, list[Sample]], matrix: list[Series]) -> None:
        super().__init__(instant)
        self.matrix = matrix
        self.asked: list[tuple[str, float, float, float]] = []

    def range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        self.asked.append((expr, start, end, step))
        return self.matrix


def test_the_note_names_the_instance_and_when() -> None:
    """An hour's window, 15 s scrapes: steps of 30 s over 60 s ranges, all inside the
    window; the restart seen first at 08:41:30 lies between 08:40:30 and then."""
    src_prom = _Restarted(
        {q.restarts(N, "j", 3600): [Sample({c.LABEL_INSTANCE: "a:1"}, 1.0),
                                    Sample({c.LABEL_INSTANCE: "b:1"}, 0.0)]},
        [Series({c.LABEL_INSTANCE: "a:1"},
                ((WINDOW.start + 2460.0, 0.0), (WINDOW.start + 2490.0, 1.0),
                 (WINDOW.start + 2520.0, 1.0)))],
    )  # fmt: skip
    src = _Source(src_prom, c.DEFAULT_NAMESPACE, "j", "svc")
    [note] = _restart_notes(src, WINDOW)
    assert note.startswith(
        "Restarted within 2027-01-15 08:00:00 - 09:00:00 UTC (request counters started "
        "again from 0): instance a:1 between 08:40:30 and 08:41:30 UTC. "
    )
    assert "b:1" not in note
    [(expr, start, end, step)] = src_prom.asked
    assert (q.restarts(N, "j", 60), WINDOW.start + 60, WINDOW.end, 30.0) == (
        expr, start, end, step,
    )  # fmt: skip


def test_no_restart_no_note() -> None:
    """Every instance at 0 (or none at all): no note, no range query."""
    src_prom = _Restarted({q.restarts(N, "j", 3600): [Sample({c.LABEL_INSTANCE: "a:1"}, 0.0)]}, [])
    assert [] == _restart_notes(_Source(src_prom, c.DEFAULT_NAMESPACE, "j", "svc"), WINDOW)
    assert [] == src_prom.asked


def _served_for(port: int, seconds: float) -> None:
    """A new instrumented app (counters from 0) on ``port``, asked every 50 ms for
    ``seconds``, then stopped: one process's life."""
    app = Flask("restarted")
    Metrics(app)
    app.get("/x")(lambda: "ok")
    server = make_server(procs.LOOPBACK, port, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + seconds
        with requests.Session() as session:
            while time.monotonic() < deadline:
                session.get(f"http://{procs.LOOPBACK}:{port}/x", timeout=5)
                time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.integration
def test_a_real_restart_is_named_with_its_time(tmp_path: Path) -> None:
    """A real Prometheus (1 s scrapes) watches an app on one port stop and a new one
    start there (counters from 0): the note names that instance, between two clock times
    around the moment of the restart."""
    binary = need("prometheus")
    app_port, prom_port = procs.free_port(), procs.free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "j", "static_configs": [
            {"targets": [f"{procs.LOOPBACK}:{app_port}"]}]}],
    }))  # fmt: skip
    proc = procs.start("prometheus", procs.prometheus_argv(binary, config, tmp_path, prom_port),
                       tmp_path / "prometheus.log")  # fmt: skip
    try:
        url = f"http://{procs.LOOPBACK}:{prom_port}"
        procs.wait_http(proc, f"{url}/-/ready")
        start = time.time()
        _served_for(app_port, 6.0)
        restarted = time.time()
        _served_for(app_port, 6.0)
        time.sleep(2)  # the last scrapes
        window = Span(math.floor(start), math.ceil(time.time()))
        src = _Source(Prometheus(url), c.DEFAULT_NAMESPACE, "j", "svc")
        [note] = _restart_notes(src, window)
    finally:
        proc.stop()
    found = re.search(r"instance 127\.0\.0\.1:\d+ between (\S+) and (\S+) UTC", note)
    assert found is not None, note
    day = time.strftime("%Y-%m-%d ", time.gmtime(restarted))
    low, high = (
        calendar.timegm(time.strptime(day + t, "%Y-%m-%d %H:%M:%S")) for t in found.groups()
    )
    assert low - 1 <= restarted <= high + 1, (note, restarted)
    assert high - low <= 10, note  # steps of a second, ranges of three: a few seconds wide
