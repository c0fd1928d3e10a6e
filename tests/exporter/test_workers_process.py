"""Worker saturation and server-wide process series under a real gunicorn."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from limone_obs import Metrics
from limone_obs import conventions as c
from limone_obs.exporter import _failsafe, multiprocess, process, workers
from tests.support import ROOT, gunicorn_server, metric_sum, serve, settled

pytestmark = pytest.mark.integration
N = c.MetricNames()
APP = "tests.exporter.ux_gunicorn_app:create_app()"
PROBLEMS = f"{N.namespace}_{c.SUFFIX_EXPORTER_PROBLEMS}"
#: The process series published under gunicorn, one sample each whatever the churn.
PROCESS_SERIES = (
    c.SERIES_PROCESS_CPU, c.SERIES_PROCESS_MEMORY, c.SERIES_PROCESS_FDS,
    c.SERIES_PROCESS_WORKER_MAX_MEMORY, c.SERIES_PROCESS_WORKER_MAX_FDS, c.SERIES_PROCESS_WORKERS,
    c.SERIES_PROCESS_WORKER_SUM_MEMORY,
)  # fmt: skip


#: Samples of a scrape, by sample name: (labels, value) each.
Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str) -> Samples:
    """Samples of one scrape of ``url``/metrics, by sample name."""
    out: Samples = {}
    text = requests.get(f"{url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def env(tmp_path: Path, workers_: int, threads: int, max_requests: int = 0) -> dict[str, str]:
    mp = tmp_path / "mp"
    mp.mkdir()
    return {
        "GUNICORN_WORKERS": str(workers_),
        "GUNICORN_THREADS": str(threads),
        "GUNICORN_MAX_REQUESTS": str(max_requests),
        "PROMETHEUS_MULTIPROC_DIR": str(mp),
    }


def until(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_beacons_reach_the_scrape_from_any_worker(tmp_path: Path) -> None:
    """Under 3 workers, beacons for a page rendered by one worker are recorded by any
    worker (one signing key) and every worker's observations show in one scrape."""
    with gunicorn_server(APP, tmp_path, env(tmp_path, 3, 1)) as (url, _):
        html = requests.get(f"{url}/page", timeout=30).text
        token = html.split('data-page="')[1].split('"')[0].replace("&lt;", "<").replace("&gt;", ">")
        body = json.dumps({"p": token, "v": {c.PHASE_LOAD: 1.5}})
        for _ in range(12):
            with requests.Session() as session:  # new connections spread over the workers
                response = session.post(f"{url}/rum", data=body, timeout=30)
                assert response.status_code == 204
        samples = scrape(url)
    counts = {s[0][c.LABEL_PHASE]: s[1] for s in samples[f"{N.page_load}_count"] if s[1]}
    assert counts == {c.PHASE_LOAD: 12.0}
    assert N.requests_total not in samples or all(
        labels[c.LABEL_ENDPOINT] == "/page" for labels, _ in samples[N.requests_total]
    )


def worker_state(samples: Samples) -> dict[str, float]:
    """``<ns>_workers`` of a scrape, by state (busy, idle)."""
    return {labels[c.LABEL_STATE]: v for labels, v in samples[N.workers]}


def idle_again(state: dict[str, float]) -> bool:
    """True once no slot is busy: a request leaves its slot after its last byte was sent."""
    return state.get(c.WORKER_BUSY, 0.0) <= 0


def record(seen: list[float], value: float) -> float:
    """Append ``value`` to ``seen`` and return it (a poll that keeps what it saw)."""
    seen.append(value)
    return value


