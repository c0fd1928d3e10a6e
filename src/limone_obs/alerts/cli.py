"""The ``limone-obs`` subcommands of the alerts area: ``check`` validates the SLO spec,
``alertmanager`` writes one Alertmanager configuration for several services.

``check`` reads the spec once (bounded, see :mod:`limone_obs.alerts._reader`), checks the
selectors of each SLO against the exporter's catalogue (names, labels, label values,
histogram buckets: :class:`~limone_obs.alerts.selectors.Catalogue`), then validates the
whole model. With ``--prometheus URL`` it also runs every SLI query against that
Prometheus and names each one that returns no series. Every problem found is printed as
``error: <file>: slos[i] (<slo>).<field>: <message>``; any problem exits 2 (see
:func:`check` for how far the checks go past an error).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import requests

from limone_obs import conventions as c
from limone_obs._prometheus_api import api_body, base_url, not_the_api
from limone_obs.alerts import alerting, alertmanager, build, health, runbooks
from limone_obs.alerts._durations import seconds
from limone_obs.alerts._parse import (
    DEFAULT_GRAFANA,
    DEFAULT_RUNBOOKS,
    DEFAULT_TIERS,
    DEFAULT_WEBHOOK,
    HISTOGRAM_KEYS,
    SELECTOR_KEYS,
)
from limone_obs.alerts._reader import MAX_SPEC_BYTES, load_yaml, shown
from limone_obs.alerts.model import KIND_LATENCY, BurnTier, ServiceSpec, Slo, job_matcher
from limone_obs.alerts.selectors import Catalogue, Selector, parse_selector
from limone_obs.alerts.spec import SPEC_PATH, decode_spec, load_spec, not_found, parse_spec
from limone_obs.artifacts import write_atomic
from limone_obs.errors import CollectedSpecError, ConfigError, SpecError

#: Fields whose selector may rightly select nothing yet (no 5xx so far, no fast call).
MAY_BE_EMPTY = frozenset({"errors", "good"})


@click.command("check")
@click.option(
    "--spec",
    "spec_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=SPEC_PATH,
    show_default=True,
    help="SLO spec to validate.",
)
@click.option(
    "--prometheus",
    "prometheus_url",
    metavar="URL",
    default=None,
    help="Also run every SLI query against this Prometheus; name each that returns no series.",
)
def check(spec_path: Path, prometheus_url: str | None) -> None:
    """Validate the SLO spec; exit 2 printing every located error found.

    Each top-level field, each tier, each field of each SLO (the first error within
    each; a field that depends on one in error waits) and each selector against the
    exporter's catalogue is checked even after another one fails.
    A YAML syntax error stops everything: nothing else can be read until the file
    parses. --prometheus runs only on a valid spec. A valid spec prints its SLOs and the
    alert rules written (SLO alerts + kit-health alerts).
    """
    text = read_spec(spec_path)
    source = str(spec_path)
    try:
        data = load_yaml(text, source)
    except SpecError as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo("note: nothing else is checked until the file parses as YAML", err=True)
        sys.exit(2)
    spec, problems = _validate(data, text, source)
    if spec is not None:
        problems = promtool_problems(spec, source) + amtool_problems(spec, source)
    empty: list[str] = []
    if spec is not None and not problems and prometheus_url is not None:
        problems, empty = live_problems(spec, base_url(prometheus_url), source)
    if problems or spec is None:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(2)
    live = _live_summary(spec, prometheus_url, source, empty)
    click.echo(f"{spec_path}: valid, {_summary(spec)}{live}")
    for note in (*link_notes(spec), *tier_notes(data), *slow_page_notes(spec)):
        click.echo(f"note: {note}", err=True)


#: The service of the kit's own spec (alerts/slo.yaml), whose links the defaults are.
KIT_SERVICE = c.DEFAULT_SERVICE
#: The kit's own repository, where its runbook_base_url points (any branch or view).
KIT_REPOSITORY = DEFAULT_RUNBOOKS.split("/blob/", 1)[0]
#: Hosts that name the machine of whoever opens the link.
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})


def link_notes(spec: ServiceSpec) -> list[str]:
    """Notes on the alerts' links and receivers of a service other than the kit's own
    that still point where the kit's own spec points (the defaults, or a copied spec):
    the runbook links would open the kit's repository, which has no runbook of this
    service, the dashboard links a Grafana on the on-call's own machine, and a receiver
    the demo stack's webhook."""
    if spec.service == KIT_SERVICE:
        return []
    notes = []
    if spec.runbook_base_url.startswith(f"{KIT_REPOSITORY}/"):
        notes.append(
            f"runbook_base_url is {spec.runbook_base_url}, limone-obs' own repository: it "
            f"has no runbooks of service {spec.service!r}, so every alert's runbook link "
            "is broken. Set it to where the built alerts/runbooks/ folder is published "
            f"(alerts link to <runbook_base_url>/{spec.service}/<slo>.md#<alert>)"
        )
    elif spec.runbook_base_url.rstrip("/").endswith(f"/{spec.service}"):
        notes.append(
            f"runbook_base_url {spec.runbook_base_url} ends with the service's name: alerts "
            f"link to <runbook_base_url>/{spec.service}/<slo>.md#<alert>, so the links read "
            f".../{spec.service}/{spec.service}/<slo>.md. Set it to where the alerts/runbooks/ "
            "folder itself is published, if that is not what you meant"
        )
    if urlsplit(spec.dashboard_url).hostname in _LOCAL_HOSTS:
        notes.append(
            f"the alerts' dashboard links open {spec.dashboard_url}: a Grafana on the "
            "machine of whoever clicks them (grafana_url defaults to "
            f"{DEFAULT_GRAFANA}). Set grafana_url to your Grafana's URL"
        )
    for severity, receiver in spec.alertmanager.receivers.items():
        if receiver.webhook_url == DEFAULT_WEBHOOK and receiver.extra:
            notes.append(
                f"alertmanager.receivers.{severity} also sends its alerts to "
                f"{DEFAULT_WEBHOOK}, the demo stack's webhook (the default webhook_url): "
                f"set alertmanager.receivers.{severity}.webhook_url: null to send them "
                "only to its extra *_configs"
            )
        elif receiver.webhook_url == DEFAULT_WEBHOOK:
            notes.append(
                f"alertmanager.receivers.{severity} sends its alerts to {DEFAULT_WEBHOOK}, "
                "the demo stack's webhook (also what a receiver gets whose webhook_url is "
                f"left out): nobody is told. Set alertmanager.receivers.{severity}."
                "webhook_url, or its extra *_configs, to where your team is told"
            )
    return notes


