"""The exception hierarchy of limone-obs.

Every error the package raises on purpose derives from :class:`LimoneObsError`; its message
says where the problem is (file, field, value) and what to do. The CLI prints these
without a traceback and exits with status 2.
"""

from __future__ import annotations


class LimoneObsError(Exception):
    """Base class of every error limone-obs raises on purpose."""


class ConfigError(LimoneObsError):
    """A setting (Flask config key, constructor argument, CLI option) is invalid."""


class SpecError(LimoneObsError):
    """The SLO spec (``alerts/slo.yaml``) is invalid.

    ``location`` names the file and the field path, e.g. ``alerts/slo.yaml: slos[1].objective``.
    """

    def __init__(self, location: str, message: str) -> None:
        self.location = location
        self.detail = message
        super().__init__(f"{location}: {message}")


class CollectedSpecError(SpecError):
    """Several independent problems of one spec, each a located :class:`SpecError`.

    ``errors`` keeps them in the order found; the message is one ``location: message``
    line per problem, so with one problem it reads exactly like that SpecError.
    """

    def __init__(self, errors: list[SpecError]) -> None:
        if not errors:
            raise ValueError("CollectedSpecError needs at least one error")
        self.errors = list(errors)
        super().__init__(errors[0].location, errors[0].detail)
        self.args = ("\n".join(str(error) for error in self.errors),)

    def __str__(self) -> str:
        return str(self.args[0])


class ArtifactError(LimoneObsError):
    """A generated artifact is stale, missing, or could not be written."""


class StackError(LimoneObsError):
    """The local stack could not start: a binary is missing, a port is taken, a child died."""


class DashboardError(LimoneObsError):
    """A dashboard failed to build, lint or push."""


class ReportError(LimoneObsError):
    """A performance report could not be made: Prometheus is unreachable or has no data."""
