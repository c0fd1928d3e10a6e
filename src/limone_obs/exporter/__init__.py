"""The Flask exporter: request, latency, in-flight, exception and dependency metrics."""

from limone_obs.exporter.cache import RedisCache
from limone_obs.exporter.extension import Metrics, metrics_for
from limone_obs.exporter.tracking import Track

__all__ = ["Metrics", "RedisCache", "Track", "metrics_for"]
