"""Child processes on 127.0.0.1: find binaries, pick ports, start, wait until ready, stop.

Shared by ``limone-obs up`` and the integration tests, so both start Prometheus,
Alertmanager and gunicorn the same way. Every child runs in its own process group and
is stopped by its PID (SIGTERM, then SIGKILL after a grace period): nothing else is
ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

from limone_obs.errors import StackError

#: Executable names tried, in order, for each service.
BINARIES: Mapping[str, tuple[str, ...]] = {
    "prometheus": ("prometheus",),
    "promtool": ("promtool",),
    "alertmanager": ("alertmanager", "prometheus-alertmanager"),
    "amtool": ("amtool",),
    "docker-compose": ("docker-compose",),
    "chromium": ("chromium", "chromium-browser"),
    "chromedriver": ("chromedriver",),
    "redis-server": ("redis-server",),
}
#: Debian package providing each service.
PACKAGES: Mapping[str, str] = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
    "docker-compose": "docker-compose",
    "redis-server": "redis-server",
}
LOOPBACK = "127.0.0.1"
#: What Prometheus, Alertmanager, gunicorn and redis-server log when their port is taken
#: (lowercased).
_PORT_TAKEN = "address already in use"


class PortInUseError(StackError):
    """A child exited because its port was taken: a port checked free (or chosen by
    :func:`free_port`) can be taken by another process before the child binds it."""


def find_binary(service: str) -> str | None:
    """Return the path of ``service``'s executable on PATH (see :data:`BINARIES`), or None."""
    for name in BINARIES[service]:
        path = shutil.which(name)
        if path:
            return path
    return None


def install_hint(service: str) -> str:
    """Return the command that installs ``service`` on Debian."""
    return f"apt-get install -y --no-install-recommends {PACKAGES[service]}"


def require_binary(service: str) -> str:
    """Return ``service``'s executable path, or raise StackError saying how to install it."""
    path = find_binary(service)
    if path is None:
        names = " or ".join(BINARIES[service])
        raise StackError(f"{names} not found on PATH: install it with `{install_hint(service)}`")
    return path


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Return True if nothing listens on ``host:port`` and it can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


@dataclass
class Proc:
    """One child process started by :func:`start`; its output goes to ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    stopped: bool = field(default=False)

    @property
    def pid(self) -> int:
        """The child's process id (also its process group id)."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while the child has not exited."""
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """Return the last ``lines`` lines the child wrote, for error messages."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the child's process group (it and the workers it forked)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)

    def stop(self, grace: float = 10.0) -> int | None:
        """Stop the child: SIGTERM, wait up to ``grace`` s, then SIGKILL. Return its exit code."""
        if not self.stopped:
            self.stopped = True
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(timeout=grace)
        return self.popen.returncode


def start(
    name: str,
    argv: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Proc:
    """Start ``argv`` in a new process group, output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    return Proc(name=name, popen=popen, log=log)


def wait_http(
    proc: Proc,
    url: str,
    timeout: float = 30.0,
    expect: int = 200,
    *,
    stop: threading.Event | None = None,
) -> None:
    """Poll ``url`` until it answers ``expect``; raise StackError if ``proc`` dies or times out.

    Setting ``stop`` (e.g. on Ctrl-C) abandons the wait with a StackError at once.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            raise StackError(f"interrupted while waiting for {proc.name} at {url}")
        if not proc.alive():
            raise _exit_error(proc, url)
        try:
            resp = requests.get(url, timeout=2)
            if resp.status_code == expect:
                return
            last = f"HTTP {resp.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise StackError(
        f"{proc.name} did not answer {url} within {timeout:.0f} s ({last}); "
        f"its last lines ({proc.log}):\n{proc.log_tail()}"
    )


def _exit_error(proc: Proc, url: str) -> StackError:
    """The error for ``proc`` exiting before ``url`` answered; PortInUseError if it
    could not bind its port, so callers may retry on another port."""
    tail = proc.log_tail()
    code = proc.popen.returncode
    if _PORT_TAKEN in tail.lower():
        return PortInUseError(
            f"{proc.name} exited with code {code}: port {urlsplit(url).port} is taken by "
            "another process (it was free when checked, something bound it since); use "
            f"another port, or 0 for a free one. Its last lines ({proc.log}):\n{tail}"
        )
    return StackError(
        f"{proc.name} exited with code {code} before {url} answered; "
        f"its last lines ({proc.log}):\n{tail}"
    )


def prometheus_argv(
    binary: str, config: Path, data_dir: Path, port: int, *, resend_delay: str = "2s"
) -> list[str]:
    """Arguments that run Prometheus on 127.0.0.1:``port`` with ``config``.

    A short ``--rules.alert.resend-delay`` re-sends an alert dropped before Alertmanager
    was discovered within seconds instead of the default minute. No
    ``--web.enable-lifecycle``: nothing here reloads through HTTP, and it would let any
    local user stop Prometheus (``/-/quit``); send SIGHUP to reload.
    """
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address={LOOPBACK}:{port}",
        f"--rules.alert.resend-delay={resend_delay}",
        "--storage.tsdb.retention.time=2d",
    ]


def alertmanager_argv(binary: str, config: Path, data_dir: Path, port: int) -> list[str]:
    """Arguments that run Alertmanager on 127.0.0.1:``port``, clustering off."""
    return [
        binary,
        f"--config.file={config}",
        f"--storage.path={data_dir}",
        f"--web.listen-address={LOOPBACK}:{port}",
        "--cluster.listen-address=",
    ]


def redis_argv(binary: str, port: int, data_dir: Path) -> list[str]:
    """Arguments that run redis-server on 127.0.0.1:``port``, in memory only.

    No RDB snapshots and no append-only file (a cache needs neither, and nothing is left
    on disk); the working directory is ``data_dir``; protected mode stays on.
    """
    return [
        binary,
        "--bind", LOOPBACK,
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(data_dir),
        "--daemonize", "no",
    ]  # fmt: skip


def wait_redis(proc: Proc, port: int, timeout: float = 30.0) -> None:
    """Wait until redis-server ``proc`` answers PING on ``port``; StackError if it dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise _exit_error(proc, f"redis://{LOOPBACK}:{port}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.1)
    raise StackError(
        f"{proc.name} did not answer PING on {LOOPBACK}:{port} within {timeout:.0f} s; "
        f"its last lines ({proc.log}):\n{proc.log_tail()}"
    )