def test_process_series_survive_20_recycled_workers(tmp_path: Path) -> None:
    """3 workers recycled after 5 requests each: after 20+ new workers the process series
    are one sample each (no pid label), cover the 3 live workers, and CPU never went down."""
    with gunicorn_server(APP, tmp_path, env(tmp_path, 3, 1, max_requests=5)) as (url, _):
        pids: set[str] = set()
        cpu: list[float] = []
        for _ in range(40):
            with requests.Session() as session:  # a new connection may reach a new worker
                for _ in range(5):
                    pids.add(session.get(f"{url}/pid", timeout=30).text)
            cpu.append(scrape(url)[c.SERIES_PROCESS_CPU][0][1])
            if len(pids) >= 23:
                break
        assert len(pids) >= 23, f"only {len(pids)} workers served requests"
        # A worker that was just recycled may not be replaced yet: read until the master
        # has its three live workers again (bounded).
        deadline = time.monotonic() + 20
        samples = scrape(url)
        while samples[c.SERIES_PROCESS_WORKERS][0][1] != 3 and time.monotonic() < deadline:
            time.sleep(0.2)
            samples = scrape(url)
    assert {name: len(samples.get(name, [])) for name in PROCESS_SERIES} == dict.fromkeys(
        PROCESS_SERIES, 1
    )
    assert samples[c.SERIES_PROCESS_WORKERS][0][1] == 3
    memory = samples[c.SERIES_PROCESS_MEMORY][0][1]
    largest = samples[c.SERIES_PROCESS_WORKER_MAX_MEMORY][0][1]
    workers = samples[c.SERIES_PROCESS_WORKER_SUM_MEMORY][0][1]
    # The sum covers the master and every live worker, so it is above the workers' own
    # sum, which is at least the largest one (equal when the others were just exited,
    # zombies of 0 bytes until the master reaps them); their mean is at most the largest.
    assert 1e6 < largest <= workers < memory < 3e9
    assert workers / 3 <= largest
    assert cpu == sorted(cpu)
    assert cpu[-1] > 0
    generations = {labels[c.LABEL_GC_GENERATION] for labels, _ in samples[c.SERIES_GC_COLLECTIONS]}
    assert generations == {"0", "1", "2"}  # each from the start, 0 until it collects


def test_an_exited_unreaped_worker_counts_its_cpu_but_is_no_live_worker() -> None:
    """A worker that exited and was not reaped yet (a zombie) keeps its CPU seconds in the
    server's total, but is no live worker: the worker count and the memory per worker
    leave it out (it reads 0 bytes, which pulled the mean per worker down)."""
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    exited = subprocess.Popen([sys.executable, "-c", "sum(range(3_000_000))"])
    try:
        # Not waited for: it stays a zombie, a child of this process, until reaped.
        assert until(lambda: (s := process.read_stat(exited.pid)) is not None and not s.live)
        found = process.families(None, lambda: [live.pid, exited.pid])
        read = {s.name: s.value for family in found for s in family.samples}
        live_stat, exited_stat = process.read_stat(live.pid), process.read_stat(exited.pid)
        assert live_stat is not None
        assert exited_stat is not None
        assert live_stat.live
    finally:
        live.kill()
        live.wait()
        exited.wait()
    assert read[c.SERIES_PROCESS_WORKERS] == 1
    assert exited_stat.rss == 0
    assert (
        read[c.SERIES_PROCESS_WORKER_SUM_MEMORY] == read[c.SERIES_PROCESS_WORKER_MAX_MEMORY] > 1e6
    )
    assert exited_stat.cpu > 0  # it ran a while: its seconds are in the total
    assert read[c.SERIES_PROCESS_CPU] >= exited_stat.cpu + live_stat.cpu


def test_a_recycled_workers_last_collections_are_counted(tmp_path: Path) -> None:
    """A worker recycled right after its collections (well within the counting thread's
    flush period) still adds them: after the start-up check, 2 requests of 10 full
    collections each, then the worker exits (max_requests=3) and its successor's scrape
    shows at least 20."""
    with gunicorn_server(APP, tmp_path, env(tmp_path, 1, 1, max_requests=3)) as (url, _):
        # The start-up check (a scrape) was the worker's first request.
        for _ in range(2):
            assert requests.get(f"{url}/gc", timeout=30).text == "collected"
        samples = scrape(url)  # served by the next worker: the first one has exited
    by_generation = {
        labels[c.LABEL_GC_GENERATION]: value for labels, value in samples[c.SERIES_GC_COLLECTIONS]
    }
    assert by_generation.get("2", 0) >= 20


#: A gunicorn config of the app's own that replaces the kit's child_exit hook.
OWN_CHILD_EXIT = """from limone_obs.gunicorn_conf import *

def child_exit(server, worker):
    server.log.info("the app's own child_exit for %s", worker.pid)
"""


