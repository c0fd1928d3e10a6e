"""``limone-obs up``: the whole kit on 127.0.0.1, without Docker.

Starts the demo service (or the user's own app, ``--app module:factory()``) under gunicorn
with the packaged config (``python:limone_obs.gunicorn_conf``, multiprocess mode, several
workers), Prometheus with the SLO rules generated from ``alerts/slo.yaml`` (or ``--spec``)
and a short evaluation interval,
Alertmanager with the generated config routed to a webhook receiver in this process (it
prints every alert as one JSON line), and a bounded load. Optionally a scripted fault
(errors, latency or an outage) is switched on and off, so a page reaches the receiver.

Missing Prometheus or Alertmanager binaries are reported with the command that installs
them, and the rest runs without them. Data, configs and logs go to a work directory
that ``up`` creates and marks as its own (:data:`WORKDIR_MARKER`); each run starts with
empty data there, and ``up`` refuses a non-empty folder it did not create, and a folder
another run is using or whose children still run (:mod:`limone_obs.stack.claim`).
SIGINT/SIGTERM (Ctrl-C) or the end of ``duration`` stops every child process (by its
PID, SIGTERM then SIGKILL).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from limone_obs import conventions as c
from limone_obs.alerts.spec import SPEC_PATH, load_spec
from limone_obs.errors import LimoneObsError, StackError
from limone_obs.stack import _alerts, cache_summary, configs, procs, review
from limone_obs.stack.claim import WorkdirClaim
from limone_obs.stack.faultctl import switch_faults
from limone_obs.stack.load import DEFAULT_MIX, LoadResult, run_load
from limone_obs.stack.procs import LOOPBACK, Proc
from limone_obs.stack.webhook import WebhookReceiver, print_alert_lines

GUNICORN_CONF = f"python:{c.GUNICORN_CONFIG_MODULE}"
#: Seconds past the duration allowed for the load's requests in flight to finish.
LOAD_GRACE = 35.0
APP_SPEC = "limone_obs.demo:create_app()"
#: File in the work directory holding the demo's admin token (for ``limone-obs fault``).
ADMIN_TOKEN_FILE = "admin-token"
#: File ``up`` writes into its work directory; only a folder holding it is ever cleaned.
WORKDIR_MARKER = ".limone-obs-workdir"
WORKDIR_MARKER_TEXT = (
    "This folder was created by `limone-obs up`, which empties its data/, rules/ and\n"
    "logs/*.log at the start of every run. Do not keep your own files here.\n"
)
#: Fault scenarios: the admin-endpoint body that switches each on.
FAULTS: dict[str, dict[str, Any]] = {
    "errors": {},  # filled from --error-rate
    "latency": {"latency": {"ai_api": 2.0, "db": 0.5}},
    "outage": {"outage": True},
    "n-plus-one": {"n_plus_one": True},
}


@dataclass(frozen=True)
class UpOptions:
    """Settings of one ``limone-obs up`` run (the command's options, same names)."""

    root: Path = Path()
    workdir: Path = Path(".limone-obs")
    app_port: int = 8000
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    webhook_port: int = c.WEBHOOK_DEFAULT_PORT
    workers: int = 3
    duration: float = 180.0
    rps: float = 8.0
    concurrency: int = 8
    mix: str = DEFAULT_MIX
    scrape_interval: str = "2s"
    alert_for: str | None = "10s"
    fault: str = "errors"
    fault_after: float = 30.0
    fault_for: float = 90.0
    error_rate: float = 0.5
    ai_latency: str = "1.5-2.0"
    #: The user's app (``module:factory()``) instead of the demo; ``None``: the demo.
    app: str | None = None
    #: The SLO spec (rules, alerts); ``None``: ``<root>/alerts/slo.yaml``.
    spec: Path | None = None

    @property
    def spec_path(self) -> Path:
        """The run's SLO spec: ``spec``, else ``<root>/alerts/slo.yaml``."""
        return self.spec or self.root / SPEC_PATH

    @property
    def own_app(self) -> bool:
        """True when the user's app runs instead of the demo (no fault switches there)."""
        return self.app is not None


@dataclass
class UpReport:
    """What a run did: load result, alerts received (name, status) and whether it was cut."""

    load: LoadResult | None = None
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    interrupted: bool = False
    #: The HTML performance report of the run (None without Prometheus or data).
    review: Path | None = None
    #: Cache hit ratio and calls-per-request lines, read before the children stop.
    fixes: list[str] = field(default_factory=list)


class Stack:
    """The children of one run; :meth:`start` brings them up, :meth:`stop` takes them down."""

    def __init__(
        self,
        opts: UpOptions,
        say: Callable[[str], None],
        out: TextIO,
        stop: threading.Event | None = None,
    ) -> None:
        self.opts = opts
        self.stop_event = stop
        self.say = say
        self.out = out
        self.procs: dict[str, Proc] = {}
        self.receiver: WebhookReceiver | None = None
        services = ("prometheus", "alertmanager", "redis-server")
        self.binaries = {s: procs.find_binary(s) for s in services}
        #: The demo's Redis, once started (None: no redis-server, the demo runs uncached).
        self.redis_url: str | None = None
        # The fault switches need a token; the user's own, else a fresh one per run.
        self.admin_token = os.environ.get(c.DEMO_ADMIN_TOKEN_ENV) or secrets.token_urlsafe(24)
        #: The run's lock on its work folder, from start() until stop().
        self.claim: WorkdirClaim | None = None

    @property
    def app_url(self) -> str:
        return f"http://{LOOPBACK}:{self.opts.app_port}"

    def start(self) -> None:
        """Take the work folder (if :meth:`take_workdir` has not), check ports, write
        configs, start every child and wait until each answers."""
        if self.claim is None:
            self.take_workdir()
        self.opts = _resolve_ports(self.opts)
        _check_ports(self.opts, self.binaries)
        inputs = None
        if self.binaries["prometheus"] is not None:
            # Generate the alerting inputs first: a bad spec fails before anything starts.
            self.receiver = WebhookReceiver(
                LOOPBACK, self.opts.webhook_port, on_alert=print_alert_lines(self.out)
            )
            fast = self.opts.alert_for is not None
            inputs = _alerts.inputs(
                self.opts.root, self.receiver.url, fast=fast, spec=self.opts.spec
            )
        fresh_workdir(self.opts.workdir)
        _write_secret(self.opts.workdir / ADMIN_TOKEN_FILE, self.admin_token)
        if not self.opts.own_app:  # the demo's cache; a service of your own brings its own
            self._start_redis()
        self._start_app(inputs.service if inputs is not None else None)
        if inputs is not None:
            self._start_monitoring(inputs)

    def take_workdir(self) -> None:
        """Check the work folder, mark it as up's and lock it for this run: StackError,
        before anything in it changes, when it is not up's or another run is using it
        (see stack.claim)."""
        workdir = self.opts.workdir
        check_workdir(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / WORKDIR_MARKER).write_text(WORKDIR_MARKER_TEXT)
        self.claim = WorkdirClaim.take(workdir)

    def _start_app(self, service: str | None) -> None:
        """Start the app under gunicorn; its log lines name ``service`` (the spec's) unless
        ``LIMONE_OBS_SERVICE`` is set."""
        work = self.opts.workdir
        named = {c.ENV_SERVICE: service} if service and c.ENV_SERVICE not in os.environ else {}
        env = {
            **_base_env(),
            "GUNICORN_BIND": f"{LOOPBACK}:{self.opts.app_port}",
            "GUNICORN_WORKERS": str(self.opts.workers),
            "GUNICORN_THREADS": "4",
            "PROMETHEUS_MULTIPROC_DIR": str(work / "data" / "metrics"),
            "LIMONE_DEMO_DATA_DIR": str(work / "data" / "demo"),
            "LIMONE_DEMO_AI_LATENCY": self.opts.ai_latency,
            "LIMONE_OBS_ENV": os.environ.get("LIMONE_OBS_ENV", "local"),
            **named,
            c.DEMO_ADMIN_TOKEN_ENV: self.admin_token,
            **({c.DEMO_REDIS_URL_ENV: self.redis_url} if self.redis_url else {}),
        }
        app = self.opts.app or APP_SPEC
        argv = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, app]
        proc = self._started("app", procs.start("app", argv, work / "logs" / "app.log", env=env))
        # The user's app has no /health of ours; the kit's metrics path answers in both.
        ready = "/metrics" if self.opts.own_app else "/health"
        procs.wait_http(proc, self.app_url + ready, timeout=60, stop=self.stop_event)

    def _start_redis(self) -> None:
        """Start redis-server on a free 127.0.0.1 port, in memory only, if installed."""
        binary = self.binaries["redis-server"]
        if binary is None:
            return
        port, work = procs.free_port(), self.opts.workdir
        argv = procs.redis_argv(binary, port, work / "data" / "redis")
        proc = self._started("redis", procs.start("redis", argv, work / "logs" / "redis.log"))
        procs.wait_redis(proc, port)
        self.redis_url = f"redis://{LOOPBACK}:{port}/0"

    def _start_monitoring(self, inputs: _alerts.AlertInputs) -> None:
        work = self.opts.workdir
        am_target = self._start_alertmanager(inputs.alertmanager)
        rule_files = _write_rules(work / "rules", inputs.rules, self.opts.alert_for)
        text = configs.prometheus_config(
            job=inputs.job,
            app_target=f"{LOOPBACK}:{self.opts.app_port}",
            alertmanager_target=am_target,
            scrape_interval=self.opts.scrape_interval,
            rule_files=rule_files,
        )
        (work / "prometheus.yml").write_text(text)
        port = self.opts.prometheus_port
        argv = procs.prometheus_argv(
            str(self.binaries["prometheus"]),
            work / "prometheus.yml",
            work / "data" / "prometheus",
            port,
        )
        self._start("prometheus", argv, f"http://{LOOPBACK}:{port}/-/ready")

    def _start_alertmanager(self, config_text: str) -> str | None:
        binary = self.binaries["alertmanager"]
        if binary is None:
            return None
        work, port = self.opts.workdir, self.opts.alertmanager_port
        (work / "alertmanager.yml").write_text(config_text)
        argv = procs.alertmanager_argv(
            binary, work / "alertmanager.yml", work / "data" / "alertmanager", port
        )
        self._start("alertmanager", argv, f"http://{LOOPBACK}:{port}/-/ready")
        return f"{LOOPBACK}:{port}"

    def _start(self, name: str, argv: list[str], ready_url: str) -> None:
        proc = self._started(
            name, procs.start(name, argv, self.opts.workdir / "logs" / f"{name}.log")
        )
        procs.wait_http(proc, ready_url, timeout=60, stop=self.stop_event)

    def _started(self, name: str, proc: Proc) -> Proc:
        """Keep child ``proc``, and record it in the work folder (see stack.claim)."""
        self.procs[name] = proc
        if self.claim is not None:
            self.claim.started(name, proc.pid)
        return proc

    def dead(self) -> Proc | None:
        """A child that exited on its own, if any."""
        return next((p for p in self.procs.values() if not p.alive() and not p.stopped), None)

    def stop(self) -> None:
        """Stop every child, newest first, then the webhook receiver; give the work
        folder up."""
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        if self.receiver is not None:
            self.receiver.stop()
        if self.claim is not None:
            self.claim.release()
            self.claim = None


