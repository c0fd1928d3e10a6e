"""One ``service`` and ``env`` for every line of a service: app events, stdlib records,
gunicorn's master and workers.

The one place is the environment: ``LIMONE_OBS_SERVICE`` and ``LIMONE_OBS_ENV``, when
set, win over ``configure_logging(service=..., env=...)`` (one warning line says when
they differ), because only the environment reaches every process: gunicorn's master
writes its lines (``Worker ... was sent SIGKILL!``) before, and without, loading the app.
When they are not set, ``configure_logging``'s values are exported to the environment,
so processes started later (the workers of a preloaded app, subprocesses) agree; the
gunicorn logger class exports what the master uses, so its workers agree with it. A
later call that leaves a value out keeps the earlier call's (``configure_logging(level=
"debug")`` does not turn ``billing-api`` back into ``limoneide``); one that gives another
value than an earlier call gave changes it, with a warning line, since the lines before
say the old one (a default replaced by a first given value says nothing). Without any
value: ``limoneide`` / ``development``.
"""

from __future__ import annotations

import os

from limone_obs import conventions as c

DEFAULT_SERVICE = c.DEFAULT_SERVICE
DEFAULT_ENV = "development"
#: Names of the variables a gunicorn master set to their defaults (comma-separated): its
#: workers then say where the value came from when ``configure_logging`` differs.
_DEFAULTED = "LIMONE_OBS_IDENTITY_DEFAULTED"
#: Values this process exported itself (a later ``configure_logging`` may replace them).
_exported: dict[str, str] = {}
#: The values ``configure_logging`` calls of this process were given (not defaulted).
_given: dict[str, str] = {}


def _external(var: str) -> str | None:
    """The variable's value unless unset, empty or exported by ``configure_logging``."""
    value = os.environ.get(var) or None
    return None if value is None or _exported.get(var) == value else value


def resolve(service: str | None, env: str | None) -> tuple[str, str, list[str]]:
    """Return ``(service, env, warnings)`` by the rule of the module docstring and export
    the result when the environment did not set it."""
    warnings: list[str] = []
    chosen = []
    for var, arg, default, name in (
        (c.ENV_SERVICE, service, DEFAULT_SERVICE, "service"),
        (c.ENV_ENV, env, DEFAULT_ENV, "env"),
    ):
        external = _external(var)
        if external is None:
            earlier = _given.get(var)
            value = arg or earlier or default
            if arg and earlier is not None and arg != earlier:
                warnings.append(_changed_warning(name, earlier, arg))
            if arg:
                _given[var] = arg
            os.environ[var] = _exported[var] = value
        else:
            value = external
            if arg and arg != external:
                warnings.append(_override_warning(name, var, arg, external))
        chosen.append(value)
    return chosen[0], chosen[1], warnings


def _changed_warning(name: str, earlier: str, value: str) -> str:
    return (
        f"configure_logging({name}={value!r}) changes the {name} an earlier call of this "
        f"process set, {earlier!r}: its lines so far, and the processes it started, say "
        f"{name}={earlier!r}; give every call the same {name} (or leave it out of the later "
        "ones)"
    )


def _override_warning(name: str, var: str, arg: str, external: str) -> str:
    if var in os.environ.get(_DEFAULTED, "").split(","):
        source = f"gunicorn's master, where {var} was not set, used its default {external!r}"
    else:
        source = f"{var}={external!r} is set in the environment"
    return (
        f"configure_logging({name}={arg!r}) is overridden: {source}, so every line of the "
        f"service (gunicorn's master too) says {name}={external!r}; set {var}={arg!r} where "
        "the server starts to use that value"
    )


def from_environment() -> tuple[str, str]:
    """``(service, env)`` from the environment (else the defaults), exported as the
    environment of the processes this one starts (the gunicorn master's workers); the
    variables that took their default are named in ``LIMONE_OBS_IDENTITY_DEFAULTED``."""
    defaulted = [var for var in (c.ENV_SERVICE, c.ENV_ENV) if not os.environ.get(var)]
    service = os.environ.get(c.ENV_SERVICE) or DEFAULT_SERVICE
    env = os.environ.get(c.ENV_ENV) or DEFAULT_ENV
    os.environ[c.ENV_SERVICE], os.environ[c.ENV_ENV] = service, env
    if defaulted:
        os.environ[_DEFAULTED] = ",".join(defaulted)
    return service, env


def forget_exports() -> None:
    """Remove the variables ``configure_logging`` exported (tests)."""
    for var, value in _exported.items():
        if os.environ.get(var) == value:
            del os.environ[var]
    _exported.clear()
    _given.clear()
    os.environ.pop(_DEFAULTED, None)
