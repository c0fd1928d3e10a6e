"""Which uWSGI settings fork the app without Python's fork hooks (limone_obs._forking).

uWSGI's ``uwsgi`` module exists only inside a uWSGI process, so these tests give the
detector a module of the same shape (``opt`` as uWSGI fills it: ``True`` for a flag
given without a value, the value as bytes, a list when an option is repeated;
``masterpid()``, ``worker_id()``, ``numproc``, ``has_threads``). The real server runs in
tests/servers/test_uwsgi.py.
"""

from __future__ import annotations

import logging
import sys
import types
from typing import Any

import pytest
from flask import Flask
from prometheus_client import CollectorRegistry

from limone_obs import Metrics, _forking
from limone_obs.exporter import fast_path
from limone_obs.logging import flask_ext


def _in_uwsgi(
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    numproc: int,
    *,
    master: int = 0,
    worker: int = 0,
    threads: bool = True,
) -> None:
    """Give this process a ``uwsgi`` module: ``master`` is ``masterpid()`` (0: none),
    ``worker`` is ``worker_id()`` (0: the app is imported before any fork)."""
    module = types.ModuleType("uwsgi")
    module.opt = options  # type: ignore[attr-defined]
    module.numproc = numproc  # type: ignore[attr-defined]
    module.has_threads = int(threads)  # type: ignore[attr-defined]
    module.masterpid = lambda: master  # type: ignore[attr-defined]
    module.worker_id = lambda: worker  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "uwsgi", module)


def test_outside_uwsgi_nothing_forks_unhooked() -> None:
    """No ``uwsgi`` module (gunicorn, werkzeug, this test run): None."""
    assert _forking.unhooked_fork() is None


MASTER = 4242


@pytest.mark.parametrize(
    ("options", "numproc", "master", "unhooked"),
    [
        ({"master": True}, 1, MASTER, True),
        ({"stats": b"127.0.0.1:9191"}, 1, MASTER, True),  # an option that implies a master
        ({}, 4, 0, True),  # no master: worker 1 imports the app, then forks the others
        ({"processes": b"4"}, 4, 0, True),
        ({}, 1, 0, False),  # one process, no master: never forked
        ({"master": True, "py-call-uwsgi-fork-hooks": True}, 4, MASTER, False),
        ({"master": True, "py-call-osafterfork": True}, 4, MASTER, True),  # part of the hooks
        ({"master": True, "lazy-apps": b"yes"}, 4, MASTER, False),
        ({"master": True, "lazy": True}, 4, MASTER, False),
        ({"master": True, "lazy-apps": b"off"}, 4, MASTER, True),
        ({"master": True, "lazy-apps": "FALSE"}, 4, MASTER, True),
        ({"master": True, "py-call-uwsgi-fork-hooks": b"0"}, 4, MASTER, True),
        ({"master": True, "lazy-apps": [b"true", b"false"]}, 4, MASTER, True),  # last wins
        ({"master": True, "lazy-apps": [True]}, 4, MASTER, False),
    ],
)
def test_uwsgi_options(
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    numproc: int,
    master: int,
    unhooked: bool,
) -> None:
    """A master (``masterpid()``) or several processes fork; the fork hooks or lazy apps
    make that safe; off values are uWSGI's own (false, off, no, 0), as text or bytes."""
    _in_uwsgi(monkeypatch, options, numproc, master=master)
    assert unhooked == (_forking.unhooked_fork() is not None)


def test_fork_hooks_without_threads_run_no_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before uWSGI 2.0.31 ``py-call-uwsgi-fork-hooks`` ran the hooks only with threads on."""
    options = {"master": True, "py-call-uwsgi-fork-hooks": True}
    _in_uwsgi(monkeypatch, options, 2, master=MASTER, threads=False)
    assert _forking.unhooked_fork() is not None


def test_an_app_imported_in_a_worker_is_not_forked(monkeypatch: pytest.MonkeyPatch) -> None:
    """An app made inside a worker (a worker's own or mounted app) sees no fork after it."""
    _in_uwsgi(monkeypatch, {"master": True}, 4, master=MASTER, worker=2)
    assert _forking.unhooked_fork() is None


def test_a_uwsgi_module_without_options_is_not_uwsgi(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another module called uwsgi (no ``opt`` mapping) is not taken for the server."""
    monkeypatch.setitem(sys.modules, "uwsgi", types.ModuleType("uwsgi"))
    assert _forking.unhooked_fork() is None


@pytest.mark.fast_path
def test_unhooked_fork_selects_the_public_updaters(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The exporter takes prometheus-client's public API and says why, naming the fix,
    when the app is instrumented (a Metrics made at import, before configure_logging(),
    must not print the line before logging is set up)."""
    assert Metrics(registry=CollectorRegistry()).fast_path == fast_path.enabled()
    _in_uwsgi(monkeypatch, {"master": True}, 2, master=MASTER)
    monkeypatch.setattr(fast_path, "_warned", set())
    reason = fast_path.public_reason()
    assert reason is not None
    assert "fork hooks" in reason
    with caplog.at_level(logging.WARNING, logger="limone_obs.exporter"):
        metrics = Metrics(registry=CollectorRegistry())
        assert not metrics.fast_path
        assert "fork hooks" not in caplog.text
        metrics.init_app(Flask("unhooked"))
        metrics.init_app(Flask("another"))
    assert 1 == caplog.text.count("--py-call-uwsgi-fork-hooks --enable-threads")
    assert "public API" in caplog.text


def test_unhooked_fork_draws_one_request_id_per_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """init_app turns the id batch off (and empties it): no id is left for a fork to copy."""
    monkeypatch.setattr(flask_ext, "_batch", flask_ext.ID_BATCH)
    # Start from an empty batch: ids left by earlier tests could be down to the one
    # this draw takes (the CI run on record failed so, depending on test order).
    flask_ext._ids.clear()
    flask_ext.new_request_id()
    assert flask_ext._ids  # a batch is waiting
    _in_uwsgi(monkeypatch, {"master": True}, 2, master=MASTER)
    with caplog.at_level(logging.WARNING):
        flask_ext.init_app(Flask("unhooked"))
    assert 1 == flask_ext._batch
    assert not flask_ext._ids
    ids = {flask_ext.new_request_id() for _ in range(50)}
    assert 50 == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert not flask_ext._ids
    assert 1 == caplog.text.count("request ids are drawn one system call per request")
    flask_ext.init_app(Flask("second"))  # said once per process
    assert 1 == caplog.text.count("request ids are drawn one system call per request")