def _base_env() -> dict[str, str]:
    # The gunicorn config chooses the multiprocess directory; never inherit another one.
    return {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}


def _resolve_ports(opts: UpOptions) -> UpOptions:
    """Replace every port given as 0 by a free one."""
    for name in ("app_port", "prometheus_port", "alertmanager_port", "webhook_port"):
        if getattr(opts, name) == 0:
            opts = replace(opts, **{name: procs.free_port()})  # type: ignore[arg-type]
    return opts


def _check_ports(opts: UpOptions, binaries: dict[str, str | None]) -> None:
    """Raise StackError naming a port given twice, or every port that is taken."""
    wanted = {"--app-port": opts.app_port}
    if binaries["prometheus"] is not None:
        wanted["--prometheus-port"] = opts.prometheus_port
        wanted["--webhook-port"] = opts.webhook_port
        if binaries["alertmanager"] is not None:
            wanted["--alertmanager-port"] = opts.alertmanager_port
    seen: dict[int, str] = {}
    for option, port in wanted.items():
        if port in seen:
            raise StackError(f"{option} {port} is also {seen[port]}: give each its own port")
        seen[port] = option
    taken = [(option, port) for option, port in wanted.items() if not procs.port_is_free(port)]
    if taken:
        ports = ", ".join(f"{port} ({option})" for option, port in taken)
        options = " ".join(f"{option} <another port>" for option, _ in taken)
        are = "port {} is" if len(taken) == 1 else "ports {} are"
        raise StackError(
            f"{are.format(ports)} in use on {LOOPBACK}: stop what listens there or pass "
            f"{options} (0 picks a free one)"
        )


