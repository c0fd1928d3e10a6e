"""Another server of the gunicorn master serving the multiprocess directory is reported.

Under the kit's gunicorn config, exited workers' samples are merged into an archive only
the app's metrics path reads; a prometheus-client server of the master reading the same
directory (what prometheus-flask-exporter's ``start_http_server_when_ready`` runs) misses
them. Real gunicorn servers with a config of the app's own built on the kit's, and such
a server started in its ``when_ready`` hook; and the probe's parts on real sockets.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import requests

from limone_obs import conventions as c
from limone_obs.exporter import other_readers
from limone_obs.stack import procs
from tests.exporter.test_workers_process import APP, PROBLEMS, env, scrape, until
from tests.support import gunicorn_server

pytestmark = pytest.mark.integration

OTHER = {c.LABEL_PROBLEM: c.PROBLEM_MULTIPROCESS_OTHER_READER}
#: The kit's config, and a prometheus-client server of the directory started by the master
#: (prometheus-flask-exporter's GunicornPrometheusMetrics.start_http_server_when_ready does
#: the same), on the port OTHER_PORT names.
WITH_OTHER_SERVER = """from limone_obs.gunicorn_conf import *

def when_ready(server):
    import os
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(int(os.environ["OTHER_PORT"]), addr="127.0.0.1", registry=registry)
"""
#: The kit's config, and a server of the master that is no metrics endpoint (a health
#: port answering 404 to /metrics), which writes each path it is asked for to PROBED.
WITH_PLAIN_SERVER = """from limone_obs.gunicorn_conf import *

def when_ready(server):
    import os, threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.end_headers()
            self.wfile.flush()
            with open(os.environ["PROBED"], "a") as out:  # once the prober has its answer
                out.write(self.path + "\\n")

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", int(os.environ["OTHER_PORT"])), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
"""


def _problem(url: str) -> float | None:
    values = [value for labels, value in scrape(url).get(PROBLEMS, []) if labels == OTHER]
    return max(values) if values else None


def _server_env(tmp_path: Path, max_requests: int = 0) -> dict[str, str]:
    return {**env(tmp_path, 1, 1, max_requests=max_requests), "OTHER_PORT": str(procs.free_port())}


def test_a_metrics_server_of_the_master_is_reported_and_misses_exited_workers(
    tmp_path: Path,
) -> None:
    """A worker finds the master's other metrics server: the problem series reads 1 and
    an error line names its port and the fix. That server (what the line warns of)
    reads fewer requests than the app's metrics path once workers were recycled."""
    config = tmp_path / "own.conf.py"
    config.write_text(WITH_OTHER_SERVER)
    # Recycled every 8 requests: a worker lives through several scrapes (each a request),
    # time enough for its probe to answer.
    server_env = _server_env(tmp_path, max_requests=8)
    with gunicorn_server(APP, tmp_path, server_env, config=str(config)) as (url, proc):
        pids = {requests.get(f"{url}/pid", timeout=30).text for _ in range(12)}
        assert until(lambda: _problem(url) == 1.0)
        counted = sum(v for _, v in scrape(url)[f"{c.DEFAULT_NAMESPACE}_requests_total"])
        other = requests.get(f"http://127.0.0.1:{server_env['OTHER_PORT']}/metrics", timeout=10)
        log = proc.log.read_text(errors="replace")
    assert len(pids) >= 2  # recycled
    total = f'{c.DEFAULT_NAMESPACE}_requests_total{{endpoint="/pid"'
    seen = [line for line in other.text.splitlines() if line.startswith(total)]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in seen) < counted
    port = f"127.0.0.1:{server_env['OTHER_PORT']}"
    lines = [line for line in log.splitlines() if port in line]
    assert lines  # one per worker that served a request (each reports for itself)
    assert all("Scrape the app's metrics path" in line for line in lines)


