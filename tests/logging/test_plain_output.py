"""Lines to a plain file or terminal stream (one ``os.write`` each), and request ids."""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from flask import Flask

from limone_obs import conventions as c
from limone_obs.logging import _pipeline, configure_logging, get_logger, init_app
from limone_obs.logging._sink import RotatingFile, Sink
from limone_obs.logging.flask_ext import ID_BATCH, new_request_id
from tests.logging.helpers import parse_lines, stdlib_logger
from tests.support import fork_while_held, wait_or_kill


def _sink() -> Sink:
    sink = _pipeline.current.sink
    assert sink is not None
    return sink


def test_lines_reach_a_text_file_at_once_after_what_was_written_before(tmp_path: Path) -> None:
    """Each line is in the file as soon as the call returns, without a flush, and text
    the stream held before ``configure_logging`` comes first."""
    path = tmp_path / "app.log"
    with path.open("a") as stream:
        stream.write("written before\n")  # still in the stream's buffer
        configure_logging(stream=stream)
        assert stream.fileno() == _sink()._fd  # written through the descriptor
        app = Flask("plain")
        app.get("/")(lambda: "ok")
        init_app(app)
        get_logger("app").info("event")
        stdlib_logger("std").warning("record")
        assert b"ok" == app.test_client().get("/").data
        lines = path.read_text().splitlines()
    assert "written before" == lines[0]
    events = parse_lines("\n".join(lines[1:]))
    assert ["event", "record", "request finished"] == [e["message"] for e in events]


def test_closed_plain_stream_drops_the_line_and_writes_nowhere_else(tmp_path: Path) -> None:
    """After the stream is closed its descriptor number may be another file's: the line
    is dropped and counted, and that other file gets nothing."""
    stream = (tmp_path / "app.log").open("ab")
    configure_logging(stream=stream)
    number = stream.fileno()
    assert number == _sink()._fd  # written through the descriptor
    stream.close()
    with (tmp_path / "other.log").open("ab") as other:
        assert number == other.fileno()  # Linux hands out the lowest free number
        get_logger("t").info("after close")
        stdlib_logger("x").error("after close")
    assert 2 == _sink().dropped
    assert b"" == (tmp_path / "other.log").read_bytes()
    assert b"" == (tmp_path / "app.log").read_bytes()


def test_a_stream_subclass_keeps_its_own_write(tmp_path: Path) -> None:
    """A stream of a subclass (a tee, a test capture) is written through its ``write``."""
    written: list[bytes] = []

    class Tee(io.BufferedWriter):
        def write(self, data: object) -> int:
            written.append(bytes(data))  # type: ignore[call-overload]
            return super().write(data)  # type: ignore[arg-type]

    with Tee(io.FileIO(tmp_path / "app.log", "a")) as stream:
        configure_logging(stream=stream)
        get_logger("t").info("through write")
    assert ["through write"] == [e["message"] for e in parse_lines(b"".join(written))]
    assert written == [(tmp_path / "app.log").read_bytes()]


#: What the layers below with a write of their own were given.
_seen: list[bytes] = []


class _TeeBuffer(io.BufferedWriter):
    """A buffered layer with a write of its own, under a plain text layer."""

    def write(self, data: object) -> int:
        _seen.append(bytes(data))  # type: ignore[call-overload]
        return super().write(data)  # type: ignore[arg-type]


class _TeeFile(io.FileIO):
    """A raw file with a write of its own, under a plain buffered layer."""

    def write(self, data: object) -> int:
        _seen.append(bytes(data))  # type: ignore[call-overload]
        return super().write(data)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "layers",
    [
        lambda path: io.TextIOWrapper(_TeeBuffer(io.FileIO(path, "a"))),
        lambda path: io.BufferedWriter(_TeeFile(path, "a")),
    ],
    ids=["text-over-tee-buffer", "buffer-over-tee-file"],
)
def test_a_layer_with_its_own_write_below_a_plain_stream_is_kept(
    tmp_path: Path, layers: Callable[[Path], IO[Any]]
) -> None:
    """Not only the outer stream: a subclass at any layer keeps the stream's own path."""
    _seen.clear()
    with layers(tmp_path / "app.log") as stream:
        configure_logging(stream=stream)
        assert -1 == _sink()._fd
        get_logger("t").info("through write")
    written = b"".join(_seen)
    assert ["through write"] == [e["message"] for e in parse_lines(written)]


