"""Real-user page timing (RUM): the browser script, its Jinja tag and the beacon endpoint.

``Metrics(app)`` calls :func:`init_app`, which registers (unless ``LIMONE_OBS_RUM`` is
false) a Jinja global ``limone_obs_rum()`` rendering the script tag, ``GET <path>.js``
serving the script (``static/limone-obs-rum.js``, also usable as a plain file) and
``POST <path>`` receiving beacons. Each accepted beacon adds observations to
``<ns>_page_load_seconds{page,phase}``:

- ``page`` is the URL rule of the request that rendered the tag, signed into the tag
  (``data-page``): the server never takes a URL from the browser, and accepts only pages
  it signed that are rules of the app;
- ``phase`` is one of ``conventions.RUM_PHASES`` or a registered mark name.

Hostile beacons cost bounded work and add no series: a body over :data:`MAX_BODY_BYTES`
gets 413, a malformed one or a bad page 400, a flood of well-formed beacons with a valid
page token beyond the per-process rate 429; unknown phases and values that are not
finite seconds in ``[0, MAX_SECONDS]`` are dropped. The rate is spent only once the page
token checks out: a flood of garbage, whose work is bounded by the body's size, cannot
crowd out real browsers' beacons. A page token is not bound to one page view: a client
holding one can send timings for that page until the token expires (why the RUM SLOs
open tickets only). ``<ns>_rum_beacons_total{result}`` counts what became of each beacon.
``<ns>_rum_pages_total{page}`` counts the tags rendered with a page token, what the
beacons are compared with: a browser without JavaScript (a crawler), a content blocker,
a Content-Security-Policy that blocks the script or its beacon, a user leaving before
the load event send no beacon, and only this count shows the page views they had.

The beacon and script paths are left out of the request series (their own counter says
how many came): a page view's beacon is not a user request, and thousands of 1 ms
beacons would make the request latency SLO look better than users have it.

Flask config keys (defaults in brackets):

- ``LIMONE_OBS_RUM`` [``True``]: register the endpoint, the script and the Jinja global
  (off, the global renders nothing: templates that include the tag keep working).
- ``LIMONE_OBS_RUM_PATH`` [``"/rum"``]: the beacon path; the script is at ``<path>.js``.
- ``LIMONE_OBS_RUM_MARKS`` [``("ai_answer_shown",)``]: mark names accepted as phases.
- ``LIMONE_OBS_RUM_KEY`` [``SECRET_KEY``]: key signing the page tokens. Without either,
  tokens are signed with a fixed, public key: a client can then claim any page of the
  app (still no new series beyond its rules); a warning is logged.
- ``LIMONE_OBS_RUM_MAX_AGE`` [``86400``]: seconds a page token stays valid.
- ``LIMONE_OBS_RUM_RATE`` [``200``]: beacons per second accepted per process; more get 429.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, has_request_context, request
from itsdangerous import BadData, BadSignature, SignatureExpired, TimestampSigner
from markupsafe import Markup, escape
from prometheus_client import CollectorRegistry, Counter, Histogram

from limone_obs import conventions as c
from limone_obs._config import flag
from limone_obs.errors import ConfigError
from limone_obs.exporter import _failsafe, templates

if TYPE_CHECKING:
    from limone_obs.exporter.extension import Metrics

#: Largest beacon body read; a real one is about 150 bytes.
MAX_BODY_BYTES = 2048
#: Most values taken from one beacon (the navigation beacon carries four phases + marks).
MAX_VALUES = 16
#: Longest page load believed (seconds); longer values are dropped, not observed.
MAX_SECONDS = 600.0
#: Longest page token read (characters): a URL rule plus a timestamp and a signature.
MAX_TOKEN_CHARS = 512
SCRIPT_FILE = "limone-obs-rum.js"
#: The name of the blueprint of the beacon and script routes (their endpoints' prefix).
BLUEPRINT = "limone_obs_rum"
_SALT = "limone-obs-rum"
_UNSIGNED_KEY = "limone-obs-rum: no SECRET_KEY or LIMONE_OBS_RUM_KEY set"
_MARK_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: A beacon path: one or more non-empty segments, none "." or "..".
_RUM_PATH = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9_.-]+)+")
_log = logging.getLogger(__name__)


def script_source() -> bytes:
    """The RUM script shipped in the package (``limone_obs/exporter/static/``)."""
    return resources.files("limone_obs.exporter").joinpath("static", SCRIPT_FILE).read_bytes()


class RumInstruments:
    """The page-load histogram and the beacon counter of one :class:`Metrics`."""

    def __init__(self, names: c.MetricNames, registry: CollectorRegistry) -> None:
        self.page_load = Histogram(
            names.page_load,
            "Real-user page timing from the browser, by URL rule of the page and phase, "
            "in seconds since the navigation started (marks: since the mark's start).",
            c.PAGE_LOAD_LABELS, registry=registry, buckets=c.PAGE_LOAD_BUCKETS,
        )  # fmt: skip
        self.beacons = Counter(
            names.rum_beacons, "RUM beacons received, by what became of them.",
            (c.LABEL_RESULT,), registry=registry,
        )  # fmt: skip
        self.results = {result: self.beacons.labels(result) for result in c.RUM_RESULTS}
        self.pages = Counter(
            names.rum_pages, "Pages rendered with the RUM script tag, by URL rule: what the "
            "page-load beacons are compared with (the share of page views timed).",
            (c.LABEL_PAGE,), registry=registry,
        )  # fmt: skip

    def described(self) -> tuple[tuple[Any, tuple[str, ...]], ...]:
        """Each series object with its label names (the catalogue, :mod:`.name_clash`)."""
        return (
            (self.page_load, c.PAGE_LOAD_LABELS),
            (self.beacons, (c.LABEL_RESULT,)),
            (self.pages, (c.LABEL_PAGE,)),
        )


_INSTRUMENTS: weakref.WeakKeyDictionary[Metrics, RumInstruments] = weakref.WeakKeyDictionary()
_INSTRUMENTS_LOCK = threading.Lock()


def instruments_for(metrics: Metrics) -> RumInstruments:
    """The RUM series of ``metrics``, created on first use (one set per registry)."""
    with _INSTRUMENTS_LOCK:
        found = _INSTRUMENTS.get(metrics)
        if found is None:
            found = _INSTRUMENTS[metrics] = RumInstruments(metrics.names, metrics.registry)
        return found


def instruments_of(metrics: Metrics) -> RumInstruments | None:
    """The RUM series of ``metrics`` if it has them (RUM on for one of its apps)."""
    with _INSTRUMENTS_LOCK:
        return _INSTRUMENTS.get(metrics)


@dataclass(frozen=True)
class RumSettings:
    """The ``LIMONE_OBS_RUM*`` settings of one app, validated."""

    enabled: bool
    path: str
    marks: frozenset[str]
    key: str
    signed: bool
    max_age: int
    rate: float

    @property
    def script_path(self) -> str:
        return c.rum_script_path(self.path)

    @classmethod
    def from_config(cls, cfg: MutableMapping[str, Any]) -> RumSettings:
        """Read and check the settings (``cfg`` is ``app.config``; defaults are set in it)."""
        enabled = flag(cfg, "LIMONE_OBS_RUM", True)
        path = cfg.setdefault("LIMONE_OBS_RUM_PATH", c.RUM_DEFAULT_PATH)
        if not isinstance(path, str) or not _RUM_PATH.fullmatch(path):
            raise ConfigError(
                f"LIMONE_OBS_RUM_PATH={path!r}: use a path of segments after '/' (letters, "
                "digits, '_', '-', '.'; not '.' or '..', no empty one: '//host' is another "
                "site to a browser, and the script is at <path>.js), or LIMONE_OBS_RUM=False "
                "to turn RUM off"
            )
        metrics_path = cfg.get("LIMONE_OBS_METRICS_PATH")
        if metrics_path in (path, c.rum_script_path(path)):
            raise ConfigError(
                f"LIMONE_OBS_RUM_PATH={path!r}: the beacon or its script would be on the "
                f"metrics path (LIMONE_OBS_METRICS_PATH={metrics_path!r}); choose another"
            )
        key = cfg.setdefault("LIMONE_OBS_RUM_KEY", None) or cfg.get("SECRET_KEY")
        return cls(
            enabled=enabled,
            path=path,
            marks=_marks(cfg.setdefault("LIMONE_OBS_RUM_MARKS", c.DEFAULT_RUM_MARKS)),
            key=str(key) if key else _UNSIGNED_KEY,
            signed=bool(key),
            max_age=_positive(cfg, "LIMONE_OBS_RUM_MAX_AGE", 86400),
            rate=_positive(cfg, "LIMONE_OBS_RUM_RATE", 200),
        )


def _marks(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(f"LIMONE_OBS_RUM_MARKS={value!r}: use a list of mark names")
    marks = frozenset(value)
    for mark in marks:
        if not isinstance(mark, str) or not _MARK_RE.match(mark) or mark in c.RUM_PHASES:
            raise ConfigError(
                f"LIMONE_OBS_RUM_MARKS: {mark!r} is not a valid mark name: use lower-case "
                f"letters, digits and '_' (up to 63), not one of the phases {c.RUM_PHASES}"
            )
    return marks


def _positive(cfg: MutableMapping[str, Any], name: str, default: int) -> int:
    value = cfg.setdefault(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name}={value!r}: use a positive integer")
    return value


class RateLimit:
    """A token bucket: ``rate`` beacons per second, bursts up to ``rate``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = rate
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Take one token; False when the bucket is empty."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