@pytest.mark.parametrize(
    ("config_of", "reported"),
    [("own-child-exit", True), ("no-kit-config", True), ("kit-config", False)],
)
def test_a_replaced_child_exit_hook_is_reported(
    tmp_path: Path, config_of: str, reported: bool
) -> None:
    """A config of the app's own that defines child_exit without calling the kit's, or
    gunicorn without the kit's config (a trial's own command line with --max-requests):
    the recycled workers' files stay, and a new worker says so (problem series and an
    error line naming the kit's hook). With the kit's hooks the same churn reports
    nothing."""
    config = tmp_path / "own.conf.py"
    config.write_text(OWN_CHILD_EXIT)
    configs = {
        "own-child-exit": str(config),
        "no-kit-config": None,
        "kit-config": str(ROOT / "exporter" / "gunicorn.conf.py"),
    }
    server_env = env(tmp_path, 1, 1, max_requests=3)
    args = ["--max-requests", "3"] if config_of == "no-kit-config" else []
    with gunicorn_server(APP, tmp_path, server_env, config=configs[config_of], args=args) as (
        url,
        proc,
    ):
        pids: list[str] = []
        while len(set(pids)) < 4 and len(pids) < 40:  # a 4th worker found 3 exited ones
            pids.append(requests.get(f"{url}/pid", timeout=30).text)
        samples = scrape(url)
        log = proc.log.read_text(errors="replace")
    assert len(set(pids)) == 4
    problem = {c.LABEL_PROBLEM: c.PROBLEM_MULTIPROCESS_LEFTOVERS}
    shown = [value for labels, value in samples[PROBLEMS] if labels == problem]
    assert shown == [1.0 if reported else 0.0]
    assert ("limone_obs.gunicorn_conf.child_exit(server, worker)" in log) is reported


@pytest.mark.parametrize(("workers_", "threads"), [(3, 1), (2, 2)], ids=["sync", "gthread"])
def test_busy_workers_reach_the_slots_and_return_to_zero(
    tmp_path: Path, workers_: int, threads: int
) -> None:
    """Three slow requests per slot make every slot busy; afterwards busy is 0, idle all.

    A gthread worker accepts connections beyond its threads (up to worker_connections)
    and queues them: one worker could take almost every request and leave another's
    threads idle. Capping its connections at its threads makes the spread certain."""
    slots = workers_ * threads
    server_env = env(tmp_path, workers_, threads)
    mp = server_env["PROMETHEUS_MULTIPROC_DIR"]
    capped = ["--worker-connections", str(threads)]
    with gunicorn_server(APP, tmp_path, server_env, args=capped) as (url, _):
        assert until(lambda: workers.read_files(mp, N)[1] == slots)
        seen: list[float] = []

        def slow(_: int) -> int:
            return requests.get(f"{url}/slow", params={"seconds": 2}, timeout=60).status_code

        with ThreadPoolExecutor(max_workers=3 * slots) as pool:
            futures = [pool.submit(slow, i) for i in range(3 * slots)]
            reached = until(lambda: record(seen, workers.read_files(mp, N)[0]) == slots)
            assert [f.result() for f in futures] == [200] * 3 * slots
        assert reached, f"busy never reached {slots}: max {max(seen)}"
        assert max(seen) == slots
        state = settled(lambda: worker_state(scrape(url)), idle_again)
    assert state == {c.WORKER_BUSY: 0.0, c.WORKER_IDLE: float(slots)}


def test_an_earlier_servers_files_are_reported(tmp_path: Path) -> None:
    """gunicorn without our config, started twice on one multiprocess directory: the
    second server's workers say the first one's files are added to its counts (a log
    line, the problem series); the kit's config, which clears the directory, sees none."""
    server_env = env(tmp_path, 1, 1)
    mp = Path(server_env["PROMETHEUS_MULTIPROC_DIR"])
    two = ["-w", "2"]  # gunicorn without the kit's config (config=None)
    first = gunicorn_server(APP, tmp_path, server_env, name="first", config=None, args=two)
    with first as (url, _):
        for _ in range(10):
            assert 200 == requests.get(f"{url}/pid", timeout=30).status_code
    # The next server starts soon after these files were last changed (a restart by a
    # supervisor): more than the slack, less than a second.
    newest = max(f.stat().st_ctime for f in mp.iterdir())
    time.sleep(max(0.0, newest + multiprocess.LEFTOVER_SLACK + 0.1 - time.time()))
    leftovers = {c.LABEL_PROBLEM: c.PROBLEM_MULTIPROCESS_LEFTOVERS}
    second = gunicorn_server(APP, tmp_path, server_env, name="second", config=None, args=two)
    with second as (url, _):
        pids: set[str] = set()
        assert until(lambda: record_pid(pids, url) == 2), f"{len(pids)} workers served"
        reported = [v for labels, v in scrape(url)[PROBLEMS] if labels == leftovers]
        total = metric_sum(url, f"{N.requests}_total")
    assert [1.0] == reported
    assert total > 10  # the first server's requests are counted again
    assert "holds" in (tmp_path / "second.log").read_text()
    with gunicorn_server(APP, tmp_path, server_env, name="third") as (url, _):
        assert 200 == requests.get(f"{url}/pid", timeout=30).status_code
        reported = [v for labels, v in scrape(url)[PROBLEMS] if labels == leftovers]
        total = metric_sum(url, f"{N.requests}_total")
    assert [0.0] == reported
    assert 1 == total