def check_workdir(workdir: Path) -> None:
    """Raise StackError unless ``workdir`` is absent, empty, or marked as ours.

    ``up`` deletes the data, rules and logs of an earlier run, so it only ever works in a
    folder it created itself (holding :data:`WORKDIR_MARKER`): ``--workdir .`` in a rules
    repository or ``--workdir ~`` is refused, nothing in it touched.
    """
    if workdir.exists() and not workdir.is_dir():
        raise StackError(f"--workdir {workdir}: not a folder; pass a new folder")
    if not workdir.is_dir() or (workdir / WORKDIR_MARKER).is_file():
        return
    if any(workdir.iterdir()):
        raise StackError(
            f"--workdir {workdir.resolve()}: this folder was not created by limone-obs up "
            f"(no {WORKDIR_MARKER} file) and is not empty; up deletes the data, rules and "
            "logs of its earlier runs, so it refuses to work here: pass a new or empty "
            "folder, e.g. --workdir .limone-obs"
        )


def fresh_workdir(workdir: Path) -> None:
    """Create or reuse ``workdir`` (see :func:`check_workdir`), marked as ours; empty the
    data, rules and logs of an earlier run there. Nothing outside those subfolders goes."""
    check_workdir(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / WORKDIR_MARKER).write_text(WORKDIR_MARKER_TEXT)
    for sub in ("prometheus", "alertmanager", "metrics", "demo", "redis"):
        shutil.rmtree(workdir / "data" / sub, ignore_errors=True)
        (workdir / "data" / sub).mkdir(parents=True)
    shutil.rmtree(workdir / "rules", ignore_errors=True)
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    for log in (workdir / "logs").glob("*.log"):
        log.unlink()


