"""Work handed to a thread pool keeps the request's context (issue 13), in real Flask
requests: sync views with ``ThreadPoolExecutor.submit`` and ``wrap``, async views with
``run_in_executor``."""

from __future__ import annotations

import asyncio
import contextvars
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask

from limone_obs.context import run_in_executor, submit, wrap
from limone_obs.logging import configure_logging, get_logger, init_app
from tests.logging.helpers import parse_lines

#: A context variable of the app's own: every variable travels, not only the logging one.
TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="none")
POOL = ThreadPoolExecutor(max_workers=2)
log = get_logger("pool")


def _in_worker(tag: str) -> str:
    log.info("in worker", tag=tag, tenant=TENANT.get())
    return "done"


def _app() -> Flask:
    app = Flask(__name__)
    init_app(app)

    @app.get("/submit")
    def with_submit() -> str:
        TENANT.set("acme")
        return submit(POOL, _in_worker, "submit").result(timeout=10)

    @app.get("/map")
    def with_wrap() -> str:
        TENANT.set("acme")
        return ",".join(POOL.map(wrap(_in_worker), ["map-1", "map-2", "map-3"]))

    @app.get("/plain")
    def without_helper() -> str:
        return POOL.submit(_in_worker, "plain").result(timeout=10)

    @app.get("/async")
    async def with_run_in_executor() -> str:
        TENANT.set("acme")
        first, second = await asyncio.gather(
            run_in_executor(None, _in_worker, "async-default"),
            run_in_executor(POOL, _in_worker, "async-pool"),
        )
        return first + second

    return app


def _request(path: str) -> tuple[str, list[dict[str, Any]]]:
    """GET ``path``; return the response's request id and the worker lines written."""
    out = io.BytesIO()
    configure_logging(stream=out)
    with _app().test_client().get(path, headers={"X-Request-ID": f"rid{path[1:]}"}) as resp:
        assert 200 == resp.status_code
        request_id = resp.headers["X-Request-ID"]
    return request_id, [e for e in parse_lines(out.getvalue()) if e["logger"] == "pool"]


@pytest.mark.parametrize("path", ["/submit", "/map", "/async"])
def test_worker_lines_carry_the_request_context(path: str) -> None:
    """Lines logged in the pool carry the request's id and path, and the app's own
    context variable set in the view is seen in the worker."""
    request_id, lines = _request(path)
    assert lines
    assert {(request_id, path, "acme")} == {
        (e.get("request_id"), e.get("path"), e["tenant"]) for e in lines
    }


def test_without_the_helper_the_context_is_lost() -> None:
    """The trap the helpers exist for: a plain ``submit`` runs without the request id."""
    _, lines = _request("/plain")
    assert [None] == [e.get("request_id") for e in lines]


def test_wrapped_function_runs_concurrently_in_own_copies() -> None:
    """One wrapped function called from several threads at once does not fail (a
    Context cannot be entered twice) and a ``set`` in one call stays in that call."""
    TENANT.set("outer")

    def bump(n: int) -> str:
        before = TENANT.get()
        TENANT.set(f"inner-{n}")
        return before

    wrapped = wrap(bump)
    with ThreadPoolExecutor(max_workers=4) as pool:
        seen = list(pool.map(wrapped, range(20)))
    assert (["outer"] * 20, "outer") == (seen, TENANT.get())