@pytest.mark.parametrize(
    ("args", "workers_", "slots"),
    [(["-w", "2", "--threads", "2"], 2, 4), (["-w", "3", "--preload"], 3, 3)],
    ids=["gthread", "sync-preloaded"],
)
def test_slots_without_the_kit_gunicorn_config(
    tmp_path: Path, args: list[str], workers_: int, slots: int
) -> None:
    """gunicorn run without our config (so without its post_worker_init hook): each worker
    publishes its slots by itself, at once when it loads the app, else (app preloaded in
    the master, which serves a warm-up request) at its first request; idle and
    worker_threads are then whole, and no process says its slots are unknown."""
    server_env = env(tmp_path, 1, 1)  # GUNICORN_* are read by our config only: unused here
    server_env["UX_WARM_UP"] = "1"
    mp = server_env["PROMETHEUS_MULTIPROC_DIR"]
    with gunicorn_server(APP, tmp_path, server_env, config=None, args=args) as (url, _):
        pids: set[str] = set()
        assert until(lambda: record_pid(pids, url) == workers_), f"{len(pids)} workers served"
        assert until(lambda: workers.read_files(mp, N)[1] == slots)
        # A process a worker forks is no worker: it would count the slots twice.
        forked = requests.get(f"{url}/forked-role", timeout=30).text
        samples = settled(lambda: scrape(url), lambda s: idle_again(worker_state(s)))
    assert forked == workers.NEITHER
    assert worker_state(samples) == {c.WORKER_BUSY: 0.0, c.WORKER_IDLE: float(slots)}
    assert [v for _, v in samples[N.worker_threads]] == [float(slots)]
    assert "slots are unknown" not in (tmp_path / "gunicorn.log").read_text()


def test_a_killed_worker_leaves_the_scrape_without_the_kit_hooks(tmp_path: Path) -> None:
    """gunicorn without our config (no child_exit hook): a worker killed in the middle of a
    request leaves neither its slots nor that request in flight behind; its replacement's
    slots are counted once."""
    server_env = env(tmp_path, 1, 1)
    args = ["-w", "1", "--threads", "2"]
    with gunicorn_server(APP, tmp_path, server_env, config=None, args=args) as (url, master):
        assert until(lambda: metric_sum(url, N.worker_threads) == 2.0)
        with ThreadPoolExecutor(1) as pool:
            hanging = pool.submit(requests.get, f"{url}/slow", params={"seconds": 8}, timeout=60)
            assert until(lambda: metric_sum(url, N.requests_in_progress) == 1.0)
            (worker,) = process.children(master.pid)
            os.kill(worker, signal.SIGKILL)
            with pytest.raises(requests.ConnectionError):
                hanging.result()
        assert until(lambda: process.children(master.pid) not in ([], [worker]))
        assert until(lambda: metric_sum(url, N.worker_threads) == 2.0)
        samples = scrape(url)
    assert 0.0 == sum(v for _, v in samples.get(N.requests_in_progress, []))
    assert worker_state(samples) == {c.WORKER_BUSY: 0.0, c.WORKER_IDLE: 2.0}


#: gunicorn as the first process (pid 1) of a new pid namespace, as in a container
#: started with ``exec gunicorn``; killed with everything in it when unshare stops.
AS_PID_1 = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]


