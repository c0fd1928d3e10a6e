"""How samples of several processes' multiprocess files merge into one: the rules, once.

A file is ``<type>_<pid>.db`` (``gauge_<mode>_<pid>.db`` for gauges). Counters, summaries
and histograms add up; a gauge merges by its ``multiprocess_mode``: ``sum`` adds, ``min``
/ ``max`` keep the extreme, ``mostrecent`` the newest timestamp, ``all`` keeps one sample
per pid. A ``live`` mode merges like its twin while the process lives; compaction drops it
once the process is dead. The list of modes comes from prometheus-client itself, so a
mode it adds later is an error here (a series this kit would silently drop), not a guess.

Both readers use these rules: the flat collector (:mod:`._mp_collector`) for live files
and compaction (:mod:`.compaction`) for dead workers' files.
"""

from __future__ import annotations

import typing

from prometheus_client import Gauge

from limone_obs.errors import ArtifactError, ConfigError

ADD, MIN, MAX, RECENT, PER_PID = "add", "min", "max", "mostrecent", "per_pid"
#: A (value, timestamp) pair as a file stores it.
Pair = tuple[float, float]
_GAUGE_RULES = {"sum": ADD, "min": MIN, "max": MAX, "mostrecent": RECENT, "all": PER_PID}


def gauge_modes() -> frozenset[str]:
    """The gauge ``multiprocess_mode`` values prometheus-client accepts (its public signature)."""
    hint = typing.get_type_hints(Gauge.__init__).get("multiprocess_mode")
    modes = frozenset(str(m) for m in typing.get_args(hint))
    if not modes:
        raise ConfigError(
            "limone-obs cannot read the gauge modes of this prometheus-client release "
            "(Gauge(multiprocess_mode=...) is no longer a Literal): set "
            "LIMONE_OBS_FAST_PATH=0 and report it"
        )
    return modes


def _rules() -> dict[str, str]:
    rules = {"counter": ADD, "summary": ADD, "histogram": ADD}
    for mode in sorted(gauge_modes()):
        rule = _GAUGE_RULES.get(mode.removeprefix("live"))
        if rule is None:
            raise ConfigError(
                f"prometheus-client gauge mode {mode!r} has no merge rule in limone-obs: "
                "set LIMONE_OBS_FAST_PATH=0 (prometheus-client's own collector) and report it"
            )
        rules[f"gauge_{mode}"] = rule
    return rules


#: Merge rule of each file prefix (``live`` modes included).
RULES = _rules()
LIVE_PREFIXES = frozenset(p for p in RULES if p.startswith("gauge_live"))


def split_name(name: str) -> tuple[str, str] | None:
    """Return (prefix, pid) of a ``<prefix>_<pid>.db`` file name; None if not a ``.db`` file.

    Raises ArtifactError for a ``.db`` file whose prefix is no type or gauge mode of
    prometheus-client: its samples would otherwise vanish from every scrape unnoticed.
    """
    if not name.endswith(".db"):
        return None
    prefix, sep, pid = name[:-3].rpartition("_")
    if not sep or prefix not in RULES:
        raise ArtifactError(
            f"{name}: not a prometheus-client multiprocess file (known prefixes: "
            f"{', '.join(sorted(RULES))}); remove it from the multiprocess directory"
        )
    return prefix, pid


def combine(rule: str, old: Pair | None, new: Pair) -> Pair:
    """Merge ``new`` into ``old`` (either may come first) by ``rule``."""
    if old is None:
        return new
    if rule == ADD:
        return (old[0] + new[0], 0.0)
    if rule == MIN:
        return new if new[0] < old[0] else old
    if rule == MAX:
        return new if new[0] > old[0] else old
    if rule == RECENT:
        return new if new[1] > old[1] else old
    return new  # PER_PID: one sample per pid, never two of them under one key
