"""The ``limone-obs`` subcommands of the stack area: ``load``, ``webhook``, ``up``, ``status``."""

from __future__ import annotations

import math
import threading
import time

import click

from limone_obs.stack import load as load_mod
from limone_obs.stack._signals import stop_on_signals
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
    help="Comma-separated '[METHOD ]/path[=weight]' entries.",
)
@click.option("--max-requests", type=int, default=None, help="Default: rps x duration.")
@click.option("--allow-remote", is_flag=True, help="Allow a host other than loopback.")
def load_command(  # noqa: PLR0917 - click passes each option positionally
    url: str,
    rps: float,
    duration: float,
    concurrency: int,
    mix: str,
    max_requests: int | None,
    allow_remote: bool,
) -> None:
    """Send a bounded load to URL and print requests, errors and p50/p95/p99."""
    targets = load_mod.parse_mix(mix)
    load_mod.check_target(url, allow_remote=allow_remote)
    total = max_requests or max(1, math.ceil(rps * duration))
    with click.progressbar(length=total, label="load", show_pos=True) as bar:
        seen = [0]

        def advance(done: int) -> None:
            bar.update(done - seen[0])
            seen[0] = done

        result = load_mod.run_load(
            url,
            rps=rps,
            duration=duration,
            concurrency=concurrency,
            mix=targets,
            max_requests=max_requests,
            allow_remote=allow_remote,
            progress=advance,
        )
    click.echo(result.summary())


@click.command("webhook")
@click.option("--port", type=int, default=9095, show_default=True, help="Port on 127.0.0.1.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def webhook_command(port: int, duration: float | None) -> None:
    """Receive Alertmanager webhooks on 127.0.0.1 and print each alert as a JSON line."""
    stop = threading.Event()
    with (
        stop_on_signals(stop),
        WebhookReceiver(LOOPBACK, port, on_alert=print_alert_lines()) as receiver,
    ):
        click.echo(f"webhook receiver: {receiver.url} (Ctrl-C stops)", err=True)
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                break


commands: list[click.Command] = [load_command, webhook_command]
