"""``limone-obs up`` end to end: app, Prometheus, rules, Alertmanager, page, clean stop."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from limone_obs import conventions as c
from limone_obs.alerts.spec import load_spec
from limone_obs.stack import procs
from limone_obs.stack.procs import LOOPBACK
from tests.stack.helpers import process_groups_alive
from tests.support import PORT_ATTEMPTS, ROOT, need

pytestmark = pytest.mark.integration


class UpProcess:
    """``python -m limone_obs up ...`` as a child; its stdout lines collected by a thread."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "limone_obs", "up", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # the test's Ctrl-C is not the stack's
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_line(self, predicate: Callable[[str], bool], timeout: float) -> str:
        """The first output line matching ``predicate``; fail after ``timeout`` seconds."""
        found = self.poll_line(predicate, timeout)
        if found is None:
            output = "\n".join(self.lines[-40:])
            pytest.fail(f"no matching line within {timeout} s; output:\n{output}")
        return found

    def poll_line(self, predicate: Callable[[str], bool], timeout: float) -> str | None:
        """The first output line matching ``predicate``; None once ``up`` exited or after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self.lines if predicate(line)), None)
                if found is not None or deadline - time.monotonic() <= 0:
                    return found
                if self.popen.poll() is not None:
                    self._changed.wait(0.5)  # the reader may still hold the last lines
                    return next((line for line in self.lines if predicate(line)), None)
                self._changed.wait(0.5)

    def pids_or_port_taken(self) -> dict[str, int] | None:
        """The child PIDs, or None when ``up`` exited because a port was taken (a port
        from free_port() taken before ``up`` bound it); fail on any other exit."""
        if self.poll_line(lambda s: "pids " in s, 90) is not None:
            return self.pids()
        output = "\n".join(self.lines)
        if self.popen.poll() is not None and _port_taken(output):
            return None
        pytest.fail(f"up printed no pids line; output:\n{output[-4000:]}")

    def pids(self) -> dict[str, int]:
        """The child PIDs ``up`` printed on its ``pids`` line."""
        line = self.wait_line(lambda s: "pids " in s, 90)
        pairs = (item.split("=") for item in line.split("pids", 1)[1].split())
        return {name: int(pid) for name, pid in pairs}

    def finish(self, timeout: float = 60) -> int:
        """Wait for ``up`` to exit by itself; return the exit code."""
        code = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def interrupt(self, timeout: float = 60) -> int:
        """Send SIGINT (Ctrl-C) and return the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
        code = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def kill(self, children: dict[str, int]) -> None:
        """Last resort after a failed test: kill ``up`` and the process groups it started."""
        for pid in [self.popen.pid, *children.values()]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


def _query(prometheus: str, expr: str) -> list[dict[str, object]]:
    resp = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5)
    result: list[dict[str, object]] = resp.json()["data"]["result"]
    return result