def _can_run_as_pid_1() -> bool:
    try:
        done = subprocess.run([*AS_PID_1, "true"], check=False, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def test_gunicorn_as_pid_1_reads_every_worker(tmp_path: Path) -> None:
    """gunicorn as a container's first process (the compose stack's app, ``exec gunicorn``):
    the process series and the worker slots still cover the master's 3 workers (the
    children of pid 1 are read because the worker object names pid 1 as its master), and
    not a background job the app left orphaned (pid 1 adopts it)."""
    if not _can_run_as_pid_1():
        if os.environ.get("CI") == "true" and os.geteuid() == 0:
            pytest.fail("CI=true as root and `unshare --pid --fork --mount-proc` fails")
        pytest.skip("needs root (a new pid namespace): unshare --pid --fork --mount-proc")
    server_env = env(tmp_path, 3, 1)
    with gunicorn_server(APP, tmp_path, server_env, prefix=AS_PID_1) as (url, unshare):
        (master,) = process.children(unshare.pid)  # its host pid
        pids: set[str] = set()
        assert until(lambda: record_pid(pids, url) == 3), f"{len(pids)} workers served"
        assert pids <= {str(p) for p in range(2, 100)}, pids  # pids of the new namespace
        assert until(lambda: scrape(url)[c.SERIES_PROCESS_WORKERS][0][1] == 3)
        assert requests.post(f"{url}/orphan", timeout=30).status_code == 200
        assert until(lambda: len(process.children(master)) == 4)  # adopted, for 120 s
        samples = scrape(url)
    assert [v for _, v in samples[c.SERIES_PROCESS_WORKERS]] == [3.0]
    assert [v for _, v in samples[N.worker_threads]] == [3.0]
    largest = samples[c.SERIES_PROCESS_WORKER_MAX_MEMORY][0][1]
    assert 1e6 < largest < samples[c.SERIES_PROCESS_MEMORY][0][1]


def test_workers_of_a_killed_master_read_themselves_alone(tmp_path: Path) -> None:
    """gunicorn's master killed with SIGKILL: each orphaned worker (adopted by pid 1 or a
    subreaper) answers a request or so before it exits, and its process series then
    cover itself alone, never the processes of its new parent (a trial read pid 1 as the
    master: 49,000 CPU seconds and pid 1's descriptors added)."""
    with gunicorn_server(APP, tmp_path, env(tmp_path, 2, 1)) as (url, master):
        assert until(lambda: scrape(url)[c.SERIES_PROCESS_WORKERS][0][1] == 2)
        before = scrape(url)
        orphans = process.children(master.pid)
        os.kill(master.pid, signal.SIGKILL)
        master.popen.wait(timeout=30)
        try:
            after = scrape(url)  # an orphan's answer: it checks its parent after a request
        finally:
            for pid in orphans:  # those still running: they stop by themselves in 15 s
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    assert [1.0] == [v for _, v in after[c.SERIES_PROCESS_WORKERS]]
    assert after[c.SERIES_PROCESS_CPU][0][1] <= before[c.SERIES_PROCESS_CPU][0][1] + 1.0
    assert after[c.SERIES_PROCESS_MEMORY][0][1] < before[c.SERIES_PROCESS_MEMORY][0][1]


def record_pid(pids: set[str], url: str) -> int:
    """Add the pid of the worker answering ``url``/pid to ``pids``; return how many."""
    pids.add(requests.get(f"{url}/pid", timeout=30).text)
    return len(pids)


def test_single_process_reports_busy_only() -> None:
    """Outside gunicorn: busy follows the requests in flight, and idle is absent (the
    request slots of a server the kit did not configure are unknown)."""
    release = threading.Event()
    app = Flask("single")
    metrics = Metrics(app, registry=CollectorRegistry())
    app.add_url_rule("/wait", "wait", lambda: str(release.wait(30)))

    def state() -> dict[str, float]:
        return {
            s.labels[c.LABEL_STATE]: s.value
            for family in metrics.registry.collect()
            for s in family.samples
            if s.name == N.workers
        }

    with serve(app, quiet=True) as url, ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(requests.get, f"{url}/wait", timeout=60) for _ in range(2)]
        assert until(lambda: state() == {c.WORKER_BUSY: 2.0})
        release.set()
        assert [f.result().status_code for f in futures] == [200, 200]
        assert until(lambda: state() == {c.WORKER_BUSY: 0.0})


def test_a_failed_write_of_the_gc_counts_does_not_fail_the_scrape(
    mp_in_process: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The GC counts are written to the worker's files at each scrape: a write that fails
    (here an OSError; prometheus-client's files closed by the app give a TypeError) is
    reported, and the scrape still serves every other series."""

    def refused() -> None:
        raise OSError(5, "Input/output error")

    app = Flask("gc_refused")
    Metrics(app, registry=CollectorRegistry())
    monkeypatch.setattr(process._GC, "flush", refused)
    monkeypatch.setattr(_failsafe, "_last", {})
    scraped = app.test_client().get("/metrics")
    assert 200 == scraped.status_code
    names = {f.name for f in text_string_to_metric_families(scraped.get_data(as_text=True))}
    assert "process_resident_memory_bytes" in names
    assert any("GC counting" in r.getMessage() for r in caplog.records)


def test_gc_counting_that_cannot_start_does_not_keep_the_app_from_starting(
    mp_in_process: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The GC counts start when the first Metrics of a multiprocess worker is set up: a
    failure there (a thread that cannot start) is reported, and the app serves."""

    def cannot_start() -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(process._GC, "start", cannot_start)
    monkeypatch.setattr(process, "_registered", type(process._registered)())
    monkeypatch.setattr(_failsafe, "_last", {})
    app = Flask("gc_cannot_start")
    Metrics(app, registry=CollectorRegistry())
    assert 200 == app.test_client().get("/metrics").status_code
    assert any("GC counting" in r.getMessage() for r in caplog.records)