#: A page that reacts to every event failing later than this is worth a note.
SLOW_PAGE_MINUTES = 15


def slow_page_notes(spec: ServiceSpec) -> list[str]:
    """One note per SLO whose first page, when every event turns bad after a healthy
    stretch, comes later than SLOW_PAGE_MINUTES: a burn tier pages once its long
    window's error ratio passes ``factor x budget`` (72 % of an hour for a 95 %
    objective: about 45 minutes with its ``for``), and no AllFailing or quantile page
    covers the case."""
    notes = []
    for index, slo in enumerate(spec.slos):
        pages = [tier for tier in slo.tiers if tier.severity == c.SEVERITY_PAGE]
        if not pages or _fast_page(slo):
            continue
        first = min(pages, key=lambda tier: _minutes_to_page(tier, slo.error_budget))
        minutes = _minutes_to_page(first, slo.error_budget)
        if minutes <= SLOW_PAGE_MINUTES:
            continue
        ratio = first.factor * slo.error_budget
        quantile = getattr(slo.sli, "quantile_alert", None)
        if slo.kind != KIND_LATENCY:
            advice = "keep all_failing on (it pages a total outage in about 10 minutes)"
        elif quantile is None:
            advice = "add quantile_alert: {for: 5m, severity: page}"
        else:
            advice = "make its quantile_alert page: {for: 5m, severity: page}"
        notes.append(
            f"slos[{index}] ({slo.name}): if every event turns bad after a healthy "
            f"stretch, the first page ({first.long_window}/{first.short_window} tier) fires "
            f"after about {minutes:.0f} minutes: its {first.long_window} error ratio must "
            f"pass {ratio * 100:g} % first. For a faster page, {advice}, or use a tighter "
            "objective"
        )
    return notes


def _minutes_to_page(tier: BurnTier, budget: float) -> float:
    """Minutes from every event failing to the tier's page: its long window's error
    ratio passing ``factor x budget`` (healthy before), then its ``for``."""
    return tier.factor * budget * seconds(tier.long_window) / 60 + seconds(tier.for_) / 60


