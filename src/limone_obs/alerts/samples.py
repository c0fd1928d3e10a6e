"""Label sets that a selector matches (or not), for the generated promtool input series.

The generated tests must feed the rules series that the spec's own selectors pick up: a
"good" series counted in ``total`` but not in ``errors``, a "bad" one counted in both. The
values come from the matchers themselves (``status="500"``) or a short list of usual
label values tried in order; a selector none of them satisfies cannot be tested, which the
spec validation reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from limone_obs.alerts.selectors import Matcher, Selector

#: Values tried for a label whose matchers are not plain equalities ("" = label absent).
CANDIDATES: Final = ("500", "503", "200", "404", "ok", "error", "true", "false", "x", "")


def _candidates(matchers: Iterable[Matcher]) -> list[str]:
    given = [m.value for m in matchers if m.op in ("=", "!=")]
    return list(dict.fromkeys([*given, *CANDIDATES]))


def _pick(matchers: Sequence[Matcher], violate: Matcher | None) -> str | None:
    """A value passing every matcher in ``matchers`` and failing ``violate`` (if given)."""
    for value in _candidates([*matchers, *([violate] if violate else [])]):
        if all(m.matches(value) for m in matchers) and (
            violate is None or not violate.matches(value)
        ):
            return value
    return None


def solve(required: Sequence[Matcher], violate: Matcher | None = None) -> dict[str, str] | None:
    """Labels passing all ``required`` matchers and failing ``violate``; None if none found.

    Labels whose chosen value is "" are left out (an absent label reads as "").
    """
    names = dict.fromkeys([m.name for m in required] + ([violate.name] if violate else []))
    labels = {}
    for name in names:
        own = [m for m in required if m.name == name]
        value = _pick(own, violate if violate is not None and violate.name == name else None)
        if value is None:
            return None
        if value:
            labels[name] = value
    return labels


def bad_labels(errors: Selector, total: Selector) -> dict[str, str] | None:
    """Labels of an error series: selected by ``errors`` and, on the same metric, by ``total``."""
    required = list(errors.matchers)
    if errors.metric == total.metric:
        required.extend(total.matchers)
    return solve(required)


def good_labels(errors: Selector, total: Selector) -> dict[str, str] | None:
    """Labels of a series selected by ``total`` but not by ``errors``."""
    if errors.metric != total.metric:
        return solve(total.matchers)
    for matcher in errors.matchers:
        if matcher in total.matchers:
            continue
        found = solve(total.matchers, violate=matcher)
        if found is not None and not errors.matches(total.metric, found):
            return found
    return None