class BeaconReceiver:
    """Turns one beacon body into observations; per app (its pages, marks and key)."""

    def __init__(self, app: Flask, settings: RumSettings, instruments: RumInstruments) -> None:
        self._app = app
        self.settings = settings
        self.instruments = instruments
        self.signer = TimestampSigner(settings.key, salt=_SALT)
        self.phases = frozenset(c.RUM_PHASES) | settings.marks
        #: The tag's ``data-marks``: the script sends no other mark (and says so).
        self.marks_attribute = escape(",".join(sorted(settings.marks)))
        self.limit = RateLimit(settings.rate)
        self._pages: frozenset[str] | None = None
        self._children: dict[tuple[str, str], Any] = {}
        self._rendered: dict[str, Any] = {}
        self._warned = False
        self._other_key_said = False

    def pages(self) -> frozenset[str]:
        """URL rules of the app a page token may name (the RUM routes excluded)."""
        if self._pages is None:
            own = {self.settings.path, self.settings.script_path}
            rules = {rule.rule for rule in self._app.url_map.iter_rules()}
            self._pages = frozenset(rules - own)
        return self._pages

    def token(self, rule: str) -> str:
        """The signed ``data-page`` value naming URL rule ``rule``.

        The first token of an app without a key logs a warning: only then does the app
        use RUM (an app that never renders the tag has nothing to warn about).
        """
        if not self._warned:
            self._warned = True
            if not self.settings.signed:
                _log.warning(
                    "limone-obs: RUM page tokens are not signed (no SECRET_KEY or "
                    "LIMONE_OBS_RUM_KEY): a browser can report timing for any page of %r; "
                    "set one of them, or LIMONE_OBS_RUM = False to turn RUM off",
                    self._app.name,
                )
        return self.signer.sign(rule).decode()

    def rendered(self, rule: str) -> None:
        """Count one page of URL rule ``rule`` rendered with the tag (bounded: the app's
        rules). The first one also makes that page's page-load series, one per phase
        and mark, at 0: a series born with its first beacons would lose them from
        ``rate()`` and ``increase()`` (Prometheus counts from a series' first sample),
        and the RUM SLIs with them. Beacons before the next scrape (a new page's first
        view) are still lost that way."""
        child = self._rendered.get(rule)
        if child is None:
            for phase in sorted(self.phases):
                self._child(rule, phase)
            child = self._rendered[rule] = self.instruments.pages.labels(rule)
        child.inc()

    def page_of(self, token: object) -> str | None:
        """The URL rule a token names, or None if it is not a valid, current token."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            rule = self.signer.unsign(token, max_age=self.settings.max_age).decode()
        except SignatureExpired:  # a page left open past LIMONE_OBS_RUM_MAX_AGE
            return None
        except BadSignature as exc:
            self._check_key(exc.payload)
            return None
        except (BadData, UnicodeDecodeError):
            return None
        return rule if rule in self.pages() else None

    def _check_key(self, payload: object) -> None:
        """Say once per process when a token of a page of this app has a signature made
        with another key: the processes or hosts serving the app sign with different
        keys (a ``SECRET_KEY`` made at random in each worker, a rotated key), and the
        beacons of the pages the others rendered are refused. (A forged token for a real
        page says it too, once: the line names what to check, not an attack.)"""
        if self._other_key_said or not isinstance(payload, bytes):
            return
        try:
            rule = payload.decode()
        except UnicodeDecodeError:
            return
        if rule not in self.pages():
            return
        self._other_key_said = True
        _log.warning(
            "limone-obs: a RUM beacon for page %r of Flask app %r carries a page token "
            "signed with another key than this process's: when browsers send these, the "
            "processes or hosts serving the app sign with different keys (a SECRET_KEY "
            "made at random in each worker, os.urandom() in create_app, or a key rotated "
            "since the page was rendered), and their beacons are refused (400, counted "
            "as result=%r). Give every process the same SECRET_KEY or LIMONE_OBS_RUM_KEY. "
            "Said once per process.",
            rule[:200],
            self._app.name,
            c.RUM_BAD_PAGE,
        )

    def receive(self, body: bytes) -> str:
        """Record the beacon ``body``; return its result (``conventions.RUM_RESULTS``)."""
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return c.RUM_MALFORMED
        if not isinstance(payload, dict) or not isinstance(payload.get("v"), dict):
            return c.RUM_MALFORMED
        page = self.page_of(payload.get("p"))
        if page is None:
            return c.RUM_BAD_PAGE
        # Spent here, after the token's check: garbage and forged tokens (bounded work
        # each, by the body's size) must not use up what real beacons get.
        if not self.limit.allow():
            return c.RUM_RATE_LIMITED
        values = [(k, v) for k, v in list(payload["v"].items())[:MAX_VALUES] if self._valid(k, v)]
        for phase, seconds in values:
            self._child(page, phase).observe(float(seconds))
        return c.RUM_ACCEPTED if values else c.RUM_MALFORMED

    def _valid(self, phase: object, seconds: object) -> bool:
        if phase not in self.phases or isinstance(seconds, bool):
            return False
        if isinstance(seconds, int):  # any size: JSON allows a 400-digit integer
            return 0 <= seconds <= MAX_SECONDS
        if not isinstance(seconds, float):
            return False
        return math.isfinite(seconds) and 0 <= seconds <= MAX_SECONDS

    def _child(self, page: str, phase: str) -> Any:
        # Bounded: page is one of the app's rules and phase one of self.phases.
        child = self._children.get((page, phase))
        if child is None:
            child = self._children[(page, phase)] = self.instruments.page_load.labels(page, phase)
        return child


#: HTTP status of each beacon result.
STATUS = {
    c.RUM_ACCEPTED: 204,
    c.RUM_MALFORMED: 400,
    c.RUM_BAD_PAGE: 400,
    c.RUM_TOO_LARGE: 413,
    c.RUM_RATE_LIMITED: 429,
}


def _read_body() -> bytes | None:
    """The request body, or None when it is larger than :data:`MAX_BODY_BYTES`."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        return None
    body = request.stream.read(MAX_BODY_BYTES + 1)
    return None if len(body) > MAX_BODY_BYTES else body


