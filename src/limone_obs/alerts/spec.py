"""The SLO spec (``alerts/slo.yaml``): load it, validate it, get frozen dataclasses.

:func:`load_spec` / :func:`parse_spec` read the YAML once and return a :class:`ServiceSpec`;
every later layer (rules, Alertmanager config, promtool tests, dashboards, the local stack)
reads this model, never the YAML. Problems raise :class:`~limone_obs.errors.SpecError`
located at the file and field (``alerts/slo.yaml: slos[1] (latency).threshold_seconds``)
with the value found and what is allowed; when the spec parses as YAML, every independent
problem is raised at once as a :class:`~limone_obs.errors.CollectedSpecError` (a
SpecError whose ``errors`` lists them). The dataclasses are defined in
:mod:`limone_obs.alerts.model` and re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from limone_obs.alerts import _parse
from limone_obs.alerts._reader import Reader, kind_name, load_yaml
from limone_obs.alerts.kinds import PARSERS
from limone_obs.alerts.model import (
    BUDGET_KINDS,
    KIND_LATENCY,
    KIND_RATIO,
    KIND_THRESHOLD,
    KIND_UP,
    KINDS,
    SEVERITIES,
    TIER_OFF,
    AlertmanagerSpec,
    BurnTier,
    QuantileAlert,
    Receiver,
    ServiceSpec,
    Slo,
    job_matcher,
)
from limone_obs.alerts.selectors import Matcher, Selector
from limone_obs.errors import SpecError

__all__ = [
    "BUDGET_KINDS",
    "KINDS",
    "KIND_LATENCY",
    "KIND_RATIO",
    "KIND_THRESHOLD",
    "KIND_UP",
    "SEVERITIES",
    "SPEC_DOCS",
    "SPEC_PATH",
    "TIER_OFF",
    "AlertmanagerSpec",
    "BurnTier",
    "Matcher",
    "QuantileAlert",
    "Receiver",
    "Selector",
    "ServiceSpec",
    "Slo",
    "job_matcher",
    "load_spec",
    "not_found",
    "parse_spec",
]

#: Where ``limone-obs build`` and ``check`` read the spec, relative to the project root.
SPEC_PATH: Final = Path("alerts") / "slo.yaml"
#: Where the spec's format is documented, next to the kit's own commented spec: a pip
#: install ships neither, so a message about a missing spec links here.
SPEC_DOCS: Final = "https://github.com/limoneide/limone-obs/blob/main/alerts/README.md"
#: How a command with a ``--spec`` option is pointed at a spec elsewhere.
SPEC_OPTION_HINT: Final = "give the path of yours with --spec PATH"


def not_found(path: Path | str, how: str = SPEC_OPTION_HINT) -> SpecError:
    """The error of a spec missing at ``path``: ``how`` says how this command reads another
    file; then where the format is documented."""
    return SpecError(
        str(path),
        f"file not found: {how}, or write your spec there; its format is documented at "
        f"{SPEC_DOCS} (the kit's commented alerts/slo.yaml beside it is an example)",
    )


def load_spec(path: Path | str = SPEC_PATH, *, missing: str = SPEC_OPTION_HINT) -> ServiceSpec:
    """Read and validate the spec at ``path``; SpecError when missing, unreadable or invalid.

    ``missing`` is what the error of a missing file says to do (:func:`not_found`).
    """
    path = Path(path)
    try:
        text = decode_spec(path.read_bytes(), path)
    except FileNotFoundError:
        raise not_found(path, missing) from None
    except OSError as exc:
        raise SpecError(str(path), f"cannot be read: {exc}") from None
    return parse_spec(text, source=str(path))


def decode_spec(data: bytes, path: Path) -> str:
    """``data`` (the spec file at ``path``) as UTF-8 text; a SpecError naming the line of
    the first byte that is not UTF-8 (a file saved as Latin-1) and what to do."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{path}: line {line}",
            f"byte 0x{data[exc.start]:02x} is not UTF-8 (a file saved as Latin-1 or "
            "Windows-1252?): save the file as UTF-8",
        ) from None


def parse_spec(text: str, source: str = str(SPEC_PATH)) -> ServiceSpec:
    """Validate the YAML ``text`` of a spec; ``source`` names it in error messages."""
    data = load_yaml(text, source)
    if data is None:
        raise SpecError(source, "is empty: it must be a mapping with service, job and slos")
    if not isinstance(data, Mapping):
        raise SpecError(source, f"must be a mapping at the top level, found {kind_name(data)}")
    return _parse.service(Reader.of(source, "", data), PARSERS)
