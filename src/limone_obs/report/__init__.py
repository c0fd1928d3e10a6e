"""``limone-obs report``: a before/after performance review read from Prometheus.

The report answers "did the change make it faster?" for one window against a baseline
window of the same length: per endpoint and per dependency the request share, the exact
mean and the p50 / p95 / p99 estimates with their change, where a request's time goes,
every SLO's state and the alerts that fired, throughput and concurrency against the
seed's 100 -> 500 -> 1000 req/s steps. It writes one self-contained HTML file (charts
embedded when matplotlib is installed, opens offline) and a Markdown summary for a pull
request.

Layers (like the generators): :mod:`.window` parses the time arguments, :mod:`.queries`
builds PromQL (pure), :mod:`.slos` reads the spec (pure), :mod:`.collect` runs the
queries through :mod:`.prometheus` into the :mod:`.model`, :mod:`.charts` and
:mod:`.render` turn the model into files, :mod:`.cli` is the command.
"""

from limone_obs.report.collect import collect
from limone_obs.report.model import Report
from limone_obs.report.render import write_report

__all__ = ["Report", "collect", "write_report"]
