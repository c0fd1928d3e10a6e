"""What Python prints past logging: uncaught exceptions become JSON lines, text on stderr
is masked (a trial found passwords in clear in a thread's traceback, a start-up crash and
a gunicorn worker's boot error). Each script runs in a process of its own: the hooks and
``sys.stderr`` are the process's (and pytest sets hooks of its own in its process)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

from limone_obs.logging import _uncaught, configure_logging
from limone_obs.logging.setup import reset_for_tests
from tests.logging.helpers import start_gunicorn
from tests.support import ROOT

SECRETS = ("hunter2thread", "hunter2del", "hunter2print", "dbpass-s3cr3t", "boot-pw-1")

CRASHES = """
import gc, sys, threading
from limone_obs.logging import configure_logging, get_logger
configure_logging(service="t", env="t")
get_logger("t").info("before")
def fail():
    raise RuntimeError("upstream refused password=hunter2thread")
thread = threading.Thread(target=fail, name="poller")
thread.start()
thread.join()
class Leaky:
    def __del__(self):
        raise ValueError("cleanup token=hunter2del")
Leaky()
gc.collect()
print("a library says password=hunter2print", file=sys.stderr)
url = "postgres://app:dbpass-s3cr3t@db/app"
raise RuntimeError(f"boot failed: DATABASE_URL={url} password=boot-pw-1")
"""


def _run(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a Python process of its own; its output, never raising."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_uncaught_exceptions_are_json_lines_without_their_secrets() -> None:
    """A thread's exception, one raised in a ``__del__`` and the main program's each
    become one JSON line (logger ``uncaught``, level error, traceback included), masked;
    a library's text on stderr is masked; the exit status is Python's."""
    done = _run(CRASHES)
    assert 1 == done.returncode
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr, secret
    events = _json_lines(done.stdout)  # every line JSON
    uncaught = [e for e in events if e["logger"] == _uncaught.LOGGER]
    assert [e["message"].split(":")[0] for e in uncaught] == [
        "Uncaught exception in thread 'poller'",
        "Exception ignored in",
        "Uncaught exception",
    ]
    assert {e["level"] for e in uncaught} == {"error"}
    types = [e["exception"]["type"] for e in uncaught]
    assert types == ["RuntimeError", "ValueError", "RuntimeError"]
    assert "in fail" in uncaught[0]["exception"]["traceback"]
    assert done.stderr == "a library says password=[REDACTED]\n"


def test_an_apps_own_hook_is_kept_and_what_it_prints_is_masked() -> None:
    """An excepthook set before ``configure_logging`` (Sentry's, the app's) stays in
    place; the traceback it prints on stderr is masked."""
    done = _run("""
        import sys, traceback
        def own(*exc_info):
            print("own hook:", file=sys.stderr)
            traceback.print_exception(*exc_info)
        sys.excepthook = own
        from limone_obs.logging import configure_logging
        configure_logging()
        assert sys.excepthook is own
        raise RuntimeError("password=boot-pw-1")
    """)
    assert 1 == done.returncode
    assert done.stderr.startswith("own hook:\nTraceback")
    assert "RuntimeError: password=[REDACTED]" in done.stderr
    assert "boot-pw-1" not in done.stderr
    assert "" == done.stdout


def test_with_the_logger_turned_off_pythons_own_traceback_is_printed_masked() -> None:
    """An app's ``dictConfig`` that turns the ``uncaught`` logger off cannot lose an
    exception: Python's own traceback is printed (masked) instead; ``KeyboardInterrupt``
    keeps Python's own output."""
    done = _run("""
        import logging
        from limone_obs.logging import configure_logging
        configure_logging()
        logging.getLogger("uncaught").disabled = True
        raise RuntimeError("password=boot-pw-1")
    """)
    assert 1 == done.returncode
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert done.stderr.endswith("RuntimeError: password=[REDACTED]\n")
    interrupted = _run("""
        from limone_obs.logging import configure_logging
        configure_logging()
        raise KeyboardInterrupt
    """)
    assert interrupted.stderr.rstrip().endswith("KeyboardInterrupt")
    assert "" == interrupted.stdout


def test_stderr_keeps_json_lines_whole_and_long_text_uncut() -> None:
    """Another writer's JSON line on stderr is masked field by field and stays JSON
    (text masks that run to the line's end swallowed its other fields); a long
    traceback a text handler prints is masked, not cut (a review)."""
    done = _run(r"""
        import json, logging, sys
        from limone_obs.logging import configure_logging
        configure_logging()
        line = {"msg": "dup [parameters: ('bob', 'hunter2pw')]", "level": "error",
                "password": "hunter2pw", "trace_id": "abc"}
        print(json.dumps(line), file=sys.stderr)
        text = logging.getLogger("own.text")
        text.addHandler(logging.StreamHandler())
        text.propagate = False
        text.error("deep: " + "frame line\n" * 3000 + "token=hunter2pw end")
    """)
    first, *rest = done.stderr.splitlines()
    assert json.loads(first) == {
        "msg": "dup [parameters: [REDACTED]]", "level": "error",
        "password": "[REDACTED]", "trace_id": "abc",
    }  # fmt: skip
    assert "hunter2pw" not in done.stderr
    assert (2999, "token=[REDACTED] end") == (rest.count("frame line"), rest[-1])


