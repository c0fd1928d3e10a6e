"""A bounded HTTP load generator: a fixed request rate, stopped by a count and a time limit.

``run_load(url, rps=..., duration=..., concurrency=..., mix=...)`` sends request *i* at
``start + i / rps`` (never earlier) from ``concurrency`` threads, each with its own
keep-alive session, and stops when ``max_requests`` were sent or ``duration`` has passed,
whichever comes first. Each request carries ``X-Request-Start`` as a proxy would set it
(so the app's queue-time series has data), unless ``queue_header=False``.
It targets loopback addresses only unless ``allow_remote`` is set, so a typo cannot load
somebody else's server. Response bodies are read in full, so a
streamed response counts when its last byte arrived (as the exporter counts it).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests

from limone_obs import conventions as c
from limone_obs.errors import ConfigError

#: Default request mix for the demo service: ``[METHOD ]PATH=WEIGHT``.
DEFAULT_MIX = (
    "GET /projects=3,GET /projects/1=4,GET /projects/2=2,GET /editor/1=2,"
    "GET /languages/python=3,GET /languages/rust=1,POST /ai/complete=1,GET /health=1"
)
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


@dataclass(frozen=True)
class Target:
    """One entry of a request mix: method, path (with query) and relative weight."""

    method: str
    path: str
    weight: int


@dataclass(frozen=True)
class LoadResult:
    """What one run sent and got back, from the client's point of view.

    ``requests`` counts requests that got a response or failed in transport; ``statuses``
    maps HTTP status to count; ``failures`` maps a transport error class name to count;
    ``errors`` is 5xx responses plus transport failures. Latencies are in seconds.
    """

    requests: int
    errors: int
    statuses: Mapping[int, int]
    failures: Mapping[str, int]
    elapsed: float
    p50: float | None
    p95: float | None
    p99: float | None
    by_target: Mapping[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Achieved requests per second."""
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def failed(self, max_error_rate: float = 1.0) -> str | None:
        """Why this run failed, or None: a request got no HTTP answer (a transport
        failure), or errors (5xx and transport failures) exceeded ``max_error_rate`` of
        the requests."""
        lost = sum(self.failures.values())
        if lost:
            return f"{lost} of {self.requests} requests got no HTTP answer"
        if self.requests and self.errors / self.requests > max_error_rate:
            share = self.errors / self.requests
            return f"error rate {share:.1%} is above --max-error-rate {max_error_rate:g}"
        return None

    def summary(self) -> str:
        """A few human-readable lines for the terminal."""
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())) or "none"
        failures = ", ".join(f"{k}: {v}" for k, v in sorted(self.failures.items()))
        lines = [
            f"requests  {self.requests} in {self.elapsed:.1f} s ({self.rate:.1f}/s)",
            f"errors    {self.errors} (5xx responses and transport failures)",
            f"statuses  {statuses}" + (f"; transport failures: {failures}" if failures else ""),
            f"latency   p50 {_ms(self.p50)}  p95 {_ms(self.p95)}  p99 {_ms(self.p99)}",
        ]
        return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.0f} ms"


def parse_mix(text: str) -> tuple[Target, ...]:
    """Parse ``"GET /a=3,POST /b=1,/c"`` (method defaults to GET, weight to 1).

    Raises ConfigError naming the bad entry.
    """
    targets = []
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        spec, _, weight_text = raw.rpartition("=") if "=" in raw else (raw, "", "1")
        words = spec.split()
        method, path = (words[0].upper(), words[1]) if len(words) == 2 else ("GET", spec)
        if not path.startswith("/") or len(words) > 2:
            raise ConfigError(f"--mix entry {raw!r}: use '[METHOD ]/path[=weight]'")
        if not weight_text.isdigit() or int(weight_text) < 1:
            raise ConfigError(f"--mix entry {raw!r}: weight {weight_text!r} is not an int >= 1")
        targets.append(Target(method, path, int(weight_text)))
    if not targets:
        raise ConfigError(f"--mix {text!r} names no request: use '[METHOD ]/path[=weight],...'")
    return tuple(targets)


def schedule(targets: Sequence[Target]) -> tuple[Target, ...]:
    """One cycle of ``targets`` in smooth weighted round-robin order (deterministic).

    Each target appears ``weight`` times per cycle, spread out rather than in runs.
    """
    current = [0] * len(targets)
    total = sum(t.weight for t in targets)
    order = []
    for _ in range(total):
        for i, target in enumerate(targets):
            current[i] += target.weight
        best = max(range(len(targets)), key=lambda i: current[i])
        current[best] -= total
        order.append(targets[best])
    return tuple(order)


