"""The module-level app, for the plain ``gunicorn -w 3 tests.adopter.shop.wsgi:app`` run."""

from __future__ import annotations

from tests.adopter.shop import create_app

app = create_app()