def test_stderr_masks_values_running_over_lines_of_one_write() -> None:
    """A trial's traceback (``traceback.print_exc()``, Werkzeug's debugger) of an error
    holding a database row or a PEM key over several lines: stderr was masked line by
    line, and the lines after the first were in clear. The lines of one write are masked
    together; a JSON line among them is still masked as JSON."""
    done = _run(r"""
        import sys, traceback
        from limone_obs.logging import configure_logging
        configure_logging()
        try:
            raise ValueError(
                "DETAIL:  Key (room, during)=(1, [a,b)) conflicts with existing key "
                "(room, during)=(1, first\nhunter2pw\nmore).\nnext"
            )
        except ValueError:
            traceback.print_exc()
        sys.stderr.write(
            "key -----BEGIN RSA PRIVATE KEY-----\nMIIEhunter2pw\n-----END RSA PRIVATE KEY-----\n"
            '{"password": "hunter2pw"}\nplain password=hunter2pw\n'
        )
    """)
    assert "hunter2pw" not in done.stderr, done.stderr
    assert "DETAIL:  Key (room, during)=[REDACTED]\nnext\n" in done.stderr
    assert '{"password": "[REDACTED]"}\nplain password=[REDACTED]\n' in done.stderr


def test_an_interactive_prompt_keeps_pythons_traceback() -> None:
    """``flask shell`` and ``python -i`` hand each exception typed at the prompt to the
    hook: a person reads it, as Python prints it (masked), not as a JSON line."""
    done = _run(r"""
        import code, io, sys
        from limone_obs.logging import configure_logging
        configure_logging()
        sys.stdin = io.StringIO("raise ValueError('password=hunter2pw')\n")
        code.interact(banner="", exitmsg="")
    """)
    assert "ValueError: password=[REDACTED]" in done.stderr
    assert "hunter2pw" not in done.stderr + done.stdout
    assert "uncaught" not in done.stdout


def test_the_stderr_wrapper_can_be_copied() -> None:
    """``copy.copy(sys.stderr)`` (a library saving the stream) does not recurse."""
    import copy  # noqa: PLC0415

    wrapper = _uncaught.MaskedStderr(io.StringIO())
    assert copy.copy(wrapper).wrapped is wrapper.wrapped


def test_reset_puts_pythons_hooks_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process (pytest's own thread hook set aside): configure installs the
    hooks, reset_for_tests removes them."""
    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    configure_logging(stream=open(os.devnull, "w"))  # noqa: SIM115 - closed by the reset
    try:
        assert sys.excepthook is not sys.__excepthook__
        assert threading.excepthook is not threading.__excepthook__
        assert sys.unraisablehook is not sys.__unraisablehook__
    finally:
        reset_for_tests()
    assert sys.excepthook is sys.__excepthook__
    assert threading.excepthook is threading.__excepthook__
    assert sys.unraisablehook is sys.__unraisablehook__


@pytest.mark.integration
@pytest.mark.parametrize(
    ("factory", "printed"),
    [
        ("broken_app", "boot failed: DATABASE_URL=postgres://[REDACTED]@db/app"),
        # Before configure_logging ran in the worker: masked all the same (a trial found
        # the password printed plain).
        ("broken_before_logging", "early failure: postgres://[REDACTED]@db/app"),
    ],
)
def test_a_gunicorn_worker_that_cannot_boot_prints_no_secret(
    tmp_path: Any, factory: str, printed: str
) -> None:
    """gunicorn prints a worker's boot exception message with ``print`` after logging it:
    under the kit's config, whether or not the app's ``configure_logging`` ran, the
    printed text is masked and the logged line is JSON."""
    log = tmp_path / "gunicorn.log"
    proc, _base = start_gunicorn(f"tests.logging.gunicorn_app:{factory}()", tmp_path, 1, log)
    try:
        code = proc.popen.wait(timeout=60)  # the master halts: its worker failed to boot
    finally:
        proc.stop()
    assert code != 0
    text = log.read_text(encoding="utf-8")
    assert "dbpass-s3cr3t" not in text
    assert "early-pw-888" not in text
    plain = [line for line in text.splitlines() if not line.startswith("{")]
    assert printed in plain, text
    booted = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(e.get("exception", {}).get("type") == "RuntimeError" for e in booted), text