_CUT_SCRIPT = """
import io, os, resource, signal, sys
from limone_obs import health
from limone_obs.logging import configure_logging, get_logger
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, not the process
mode, other = sys.argv[1], sys.argv[2]
if mode == "pipe":  # a pipe when configured, then the log file is put over it
    read_fd, write_fd = os.pipe()
    configure_logging(stream=os.fdopen(write_fd, "wb"))
    os.dup2(1, write_fd)
elif mode != "fallback":  # else lines go to stdout before configure_logging
    configure_logging(stream=sys.stdout)  # stdout is the log file, opened for appending
log = get_logger("t")
log.info("first", pad="x" * 100)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (os.lseek(1, 0, os.SEEK_END) + 50, hard))
log.info("second", pad="y" * 200)  # 50 bytes fit, the rest fails (EFBIG) and is kept
log.info("lost")  # the rest still does not fit: this line is dropped
if mode in ("fallback", "reconfigure"):  # the new output takes over the cut line
    configure_logging(stream=open(1, "ab", closefd=False))
    log.info("lost")
if mode == "reopen":  # a log reopen puts another file on the descriptor
    fd = os.open(other, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(fd, 1)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
if mode == "fork":  # the child neither writes the parent's rest nor glues onto its head
    pid = os.fork()
    if pid == 0:
        log.info("child")
        os._exit(0)
    os.waitpid(pid, 0)
if mode == "close":
    configure_logging(stream=io.BytesIO())  # the old output finishes the line
elif mode == "handover":  # a thread that read the old pipeline writes after the hand-over
    from limone_obs.logging import _pipeline
    from limone_obs.logging._sink import RotatingFile, Sink
    old = _pipeline.current.sink
    old.hand_over(Sink(open(1, "ab", closefd=False)))
    old.write(b'{"message": "racer"}' + bytes([10]))  # to the new sink, after the rest
else:
    log.info("third")  # the rest of "second" first, then this line
print(health.dropped_lines(), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("mode", "lines", "dropped", "pad"),
    [
        ("next", ["first", "second", "third"], 1, 200),
        ("close", ["first", "second"], 1, 200),
        ("reconfigure", ["first", "second", "third"], 2, 200),
        ("fallback", ["first", "second", "third"], 2, 200),
        ("reopen", ["first"], 2, 0),
        ("fork", ["first", "child", "third"], 1, 200),
        ("pipe", ["first", "third"], 2, 0),
        ("handover", ["first", "second", "racer"], 1, 200),
    ],
)
def test_a_line_cut_short_by_the_file_size_limit_is_finished_later(
    tmp_path: Path, mode: str, lines: list[str], dropped: int, pad: int
) -> None:
    """A line the file takes only part of (a size limit, a full disk) is finished before
    the next line once the file takes bytes again, also by the output that replaces this
    one (or when this one is closed); a line that comes while it cannot is dropped and
    counted. Only the process and the file of the cut line finish it: after a log reopen
    the rest is dropped and counted, and a forked child's lines start on a line of their
    own. A file put over a pipe stream drops the cut line, and the next line starts on a
    line of its own (a real partial write: RLIMIT_FSIZE)."""
    path, other = tmp_path / "app.log", tmp_path / "reopened.log"
    with path.open("ab") as stdout:
        done = subprocess.run(
            [sys.executable, "-c", _CUT_SCRIPT, mode, str(other)],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert 0 == done.returncode, done.stderr
    assert str(dropped) == done.stderr.split()[-1]
    data = path.read_bytes()
    whole = [e["message"] for e in parse_lines(b"\n".join(_json_lines(data)))]
    assert lines == whole
    if mode == "reopen":
        assert ["third"] == [e["message"] for e in parse_lines(other.read_bytes())]
    assert pad == data.count(b"y"), "the rest of the cut line is written once, or not at all"


_FILE_CUT_SCRIPT = """
import os, resource, signal, sys
from limone_obs import health
from limone_obs.logging import configure_logging, get_logger
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, not the process
path = sys.argv[1]
configure_logging(stream=open(os.devnull, "w"), file=path)
log = get_logger("t")
log.info("first", pad="x" * 100)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 50, hard))
log.info("second", pad="y" * 200)  # 50 bytes fit, the rest fails (EFBIG) and is kept
log.info("lost")  # the rest still does not fit: this line is dropped
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
pid = os.fork()  # the child writes its own file, never the parent's pending bytes
if pid == 0:
    log.info("child")
    os._exit(0)
