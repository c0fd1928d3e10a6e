"""A gunicorn worker class of an app's own (``-k tests.adopter.custom_worker.PlainWorker``)."""

from __future__ import annotations

from gunicorn.workers.sync import SyncWorker


class PlainWorker(SyncWorker):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's sync worker under another module's name: what runs is still gunicorn's."""
