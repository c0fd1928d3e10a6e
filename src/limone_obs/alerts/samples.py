"""Label sets that a selector matches (or not), for the generated promtool input series.

The generated tests must feed the rules series that the spec's own selectors pick up: a
"good" series counted in ``total`` but not in ``errors``, a "bad" one counted in both. The
values come from the matchers themselves (``status="500"``) or a short list of usual
label values tried in order; a selector none of them satisfies cannot be tested, which the
spec validation reports. For a label of an exporter series whose values are known
(``result`` of the RUM beacons, ``status``), only those values are tried: a series the
exporter never writes proves nothing, and a typo (``result!="acceptd"``) then shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Final

from limone_obs.alerts.selectors import Matcher, Selector, unknown_values

#: Values tried for a label whose matchers are not plain equalities ("" = label absent).
CANDIDATES: Final = ("500", "503", "200", "404", "ok", "error", "true", "false", "x", "")
#: The values a label of the series can have (None: not known, any value may occur).
Domain = Callable[[str], "tuple[str, ...] | None"]


def _candidates(matchers: Iterable[Matcher], known: tuple[str, ...] | None) -> list[str]:
    given = [m.value for m in matchers if m.op in ("=", "!=")]
    if known is None:
        return list(dict.fromkeys([*given, *CANDIDATES]))
    # The usual values first (status 500 and 200 rather than 100), then the rest.
    ordered = [*given, *CANDIDATES, *known]
    return [v for v in dict.fromkeys(ordered) if v in known]


def _pick(
    matchers: Sequence[Matcher], violate: Matcher | None, known: tuple[str, ...] | None
) -> str | None:
    """A value passing every matcher in ``matchers`` and failing ``violate`` (if given)."""
    for value in _candidates([*matchers, *([violate] if violate else [])], known):
        if all(m.matches(value) for m in matchers) and (
            violate is None or not violate.matches(value)
        ):
            return value
    return None


def solve(
    required: Sequence[Matcher], violate: Matcher | None = None, domain: Domain = unknown_values
) -> dict[str, str] | None:
    """Labels passing all ``required`` matchers and failing ``violate``; None if none found.

    Labels whose chosen value is "" are left out (an absent label reads as "").
    ``domain`` gives the values a label can have, where they are known.
    """
    names = dict.fromkeys([m.name for m in required] + ([violate.name] if violate else []))
    labels = {}
    for name in names:
        own = [m for m in required if m.name == name]
        other = violate if violate is not None and violate.name == name else None
        value = _pick(own, other, domain(name))
        if value is None:
            return None
        if value:
            labels[name] = value
    return labels


def bad_labels(
    errors: Selector, total: Selector, domains: Callable[[str], Domain] | None = None
) -> dict[str, str] | None:
    """Labels of an error series: selected by ``errors`` and, on the same metric, by ``total``.

    ``domains(metric)`` gives a metric's :data:`Domain` (the exporter's catalogue).
    """
    required = list(errors.matchers)
    if errors.metric == total.metric:
        required.extend(total.matchers)
    return solve(required, domain=domains(errors.metric) if domains else unknown_values)


def good_labels(
    errors: Selector, total: Selector, domains: Callable[[str], Domain] | None = None
) -> dict[str, str] | None:
    """Labels of a series selected by ``total`` but not by ``errors`` (``domains``: as
    :func:`bad_labels`)."""
    domain = domains(total.metric) if domains else unknown_values
    if errors.metric != total.metric:
        return solve(total.matchers, domain=domain)
    for matcher in errors.matchers:
        if matcher in total.matchers:
            continue
        found = solve(total.matchers, violate=matcher, domain=domain)
        if found is not None and not errors.matches(total.metric, found):
            return found
    return None