def _poll(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(1)
    return False


def _is_error_page(line: str) -> bool:
    """A firing page of an SLO that 5xx responses burn (not, say, a slow first scrape)."""
    if not line.startswith("{"):
        return False
    alert = json.loads(line)
    wanted = (alert["severity"], alert["status"], alert["slo"] in ("errors", "availability"))
    return wanted == ("page", "firing", True)


def _free_ports() -> dict[str, int]:
    return {name: procs.free_port() for name in ("app", "prometheus", "alertmanager", "webhook")}


def _port_taken(output: str) -> bool:
    """True if ``up`` says one of its ports was taken (before its check or after it)."""
    return (
        ") is in use on" in output
        or ") are in use on" in output
        or " is taken by another process" in output
    )


def _start_up(
    args: Callable[[dict[str, int]], list[str]], env: dict[str, str] | None = None
) -> tuple[UpProcess, dict[str, int]]:
    """Start ``up`` on ports from free_port(), anew on other ports if one was taken
    meanwhile (up to PORT_ATTEMPTS times); return it once it printed its pids line."""
    for _ in range(PORT_ATTEMPTS):
        ports = _free_ports()
        up = UpProcess(args(ports), env=env)
        if up.pids_or_port_taken() is not None:
            return up, ports
        up.finish()
    pytest.fail(f"a port of up was taken by another process {PORT_ATTEMPTS} times in a row")


@dataclass
class Stack:
    """A running ``limone-obs up`` with its ports and the PIDs of its children."""

    up: UpProcess
    ports: dict[str, int]
    children: dict[str, int]
    workdir: Path

    def url(self, name: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[name]}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the tests below, which run in file order; the last one stops it.

    The error fault (every request 500) is on from 10 s after start; ``for:`` is capped
    at 5 s and Alertmanager groups for 1 s, so the page arrives within about a minute.
    """
    need("prometheus")
    need("alertmanager")
    workdir = tmp_path_factory.mktemp("up")

    def args(ports: dict[str, int]) -> list[str]:
        return [
            *(f"--{name}-port={port}" for name, port in ports.items()),
            *("--workdir", str(workdir), "--duration", "150"),
            *("--workers", "2", "--scrape-interval", "1s", "--alert-for", "5s"),
            *("--ai-latency", "0.02-0.05", "--fault", "errors", "--error-rate", "1"),
            *("--fault-after", "10", "--fault-for", "120"),
        ]

    up, ports = _start_up(args)
    children: dict[str, int] = {}
    try:
        children = up.pids()
        yield Stack(up, ports, children, workdir)
    finally:
        if up.popen.poll() is None:
            try:
                up.interrupt()
            except subprocess.TimeoutExpired:
                up.kill(children)


def test_up_serves_the_demo(stack: Stack) -> None:
    """Once ``up`` printed its URLs, the demo service answers /health under gunicorn."""
    assert 200 == requests.get(f"{stack.url('app')}/health", timeout=5).status_code


def test_up_prometheus_reports_the_target_up(stack: Stack) -> None:
    """Prometheus scrapes the demo as the spec's job and reports it up."""
    check = lambda: _query(stack.url("prometheus"), 'up{job="limoneide"} == 1') != []  # noqa: E731
    assert _poll(check, 30), "Prometheus never reported the demo target up"


def test_up_slo_recording_rules_have_values(stack: Stack) -> None:
    """The generated SLO recording rules are evaluated and return series."""
    for rule in (c.sli_error_ratio_rule("5m"), c.RULE_PERIOD_BUDGET_REMAINING):
        check = lambda rule=rule: _query(stack.url("prometheus"), rule) != []  # noqa: E731
        assert _poll(check, 45), f"{rule} has no value"


def test_up_error_fault_pages_the_webhook_receiver(stack: Stack) -> None:
    """With every request failing, a page for the errors or availability SLO arrives."""
    page = json.loads(stack.up.wait_line(_is_error_page, 90))
    assert "page" == page["labels"]["severity"]


def test_status_shows_every_slo_with_values(stack: Stack) -> None:
    """``limone-obs status`` prints one row per SLO; availability has an SLI and a firing page."""
    result = _limone_obs("status", "--prometheus", stack.url("prometheus"))
    table = result.stdout.split("\n\n")[0]  # the kit-health section follows a blank line
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    spec = load_spec(ROOT / "alerts" / "slo.yaml")
    assert [slo.name for slo in spec.slos] == list(rows)
    assert "%" in rows["availability"].split()[3]
    assert "(page)" in rows["errors"] or "(page)" in rows["availability"]
    # A fresh Prometheus: the period figures cover its few minutes, and the note says so.
    note = result.stdout.rstrip().splitlines()[-1]
    held = re.fullmatch(r"note: Prometheus holds about (\d+) min of job .*", note)
    assert held is not None, result.stdout
    assert 1 <= int(held.group(1)) <= 30


def test_status_watch_refreshes_the_table(stack: Stack) -> None:
    """``status --watch --count 2`` prints the table twice, then returns by itself."""
    args = ["status", "--prometheus", stack.url("prometheus"), "--watch", "--count", "2"]
    result = _limone_obs(*args, "--interval", "0.5")
    assert 2 == result.stdout.count("SLO  ")


def test_up_app_logs_are_json_lines(stack: Stack) -> None:
    """Every line the service (gunicorn master, workers, app) wrote is one JSON object,
    and the access lines carry the URL rule."""
    lines = (stack.workdir / "logs" / "app.log").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    endpoints = {e.get("endpoint") for e in events if e["logger"] == "limone_obs.access"}
    assert "/projects/<int:project_id>" in endpoints


def test_up_admin_endpoint_needs_the_token(stack: Stack) -> None:
    """The demo under ``up`` refuses its admin endpoint without the token (401) and
    answers with the one ``up`` wrote, owner-only, to <workdir>/admin-token."""
    token_file = stack.workdir / "admin-token"
    url = f"{stack.url('app')}/admin/faults"
    bearer = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    assert 0o600 == token_file.stat().st_mode & 0o777
    assert 401 == requests.get(url, timeout=5).status_code
    assert 200 == requests.get(url, headers=bearer, timeout=5).status_code


def test_up_runs_redis_and_the_demo_caches_there(stack: Stack) -> None:
    """``up`` starts redis-server on 127.0.0.1, and the demo counts cache hits there."""
    need("redis-server")
    assert any("] Redis          redis://127.0.0.1:" in line for line in stack.up.lines)
    name = c.MetricNames().cache_requests_total
    hits = f'sum({name}{{cache="{c.DEMO_CACHE_LANGUAGES}",result="{c.CACHE_HIT}"}}) > 0'
    check = lambda: _query(stack.url("prometheus"), hits) != []  # noqa: E731
    assert _poll(check, 30), "no cache hit of the languages cache reached Prometheus"


def test_up_ctrl_c_stops_every_child(stack: Stack) -> None:
    """SIGINT ends ``up`` with exit 0 and no process of any group it started is left."""
    assert 0 == stack.up.interrupt()
    assert "stopped every child process" in "\n".join(stack.up.lines)
    assert [] == process_groups_alive(stack.children.values())


def test_up_writes_a_report_of_its_run(stack: Stack) -> None:
    """Before it stops, ``up`` writes the performance report of its run and prints where."""
    output = "\n".join(stack.up.lines)
    html = stack.workdir / "report.html"
    assert f"report    {html}" in output
    assert "<h1>Performance review: limoneide</h1>" in html.read_text()
    assert "/projects" in (stack.workdir / "report.md").read_text()


def test_up_summary_shows_hit_ratio_and_calls_per_request(stack: Stack) -> None:
    """The summary printed at the end has a hit-ratio line per cache and calls-per-request
    lines read from Prometheus."""
    summary = "\n".join(stack.up.lines).split("== summary", 1)[-1]
    assert f"cache     {c.DEMO_CACHE_LANGUAGES}: " in summary
    assert "calls/req /projects db: " in summary


def test_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """A port already in use ends ``up`` with exit 2 and a message naming the port."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        port = sock.getsockname()[1]
        up = UpProcess(["--app-port", str(port), "--workdir", str(tmp_path), "--duration", "5"])
        code = (
            up.interrupt(timeout=60) if up.popen.wait(timeout=60) is None else up.popen.returncode
        )
    output = "\n".join(up.lines)
    assert 2 == code
    assert f"port {port} (--app-port) is in use" in output


def _app_only(tmp_path: Path, duration: str) -> Callable[[dict[str, int]], list[str]]:
    def args(ports: dict[str, int]) -> list[str]:
        return [
            *("--app-port", str(ports["app"]), "--workdir", str(tmp_path / "w")),
            *("--duration", duration, "--fault", "none", "--ai-latency", "0.01-0.02"),
        ]

    return args


def test_without_prometheus_the_app_runs_alone(tmp_path: Path) -> None:
    """With no prometheus on PATH, ``up`` prints the apt command and runs app + load."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    up, _ = _start_up(_app_only(tmp_path, "4"), env)
    code = up.finish()
    output = "\n".join(up.lines)
    assert 0 == code, output
    assert "apt-get install -y --no-install-recommends prometheus`" in output
    assert "requests  32 in" in output
    assert "without a Redis cache" in output


def test_sigterm_stops_up_and_its_children(tmp_path: Path) -> None:
    """SIGTERM (e.g. from a service manager) stops ``up`` like Ctrl-C: exit 0, no child left."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}  # app and load only: quick to start
    up, _ = _start_up(_app_only(tmp_path, "120"), env)
    children: dict[str, int] = {}
    try:
        children = up.pids()
        up.popen.send_signal(signal.SIGTERM)
        assert 0 == up.finish()
    finally:
        if up.popen.poll() is None:
            up.kill(children)
    assert [] == process_groups_alive(children.values())


def _limone_obs(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m limone_obs ARGS`` in the repository; fail the test unless it exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "limone_obs", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert 0 == result.returncode, result.stderr
    return result


def test_up_runs_your_own_app_with_your_own_spec(tmp_path: Path) -> None:
    """``--app`` and ``--spec``: the user's app takes the load, Prometheus scrapes it and
    evaluates the rules of the user's spec (its service name), not the demo's."""
    need("prometheus")
    need("alertmanager")
    spec = tmp_path / "slo.yaml"
    text = (ROOT / "alerts" / "slo.yaml").read_text()
    spec.write_text(text.replace("\nservice: limoneide\n", "\nservice: shop\n", 1))

    def args(ports: dict[str, int]) -> list[str]:
        return [
            *(f"--{name}-port={port}" for name, port in ports.items()),
            *("--workdir", str(tmp_path / "work"), "--duration", "90", "--workers", "2"),
            *("--scrape-interval", "1s", "--app", "tests.adopter.shop:create_app()"),
            *("--spec", str(spec), "--mix", "/items/1", "--rps", "4"),
        ]

    up, ports = _start_up(args)
    children: dict[str, int] = {}
    try:
        children = up.pids()
        prom = f"http://{LOOPBACK}:{ports['prometheus']}"
        served = f'{c.MetricNames().requests_total}{{endpoint="/items/<int:item_id>"}}'
        assert _poll(lambda: bool(_query(prom, served)), 60)
        groups = requests.get(f"{prom}/api/v1/rules", timeout=5).json()["data"]["groups"]
        services = {
            rule.get("labels", {}).get(c.LABEL_SLO_SERVICE)
            for group in groups
            for rule in group["rules"]
        } - {None}
        assert 0 == up.interrupt()
    finally:
        if up.popen.poll() is None:
            up.kill(children)
    assert {"shop"} == services
    assert "tests.adopter.shop:create_app()" in "\n".join(up.lines)
    # The status command it prints reads this spec (from the directory it ran in, the
    # default alerts/slo.yaml is the demo's).
    prom = f"http://{LOOPBACK}:{ports['prometheus']}"
    assert f"limone-obs status --prometheus {prom} --spec {spec}" in "\n".join(up.lines)
    # Named by the spec's service, and without the demo's Redis and its lines.
    log = (tmp_path / "work" / "logs" / "app.log").read_text()
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert {"shop"} == {event["service"] for event in events}
    assert ("redis" in children, "Redis" in "\n".join(up.lines)) == (False, False)
    # No advice to switch the demo's faults on, which the app of one's own does not have.
    assert "--fault" not in "\n".join(up.lines)


def test_the_runs_summary_reads_the_series_of_the_specs_namespace(tmp_path: Path) -> None:
    """An app of your own in namespace ``shop`` (its spec's): the end-of-run summary of
    cache hits and calls per request reads ``shop_*`` (it read the demo's ``limoneide_*``
    and said "no cache lookups"); without a usable spec, the default."""
    from limone_obs.stack.up import UpOptions, _namespace  # noqa: PLC0415

    spec = tmp_path / "slo.yaml"
    text = (ROOT / "alerts" / "slo.yaml").read_text()
    text = text.replace("\nnamespace: limoneide\n", "\nnamespace: shop\n", 1)
    spec.write_text(text.replace("limoneide_", "shop_"))
    assert _namespace(UpOptions(root=ROOT, spec=spec)) == "shop"
    assert _namespace(UpOptions(root=ROOT)) == c.DEFAULT_NAMESPACE
    assert _namespace(UpOptions(root=tmp_path)) == c.DEFAULT_NAMESPACE  # no spec there
