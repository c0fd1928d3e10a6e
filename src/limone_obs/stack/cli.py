"""The ``limone-obs`` subcommands of the stack area: ``load``, ``webhook``, ``up``, ``status``."""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from limone_obs import conventions as c
from limone_obs.alerts.spec import load_spec
from limone_obs.demo.app import parse_latency_range
from limone_obs.errors import ConfigError
from limone_obs.stack import configs, up
from limone_obs.stack import load as load_mod
from limone_obs.stack import status as status_mod
from limone_obs.stack._signals import stop_on_signals
from limone_obs.stack.faultctl import read_faults, switch_faults
from limone_obs.stack.procs import LOOPBACK
from limone_obs.stack.webhook import WebhookReceiver, print_alert_lines


@click.command("load")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="Base URL.")
@click.option("--rps", type=float, default=10.0, show_default=True, help="Requests per second.")
@click.option("--duration", type=float, default=30.0, show_default=True, help="Seconds.")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Client threads.")
@click.option(
    "--mix",
    default=load_mod.DEFAULT_MIX,
    show_default=True,
    help="Comma-separated '[METHOD ]/path[=weight]' entries (weight: a whole number >= 1, "
    "default 1).",
)
@click.option("--max-requests", type=int, default=None, help="Default: rps x duration.")
@click.option("--allow-remote", is_flag=True, help="Allow a host other than loopback.")
@click.option(
    "--max-error-rate",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Exit 1 when 5xx answers and transport failures exceed this share of requests.",
)
@click.option(
    "--queue-header/--no-queue-header",
    default=True,
    show_default=True,
    help=(
        f"Send {c.QUEUE_START_HEADER}: t=<now> on each request, as a proxy (nginx) would, so "
        "the app records queue time; --no-queue-header for an app with no proxy in front."
    ),
)
def load_command(  # noqa: PLR0917 - click passes each option positionally
    url: str,
    rps: float,
    duration: float,
    concurrency: int,
    mix: str,
    max_requests: int | None,
    allow_remote: bool,
    max_error_rate: float,
    queue_header: bool,
) -> None:
    """Send a bounded load to URL and print requests, errors and p50/p95/p99.

    Each request carries X-Request-Start (the time it left) as a proxy in front of the
    app would set it: the app's queue-time series and the UX dashboard's queue time then
    show the load generator's own delay. Pass --no-queue-header when your app has no
    proxy. The first line says what is sent; a progress bar follows on a terminal.

    Exits 0 when the run passed; 1 when any request got no HTTP answer (refused, reset,
    timed out) or errors exceeded --max-error-rate (5xx answers count as errors in the
    summary but fail the run only through --max-error-rate); 2 on invalid options.
    """
    targets = load_mod.parse_mix(mix)
    load_mod.check_target(url, allow_remote=allow_remote)
    planned = max(1, math.ceil(rps * duration))
    total = min(max_requests, planned) if max_requests else planned
    header = f"with {c.QUEUE_START_HEADER}" if queue_header else f"no {c.QUEUE_START_HEADER}"
    click.echo(f"load: {total} requests to {url} at {rps:g}/s ({header})")
    with _progress(total) as advance:
        result = load_mod.run_load(
            url,
            rps=rps,
            duration=duration,
            concurrency=concurrency,
            mix=targets,
            max_requests=max_requests,
            allow_remote=allow_remote,
            progress=advance,
            queue_header=queue_header,
        )
    click.echo(result.summary())
    reason = result.failed(max_error_rate)
    if reason is not None:
        click.echo(f"error: {reason}", err=True)
        raise SystemExit(1)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar's update callback on a terminal; None when stdout is a file or a
    pipe, where click would print only the bar's label, as a bare line."""
    if not sys.stdout.isatty():
        yield None
        return
    with click.progressbar(length=total, label="sent", show_pos=True) as bar:
        seen = [0]

        def advance(done: int) -> None:
            bar.update(done - seen[0])
            seen[0] = done

        yield advance