def _beacon_view(receiver: BeaconReceiver) -> Any:
    def beacon() -> Response:
        """Receive one beacon: 204 when recorded, 4xx otherwise; never raises."""
        try:
            body = _read_body()
            result = c.RUM_TOO_LARGE if body is None else receiver.receive(body)
        except Exception as exc:  # a beacon must never become a 500 or a traceback
            # Our bug, reachable by any visitor: at most one line a minute (_failsafe).
            _failsafe.report("a RUM beacon (dropped)", exc)
            result = c.RUM_MALFORMED
        receiver.instruments.results[result].inc()
        return Response(status=STATUS[result])

    return beacon


def _script_view() -> Response:
    response = Response(script_source(), mimetype="text/javascript")
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response


def _jinja_global(receiver: BeaconReceiver) -> Any:
    def limone_obs_rum(
        src: str | None = None, nonce: str | Callable[[], str] | None = None
    ) -> Markup:
        """The RUM ``<script>`` tag for the page being rendered ('' outside a request).

        ``src`` replaces the script URL (e.g. your own static copy of the file). ``nonce``
        is the page's Content-Security-Policy nonce (a string, or a function returning
        it, such as Flask-Talisman's ``csp_nonce`` global), for a policy that allows
        scripts by nonce (``script-src 'nonce-...'``): without it such a policy blocks
        the script. Flask-Talisman's ``request.csp_nonce`` is taken when no nonce is
        given; a nonce of another type logs a warning (once) and is left out. A page
        of no URL rule (a 404 handler's) gets the script without a page: it records
        nothing, and the page's own ``limoneObs.mark(...)`` calls do not fail.
        Each request with a tag with a page counts once in
        ``<ns>_rum_pages_total{page}``: a second tag of the same request (a base template
        and a child that both include it; a view's page, then its error handler's) is
        rendered, as the page shown may be the second, but not counted again (one warning
        line per process), and the script reports from one copy per page.
        """
        if not has_request_context():
            return Markup("")
        root = request.script_root
        script = src if src is not None else root + receiver.settings.script_path
        extra = _nonce_attribute(nonce)
        if request.url_rule is None:
            return Markup(f'<script src="{escape(script)}"{extra} defer></script>')
        rule = request.url_rule.rule
        token = receiver.token(rule)
        if _TAG_RENDERED in request.environ:
            _say_twice(rule)
        elif request.method != "HEAD":  # a HEAD's page is rendered, never shown
            request.environ[_TAG_RENDERED] = True
            receiver.rendered(rule)
        return Markup(
            f'<script src="{escape(script)}" data-beacon="{escape(root + receiver.settings.path)}"'
            f' data-page="{escape(token)}" data-marks="{receiver.marks_attribute}"{extra} defer>'
            "</script>"
        )

    return limone_obs_rum


