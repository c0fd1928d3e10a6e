"""A real redis-server on 127.0.0.1 for the tests (random port, in memory, stopped by PID)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from limone_obs.stack import procs
from tests.support import need, on_a_free_port


@contextmanager
def redis_server(workdir: Path, name: str = "redis") -> Iterator[tuple[str, procs.Proc]]:
    """Run redis-server on a free port; yield ``(redis:// URL, process)``; stop it on exit.

    Skipped locally when redis-server is missing; fails under ``CI=true`` (``need``).
    """
    binary = need("redis-server")
    data = workdir / name
    data.mkdir(parents=True, exist_ok=True)

    def start(port: int) -> procs.Proc:
        return procs.start(name, procs.redis_argv(binary, port, data), data / "redis.log")

    with on_a_free_port(start, procs.wait_redis) as (port, proc):
        yield f"redis://{procs.LOOPBACK}:{port}/0", proc
