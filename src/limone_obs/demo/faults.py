"""Fault switches of the demo service: error rate, extra latency per dependency, outage,
and an N+1 query loop in ``GET /projects``.

The switches live in a small JSON file in the demo's data directory, so every gunicorn
worker sees a change made through the admin endpoint of any one of them (each worker
re-reads the file when its modification time changes). Environment variables give the
state used until the admin endpoint first writes the file:

- ``LIMONE_DEMO_ERROR_RATE``: share of requests answered 500, 0 to 1 (e.g. ``0.2``);
- ``LIMONE_DEMO_LATENCY``: extra seconds per dependency, e.g. ``ai_api=1.5,db=0.2``;
- ``LIMONE_DEMO_OUTAGE``: ``1`` answers every request 503 (``/metrics`` still works);
- ``LIMONE_DEMO_N_PLUS_ONE``: ``1`` makes ``GET /projects`` read the project ids with one
  query, then each project with a query of its own (N+1 ``db`` calls instead of 1).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from limone_obs import conventions as c
from limone_obs.artifacts import write_atomic
from limone_obs.errors import ConfigError

#: Dependencies whose calls the latency switch can slow down.
DEPENDENCIES = (c.DEPENDENCY_AI, c.DEPENDENCY_DB, c.DEPENDENCY_REDIS)
#: Upper bound of an injected delay, so a typo cannot hang a worker past gunicorn's timeout.
MAX_EXTRA_LATENCY = 30.0
_FIELDS = ("error_rate", "latency", "outage", "n_plus_one")


@dataclass(frozen=True)
class Faults:
    """One state of the fault switches; the default is all off."""

    error_rate: float = 0.0
    latency: Mapping[str, float] = field(default_factory=dict)
    outage: bool = False
    n_plus_one: bool = False

    def to_json(self) -> dict[str, Any]:
        """The state as a JSON-ready dict (the admin endpoint's representation)."""
        data = asdict(self)
        data["latency"] = dict(self.latency)
        return data

    def updated(self, changes: Mapping[str, Any], where: str) -> Faults:
        """Return a copy with ``changes`` (a partial JSON object) applied and validated.

        Raises ConfigError naming ``where``, the field and the allowed values.
        """
        unknown = sorted(set(changes) - set(_FIELDS))
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {unknown}; allowed: {list(_FIELDS)}")
        new = self
        if "error_rate" in changes:
            new = replace(new, error_rate=_rate(changes["error_rate"], f"{where}: error_rate"))
        if "latency" in changes:
            new = replace(new, latency=_latency(changes["latency"], f"{where}: latency"))
        if "outage" in changes:
            new = replace(new, outage=_flag(changes["outage"], f"{where}: outage"))
        if "n_plus_one" in changes:
            flag = _flag(changes["n_plus_one"], f"{where}: n_plus_one")
            new = replace(new, n_plus_one=flag)
        return new


def _rate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}={value!r}: use a number from 0 to 1")
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{where}={value!r}: use a number from 0 to 1")
    return float(value)


def _latency(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ConfigError(f'{where}={value!r}: use an object like {{"ai_api": 1.5}}')
    out = {}
    for dep, seconds in value.items():
        if dep not in DEPENDENCIES:
            raise ConfigError(f"{where}: unknown dependency {dep!r}; known: {list(DEPENDENCIES)}")
        ok = isinstance(seconds, int | float) and not isinstance(seconds, bool)
        if not ok or not (0 <= seconds <= MAX_EXTRA_LATENCY and math.isfinite(seconds)):
            raise ConfigError(
                f"{where}.{dep}={seconds!r}: use seconds from 0 to {MAX_EXTRA_LATENCY:g}"
            )
        out[dep] = float(seconds)
    return out


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}={value!r}: use true or false")
    return value


def from_env(env: Mapping[str, str]) -> Faults:
    """The initial state from ``LIMONE_DEMO_*`` variables; raise ConfigError on a bad one."""
    changes: dict[str, Any] = {}
    rate = env.get("LIMONE_DEMO_ERROR_RATE", "").strip()
    if rate:
        changes["error_rate"] = _number(rate, "LIMONE_DEMO_ERROR_RATE")
    latency = env.get("LIMONE_DEMO_LATENCY", "").strip()
    if latency:
        changes["latency"] = _pairs(latency, "LIMONE_DEMO_LATENCY")
    for name, key in (("LIMONE_DEMO_OUTAGE", "outage"), ("LIMONE_DEMO_N_PLUS_ONE", "n_plus_one")):
        flag = env.get(name, "").strip().lower()
        if flag:
            if flag not in ("0", "1", "true", "false"):
                raise ConfigError(f"{name}={flag!r}: use 1/true or 0/false")
            changes[key] = flag in ("1", "true")
    return Faults().updated(changes, "environment")


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r}: not a number") from None


def _pairs(text: str, name: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        dep, sep, seconds = part.partition("=")
        if not sep:
            raise ConfigError(f"{name}={text!r}: use dependency=seconds[,...], e.g. ai_api=1.5")
        out[dep.strip()] = _number(seconds, f"{name} ({dep.strip()})")
    return out


class FaultStore:
    """The fault switches shared by every process using the same ``path``.

    :meth:`current` costs one ``stat`` per call and re-reads the file only after a change.
    """

    def __init__(self, path: Path, initial: Faults) -> None:
        self.path = path
        self._initial = initial
        self._state = initial
        self._version: tuple[int, int, int] | None = None

    def current(self) -> Faults:
        """The switches now in effect (the file's, else the initial state)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._initial
        # Each write is a new file (atomic replace): inode, mtime and size spot a change
        # even on file systems with coarse timestamps.
        version = (st.st_ino, st.st_mtime_ns, st.st_size)
        if version != self._version:
            data = json.loads(self.path.read_text())
            self._state = Faults().updated(data, str(self.path))
            self._version = version
        return self._state

    def write(self, faults: Faults) -> None:
        """Make ``faults`` the state of every process (atomic replace of the file)."""
        text = json.dumps(faults.to_json(), sort_keys=True) + "\n"
        write_atomic(self.path, text.encode())