def check_target(url: str, *, allow_remote: bool = False) -> str:
    """Return ``url`` without a trailing slash if it is http(s) on a loopback host.

    Raises ConfigError for other schemes, and for other hosts unless ``allow_remote``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--url {url!r}: use http://host:port")
    if not allow_remote and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"--url {url!r}: host {parts.hostname!r} is not a loopback address; load is "
            "sent to 127.0.0.1/localhost only unless you pass --allow-remote"
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_bounds(rps: float, duration: float, concurrency: int, max_requests: int) -> None:
    for name, value in (("rps", rps), ("duration", duration)):
        if not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"--{name} {value!r}: use a positive number")
    if concurrency < 1:
        raise ConfigError(f"--concurrency {concurrency!r}: use an int >= 1")
    if max_requests < 1:
        raise ConfigError(f"--max-requests {max_requests!r}: use an int >= 1")


class _Run:
    """State shared by the worker threads of one :func:`run_load` call."""

    def __init__(
        self, base: str, order: Sequence[Target], rps: float, limit: int, queue_header: bool
    ) -> None:
        self.base = base
        self.queue_header = queue_header
        self.order = order
        self.rps = rps
        self.limit = limit
        self.lock = threading.Lock()
        self.next_index = 0
        self.done = 0
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.failures: Counter[str] = Counter()
        self.by_target: Counter[str] = Counter()
        self.stop = threading.Event()
        self.start = time.monotonic()
        self.deadline = self.start

    def claim(self) -> int | None:
        """Return the index of the next request to send, or None when the run is over."""
        with self.lock:
            index = self.next_index
            if index >= self.limit or self.stop.is_set():
                return None
            if self.start + index / self.rps >= self.deadline:
                return None
            self.next_index += 1
            return index

    def record(self, target: Target, latency: float, status: int | None, failure: str) -> None:
        with self.lock:
            self.done += 1
            self.by_target[f"{target.method} {target.path}"] += 1
            if status is None:
                self.failures[failure] += 1
            else:
                self.statuses[status] += 1
                self.latencies.append(latency)


def _worker(run: _Run, timeout: float) -> None:
    session = requests.Session()
    try:
        while (index := run.claim()) is not None:
            delay = run.start + index / run.rps - time.monotonic()
            if delay > 0 and run.stop.wait(delay):
                return
            _send(run, session, run.order[index % len(run.order)], timeout)
    finally:
        session.close()


def _send(run: _Run, session: requests.Session, target: Target, timeout: float) -> None:
    url = urljoin(run.base + "/", target.path.lstrip("/"))
    body = {"prompt": "def fib(n):"} if target.method in ("POST", "PUT", "PATCH") else None
    began = time.monotonic()
    try:
        headers = {c.QUEUE_START_HEADER: queue_start()} if run.queue_header else {}
        resp = session.request(target.method, url, json=body, headers=headers, timeout=timeout)
        resp.content  # noqa: B018 -- read the whole (possibly streamed) body
    except requests.RequestException as exc:
        run.record(target, time.monotonic() - began, None, type(exc).__name__)
        return
    run.record(target, time.monotonic() - began, resp.status_code, "")


def queue_start() -> str:
    """``X-Request-Start`` as nginx sends it (``t=<epoch seconds>.<ms>``, its ``$msec``).

    The load plays the proxy of a real deployment, so the app's queue-time series has data
    in the local stack too.
    """
    return f"t={time.time():.3f}"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of ``values`` by the nearest-rank method; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def run_load(
    url: str,
    *,
    rps: float = 10.0,
    duration: float = 10.0,
    concurrency: int = 4,
    mix: str | Sequence[Target] = DEFAULT_MIX,
    max_requests: int | None = None,
    timeout: float = 30.0,
    allow_remote: bool = False,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    queue_header: bool = True,
) -> LoadResult:
    """Send ``rps`` requests per second to ``url`` for ``duration`` s; return what happened.

    Stops after ``max_requests`` (default ``ceil(rps * duration)``), after ``duration``
    seconds (requests in flight then finish, each within ``timeout``), or when ``stop`` is
    set. ``progress`` is called from the calling thread with the number of requests
    finished so far, a few times per second. ``queue_header`` sends ``X-Request-Start``
    (:func:`queue_start`) on each request, as a proxy in front of the app would; switch it
    off for an app that has none, whose queue time should stay empty. Raises ConfigError
    on invalid arguments.
    """
    base = check_target(url, allow_remote=allow_remote)
    targets = parse_mix(mix) if isinstance(mix, str) else tuple(mix)
    limit = max_requests if max_requests is not None else math.ceil(rps * duration)
    _check_bounds(rps, duration, concurrency, limit)
    run = _Run(base, schedule(targets), rps, limit, queue_header)
    run.deadline = run.start + duration
    threads = [
        threading.Thread(target=_worker, args=(run, timeout), name=f"load-{i}", daemon=True)
        for i in range(min(concurrency, limit))
    ]
    for thread in threads:
        thread.start()
    _wait(threads, run, progress, stop)
    return _result(run, time.monotonic() - run.start)


def _wait(
    threads: Sequence[threading.Thread],
    run: _Run,
    progress: Callable[[int], None] | None,
    stop: threading.Event | None,
) -> None:
    while any(t.is_alive() for t in threads):
        if stop is not None and stop.is_set():
            run.stop.set()
        time.sleep(0.1)
        if progress is not None:
            progress(run.done)
    if progress is not None:
        progress(run.done)


def _result(run: _Run, elapsed: float) -> LoadResult:
    errors = sum(n for status, n in run.statuses.items() if status >= 500)
    return LoadResult(
        requests=run.done,
        errors=errors + sum(run.failures.values()),
        statuses=dict(run.statuses),
        failures=dict(run.failures),
        elapsed=elapsed,
        p50=percentile(run.latencies, 0.50),
        p95=percentile(run.latencies, 0.95),
        p99=percentile(run.latencies, 0.99),
        by_target=dict(run.by_target),
    )