#: The request environ's mark of a request that rendered the tag already.
_TAG_RENDERED = "limone_obs.rum_tag"
#: Whether :func:`_say_twice` has said its line in this process.
_twice_said = False


def _say_twice(page: str) -> None:
    """Say once per process that one request rendered the RUM tag twice (never raises)."""
    global _twice_said  # noqa: PLW0603 - one line per process
    if _twice_said:
        return
    _twice_said = True
    _log.warning(
        "limone-obs: limone_obs_rum() was called twice while serving one request of page "
        "%r: the page is counted once, and a browser reports from one copy of the script "
        "only. If both tags are on one page (a base template and a template extending it "
        "both include it), keep one call, in the base template.",
        page[:200],
    )


def _rum_off(*_args: object, **_options: object) -> Markup:
    """``limone_obs_rum()`` with RUM off (``LIMONE_OBS_RUM = False``): renders nothing,
    so templates that include the tag keep working."""
    return Markup("")


#: Nonce values already warned about (by type name): one line each per process.
_bad_nonces: set[str] = set()


def _nonce_attribute(nonce: object) -> str:
    """`` nonce="..."`` for the RUM tag: ``nonce``, called if it is a function, else
    Flask-Talisman's ``request.csp_nonce``; '' when neither gives a non-empty string.

    Never raises (the page must render): a nonce that is no string, or a function that
    fails, gives a tag without it, and one warning line per kind of value says why.
    """
    try:
        if callable(nonce):
            nonce = nonce()
    except Exception as exc:  # a misspelt template variable (Jinja's Undefined) raises
        nonce = exc
    if nonce is None:
        nonce = getattr(request, "csp_nonce", None)
        return f' nonce="{escape(nonce)}"' if isinstance(nonce, str) and nonce else ""
    if isinstance(nonce, str):
        return f' nonce="{escape(nonce)}"' if nonce else ""
    kind = type(nonce).__name__
    if kind not in _bad_nonces:
        _bad_nonces.add(kind)
        _log.warning(
            "limone-obs: limone_obs_rum(nonce=...) got %s, not the page's Content-Security-"
            "Policy nonce as a string (or a function returning it): the tag goes without a "
            "nonce, and a policy allowing scripts by nonce blocks it (no page-load numbers)",
            kind,
        )
    return ""