@click.command("webhook")
@click.option("--host", default=LOOPBACK, show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=int,
    default=c.WEBHOOK_DEFAULT_PORT,
    show_default=True,
    help="Port (0: a free one).",
)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def webhook_command(host: str, port: int, duration: float | None) -> None:
    """Receive Alertmanager webhooks and print each alert as one JSON line on stdout.

    Listens on 127.0.0.1 unless --host says otherwise (0.0.0.0 inside a container).
    """
    stop = threading.Event()
    with (
        stop_on_signals(stop),
        WebhookReceiver(host, port, on_alert=print_alert_lines()) as receiver,
    ):
        click.echo(f"webhook receiver: {receiver.url} (Ctrl-C stops)", err=True)
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                break


def _port_option(name: str, default: int, what: str) -> Callable[[FC], FC]:
    return click.option(
        f"--{name}-port",
        type=click.IntRange(0, 65535),
        default=default,
        show_default=True,
        help=f"Port of {what} on 127.0.0.1 (0 picks a free one).",
    )


FC = TypeVar("FC", bound=Callable[..., Any])
#: Where ``limone-obs up`` (default --workdir) leaves the demo's admin token.
DEFAULT_TOKEN_FILE = Path(".limone-obs") / up.ADMIN_TOKEN_FILE


@click.command("up")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The limone-obs checkout (exporter/, alerts/).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".limone-obs"),
    show_default=True,
    help="Configs, data and logs: a folder up creates and marks as its own; a non-empty "
    "folder it did not create is refused (up empties data/, rules/, logs/ each run), and "
    "so is one another up is using or whose earlier run left children running.",
)
@_port_option("app", 8000, "the demo service")
@_port_option("prometheus", 9090, "Prometheus")
@_port_option("alertmanager", 9093, "Alertmanager")
@_port_option("webhook", c.WEBHOOK_DEFAULT_PORT, "the webhook receiver")
@click.option(
    "--workers", type=click.IntRange(1, 32), default=3, show_default=True, help="gunicorn workers."
)
@click.option(
    "--duration",
    type=click.FloatRange(1, 86400),
    default=180,
    show_default=True,
    help="Seconds to run before stopping by itself (Ctrl-C stops earlier).",
)
@click.option(
    "--rps",
    type=click.FloatRange(0.1, 1000),
    default=8,
    show_default=True,
    help="Load: requests per second.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Load: client threads.",
)
@click.option(
    "--mix",
    default=None,
    help="Load: '[METHOD ]/path[=weight],...', weights whole numbers >= 1 (default: the "
    "demo's mix; with --app, GET /).",
)
@click.option(
    "--scrape-interval",
    default="2s",
    show_default=True,
    help="Prometheus scrape and rule evaluation interval.",
)
@click.option(
    "--alert-for",
    default="10s",
    show_default=True,
    help="Cap every alert's `for:` (alerts on missing series: 1m at least) and use 1s/5s "
    "Alertmanager grouping, so the demo pages within a minute; 'production' keeps the "
    "generated values.",
)
@click.option(
    "--fault",
    type=click.Choice(["errors", "latency", "outage", "n-plus-one", "none"]),
    default=None,
    help="Fault switched on during the run (the demo's switches; default: errors, with "
    "--app: none).",
)
@click.option(
    "--fault-after",
    type=click.FloatRange(0),
    default=30,
    show_default=True,
    help="Seconds after start to switch the fault on.",
)
@click.option(
    "--fault-for",
    type=click.FloatRange(0),
    default=90,
    show_default=True,
    help="Seconds the fault stays on.",
)
@click.option(
    "--error-rate",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Share of requests answered 500 by the 'errors' fault.",
)
@click.option(
    "--ai-latency",
    default="1.5-2.0",
    show_default=True,
    help="Seconds a simulated AI call takes, min-max.",
)
@click.option(
    "--app",
    default=None,
    metavar="MODULE:FACTORY()",
    help="Run your own app instead of the demo, e.g. 'yourapp:create_app()' (importable "
    "from the current directory; instrumented with limone_obs.Metrics).",
)
@click.option(
    "--spec",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Your SLO spec for the rules and alerts (default: alerts/slo.yaml under --root).",
)
def up_command(**options: Any) -> None:
    """Run the demo service, Prometheus, Alertmanager, a webhook receiver and load on 127.0.0.1.

    With --app (and --spec), your own app and SLOs run instead of the demo's.
    Prints the URLs, every alert the webhook receives (one JSON line each) and a summary.
    Stops by itself after --duration seconds, or on Ctrl-C; every child process is stopped.
    """
    _own_app_defaults(options)
    if options["alert_for"] == "production":
        options["alert_for"] = None
    else:
        configs.duration_seconds(options["alert_for"], "--alert-for")
    configs.duration_seconds(options["scrape_interval"], "--scrape-interval")
    load_mod.parse_mix(options["mix"])
    try:
        parse_latency_range(options["ai_latency"])
    except ConfigError:
        value = options["ai_latency"]
        raise ConfigError(f"--ai-latency {value!r}: use min-max seconds, e.g. 1.5-2.0") from None
    opts = up.UpOptions(**options)
    stop = threading.Event()
    with stop_on_signals(stop):
        up.run(opts, sys.stdout, stop)