def _fast_page(slo: Slo) -> bool:
    """True when an AllFailing or quantile alert pages the SLO within the limit."""
    for extra in (getattr(slo.sli, "all_failing", None), getattr(slo.sli, "quantile_alert", None)):
        if extra is not None and extra.severity == c.SEVERITY_PAGE:
            window = seconds(getattr(extra, "window", "5m"))
            if (window + seconds(extra.for_)) / 60 <= SLOW_PAGE_MINUTES:
                return True
    return False


def _validate(data: Any, text: str, source: str) -> tuple[ServiceSpec | None, list[SpecError]]:
    """The spec (None when invalid) and every problem found, in the model's order; a
    field the catalogue faults too is reported once, in the catalogue's words."""
    problems = lint(data, source)
    try:
        spec = parse_spec(text, source)
    except CollectedSpecError as exc:
        return None, _merged(exc.errors, problems)
    except SpecError as exc:
        return None, _merged([exc], problems)
    return (spec if not problems else None), problems


def amtool_problems(spec: ServiceSpec, source: str) -> list[SpecError]:
    """amtool's refusal of the Alertmanager config built from ``spec``, when a receiver
    has ``extra`` blocks (the rest the kit writes itself) and amtool is installed: those
    blocks are Alertmanager's own settings (a Slack config without ``api_url``, an email
    one without a smarthost), which only Alertmanager knows."""
    receivers = spec.alertmanager.receivers
    with_extra = [severity for severity, r in receivers.items() if r.extra]
    if not with_extra:
        return []
    said = _amtool_refusal(spec)
    if said is None:
        return []
    # Which receiver's blocks: each alone (the others' left out), the first refused named.
    for severity in with_extra if len(with_extra) > 1 else ():
        alone = {s: r if s == severity else replace(r, extra={}) for s, r in receivers.items()}
        amended = replace(spec, alertmanager=replace(spec.alertmanager, receivers=alone))
        if _amtool_refusal(amended) is not None:
            with_extra = [severity]
            break
    where = f"alertmanager.receivers.{with_extra[0]}" if len(with_extra) == 1 else None
    return [
        SpecError(
            f"{source}: {where or 'alertmanager.receivers'}",
            f"amtool refuses the Alertmanager config built from "
            f"{'this receiver' if where else 'the receivers'}'s extra blocks: {said[-400:]}; "
            "fix the block it names (Alertmanager's receiver settings)",
        )
    ]


def _amtool_refusal(spec: ServiceSpec) -> str | None:
    """What amtool says of the Alertmanager config built from ``spec`` (None: accepted,
    or amtool is not installed)."""
    config = {"alertmanager.yml": alertmanager.render_config(spec).encode("utf-8")}
    return tool_refusal("amtool", ["check-config"], config)


def promtool_problems(spec: ServiceSpec, source: str) -> list[SpecError]:
    """promtool's refusal of the rule files built from ``spec``, when it is installed: a
    last check of what the kit's own checks of the spec may still let through (Prometheus
    would refuse the whole file)."""
    said = tool_refusal("promtool", ["check", "rules"], build.rule_files(spec))
    if said is None:
        return []
    return [
        SpecError(
            source,
            f"promtool refuses the rule files built from it: {said[-600:]}; the rule and "
            "field it names come from this spec (please report it: check should have "
            "named the field)",
        )
    ]


