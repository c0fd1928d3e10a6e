"""Reading the kit's Flask config keys: one rule for every on/off setting.

A setting read from the environment arrives as text (``app.config.from_mapping(os.environ)``,
a ``.env`` file), and ``bool("false")`` is True: an on/off key therefore takes a bool, the
ints 0 and 1, or the words below; anything else is a ConfigError naming the key and value.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from limone_obs.errors import ConfigError

logger = logging.getLogger("limone_obs")
#: Environment variables already reported by :func:`warn_unread_environment`.
_told: set[str] = set()

_WORDS = {
    "true": True, "1": True, "yes": True, "on": True,
    "false": False, "0": False, "no": False, "off": False,
}  # fmt: skip


def flag(config: MutableMapping[str, Any], key: str, default: bool) -> bool:
    """The on/off setting ``key`` of ``config`` (``default`` when unset), stored back as a
    bool so every later reader of ``config`` sees the same value; ConfigError when it is
    neither a bool, 0 or 1, nor one of true/false, yes/no, on/off, 1/0 (any case)."""
    value = config.get(key, default)
    if isinstance(value, bool):
        parsed = value
    elif isinstance(value, int) and value in (0, 1):
        parsed = bool(value)
    elif isinstance(value, str) and value.strip().lower() in _WORDS:
        parsed = _WORDS[value.strip().lower()]
    else:
        raise ConfigError(
            f"{key}={value!r}: use True or False (or the text true/false, yes/no, on/off, 1/0)"
        )
    config[key] = parsed
    return parsed


def warn_unread_environment(
    config: Mapping[str, Any], keys: Iterable[str], app: str, reader: str
) -> None:
    """Say, in one warning line per name and process, that an environment variable named
    like one of ``keys`` (Flask config keys that ``reader`` reads, not read from the
    environment) is set while ``config`` does not have it: ``LIMONE_OBS_LOG_ACCESS=false``
    exported in a shell or a container would otherwise change nothing, without a word.
    Call it before the keys' defaults are stored in ``config``."""
    for key in keys:
        if key in os.environ and key not in config and key not in _told:
            _told.add(key)
            logger.warning(
                "limone-obs: the environment variable %s is set, but it is a Flask config "
                "key, not read from the environment: app %r uses its default. Set "
                "app.config[%r] before %s (e.g. from os.environ), or unset the variable.",
                key,
                app,
                key,
                reader,
            )


_UNSET = object()


def read_values(config: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The values of ``keys`` in ``config`` (a marker for those unset), taken once a
    reader has read them all: what :func:`warn_changed` compares against later. Copied
    as tuples: a list changed in place afterwards (``paths.append(...)``) is a change."""
    return {key: _comparable(config.get(key, _UNSET)) for key in keys}


def _comparable(value: Any) -> Any:
    """``value`` with its lists, tuples and sets copied as tuples and frozensets (an equal
    list in place of a tuple is no change)."""
    if isinstance(value, list | tuple):
        return tuple(_comparable(item) for item in value)
    if isinstance(value, set | frozenset):
        return frozenset(value)
    return value


def warn_changed(config: Mapping[str, Any], read: Mapping[str, Any], app: str, reader: str) -> None:
    """Say, in one warning line, which keys of ``read`` hold another value in ``config``
    now (set, changed or removed after ``reader`` read them, so without effect: the kit
    keeps what it read). Names only: a value may be a secret (a token, a signing key).
    Never raises: it runs at an app's first request."""
    with contextlib.suppress(Exception):  # a warning must not fail the user's request
        now = read_values(config, read)
        changed = [key for key, then in read.items() if not _same(now[key], then)]
        if changed:
            logger.warning(
                "limone-obs: app %r: %s changed after %s read the config; the kit keeps "
                "the values it read then. Set them in app.config before %s.",
                app,
                ", ".join(changed),
                reader,
                reader,
            )


def _same(now: Any, then: Any) -> bool:
    """True when ``now`` is ``then`` or equal to it, or the text or number :func:`flag`
    stored as ``then`` (``"off"`` set again after it stored False); a failing comparison
    is no match."""
    try:
        return bool(now is then or now == then or (type(then) is bool and _as_flag(now) is then))
    except Exception:  # an odd value's __eq__
        return False


def _as_flag(value: Any) -> bool | None:
    """``value`` read as :func:`flag` reads it, else None."""
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _WORDS.get(value.strip().lower())
    return None