@click.command("fault")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="Demo service.")
@click.option("--error-rate", type=click.FloatRange(0, 1), help="Share of requests answered 500.")
@click.option(
    "--latency",
    multiple=True,
    metavar="DEP=SECONDS",
    help="Extra latency of a dependency (ai_api, db, redis); repeatable.",
)
@click.option("--outage/--no-outage", default=None, help="Answer every request 503.")
@click.option(
    "--n-plus-one/--no-n-plus-one",
    default=None,
    help="GET /projects reads each project with a query of its own (an N+1 loop).",
)
@click.option("--off", is_flag=True, help="Switch every fault off.")
@click.option(
    "--token",
    envvar=c.DEMO_ADMIN_TOKEN_ENV,
    default=None,
    help=f"The service's admin token (default: ${c.DEMO_ADMIN_TOKEN_ENV}, else --token-file).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"File holding the token (default: {DEFAULT_TOKEN_FILE} if it exists, written by up).",
)
def fault_command(  # noqa: PLR0917 - click passes each option positionally
    url: str,
    error_rate: float | None,
    latency: tuple[str, ...],
    outage: bool | None,
    n_plus_one: bool | None,
    off: bool,
    token: str | None,
    token_file: Path | None,
) -> None:
    """Show or change the demo service's fault switches (its admin endpoint).

    A service with an admin token (``limone-obs up`` always sets one) needs it; one
    without answers loopback clients only.
    """
    load_mod.check_target(url)
    token = token or _read_token(token_file)
    changes = _fault_changes(error_rate, latency, outage)
    if n_plus_one is not None:
        changes["n_plus_one"] = n_plus_one
    if off or changes:
        state = switch_faults(url, None if off else changes, token)
    else:
        state = read_faults(url, token)
    click.echo(json.dumps(state, sort_keys=True))


def _own_app_defaults(options: dict[str, Any]) -> None:
    """Fill --fault and --mix for the demo or for the user's --app; check --app."""
    app, fault = options["app"], options["fault"]
    if app is not None and (":" not in app or not app.split(":", 1)[0]):
        raise ConfigError(f"--app {app!r}: use MODULE:FACTORY(), e.g. 'yourapp:create_app()'")
    if app is not None and fault not in (None, "none"):
        raise ConfigError(
            f"--fault {fault}: the fault switches are the demo's admin endpoint, which your "
            "app does not have; with --app leave --fault out (or use --fault none)"
        )
    options["fault"] = fault or ("none" if app is not None else "errors")
    options["mix"] = options["mix"] or ("/" if app is not None else load_mod.DEFAULT_MIX)


def _fault_changes(
    error_rate: float | None, latency: tuple[str, ...], outage: bool | None
) -> dict[str, Any]:
    """The partial fault state the options ask for ({} when none is given)."""
    changes: dict[str, Any] = {}
    if error_rate is not None:
        changes["error_rate"] = error_rate
    if latency:
        changes["latency"] = _latency_pairs(latency)
    if outage is not None:
        changes["outage"] = outage
    return changes


def _read_token(path: Path | None) -> str | None:
    """The token in ``path`` (ConfigError if unreadable), else in the default file if any."""
    if path is None:
        if not DEFAULT_TOKEN_FILE.is_file():
            return None
        path = DEFAULT_TOKEN_FILE
    try:
        return path.read_text().strip() or None
    except OSError as exc:
        raise ConfigError(f"--token-file {path}: {exc.strerror or exc}") from None