def tool_refusal(tool: str, args: list[str], files: Mapping[str, bytes]) -> str | None:
    """What ``tool`` says (one line) when it refuses ``files``, written to a temporary
    folder under their relative paths and named after ``args``; None when it takes them,
    is not installed or cannot run (the kit's own checks stand)."""
    path = shutil.which(tool)
    if path is None:
        return None
    with tempfile.TemporaryDirectory(prefix="limone-obs-check-") as folder:
        for name, data in files.items():
            target = Path(folder, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        try:
            done = subprocess.run(
                [path, *args, *files], cwd=folder, capture_output=True, text=True,
                timeout=60, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None
    return None if done.returncode == 0 else " ".join((done.stdout + done.stderr).split())


def _merged(model: list[SpecError], catalogue: list[SpecError]) -> list[SpecError]:
    """The model's errors then the catalogue's, one per location (the catalogue's words)."""
    by_location = {problem.location: problem for problem in catalogue}
    merged = [by_location.pop(error.location, error) for error in model]
    return merged + [problem for problem in catalogue if problem.location in by_location]


def _summary(spec: ServiceSpec) -> str:
    """``3 SLOs, 15 SLO alert rules + 4 health alerts`` (every alert rule written)."""
    alerts = sum(len(alerting.alerts(spec, slo)) for slo in spec.slos)
    kit = len(health.alerts(spec))  # none when health is off
    slos = f"{len(spec.slos)} SLO" + ("" if len(spec.slos) == 1 else "s")
    return f"{slos}, {alerts} SLO alert rules + {kit} health alerts = {alerts + kit} alert rules"


def read_spec(path: Path) -> str:
    """The spec's text; SpecError when missing, unreadable or over the size limit.

    At most one byte past the limit is read, so a huge file (or ``/dev/zero``) costs
    nothing before it is refused.
    """
    try:
        with path.open("rb") as spec:
            data = spec.read(MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES:
            raise SpecError(str(path), f"is over the {MAX_SPEC_BYTES}-byte limit of a spec")
        return decode_spec(data, path)
    except FileNotFoundError:
        raise not_found(path) from None
    except OSError as exc:
        raise SpecError(str(path), f"cannot be read: {exc}") from None


# --- the spec against the exporter's catalogue ---------------------------------------


def build_warnings(root: Path) -> list[str]:
    """What ``check`` refuses in the spec below ``root`` that ``build`` accepted: selectors
    of the exporter's series under another namespace (left after a rename, whose rules
    and promtool tests then agree with each other and select nothing live). Empty when
    the spec is missing or does not parse (``build`` said so already)."""
    path = root / SPEC_PATH
    try:
        data = load_yaml(read_spec(path), str(path))
    except (SpecError, ConfigError):
        return []
    return [str(problem) for problem in lint(data, str(path))]


def build_notes(root: Path) -> list[str]:
    """``check``'s notes on the links, receivers and tiers of the spec below ``root`` (a
    receiver left to the demo stack's webhook tells nobody), for ``build`` to print as
    well. Empty when the spec is missing or does not parse (``build`` said so already)."""
    path = root / SPEC_PATH
    try:
        text = read_spec(path)
        spec = parse_spec(text, str(path))
        data = load_yaml(text, str(path))
    except (SpecError, ConfigError):
        return []
    return [*link_notes(spec), *tier_notes(data)]


def tier_notes(data: Any) -> list[str]:
    """A note when the spec's top-level ``tiers:`` names some of the default tiers and not
    the others: it replaces all four, so the others are gone (a drill that meant to
    shorten one tier's ``for:`` dropped three)."""
    tiers = data.get("tiers") if isinstance(data, Mapping) else None
    if not isinstance(tiers, Mapping):
        return []
    named = [name for name in DEFAULT_TIERS if name in tiers]
    left_out = [name for name in DEFAULT_TIERS if name not in tiers]
    if not named or not left_out:
        return []
    return [
        f"tiers: defines {', '.join(named)} and not the default {', '.join(left_out)}: a "
        "top-level tiers: replaces the four default tiers, so those are not used. List "
        "every tier you keep (the defaults are in alerts/README.md, Burn tiers)"
    ]


def lint(data: Any, file: str) -> list[SpecError]:
    """Problems of the raw spec ``data`` that the model cannot see, each located.

    Reads only values of the right shape (the model reports the rest): selectors against
    the exporter's catalogue, histogram thresholds against that histogram's buckets, and
    an ``objective`` written as a ratio (0.999) instead of a percentage.
    """
    if not isinstance(data, Mapping):
        return []
    namespace = data.get("namespace", c.DEFAULT_NAMESPACE)
    slos = data.get("slos")
    if not isinstance(namespace, str) or not isinstance(slos, list):
        return []
    try:
        catalogue = Catalogue.of(c.check_namespace(namespace))
    except ValueError:
        return []  # an invalid namespace: the model says so
    # Histograms the spec gives buckets of itself: the model checks thresholds on those.
    own = data.get("buckets")
    declared = frozenset(own) if isinstance(own, Mapping) else frozenset()
    problems = []
    for index, item in enumerate(slos):
        if isinstance(item, Mapping):
            where = f"{file}: {_slo_path(index, item)}"
            problems += _slo_problems(catalogue, item, where, declared)
    return problems


def _slo_path(index: int, item: Mapping[Any, Any]) -> str:
    name = item.get("name")
    return f"slos[{index}] ({name})" if isinstance(name, str) else f"slos[{index}]"


def _slo_problems(
    catalogue: Catalogue, item: Mapping[Any, Any], where: str, declared: frozenset[Any]
) -> list[SpecError]:
    problems = [SpecError(f"{where}.{path}", msg) for path, msg in _objective_problems(item)]
    faulted = False  # the histogram is in error: its thresholds wait for it
    for key in SELECTOR_KEYS:
        selector = _selector(item.get(key))
        if selector is not None:
            found = _selector_problems(catalogue, selector, histogram=key in HISTOGRAM_KEYS)
            faulted = faulted or (key == "histogram" and bool(found))
            problems += [SpecError(f"{where}.{key}", message) for message in found]
    histogram = _selector(item.get("histogram"))
    if histogram is None and item.get("kind") == "latency" and "histogram" not in item:
        histogram = Selector(c.MetricNames(catalogue.namespace).request_duration)
    if histogram is not None and histogram.metric not in declared and not faulted:
        buckets = catalogue.buckets(histogram)
        problems += [
            SpecError(f"{where}.{path}", msg)
            for path, msg in _bucket_problems(item, histogram, buckets)
        ]
    return problems


def _selector(value: Any) -> Selector | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_selector(value)
    except ValueError:
        return None  # a syntax error: the model reports it with its own message


def _selector_problems(catalogue: Catalogue, selector: Selector, *, histogram: bool) -> list[str]:
    other = catalogue.foreign_namespace(selector)
    if other is not None:
        return [c.foreign_namespace_advice(selector.metric, other, catalogue.namespace)]
    return catalogue.problems(selector, histogram=histogram, counter=not histogram)


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every mapping entry below ``node``, lists included."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(key, str):
                here = f"{path}.{key}" if path else key
                yield here, key, value
                yield from _walk(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _objective_problems(item: Mapping[Any, Any]) -> Iterator[tuple[str, str]]:
    for path, key, value in _walk(item):
        number = _number(value)
        if key == "objective" and number is not None and 0 < number < 1:
            yield (
                path,
                (
                    f"{shown(value)} looks like a ratio: give a percentage, "
                    f"e.g. {number * 100:g} for {number:g}"
                ),
            )


def _bucket_problems(
    item: Mapping[Any, Any], histogram: Selector, buckets: tuple[float, ...] | None
) -> Iterator[tuple[str, str]]:
    if buckets is None:
        return
    bounds = ", ".join(f"{b:g}" for b in buckets)
    for path, key, value in _walk(item):
        number = _number(value)
        if key == "threshold_seconds" and number is not None and number not in buckets:
            yield (
                path,
                (
                    f"{number:.15g} s is not a bucket boundary of {histogram.metric}, so no series "
                    f"counts the events under it; its buckets: {bounds}; if the app gives it "
                    "other buckets (Metrics(buckets=...), Metrics(dependency_buckets=...), "
                    "or buckets= of its own histogram), list them in the spec: buckets: "
                    f"{{{histogram.metric}: [...]}}"
                ),
            )


# --- the SLI queries against a live Prometheus ---------------------------------------


@dataclass(frozen=True)
class SliQuery:
    """One series selection an SLO's rules read: where it comes from and its PromQL."""

    location: str
    promql: str
    may_be_empty: bool


def sli_queries(spec: ServiceSpec, file: str) -> list[SliQuery]:
    """Every series selection of every SLO's SLI, located at its SLO and field."""
    queries = []
    for index, slo in enumerate(spec.slos):
        where = f"{file}: slos[{index}] ({slo.name})"
        found = slo.sli.live_queries(spec)
        if not found:  # a kind whose series this command does not know: say so, never pass
            raise SpecError(where, f"check --prometheus cannot query an SLO of kind {slo.kind!r}")
        queries += [SliQuery(f"{where}.{key}", q, key in MAY_BE_EMPTY) for key, q in found]
    return queries


def _live_summary(spec: ServiceSpec, url: str | None, file: str, empty: list[str]) -> str:
    """The end of check's summary line: how many SLI queries ``url`` answered."""
    if url is None:
        return ""
    if not empty:
        return f", every SLI query answered by {url}"
    total = len(sli_queries(spec, file))
    return (
        f", {total - len(empty)} of {total} SLI queries answered by {url} (the other "
        f"{len(empty)} return no series yet: see the notes)"
    )


def live_problems(spec: ServiceSpec, url: str, file: str) -> tuple[list[SpecError], list[str]]:
    """The SLI queries of ``spec`` that return no series from the Prometheus at ``url``
    and may not, and the locations of every query that returned none.

    A selection that may rightly be empty (``errors`` before the first error, ``good``,
    real-user timing before the app rendered a page with the tag) is printed as a note
    and is not a problem.
    """
    problems = []
    empty = []
    for query in sli_queries(spec, file):
        if _count_series(url, query.promql) > 0:
            continue
        empty.append(query.location)
        if query.may_be_empty:
            click.echo(
                f"note: {query.location}: {query.promql} returns no series from {url} "
                "(fine while there are no such events yet)",
                err=True,
            )
            continue
        if _browser_timing_not_yet(spec, url, query.promql):
            click.echo(
                f"note: {query.location}: {query.promql} returns no series from {url} "
                "(real-user timing: none until the app has rendered a page with the RUM "
                "tag since it started)",
                err=True,
            )
            continue
        problems.append(
            SpecError(
                query.location,
                f"{query.promql} returns no series from {url}: check the job name, the "
                "metric name and the label values against what Prometheus scrapes",
            )
        )
    return problems, empty


def _browser_timing_not_yet(spec: ServiceSpec, url: str, promql: str) -> bool:
    """A real-user timing selection of a job Prometheus does scrape (its request series
    exist): no series is then only "no page with the tag rendered since the app started"
    (the exporter makes a page's series at its first render), as after every restart."""
    if not runbooks.reads_browser_timing(spec, promql.split("{", 1)[0].strip()):
        return False
    requests_of_job = f"{spec.names.requests_total}{{{job_matcher(spec.job).promql()}}}"
    return _count_series(url, requests_of_job) > 0


def _count_series(url: str, promql: str) -> int:
    """How many series ``promql`` selects now at the Prometheus ``url``."""
    base, path = url.rstrip("/"), "/api/v1/query"
    try:
        resp = requests.get(f"{base}{path}", params={"query": f"count({promql})"}, timeout=10)
    except requests.RequestException as exc:
        raise ConfigError(
            f"--prometheus {url}: cannot query it ({type(exc).__name__}): is it running there?"
        ) from None
    body = api_body(resp)
    if body is None:
        raise ConfigError(not_the_api(base, path, resp))
    if body.get("status") != "success":
        raise ConfigError(f"--prometheus {url}: refused {promql}: {body.get('error', '?')}")
    result = body["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


#: ``--spec`` of the commands that take one spec per service (``specs``: the paths).
specs_option = click.option(
    "--spec",
    "specs",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="An SLO spec (slo.yaml) per service; repeat for each service.",
)


@click.command("alertmanager")
@specs_option
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The Alertmanager configuration file to write.",
)
def alertmanager_command(specs: tuple[Path, ...], out: Path) -> None:
    """Write one Alertmanager configuration for several services into --out.

    A route per service (its alerts' slo_service), receivers <service>-page and
    <service>-ticket from each spec's alertmanager: block, each service's inhibit rules;
    each route with its spec's grouping and timers (the root route's from the first
    spec). An alert of none of these services (no slo_service of
    theirs: another team's, a rule of your own) goes to the first spec's ticket receiver,
    which the output names: list another spec first to change it. Every spec is read
    before the file is written, whole, in one rename.
    """
    if not out.parent.is_dir():
        raise ConfigError(
            f"--out {out}: the folder {out.parent} does not exist; create it first, or write "
            "the file into a folder that does"
        )
    loaded = [load_spec(spec) for spec in specs]
    services = [spec.service for spec in loaded]
    if len(set(services)) != len(services):
        twice = sorted({s for s in services if services.count(s) > 1})
        raise ConfigError(
            f"--spec: service {', '.join(twice)} is named by more than one spec: give each "
            "spec its own service (its routes, receivers and runbooks are named after it)"
        )
    names = ", ".join(p.as_posix() for p in specs)
    header = f"# generated by limone-obs alertmanager from {names} - DO NOT EDIT\n"
    text = alertmanager.render_shared_config(loaded, header=header)
    write_atomic(out, text.encode("utf-8"))
    fallback = alertmanager.receiver_name(loaded[0], c.SEVERITY_TICKET)
    click.echo(f"wrote {out} for {len(loaded)} service(s): {', '.join(services)}")
    click.echo(
        f"alerts of a service none of these specs names go to receiver {fallback} "
        "(the first spec's ticket receiver)"
    )


commands: list[click.Command] = [check, alertmanager_command]
