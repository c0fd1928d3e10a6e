"""Template rendering timed as the ``template`` dependency (``LIMONE_OBS_TEMPLATE_TIMING``).

Each render of a template of the app's Jinja environment is one call, named by the
template (``<string>`` for ``render_template_string``): ``render()`` (Flask's
``render_template``) from its start to its return, or to its exception (outcome
``error``), and ``generate()`` (``stream_template``) over its iteration (the time spent
making its chunks, not the server's sending them); their async forms (an environment
with ``enable_async``) alike, once each. It counts in the request's calls per dependency
like any tracked call.

The timing sits in the template class of the app's environment, Jinja's documented
``template_class``: the environment class Flask instantiates (``app.jinja_environment``,
also a documented setting) becomes a subclass whose template class times; where the app
already created its environment (it used ``app.jinja_env`` before ``Metrics(app)``), that
environment's ``template_class`` is replaced and its template cache emptied (a template
loaded before would keep its class). Each render times itself, so a render that
fails, or one nested in another (a template calling ``render_template``), leaves the
others' times whole: Flask's ``before_render_template``/``template_rendered`` signals
could not tell (no signal for a render that raised). ``{% include %}`` and
``{% extends %}`` are part of the render that uses them.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from time import perf_counter
from typing import Any, Protocol

from flask import Flask
from jinja2 import Template

from limone_obs.exporter.tracking import timed_aiteration, timed_iteration


class Record(Protocol):
    """Called after each render: template name or None, seconds, failed; ``span``: the
    render's time joins its request's busy time as one span (a stream adds its chunks')."""

    def __call__(
        self, name: str | None, elapsed: float, failed: bool, span: bool = True
    ) -> None: ...


#: Set on the classes made here (and their subclasses): the timing is already there.
TIMED_MARK = "limone_obs_timed"


def install(app: Flask, record: Record) -> None:
    """Time every render of ``app``'s templates with ``record`` (see the module doc)."""
    if _created(app):
        env = app.jinja_env
        env.template_class = timed_template_class(env.template_class, record)
        if env.cache is not None:  # templates loaded already keep their class: load again
            env.cache.clear()
        return
    base = app.jinja_environment
    _replace_environment(app, {"template_class": timed_template_class(base.template_class, record)})


def add_global(app: Flask, name: str, value: object) -> None:
    """Make ``value`` the Jinja global ``name`` of ``app``, as ``app.add_template_global``
    does, but without creating the environment now: options the app sets afterwards
    (``app.jinja_options``, read when Flask creates it) must still apply."""
    if _created(app):
        app.jinja_env.globals[name] = value
        return
    base = app.jinja_environment

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807 - the method
        base.__init__(self, *args, **kwargs)
        self.globals[name] = value

    _replace_environment(app, {"__init__": __init__})


def _created(app: Flask) -> bool:
    """True once Flask has created ``app``'s environment (it caches it on the app)."""
    return "jinja_env" in vars(app)


def _replace_environment(app: Flask, members: dict[str, Any]) -> None:
    """Make the environment class Flask will create for ``app`` a subclass of the current
    one with ``members`` (keeping its name, module and documentation)."""
    base = app.jinja_environment
    namespace = {
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
        **members,
    }
    subclass: Any = type(base.__name__, (base,), namespace)
    app.jinja_environment = subclass


def timed_template_class(base: type[Template], record: Record) -> type[Template]:
    """A subclass of ``base`` whose ``render`` and ``generate`` (and their async forms)
    report to ``record``, once per render; ``base`` itself when it times already."""
    if getattr(base, TIMED_MARK, False):
        return base

    def render(self: Template, *args: Any, **kwargs: Any) -> str:
        if self.environment.is_async:  # Jinja runs render_async, which times itself
            return base.render(self, *args, **kwargs)
        start = perf_counter()
        try:
            text = base.render(self, *args, **kwargs)
        except BaseException:
            record(self.name, perf_counter() - start, True)
            raise
        record(self.name, perf_counter() - start, False)
        return text

    async def render_async(self: Template, *args: Any, **kwargs: Any) -> str:
        start = perf_counter()
        try:
            text = await base.render_async(self, *args, **kwargs)
        except BaseException:
            record(self.name, perf_counter() - start, True)
            raise
        record(self.name, perf_counter() - start, False)
        return text

    def generate(self: Template, *args: Any, **kwargs: Any) -> Iterator[str]:
        items = base.generate(self, *args, **kwargs)
        if self.environment.is_async:  # Jinja runs generate_async, which times itself
            return items
        return timed_iteration(items, functools.partial(record, self.name, span=False))

    def generate_async(self: Template, *args: Any, **kwargs: Any) -> AsyncIterator[str]:
        items = base.generate_async(self, *args, **kwargs)
        return timed_aiteration(items, functools.partial(record, self.name, span=False))

    namespace = {
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
        TIMED_MARK: True,
        "render": render,
        "render_async": render_async,
        "generate": generate,
        "generate_async": generate_async,
    }
    timed: type[Template] = type(base.__name__, (base,), namespace)
    return timed
