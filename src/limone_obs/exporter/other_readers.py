"""Another server serving the multiprocess directory: its numbers miss exited workers.

Under the kit's gunicorn config, the samples of a worker that exits are merged into the
compaction archive, which only the kit's collector reads. A prometheus-client
``MultiProcessCollector`` serving the same directory elsewhere (prometheus-flask-exporter's
``GunicornPrometheusMetrics.start_http_server_when_ready``, or
``prometheus_client.start_http_server`` in a hook of the master) then loses every exited
worker's counts (recycling, crashes, reloads), and its counters go down: silently, on a
port the team may still scrape. Such a server runs in the master, so every worker
inherits its listening socket. Once, at its first request, a worker starts a background
thread (nothing of it runs in the request) that lists its listening TCP sockets other
than gunicorn's (inherited from the master, or opened by the app itself, e.g. with
``preload_app``), asks each for ``/metrics`` and reports one whose answer holds a series
every worker of this server writes (``<ns>_worker_threads``): an error line and
``<ns>_exporter_problems{problem="multiprocess_other_reader"}``.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Iterable

from limone_obs import conventions as c
from limone_obs import health

logger = logging.getLogger("limone_obs")
#: Seconds a probe waits for the other server's answer.
PROBE_TIMEOUT = 2.0
#: Bytes of its answer read at most (a larger exposition is read no further).
PROBE_LIMIT = 8 * 1024 * 1024
_FDS = "/proc/self/fd"


def extra_listeners(own: Iterable[int]) -> list[tuple[str, int]]:
    """``(host, port)`` of the TCP sockets this process listens on, other than those of
    the file descriptors ``own`` (the server's own listeners). Empty where /proc is
    missing.

    Read from /proc alone (the descriptors' targets, the kernel's TCP tables): a socket
    object made around a descriptor, even a copy, could change the mode the descriptor
    shares with its copies (gevent's sockets make theirs non-blocking).
    """
    own_inodes = {_socket_inode(fd) for fd in own} - {None}
    inodes = set()
    try:
        names = os.listdir(_FDS)
    except OSError:
        return []
    for name in names:
        inode = _socket_inode(int(name))
        if inode is not None and inode not in own_inodes:
            inodes.add(inode)
    if not inodes:
        return []
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for local, inode in _listening(f"/proc/self/net/{table}"):
            if inode in inodes:
                found.add(_address(local, family))
    return sorted(found)


def _socket_inode(fd: int) -> str | None:
    """The inode of the socket ``fd`` refers to (``socket:[<inode>]``), else None."""
    try:
        target = os.readlink(f"{_FDS}/{fd}")
    except OSError:
        return None  # closed meanwhile (the listing's own descriptor)
    if not target.startswith("socket:[") or not target.endswith("]"):
        return None
    return target[len("socket:[") : -1]


#: The state column's value of a listening socket in /proc/net/tcp (TCP_LISTEN).
_LISTEN = "0A"


def _listening(table: str) -> list[tuple[str, str]]:
    """``(local address, inode)`` of the listening sockets in a /proc/net/tcp table."""
    try:
        with open(table, encoding="ascii") as rows:
            lines = rows.read().splitlines()[1:]
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 10 and fields[3] == _LISTEN:
            found.append((fields[1], fields[9]))
    return found


def _address(local: str, family: int) -> tuple[str, int]:
    """``"0100007F:1F90"`` -> ``("127.0.0.1", 8080)`` (on a little-endian host): the
    kernel writes the address as 32-bit words in host byte order, the port in hex."""
    host, port = local.split(":")
    raw = bytes.fromhex(host)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, raw), int(port, 16)


def serves(host: str, port: int, marker: str) -> bool:
    """Whether ``GET /metrics`` at ``host:port`` answers with a sample of the series
    ``marker`` (a line starting with that exact name). A wildcard address is asked on the
    loopback. Any failure (refused, timeout, not HTTP) reads as no.
    """
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    connection = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        body = response.read(PROBE_LIMIT) if response.status == 200 else b""
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    sample = re.compile(rb"(?:^|\n)" + re.escape(marker.encode()) + rb"[ {]")
    return sample.search(body) is not None


def check(own: Iterable[int], marker: str) -> None:
    """In a worker under the kit's gunicorn config: report another server of this master
    serving the series ``marker`` from /metrics. Returns at once: the work runs in a
    daemon thread. Never raises (no thread can be started: nothing is checked)."""
    listeners = tuple(own)
    try:
        threading.Thread(
            target=_probe, args=(listeners, marker), name="limone-obs-readers", daemon=True
        ).start()
    except RuntimeError:  # the process' or container's thread limit: skip the check
        return


def _probe(own: tuple[int, ...], marker: str) -> None:
    try:
        for host, port in extra_listeners(own):
            if serves(host, port, marker):
                _report(host, port)
                return
    except Exception as exc:  # a check of the kit's must not end with a traceback
        logger.debug("limone-obs: the check for other metrics servers failed: %r", exc)


def _report(host: str, port: int) -> None:
    message = (
        f"limone-obs: this gunicorn server's master also serves its metrics on "
        f"{host}:{port} (a prometheus-client MultiProcessCollector, such as "
        "prometheus-flask-exporter's GunicornPrometheusMetrics.start_http_server_when_ready "
        "or prometheus_client.start_http_server in a gunicorn hook). Under the kit's "
        "gunicorn config the samples of exited workers are merged into an archive only "
        "the app's metrics path reads: that port misses every exited worker's counts "
        "(recycling, crashes, reloads). Scrape the app's metrics path, which serves the "
        "same series (prometheus-flask-exporter's and your own included), and remove the "
        "other server"
    )
    if health.report_problem(c.PROBLEM_MULTIPROCESS_OTHER_READER, message):
        logger.error(message)