def _latency_pairs(items: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for item in items:
        dep, _, seconds = item.partition("=")
        try:
            out[dep] = float(seconds)
        except ValueError:
            hint = f"{item!r}: use DEP=SECONDS, e.g. ai_api=2"
            raise click.BadParameter(hint, param_hint="--latency") from None
    return out


@click.command("status")
@click.option(
    "--prometheus",
    "prometheus_url",
    default="http://127.0.0.1:9090",
    show_default=True,
    help="Prometheus evaluating the generated SLO rules.",
)
@click.option(
    "--spec",
    "spec_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("alerts/slo.yaml"),
    show_default=True,
    help="The SLO spec.",
)
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C.")
@click.option(
    "--interval",
    type=click.FloatRange(0.5),
    default=5,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@click.option(
    "--count",
    type=click.IntRange(1),
    default=None,
    help="With --watch: stop after this many refreshes.",
)
def status_command(
    prometheus_url: str, spec_path: Path, watch: bool, interval: float, count: int | None
) -> None:
    """Table of every SLO: objective, SLI, error budget left, burn rates, firing alerts.

    Below it, the kit-health alerts firing (exporter problems, dropped log lines,
    saturated workers, N+1 calls, traffic stopped) with their severity and the labels
    that tell one firing from another (instance, problem, endpoint), or "kit health:
    none firing"; left out when the spec switches them off and none fires.

    Exits 0 when the table shows something (at least one SLO with a value, or a firing
    SLO alert; kit-health alerts do not count); 1 when every cell is "-": no SLO of the
    spec has data in that Prometheus. A message on stderr then says why (the spec's rule
    files not in Prometheus's rule_files, rules not evaluated yet, another service's spec,
    or no series scraped) and what to do; 2 when Prometheus cannot be queried. With
    --watch, the last table shown decides.

    When Prometheus holds less than the SLO period of the job (a fresh one), a note at
    the end says the period figures cover that time alone.

    When the table shows something, a warning on stderr (exit 0) names any SLO of the
    spec Prometheus has no recording rule of (its rule files come from an older build of
    the spec: rebuild and reload them), any SLO whose SLI or budget shows "-" while
    some of its rules are not evaluated yet, and a spec whose ``job`` Prometheus scrapes
    no target of (the values shown then come from rules of another spec of the service).
    """
    spec = load_spec(spec_path)
    prom = status_mod.Prometheus(prometheus_url)
    stop = threading.Event()
    shown = 0
    empty = False
    with stop_on_signals(stop):
        while True:
            rows = status_mod.collect(prom, spec)
            if watch:
                click.clear()
                click.echo(f"{spec.service} SLOs at {prometheus_url}  {time.strftime('%H:%M:%S')}")
            click.echo(status_mod.render(rows))
            health = status_mod.render_health(spec, status_mod.collect_health(prom, spec))
            if health is not None:
                click.echo(f"\n{health}")
            note = status_mod.history_note(spec, status_mod.history_seconds(prom, spec))
            if note is not None and status_mod.has_values(rows):
                click.echo(f"\n{note}")
            empty = not status_mod.has_values(rows)
            if empty:  # a table of "-" alone reads like "all fine, no traffic"
                groups, scraped = prom.rule_groups(), prom.scraped(spec.job)
                hint = status_mod.no_data_hint(spec, spec_path, prom.url, groups, scraped)
                click.echo(f"error: {hint}", err=True)
            else:
                lacking = status_mod.rules_hint(spec, spec_path, prom.url, rows, prom.rule_groups())
                if lacking is not None:
                    click.echo(f"warning: {lacking}", err=True)
                if not prom.scraped(spec.job):
                    unscraped = status_mod.unscraped_job_hint(spec, spec_path)
                    click.echo(f"warning: {unscraped}", err=True)
            shown += 1
            if not watch or (count is not None and shown >= count) or stop.wait(interval):
                break
    if empty:
        sys.exit(1)


commands: list[click.Command] = [
    load_command,
    webhook_command,
    up_command,
    fault_command,
    status_command,
]