os.waitpid(pid, 0)
log.info("third")  # the rest of "second" first, then this line
print(health.dropped_lines(), file=sys.stderr)
"""


def test_a_line_the_log_file_takes_in_part_is_finished_once(tmp_path: Path) -> None:
    """``configure_logging(file=...)`` on a full disk (a size limit here): a line the file
    takes part of is finished before the next one, a line that comes while it cannot is
    dropped and counted, and nothing is written twice, also by a child forked meanwhile
    (which writes its own file)."""
    path = tmp_path / "app.log"
    done = subprocess.run(
        [sys.executable, "-c", _FILE_CUT_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    assert "1" == done.stderr.split()[-1]
    data = path.read_bytes()
    assert ["first", "second", "third"] == [e["message"] for e in parse_lines(data)]
    assert 200 == data.count(b"y"), "the rest of the cut line is written once"
    child = [e["message"] for e in parse_lines((tmp_path / "app-1.log").read_bytes())]
    assert ["child"] == child


def test_a_child_forked_while_a_thread_writes_the_log_file_can_log(tmp_path: Path) -> None:
    """Children forked while another thread writes ``file=`` lines each log and exit:
    none inherits a lock of the file's output held by a thread it does not have."""
    configure_logging(stream=io.BytesIO(), file=tmp_path / "app.log")
    log = get_logger("t")
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            log.info("parent", pad="p" * 300)

    writer = threading.Thread(target=busy)
    writer.start()
    try:
        for _ in range(100):
            pid = os.fork()
            if pid == 0:  # log, then leave without pytest's teardown
                code = 1
                try:
                    log.info("from the child")
                    code = 0
                finally:
                    os._exit(code)
            assert 0 == wait_or_kill(pid, 10.0), "the child hung (killed) or failed"
    finally:
        stop.set()
        writer.join()


def test_a_thread_of_a_forked_child_with_its_parents_writer_id_can_log() -> None:
    """After a fork the sink forgets which thread of the parent was writing: a thread of
    the child given that same id is no loop of the stream, its lines are written."""
    out = io.BytesIO()
    configure_logging(stream=out)
    sink = _sink()
    sink._writer = threading.get_ident()  # a write of this thread was under way at the fork
    sink.after_fork_in_child()
    get_logger("t").info("written")
    assert ["written"] == [e["message"] for e in parse_lines(out.getvalue())]
    assert 0 == sink.dropped


def _json_lines(data: bytes) -> list[bytes]:
    """The lines of ``data`` that parse as JSON (a cut line's head and rest do not)."""
    out = []
    for line in data.splitlines():
        try:
            json.loads(line)
        except ValueError:
            continue
        out.append(line)
    return out


