"""The shop's blueprint: each view sleeps a known time inside tracked dependency calls.

The sleeps are the "dependency time" the tests expect to find in the histogram sums.
Every view logs one event, which must carry the request's id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from flask import Blueprint, Response, stream_with_context

from limone_obs.logging import get_logger, submit
from tests.adopter.shop.extensions import metrics

DB_SLEEP = 0.02
AI_SLEEP = 0.05
STREAM_CHUNKS = 3
CHUNK_SLEEP = 0.02
POOL_SLEEP = 0.03

bp = Blueprint("shop", __name__)
log = get_logger(__name__)
pool = ThreadPoolExecutor(max_workers=2)


@bp.get("/items/<int:item_id>")
def item(item_id: int) -> dict[str, int]:
    """A sync view with one tracked database call."""
    with metrics.track("db", "select_item"):
        time.sleep(DB_SLEEP)
    log.info("item loaded", item_id=item_id)
    return {"id": item_id}


async def _complete(prompt: str) -> str:
    async with metrics.track("ai_api", "complete"):
        await asyncio.sleep(AI_SLEEP)
    return prompt.upper()


@bp.get("/ask")
async def ask() -> dict[str, list[str]]:
    """An async view making two tracked AI calls at once (needs flask[async])."""
    answers = await asyncio.gather(_complete("a"), _complete("b"))
    log.info("answered", answers=len(answers))
    return {"answers": list(answers)}


@metrics.track("ai_api", "stream")
def _tokens() -> Iterator[str]:
    for i in range(STREAM_CHUNKS):
        time.sleep(CHUNK_SLEEP)
        yield f"token{i} "


@bp.get("/stream")
def stream() -> Response:
    """A streamed AI answer produced by a tracked generator."""
    log.info("streaming")
    return Response(stream_with_context(_tokens()), mimetype="text/plain")


def _summarise(text: str) -> str:
    with metrics.track("ai_api", "summarise"):
        time.sleep(POOL_SLEEP)
    log.info("summarised in a thread", length=len(text))
    return text[:3]


@bp.get("/pool")
def summarise() -> dict[str, str]:
    """A sync AI SDK call handed to a thread pool, as such SDKs usually are."""
    # Through limone_obs.context's helper: the line logged in the thread keeps this
    # request's id (a plain pool.submit starts the thread with an empty context).
    summary = submit(pool, _summarise, "a long text").result(timeout=30)
    return {"summary": summary}
