"""SLO rule evaluation cost, as reported by a real Prometheus.

Prometheus (Debian's ``prometheus``) loads the generated ``alerts/rules/*.yml``, evaluates
them every second, and scrapes (job ``limoneide``) an instrumented app in this process
that serves its metrics on a port of its own while a bounded background loop sends it
traffic through the test client. After a warm-up, ``prometheus_rule_group_last_duration_
seconds`` is sampled once a second per group; the table gives medians.

The TSDB holds only the seconds of this run, so range windows (up to 30 d) hold little
data: these are lower bounds of the cost on a server with a month of history.

Run: ``python bench/bench_rules.py [--quick]``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _table import ms, table  # noqa: E402

from limone_obs import Metrics  # noqa: E402
from limone_obs.stack import procs  # noqa: E402

METRIC = "prometheus_rule_group_last_duration_seconds"


def rule_files() -> list[Path]:
    """The generated rule files, or [] when the alerts area has not generated them."""
    return sorted((ROOT / "alerts" / "rules").glob("*.yml"))


def _app(port: int) -> Flask:
    app = Flask("bench_rules")
    app.config["LIMONE_OBS_METRICS_PORT"] = port
    metrics = Metrics(app)

    @app.get("/work/<int:n>")
    def work(n: int) -> tuple[str, int]:
        with metrics.track("ai_api", "complete"):
            pass
        return "ok", 500 if n % 50 == 0 else 200

    return app


@contextmanager
def traffic(port: int) -> Iterator[list[int]]:
    """Serve metrics on ``port``; send the app requests until the block ends.

    Yields a one-item list holding the number of requests sent so far.
    """
    app, stop, sent = _app(port), threading.Event(), [0]
    client = app.test_client()

    def loop() -> None:
        while not stop.is_set() and sent[0] < 10_000_000:
            client.get(f"/work/{sent[0] % 100}").data  # noqa: B018 - reading closes the body
            sent[0] += 1
            time.sleep(0.002)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield sent
    finally:
        stop.set()
        thread.join(10)
        app.extensions["limone_obs"].metrics_server.shutdown()


def _config(tmp: Path, target_port: int) -> Path:
    files = "\n".join(f"  - {f}" for f in rule_files())
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n{files}\n"
        "scrape_configs:\n  - job_name: limoneide\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n"
    )
    return config


def _sample(prom: str) -> dict[str, float]:
    # Read Prometheus' own /metrics: no self-scrape job needed, no staleness.
    text = requests.get(f"{prom}/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name == METRIC:
            for s in family.samples:
                out[s.labels["rule_group"].rsplit(";", 1)[-1]] = s.value
    return out


def measure(seconds: int, warmup: int) -> tuple[dict[str, list[float]], float]:
    """Run Prometheus against the app; return every rule group's samples, and requests/s."""
    binary = procs.require_binary("prometheus")
    app_port, prom_port = procs.free_port(), procs.free_port()
    with tempfile.TemporaryDirectory() as tmp_name, traffic(app_port) as sent:
        tmp = Path(tmp_name)
        argv = procs.prometheus_argv(binary, _config(tmp, app_port), tmp / "data", prom_port)
        proc = procs.start("prometheus", argv, tmp / "prometheus.log")
        try:
            prom = f"http://127.0.0.1:{prom_port}"
            procs.wait_http(proc, f"{prom}/-/ready")
            time.sleep(warmup)
            samples: dict[str, list[float]] = {}
            start, sent_before = time.monotonic(), sent[0]
            for _ in range(seconds):
                for group, value in _sample(prom).items():
                    samples.setdefault(group, []).append(value)
                time.sleep(1)
            return samples, (sent[0] - sent_before) / (time.monotonic() - start)
        finally:
            proc.stop()


def run(quick: bool) -> str:
    """Return the markdown section: median evaluation time per generated rule group."""
    head = ["## SLO rule evaluation (Prometheus)", ""]
    if not rule_files():
        return "\n".join([*head, "rules not generated (alerts/rules/*.yml missing)", ""])
    if procs.find_binary("prometheus") is None:
        return "\n".join(
            [*head, f"prometheus not installed: {procs.install_hint('prometheus')}", ""]
        )
    seconds, warmup = (4, 3) if quick else (30, 10)
    samples, rate = measure(seconds, warmup)
    rows = [[g, ms(statistics.median(v)), ms(max(v)), len(v)] for g, v in sorted(samples.items())]
    total = sum(statistics.median(v) for v in samples.values())
    rows.append(["**all groups (sum of medians)**", ms(total), "", ""])
    files = ", ".join(f"alerts/rules/{f.name}" for f in rule_files())
    return "\n".join([
        *head,
        f"{files}, evaluated every 1 s by Prometheus {_version()}; `{METRIC}` read "
        f"from Prometheus' /metrics once a second for {seconds} s after a {warmup} s "
        f"warm-up, while the app gets {rate:.0f} requests/s. Fresh TSDB: a lower bound "
        "for servers with long history.",
        "",
        table(["rule group", "median", "max", "samples"], rows),
        "",
    ])  # fmt: skip


def _version() -> str:
    out = subprocess.run(
        [procs.require_binary("prometheus"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    first = (out.stdout or out.stderr).splitlines()
    return first[0].split()[2] if first and len(first[0].split()) > 2 else "?"


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