def init_app(app: Flask, metrics: Metrics) -> frozenset[str]:
    """Register the beacon endpoint, the script and the Jinja global on ``app``.

    Returns the paths to leave out of the request series (empty when RUM is off: then the
    Jinja global renders nothing, and no route is added).
    """
    settings = RumSettings.from_config(app.config)
    if not settings.enabled:
        templates.add_global(app, c.RUM_JINJA_GLOBAL, _rum_off)
        return frozenset()
    receiver = BeaconReceiver(app, settings, instruments_for(metrics))
    blueprint = Blueprint(BLUEPRINT, __name__)
    blueprint.add_url_rule(settings.path, "beacon", _beacon_view(receiver), methods=["POST"])
    blueprint.add_url_rule(settings.script_path, "script", _script_view, methods=["GET"])
    app.register_blueprint(blueprint)
    templates.add_global(app, c.RUM_JINJA_GLOBAL, _jinja_global(receiver))
    app.extensions[BLUEPRINT] = receiver
    return frozenset({settings.path, settings.script_path})


def page_token(rule: str, app: Flask | None = None) -> str:
    """The signed ``data-page`` value for URL rule ``rule`` (pages not rendered with Jinja).

    Raises ConfigError when RUM is off on the app.
    """
    target = app if app is not None else current_app
    receiver = target.extensions.get(BLUEPRINT)
    if receiver is None:
        raise ConfigError(f"RUM is not on for Flask app {target.name!r}: call Metrics(app)")
    token: str = receiver.token(rule)
    return token