def _write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (created so, never widened)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")


def _write_rules(folder: Path, rules: dict[str, str], alert_for: str | None) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in sorted(rules.items()):
        content = configs.fast_rules(text, alert_for) if alert_for is not None else text
        (folder / name).write_text(content)
        paths.append(str((folder / name).resolve()))
    return paths


class _Clock:
    """Prints ``[  12s] message`` lines, seconds counted from the start of the run."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.began = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def say(self, message: str) -> None:
        self.out.write(f"[{self.elapsed():4.0f}s] {message}\n")
        self.out.flush()


class _Load:
    """The load generator in a background thread, for the whole run."""

    def __init__(self, opts: UpOptions, app_url: str) -> None:
        self.done = 0
        self.result: LoadResult | None = None
        self.stop = threading.Event()
        self.error: Exception | None = None
        self._thread = threading.Thread(
            target=self._run, args=(opts, app_url), name="up-load", daemon=True
        )
        self._thread.start()

    def _run(self, opts: UpOptions, app_url: str) -> None:
        try:
            self.result = run_load(
                app_url,
                rps=opts.rps,
                duration=opts.duration,
                concurrency=opts.concurrency,
                mix=opts.mix,
                stop=self.stop,
                progress=self._progress,
            )
        except Exception as exc:
            self.error = exc

    def _progress(self, done: int) -> None:
        self.done = done

    def finish(self) -> LoadResult | None:
        self.stop.set()
        self._thread.join(timeout=60)
        return self.result


def run(opts: UpOptions, out: TextIO, stop: threading.Event) -> UpReport:
    """Run the stack for ``opts.duration`` seconds or until ``stop`` is set; stop everything.

    Prints progress, URLs, alerts (JSON lines) and a summary to ``out``. Raises StackError
    when a port is taken or a child fails to start or dies; children are stopped anyway.
    """
    clock = _Clock(out)
    stack = Stack(opts, clock.say, out, stop)
    report = UpReport()
    load: _Load | None = None
    _report_missing(stack.binaries, clock.say, own_app=stack.opts.own_app)
    try:
        stack.take_workdir()
        clock.say(f"starting {opts.app or 'the demo service'} under gunicorn ...")
        stack.start()
        _print_urls(stack, clock.say)
        load = _Load(stack.opts, stack.app_url)
        started = time.time()
        report.interrupted = _timeline(stack, load, clock, stop)
        if "prometheus" in stack.procs:
            prom = f"http://{LOOPBACK}:{stack.opts.prometheus_port}"
            spec = stack.opts.spec_path
            report.review = review.write_run_report(prom, spec, started, opts.workdir, clock.say)
    finally:
        report.load = load.finish() if load is not None else None
        report.fixes = _fixes_summary(stack, time.time() - clock.elapsed())
        had_children = bool(stack.procs)
        stack.stop()
        if had_children:
            clock.say("stopped every child process")
    if stack.receiver is not None:
        report.alerts = Counter(
            (str(a.get("labels", {}).get("alertname")), str(a.get("status")))
            for a in stack.receiver.alerts()
        )
    _print_summary(stack, report, out)
    return report


def _report_missing(
    binaries: dict[str, str | None], say: Callable[[str], None], *, own_app: bool
) -> None:
    for service, path in binaries.items():
        if path is None and not (own_app and service == "redis-server"):  # the demo's only
            say(
                f"{service} not found on PATH: install it with `sudo {procs.install_hint(service)}`"
            )
    if binaries["prometheus"] is None:
        say("running the demo service and the load without Prometheus and Alertmanager")
    if binaries["redis-server"] is None and not own_app:
        say("running the demo service without a Redis cache (it says so in its log)")


def _print_urls(stack: Stack, say: Callable[[str], None]) -> None:
    o = stack.opts
    if o.own_app:
        lines = [f"app            {stack.app_url}  ({o.app}; load: {o.mix})"]
    else:
        demo = "/projects  (page: /editor/1, AI: POST /ai/complete)"
        lines = [f"app            {stack.app_url}{demo}"]
    lines.append(f"metrics        {stack.app_url}/metrics")
    if "prometheus" in stack.procs:
        prom = f"http://{LOOPBACK}:{o.prometheus_port}"
        lines += [
            f"Prometheus     {prom}/graph  (API: {prom}/api/v1/rules, {prom}/api/v1/alerts)",
            f"SLO status     limone-obs status --prometheus {prom}{_spec_option(o)}",
        ]
    if "alertmanager" in stack.procs:
        lines.append(f"Alertmanager   http://{LOOPBACK}:{o.alertmanager_port}/api/v2/alerts")
    if stack.redis_url is not None:
        lines.append(
            f"Redis          {stack.redis_url}  (the demo's cache of languages and AI answers)"
        )
    if stack.receiver is not None:
        lines.append(f"webhook        {stack.receiver.url}  (alerts print below as JSON lines)")
    if not o.own_app:
        lines.append(
            f"faults         limone-obs fault --url {stack.app_url} --token-file "
            f"{o.workdir / ADMIN_TOKEN_FILE} --error-rate 0.5  (--off)"
        )
    lines += [
        f"logs           {o.workdir / 'logs'}  (app.log: the service's JSON lines)",
        "pids           " + " ".join(f"{n}={p.pid}" for n, p in stack.procs.items()),
    ]
    for line in lines:
        say(line)


def _spec_option(o: UpOptions) -> str:
    """`` --spec <path>`` when the spec of this run is not the one ``limone-obs status``
    reads from the current directory (``alerts/slo.yaml``), else nothing."""
    spec = o.spec_path.resolve()
    if spec == (Path.cwd() / SPEC_PATH).resolve():
        return ""
    return f" --spec {shlex.quote(str(spec))}"


def _timeline(stack: Stack, load: _Load, clock: _Clock, stop: threading.Event) -> bool:
    """Run the fault scenario until the duration ends (False) or ``stop`` is set (True)."""
    opts, began = stack.opts, time.monotonic()
    on_at = opts.fault_after if opts.fault != "none" else float("inf")
    off_at, fault_on, next_note = on_at + opts.fault_for, False, 15.0
    while not stop.wait(0.25):
        now = time.monotonic() - began
        _check_alive(stack, load)
        if not fault_on and on_at <= now < off_at:
            fault_on = True
            state = json.dumps(switch_faults(stack.app_url, _fault_body(opts), stack.admin_token))
            clock.say(f"fault ON ({opts.fault}): {state}")
        elif fault_on and now >= off_at:
            fault_on = False
            state = json.dumps(switch_faults(stack.app_url, None, stack.admin_token))
            clock.say(f"fault OFF: {state}")
        if now >= next_note:
            next_note += 15.0
            clock.say(f"load: {load.done} requests so far")
        # The load is bounded by the duration itself; its last requests may still be in
        # flight at the deadline, so wait for it (requests time out, hence the grace).
        if load.result is not None or now >= opts.duration + LOAD_GRACE:
            return False
    return True


def _fault_body(opts: UpOptions) -> dict[str, Any]:
    if opts.fault == "errors":
        return {"error_rate": opts.error_rate}
    return FAULTS[opts.fault]


def _check_alive(stack: Stack, load: _Load) -> None:
    dead = stack.dead()
    if dead is not None:
        raise StackError(
            f"{dead.name} (pid {dead.pid}) exited with code {dead.popen.returncode}; "
            f"its last lines ({dead.log}):\n{dead.log_tail()}"
        )
    if load.error is not None:
        raise StackError(f"the load generator failed: {load.error}")


def _print_summary(stack: Stack, report: UpReport, out: TextIO) -> None:
    lines = ["", "== summary"]
    if report.load is not None:
        lines.append(report.load.summary())
    lines += report.fixes
    if stack.receiver is not None:
        received = ", ".join(f"{n} {s} x{k}" for (n, s), k in sorted(report.alerts.items()))
        lines.append(f"alerts    {received or 'none received'}")
    work = stack.opts.workdir
    sample = _sample_access_line(work / "logs" / "app.log")
    if sample is not None:
        lines.append(f"log line  {sample}")
    if report.review is not None:
        lines.append(f"report    {report.review}  (open in a browser; Markdown beside it)")
    lines += [
        "",
        "where to look:",
        f"  {work / 'logs' / 'app.log'}  the service's JSON log lines (one object per line)",
        f"  {work / 'logs'}  Prometheus and Alertmanager logs",
        f"  {work}  the configs used (prometheus.yml, rules/, alertmanager.yml)",
        "  run longer: limone-obs up --duration 900"
        + (
            ""  # --app: the fault switches are the demo's own endpoint
            if stack.opts.own_app
            else "; the demo's faults: limone-obs up --fault errors|latency|outage|n-plus-one "
            '(the README\'s "Run the whole kit: the fault scenario")'
        ),
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


def _fixes_summary(stack: Stack, began: float) -> list[str]:
    """Hit ratio of each cache and calls per request (lowest -> highest) of the run."""
    if "app" not in stack.procs or not stack.procs["app"].alive():
        return []
    names = c.MetricNames(_namespace(stack.opts))
    none = "no cache lookups" if stack.opts.own_app else cache_summary.DEMO_NO_CACHE
    lines = cache_summary.hit_ratio_lines(stack.app_url, names, none=none)
    if "prometheus" in stack.procs:
        prometheus = f"http://{LOOPBACK}:{stack.opts.prometheus_port}"
        lines += cache_summary.calls_per_request_lines(prometheus, names, began, time.time())
    return lines


def _namespace(opts: UpOptions) -> str:
    """The metric namespace of the run's spec (an app of your own may have its own), else
    the default."""
    try:
        return load_spec(opts.spec_path).namespace
    except LimoneObsError:  # the run went on without a usable spec (no Prometheus)
        return c.DEFAULT_NAMESPACE


def _sample_access_line(path: Path) -> str | None:
    """The last access line of the service's log (a JSON object), to show what it writes."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    return next((line for line in reversed(lines) if '"limone_obs.access"' in line), None)