def test_a_server_of_the_master_serving_no_metrics_is_not_reported(tmp_path: Path) -> None:
    """Another port of the master that is no metrics endpoint: probed once by each
    worker, and nothing reported."""
    config = tmp_path / "own.conf.py"
    config.write_text(WITH_PLAIN_SERVER)
    probed = tmp_path / "probed.txt"
    server_env = {**_server_env(tmp_path), "PROBED": str(probed)}
    with gunicorn_server(APP, tmp_path, server_env, config=str(config)) as (url, proc):
        requests.get(f"{url}/pid", timeout=30).raise_for_status()
        assert until(lambda: probed.exists() and "/metrics" in probed.read_text())
        # The probe's answer has arrived: a report would be made now. Scrapes in a short
        # window must all read 0.
        shown = [_problem(url) for _ in range(5)]
        log = proc.log.read_text(errors="replace")
    assert {0.0} == set(shown)
    assert c.PROBLEM_MULTIPROCESS_OTHER_READER not in log


@pytest.fixture
def metrics_server() -> Iterator[tuple[str, int]]:
    """An HTTP server on the loopback whose /metrics holds one series name."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"# HELP shop_workers x\nshop_workers 1\n" if self.path == "/metrics" else b""
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = httpd.server_address[:2]
        yield str(host), int(port)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_extra_listeners_are_listening_tcp_sockets_other_than_the_servers_own() -> None:
    """A listening TCP socket (IPv4 or IPv6) is found unless it is one of the server's
    own; a UDP socket and a connected TCP socket are not listeners."""
    own, other = socket.create_server(("127.0.0.1", 0)), socket.create_server(("127.0.0.1", 0))
    six = socket.create_server(("::1", 0), family=socket.AF_INET6)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    client = socket.create_connection(other.getsockname())
    with own, other, six, udp, client:
        found = other_readers.extra_listeners([own.fileno()])
        assert sorted([other.getsockname(), six.getsockname()[:2]]) == found
        assert own.getsockname() not in found
        assert udp.getsockname() not in found
        assert client.getsockname() not in found


#: 127.0.0.1 and ::1 as the kernel writes them: 32-bit words in the host's byte order.
V4, V6 = {
    "little": ("0100007F", "00000000000000000000000001000000"),
    "big": ("7F000001", "00000000000000000000000000000001"),
}[sys.byteorder]
#: Rows of /proc/net/tcp and /proc/net/tcp6 (header first): a listener on 127.0.0.1:8080
#: (state 0A) and a connection to it (01); listeners on [::1]:9100 and [::]:9101.
TCP = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n"
    f"   0: {V4}:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0  "
    "      0 111 1\n"
    f"   1: {V4}:D431 {V4}:1F90 01 00000000:00000000 00:00000000 00000000     0  "
    "      0 112 1\n"
)
TCP6 = (
    "  sl  local_address                         remote_address                        st "
    "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    f"   0: {V6}:238C 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 211 1\n"
    "   1: 00000000000000000000000000000000:238D 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 212 1\n"
)


def test_the_kernel_tables_rows_read_as_listening_addresses(tmp_path: Path) -> None:
    """Only state 0A rows are listeners; their addresses read as the kernel wrote them."""
    tcp, tcp6 = tmp_path / "tcp", tmp_path / "tcp6"
    tcp.write_text(TCP)
    tcp6.write_text(TCP6)
    rows = other_readers._listening(str(tcp)) + other_readers._listening(str(tcp6))
    assert [
        (f"{V4}:1F90", "111"),
        (f"{V6}:238C", "211"),
        ("00000000000000000000000000000000:238D", "212"),
    ] == rows
    families = (socket.AF_INET, socket.AF_INET6, socket.AF_INET6)
    locals_ = [local for local, _ in rows]
    addresses = [other_readers._address(a, f) for a, f in zip(locals_, families, strict=True)]
    assert [("127.0.0.1", 8080), ("::1", 9100), ("::", 9101)] == addresses


def test_the_check_skips_when_no_thread_can_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the process' thread limit the check does nothing and raises nothing (it runs
    inside a user's request)."""

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    other_readers.check([], "limoneide_worker_threads")


def test_serves_reads_the_marker_from_metrics(metrics_server: tuple[str, int]) -> None:
    """Yes for a series name in the answer, no for another (also one the answer's name
    ends with), and no where nothing listens."""
    host, port = metrics_server
    assert other_readers.serves(host, port, "shop_workers")
    assert not other_readers.serves(host, port, "limoneide_workers")
    assert not other_readers.serves(host, port, "p_workers")
    assert not other_readers.serves("127.0.0.1", procs.free_port(), "shop_workers")
