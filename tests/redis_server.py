"""A real redis-server on 127.0.0.1 for the tests (random port, in memory, stopped by PID)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from limone_obs.stack import procs
from tests.support import PORT_ATTEMPTS, need


@contextmanager
def redis_server(workdir: Path, name: str = "redis") -> Iterator[tuple[str, procs.Proc]]:
    """Run redis-server on a free port; yield ``(redis:// URL, process)``; stop it on exit.

    Skipped locally when redis-server is missing; fails under ``CI=true`` (``need``).
    """
    binary = need("redis-server")
    data = workdir / name
    data.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = procs.free_port()
        proc = procs.start(name, procs.redis_argv(binary, port, data), data / "redis.log")
        try:
            procs.wait_redis(proc, port)
        except procs.PortInUseError:
            proc.stop()
            if attempt == PORT_ATTEMPTS:
                raise
            continue
        except BaseException:
            proc.stop()
            raise
        try:
            yield f"redis://{procs.LOOPBACK}:{port}/0", proc
        finally:
            proc.stop()
        return