def test_request_ids_are_unique_across_threads() -> None:
    """Threads taking ids at once (several batches) never get the same one."""
    per_thread = 3 * ID_BATCH
    taken: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(len(taken))

    def take(out: list[str]) -> None:
        start.wait()
        out.extend(new_request_id() for _ in range(per_thread))

    threads = [threading.Thread(target=take, args=(out,)) for out in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [i for out in taken for i in out]
    assert len(ids) == len(set(ids)) == 8 * per_thread
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_forked_child_never_hands_out_its_parents_ids() -> None:
    """A child forked while its parent holds a batch draws a batch of its own."""
    new_request_id()  # the parent now holds the rest of a batch
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its ids, then leave without pytest's teardown
        code = 1
        try:
            os.close(read_fd)
            os.write(write_fd, " ".join(new_request_id() for _ in range(20)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reader:
        child = set(reader.read().decode().split())
    _, status = os.waitpid(pid, 0)
    assert 0 == status
    parent = {new_request_id() for _ in range(20)}
    assert 20 == len(child) == len(parent)
    assert not child & parent


def test_a_replaced_pipeline_is_not_kept_alive_by_the_access_line(tmp_path: Path) -> None:
    """After ``configure_logging`` again, the old output (and its stream) can be freed:
    the access line's cache of encoded fields holds no pipeline."""
    app = Flask("replaced")
    app.get("/")(lambda: "ok")
    init_app(app)
    configure_logging(stream=io.BytesIO(), service="one")
    old = weakref.ref(_sink())
    assert b"ok" == app.test_client().get("/").data
    second = io.BytesIO()
    configure_logging(stream=second, service="two")
    gc.collect()
    assert old() is None
    assert b"ok" == app.test_client().get("/").data
    # The other line of the new output is the warning that the service changed.
    (line,) = [e for e in parse_lines(second.getvalue()) if e["logger"] == c.ACCESS_LOGGER]
    assert ("two", "request finished") == (line["service"], line["message"])


def test_a_child_forked_while_another_thread_writes_can_log(tmp_path: Path) -> None:
    """The sink's lock is held by another thread at the fork: the child gets a free lock
    (that thread does not exist in the child and would never release it)."""
    path = tmp_path / "app.log"
    with path.open("ab") as stream:
        configure_logging(stream=stream)
        status = fork_while_held(_sink()._lock, lambda: get_logger("t").info("from the child"))
    assert 0 == status, "the child hung on the lock (killed) or failed"
    assert ["from the child"] == [e["message"] for e in parse_lines(path.read_bytes())]


def test_a_replaced_sink_sends_its_lines_to_the_new_one(tmp_path: Path) -> None:
    """A caller that still holds the old output (it read the pipeline before
    ``configure_logging`` switched it) writes to the new one, and the old file output
    never takes a file again."""
    first, second = io.BytesIO(), io.BytesIO()
    configure_logging(stream=first, file=tmp_path / "app.log")
    old = _sink()
    configure_logging(stream=second, file=tmp_path / "app.log")
    old.write(b'{"message": "late"}\n')
    assert b"" == first.getvalue()
    assert [b'{"message": "late"}'] == second.getvalue().splitlines()
    assert ["app.log"] == sorted(p.name for p in tmp_path.glob("*.log"))
    assert [{"message": "late"}] == parse_lines((tmp_path / "app.log").read_bytes())


def test_a_line_forwarded_during_the_switch_keeps_the_file(tmp_path: Path) -> None:
    """A line reaching the new output between the hand-over and the old output's close
    (a thread logging while ``configure_logging`` runs again) finds the file free: it
    goes to ``app.log``, not to a numbered sibling for the rest of the process."""
    path = tmp_path / "app.log"
    old = Sink(io.BytesIO(), RotatingFile(path, 4096, 1))
    old.write(b'{"message": "first"}\n')  # takes app.log
    new = Sink(io.BytesIO(), RotatingFile(path, 4096, 1))
    old.hand_over(new)
    old.write(b'{"message": "forwarded"}\n')
    old.close()
    new.write(b'{"message": "after"}\n')
    new.close()
    assert ["app.log"] == sorted(p.name for p in tmp_path.glob("*.log"))
    messages = [e["message"] for e in parse_lines(path.read_bytes())]
    assert ["first", "forwarded", "after"] == messages
