"""Extensions created once at import and bound in the factory (the Flask pattern)."""

from __future__ import annotations

from limone_obs import Metrics

metrics = Metrics()
