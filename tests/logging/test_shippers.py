"""The shipper configs in logging/: versions, labels, timestamps, the non-JSON path.

Alloy, Vector and Fluent Bit are not installable here, so each config is parsed (River or
YAML) and checked for what the issue of each was: the version floor it states, the three
Loki labels on every line, the event's own timestamp, ids as structured metadata. Then
one sample of the service's real output (an app event, a stdlib record and a gunicorn
line written by the real logging setup, plus a line that is not JSON) goes through each
config's parsing rules as far as Python can reproduce them: the JSON fields each config
reads must exist in the schema, each timestamp format string must parse the timestamps
the service writes, and every line must end with service, env and level labels. A change
to the log schema or its timestamp that would break a shipper fails here.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
import yaml

from limone_obs import conventions as c
from limone_obs.logging._pipeline import DEFAULT_MAX_LINE_BYTES
from limone_obs.logging.setup import configure_logging
from limone_obs.logging.stdlib import JsonFormatter
from tests.support import ROOT

LOGGING = ROOT / "logging"
IDS = {c.LOG_REQUEST_ID, c.LOG_TRACE_ID, c.LOG_SPAN_ID, c.LOG_USER_ID}
LABELS = set(c.LOKI_LABELS)
SCHEMA_FIELDS = set(json.loads((LOGGING / "log-event.schema.json").read_text())["properties"])
NOT_JSON = "Traceback (most recent call last): the app crashed before logging was set up"
#: The shippers' environment in these tests (as compose/docker-compose.yml sets it).
ENV = {"LIMONE_OBS_SERVICE": "limoneide", "LIMONE_OBS_ENV": "compose", "COMPOSE_PROJECT": "compose"}


# --- the service's real output ---------------------------------------------------------


@pytest.fixture
def sample() -> list[str]:
    """Lines the real logging setup writes: app event, stdlib record, gunicorn; then text."""
    out = io.BytesIO()
    configure_logging(stream=out, service="limoneide", env="compose")
    structlog.get_logger("limoneide.app").info(
        "project saved", project_id=7, request_id="4bf92f3577b34da6a3ce929d0e0e4736"
    )
    logging.getLogger("werkzeug").warning("stdlib %s", "record")
    gunicorn = logging.getLogger("gunicorn.error")
    handler = logging.StreamHandler(io.TextIOWrapper(out, write_through=True))
    handler.setFormatter(JsonFormatter())  # what limone_obs.logging.gunicorn.Logger installs
    gunicorn.addHandler(handler)
    gunicorn.propagate, gunicorn.level = False, logging.INFO
    try:
        gunicorn.info("Booting worker with pid: %s", 42)
    finally:
        gunicorn.removeHandler(handler)
    lines = out.getvalue().decode().splitlines()
    assert ["limoneide.app", "werkzeug", "gunicorn.error"] == [
        json.loads(line)["logger"] for line in lines
    ]
    return [*lines, NOT_JSON]


# --- timestamp format strings, as each shipper's library reads them ---------------------

#: Go layouts Alloy's stage.timestamp accepts by name (time.RFC3339 also reads fractions).
GO_LAYOUTS = {
    "RFC3339": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
    "RFC3339Nano": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
}


def parse_go(layout: str, value: str) -> datetime:
    """``time.Parse(layout, value)`` for the named layouts Alloy's config uses."""
    assert layout in GO_LAYOUTS, f"no Python reproduction of Go layout {layout!r}"
    assert re.fullmatch(GO_LAYOUTS[layout], value), f"{value!r} is not {layout}"
    return datetime.fromisoformat(value)


def parse_chrono_zoned(fmt: str, value: str) -> datetime:
    """chrono's ``%+`` (RFC 3339, "Z" read as UTC), the one format Vector's config may use:
    a format without a zone directive (a literal ``Z``) makes Vector read the time in its
    own timezone, the host's by default."""
    assert fmt == "%+", f"{fmt!r} does not read the line's zone"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value), value
    return datetime.fromisoformat(value)


def parse_strftime(fmt: str, value: str, fraction: str) -> datetime:
    """strptime with the shipper's fractional-second directive (``fraction``) as ``%f``.

    Fluent Bit's ``%L`` and chrono's ``%.f`` read a fraction of a second; Python's ``%f``
    reads up to six digits, enough for the service's milliseconds.
    """
    python = fmt.replace(fraction, ".%f" if fraction.startswith("%.") else "%f")
    return datetime.strptime(value, python).replace(tzinfo=UTC)


# --- Alloy: a reader for River's block structure ------------------------------------------


@dataclass
class Block:
    """One River block: ``name "label" { attributes and blocks }``; values kept as text."""

    name: str
    label: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def find(self, name: str) -> list[Block]:
        """The direct child blocks named ``name``, in order."""
        return [b for b in self.blocks if b.name == name]


_SPACE = re.compile(r"(\s+|//[^\n]*)*")
_NAME = re.compile(r"[A-Za-z_][\w.]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _skip(text: str, pos: int) -> int:
    return _SPACE.match(text, pos).end()  # type: ignore[union-attr]  # matches the empty string


def _value_end(text: str, pos: int) -> int:
    """End of the attribute value starting at ``pos``: the first newline outside brackets."""
    depth = 0
    while pos < len(text):
        if text[pos] == '"':
            pos = _STRING.match(text, pos).end()  # type: ignore[union-attr]
            continue
        if text.startswith("//", pos):
            pos = text.index("\n", pos)
            continue
        if text[pos] == "\n" and depth == 0:
            return pos
        depth += (text[pos] in "{[(") - (text[pos] in "}])")
        if depth < 0:
            return pos
        pos += 1
    return pos


def _body(text: str, pos: int, block: Block) -> int:
    """Read attributes and blocks into ``block`` up to its closing brace; return after it."""
    while (pos := _skip(text, pos)) < len(text) and text[pos] != "}":
        name = _NAME.match(text, pos)
        assert name is not None, f"River syntax not understood at {text[pos : pos + 40]!r}"
        pos = _skip(text, name.end())
        if text[pos] == "=":
            end = _value_end(text, pos + 1)
            block.attrs[name.group(0)] = text[pos + 1 : end].strip()
            pos = end
            continue
        label = None
        if text[pos] == '"':
            found = _STRING.match(text, pos)
            assert found is not None
            label, pos = json.loads(found.group(0)), _skip(text, found.end())
        assert text[pos] == "{", f"block {name.group(0)} has no body"
        child = Block(name.group(0), label)
        pos = _body(text, pos + 1, child)
        block.blocks.append(child)
    return pos + 1


def parse_river(text: str) -> Block:
    """The blocks and attributes of a River file (Alloy's configuration syntax)."""
    root = Block("root")
    _body(text, 0, root)
    return root


def _split_top(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside strings and brackets."""
    parts, depth, start, pos = [], 0, 0, 0
    while pos < len(text):
        if text[pos] == '"':
            pos = _STRING.match(text, pos).end()  # type: ignore[union-attr]
            continue
        depth += (text[pos] in "{[(") - (text[pos] in "}])")
        if depth == 0 and text[pos] == sep:
            parts.append(text[start:pos].strip())
            start = pos + 1
        pos += 1
    return [*parts, text[start:].strip()]


def river_eval(expr: str, env: Mapping[str, str]) -> str:
    """A River string expression: literals, ``+``, ``sys.env(...)``, ``coalesce(...)``."""
    parts = _split_top(expr, "+")
    if len(parts) > 1:
        return "".join(river_eval(part, env) for part in parts)
    if expr.startswith('"'):
        value: str = json.loads(expr)
        return value
    call = re.fullmatch(r"([\w.]+)\((.*)\)", expr, re.S)
    assert call is not None, f"River expression not reproduced here: {expr}"
    args = [river_eval(arg, env) for arg in _split_top(call.group(2), ",")]
    if call.group(1) == "sys.env":
        return env.get(args[0], "")
    assert call.group(1) == "coalesce", call.group(1)
    return next((arg for arg in args if arg), "")


def river_map(value: str) -> dict[str, str]:
    """A River object literal ``{ k = "v", ... }`` as a dict of decoded strings."""
    inner = value.strip()[1:-1]
    pairs = [p.split("=", 1) for p in _split_top(inner.replace("\n", " "), ",") if p]
    return {k.strip().strip('"'): river_eval(v.strip(), {}) for k, v in pairs}


ALLOY_TEXT = (LOGGING / "alloy" / "config.alloy").read_text()
ALLOY = parse_river(ALLOY_TEXT)
[PROCESS] = ALLOY.find("loki.process")


def _lit(value: str) -> str:
    return river_eval(value, {})


def _stages(name: str) -> list[Block]:
    return PROCESS.find(f"stage.{name}")


def _alloy_template(stage: Block, value: str | None, extracted: Mapping[str, str]) -> str:
    """The two template forms the config uses, evaluated as Go's text/template would."""
    text = river_eval(stage.attrs["template"], ENV)
    default = re.fullmatch(r'\{\{ default "([^"]*)" \.Value \}\}', text)
    if default:
        return value or default.group(1)
    if text == '{{ TrimSuffix .Value "\\n" }}':  # Go reads "\n" in a template as a newline
        return (value or "").removesuffix("\n")
    ship = re.fullmatch(
        r'\{\{ if and \(eq \(default "" \.compose_service\) "(\w+)"\) '
        r'\(eq \(default "" \.compose_project\) "([\w-]*)"\) \}\}yes\{\{ else \}\}no\{\{ end \}\}',
        text,
    )
    assert ship, f"template form not reproduced here: {text}"
    wanted = (extracted.get("compose_service"), extracted.get("compose_project"))
    return "yes" if wanted == (ship.group(1), ship.group(2)) else "no"


def _docker_line(line: str, project: str = "compose", service: str = "app") -> str:
    """``line`` as Docker's json-file driver writes it with the compose label options."""
    attrs = {"com.docker.compose.project": project, "com.docker.compose.service": service}
    return json.dumps({"log": line + "\n", "stream": "stdout", "attrs": attrs,
                       "time": "2026-01-02T03:04:05.123456789Z"})  # fmt: skip


def _jmespath(doc: Mapping[str, Any], path: str) -> Any:
    """The two JMESPath forms the config uses: ``name`` and ``name."dotted.key"``."""
    head, _, quoted = path.partition(".")
    value = doc.get(head)
    if quoted:
        value = value.get(json.loads(quoted)) if isinstance(value, Mapping) else None
    return value


@dataclass
class Entry:
    """A log entry on its way through loki.process."""

    line: str
    extracted: dict[str, str] = field(default_factory=dict)
    time: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    dropped: bool = False


def _json_stage(stage: Block, entry: Entry) -> None:
    try:
        doc = json.loads(entry.line)
    except ValueError:
        return  # a line that is not JSON passes through, nothing extracted
    for key, path in river_map(stage.attrs["expressions"]).items():
        value = _jmespath(doc, path or key)
        if value is not None:
            entry.extracted[key] = value if isinstance(value, str) else json.dumps(value)


def _template_stage(stage: Block, entry: Entry) -> None:
    source = _lit(stage.attrs["source"])
    entry.extracted[source] = _alloy_template(stage, entry.extracted.get(source), entry.extracted)


def _drop_stage(stage: Block, entry: Entry) -> None:
    if entry.extracted.get(_lit(stage.attrs["source"])) == _lit(stage.attrs["value"]):
        entry.dropped = True


def _timestamp_stage(stage: Block, entry: Entry) -> None:
    source = _lit(stage.attrs["source"])
    if source in entry.extracted:
        entry.time = parse_go(_lit(stage.attrs["format"]), entry.extracted[source])


def _output_stage(stage: Block, entry: Entry) -> None:
    entry.line = entry.extracted[_lit(stage.attrs["source"])]


def _labels_stage(stage: Block, entry: Entry) -> None:
    values = river_map(stage.attrs["values"]).items()
    entry.labels = {k: entry.extracted[v or k] for k, v in values}


def _metadata_stage(stage: Block, entry: Entry) -> None:
    values = river_map(stage.attrs["values"]).items()
    entry.metadata = {k: entry.extracted[v or k] for k, v in values if (v or k) in entry.extracted}


def _label_keep_stage(stage: Block, entry: Entry) -> None:
    keep = set(re.findall(r'"(\w+)"', stage.attrs["values"]))
    entry.labels = {k: v for k, v in entry.labels.items() if k in keep}


ALLOY_STAGES = {
    "stage.json": _json_stage,
    "stage.template": _template_stage,
    "stage.drop": _drop_stage,
    "stage.timestamp": _timestamp_stage,
    "stage.output": _output_stage,
    "stage.labels": _labels_stage,
    "stage.structured_metadata": _metadata_stage,
    "stage.label_keep": _label_keep_stage,
}


def run_alloy(docker_line: str) -> dict[str, Any] | None:
    """What loki.process makes of one Docker log line (None: dropped).

    A stage this reproduction does not know fails the test: a new stage must be
    reproduced here before the sample checks mean anything.
    """
    entry = Entry(docker_line)
    for stage in PROCESS.blocks:
        assert stage.name in ALLOY_STAGES, f"{stage.name} is not reproduced in this test"
        ALLOY_STAGES[stage.name](stage, entry)
        if entry.dropped:
            return None
    return {
        "labels": entry.labels,
        "metadata": entry.metadata,
        "time": entry.time,
        "line": entry.line,
    }


def test_alloy_states_its_version() -> None:
    """The header names the floor and the version the config was checked against."""
    assert ("needs Alloy >= 1.4", "Alloy v1.4.3") == (
        re.search(r"needs Alloy >= [\d.]+", ALLOY_TEXT).group(0),  # type: ignore[union-attr]
        re.search(r"Alloy v[\d.]+", ALLOY_TEXT).group(0),  # type: ignore[union-attr]
    )


def test_alloy_reads_files_not_the_docker_api() -> None:
    """local.file_match + loki.source.file on Docker's json-file logs; no docker.sock."""
    [match] = ALLOY.find("local.file_match")
    assert (["loki.source.file"], True, False) == (
        [b.name for b in ALLOY.blocks if b.name.startswith("loki.source")],
        "/var/lib/docker/containers/*/*-json.log" in match.attrs["path_targets"],
        "docker.sock" in ALLOY_TEXT.replace("the Docker socket", ""),
    )


def test_alloy_labels_metadata_and_kept_labels() -> None:
    """Labels service/env/level (and only those survive); the ids are structured metadata."""
    [labels], [metadata], [keep] = (
        _stages("labels"),
        _stages("structured_metadata"),
        _stages("label_keep"),
    )
    assert (LABELS, True, LABELS) == (
        set(river_map(labels.attrs["values"])),
        IDS <= set(river_map(metadata.attrs["values"])),
        set(re.findall(r'"(\w+)"', keep.attrs["values"])),
    )


def test_alloy_reads_only_fields_of_the_schema() -> None:
    """Every field the app-line JSON stage extracts is a field of the log schema."""
    app_stage = _stages("json")[1]
    fields = set(river_map(app_stage.attrs["expressions"]).values()) - {""}
    assert set() == fields - SCHEMA_FIELDS


def test_alloy_ships_the_real_sample_with_three_labels(sample: list[str]) -> None:
    """Each sample line (JSON or not) reaches Loki with service, env, level; JSON lines keep
    their own time and line; the non-JSON line gets level unknown and Docker's time."""
    entries = [run_alloy(_docker_line(line)) for line in sample]
    assert None not in entries
    got = [(e["labels"], e["line"]) for e in entries if e is not None]
    expected = [
        ({"service": "limoneide", "env": "compose", "level": json.loads(line)["level"]}, line)
        for line in sample[:-1]
    ] + [({"service": "limoneide", "env": "compose", "level": "unknown"}, NOT_JSON)]
    times = [e["time"] for e in entries if e is not None]
    own = [datetime.fromisoformat(json.loads(line)["timestamp"]) for line in sample[:-1]]
    assert (expected, own, datetime.fromisoformat("2026-01-02T03:04:05.123456789Z")) == (
        got,
        times[:-1],
        times[-1],
    )


def test_alloy_sends_the_request_id_as_metadata(sample: list[str]) -> None:
    """The app event's request_id is structured metadata; lines without ids send none."""
    entries = [run_alloy(_docker_line(line)) for line in sample]
    assert [{"request_id": "4bf92f3577b34da6a3ce929d0e0e4736"}, {}, {}, {}] == [
        e["metadata"] for e in entries if e is not None
    ]


@pytest.mark.parametrize(("project", "service"), [("other", "app"), ("compose", "loki"), ("", "")])
def test_alloy_drops_other_containers(sample: list[str], project: str, service: str) -> None:
    """Lines of another project's app, of another service, or without compose labels: dropped."""
    assert None is run_alloy(_docker_line(sample[0], project, service))


# --- Vector ------------------------------------------------------------------------------

VECTOR_TEXT = (LOGGING / "vector" / "vector.yaml").read_text()
VECTOR = yaml.safe_load(VECTOR_TEXT)
VRL = VECTOR["transforms"]["parse"]["source"]
SINK = VECTOR["sinks"]["loki"]


def _vector_env(text: str) -> str:
    """Vector's ``${VAR:-default}`` interpolation with :data:`ENV`."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: ENV.get(m.group(1), m.group(2)), text)


def run_vector(line: str) -> dict[str, Any]:
    """What the remap transform and the loki sink make of one line, as far as the VRL
    program's statements are reproduced here (parse, timestamp, defaults, ids)."""
    event: dict[str, Any] = {"message": line, "timestamp": "read-time"}
    try:
        parsed = json.loads(line)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        event |= parsed
        fmt = re.search(r'parse_timestamp\(\.timestamp, format: "([^"]+)"\)', VRL).group(1)  # type: ignore[union-attr]
        event["timestamp"] = parse_chrono_zoned(fmt, event["timestamp"])
    for key, default in re.findall(r'if !is_string\(\.(\w+)\) \{ \.\w+ = "([^"]+)" \}', VRL):
        if not isinstance(event.get(key), str):
            event[key] = _vector_env(default)
    ids = {k: event[k] for k in re.findall(r"if is_string\(\.(\w+)\) \{ ids\.", VRL) if k in event}
    labels = {
        k: re.sub(r"\{\{ (\w+) \}\}", lambda m: event[m.group(1)], v)
        for k, v in SINK["labels"].items()
    }
    return {"labels": labels, "metadata": ids, "time": event["timestamp"]}


def test_vector_states_its_version() -> None:
    """Vector >= 0.41 (structured_metadata), checked against 0.41.1."""
    assert (True, True) == ("needs Vector >= 0.41" in VECTOR_TEXT, "Vector 0.41.1" in VECTOR_TEXT)


def test_vector_keeps_timestamp_and_sets_its_data_dir() -> None:
    """remove_timestamp is false (the line keeps `timestamp`); data_dir is set."""
    assert (False, "/var/lib/vector") == (
        SINK["remove_timestamp"],
        _vector_env(VECTOR["data_dir"]),
    )


def test_vector_labels_and_metadata_only_for_present_ids() -> None:
    """Labels service/env/level; metadata expands the ids the line has (no missing-key warning)."""
    assert (
        {label: f"{{{{ {label} }}}}" for label in LABELS},
        {"*": "{{ _limone_ids }}"},
        IDS,
        True,
    ) == (
        SINK["labels"],
        SINK["structured_metadata"],
        IDS & set(re.findall(r"if is_string\(\.(\w+)\) \{ ids\.", VRL)),
        "_limone_ids" in SINK["encoding"]["except_fields"],
    )


def test_vector_ships_an_apps_fields_named_like_its_own() -> None:
    """An app field named ``file``, ``host`` or ``source_type`` is shipped: Vector's own
    fields of those names are deleted before the line's are merged in, and the sink
    leaves out only the transform's own fields (a trial found the app's three fields
    dropped by ``except_fields``)."""
    merge = VRL.index(". = merge(., object!(parsed))")
    deleted = [(m.group(1), m.start() < merge) for m in re.finditer(r"del\(\.(\w+)\)", VRL)]
    assert (
        [("file", True), ("host", True), ("source_type", True)],
        ["_limone_ids", "_limone_namespace"],
    ) == (deleted, SINK["encoding"]["except_fields"])


def test_vector_elasticsearch_namespace_is_a_valid_one() -> None:
    """The commented Elasticsearch sink's data-stream namespace is the env made lower-case,
    ``-`` and other characters to ``_``, at most 100 bytes (a free-text env such as
    "eu-prod" is no valid namespace)."""
    assert 'namespace: "{{ _limone_namespace }}"' in VECTOR_TEXT
    assert (
        "._limone_namespace = slice!(downcase(replace(string!(.env), "
        "r'[^A-Za-z0-9_]', \"_\")), 0, 100)"
    ) in VRL


def test_vector_ships_the_real_sample_with_three_labels(sample: list[str]) -> None:
    """Every sample line gets service/env/level (the non-JSON one from the environment);
    JSON lines' timestamps parse with the remap's format string."""
    results = [run_vector(line) for line in sample]
    expected = [
        {"service": "limoneide", "env": "compose", "level": json.loads(line)["level"]}
        for line in sample[:-1]
    ] + [{"service": "limoneide", "env": "compose", "level": "unknown"}]
    own = [datetime.fromisoformat(json.loads(line)["timestamp"]) for line in sample[:-1]]
    assert (expected, own, [{"request_id": "4bf92f3577b34da6a3ce929d0e0e4736"}, {}, {}, {}]) == (
        [r["labels"] for r in results],
        [r["time"] for r in results[:-1]],
        [r["metadata"] for r in results],
    )


# --- Fluent Bit --------------------------------------------------------------------------

FLUENT_TEXT = (LOGGING / "fluent-bit" / "fluent-bit.yaml").read_text()
FLUENT = yaml.safe_load(FLUENT_TEXT)
[PARSER] = yaml.safe_load((LOGGING / "fluent-bit" / "parsers.yaml").read_text())["parsers"]
[TAIL] = FLUENT["pipeline"]["inputs"]
[OUTPUT] = FLUENT["pipeline"]["outputs"]


def _pairs(text: str) -> dict[str, str]:
    return dict(item.strip().split("=", 1) for item in text.split(","))


def run_fluent_bit(line: str) -> dict[str, Any]:
    """The record tail + parser + modify filters make of one line, and its Loki labels."""
    try:
        record: dict[str, Any] = json.loads(line)
        time = parse_strftime(PARSER["time_format"], record[PARSER["time_key"]], "%L")
    except ValueError:
        record, time = {"log": line}, None  # the parser refused it: the line is kept as is
    for filt in FLUENT["pipeline"]["filters"]:
        key, value = filt["add"].split(" ", 1)
        value = re.sub(r"\$\{(\w+)\}", lambda m: ENV[m.group(1)], value)
        record.setdefault(key, value)  # `add` never overwrites
    labels = {k: record.get(v.removeprefix("$")) for k, v in _pairs(OUTPUT["labels"]).items()}
    metadata = {
        k: record[v[1:]]
        for k, v in _pairs(OUTPUT["structured_metadata"]).items()
        if v[1:] in record
    }
    return {"labels": labels, "metadata": metadata, "time": time}


def test_fluent_bit_states_its_version() -> None:
    """Fluent Bit >= 3.2 (YAML parsers files), in both files, checked against 3.2."""
    parsers_text = (LOGGING / "fluent-bit" / "parsers.yaml").read_text()
    assert (True, True, True) == (
        "needs Fluent Bit >= 3.2" in FLUENT_TEXT,
        "checked\n# against the documentation and sources of Fluent Bit 3.2" in FLUENT_TEXT,
        "Fluent Bit >= 3.2" in parsers_text,
    )


def test_fluent_bit_keeps_its_state_where_the_directory_exists() -> None:
    """The tail input's db lives in /var/log, a directory every host has."""
    assert "/var/log" == TAIL["db"].rsplit("/", 1)[0]


def test_a_long_line_costs_the_shippers_that_line_alone() -> None:
    """A line over Fluent Bit's buffer is skipped, not the file (by default the tail input
    stops following it: every later line lost); both shippers take lines up to 1 MiB,
    far above the kit's default cap (text on stderr has none)."""
    assert (True, "1M", 1 << 20) == (
        TAIL["skip_long_lines"],
        TAIL["buffer_max_size"],
        VECTOR["sources"]["limoneide"]["max_line_bytes"],
    )
    assert DEFAULT_MAX_LINE_BYTES < 1 << 20


def test_fluent_bit_parser_reads_our_timestamp() -> None:
    """JSON parser, time from `timestamp`, kept in the record."""
    assert ("json", c.LOG_TIMESTAMP, True) == (
        PARSER["format"],
        PARSER["time_key"],
        PARSER["time_keep"],
    )


def test_fluent_bit_labels_metadata_and_defaults() -> None:
    """Labels service/env/level, each filled by a modify `add` when a line lacks it; ids
    are structured metadata."""
    added = {
        f["add"].split(" ", 1)[0] for f in FLUENT["pipeline"]["filters"] if f["name"] == "modify"
    }
    assert (LABELS, LABELS, True) == (
        set(_pairs(OUTPUT["labels"])),
        added,
        IDS <= set(_pairs(OUTPUT["structured_metadata"])),
    )


def test_fluent_bit_ships_the_real_sample_with_three_labels(sample: list[str]) -> None:
    """Every sample line gets service/env/level; JSON lines' times parse with time_format."""
    results = [run_fluent_bit(line) for line in sample]
    expected = [
        {"service": "limoneide", "env": "compose", "level": json.loads(line)["level"]}
        for line in sample[:-1]
    ] + [{"service": "limoneide", "env": "compose", "level": "unknown"}]
    own = [datetime.fromisoformat(json.loads(line)["timestamp"]) for line in sample[:-1]]
    assert (expected, own) == ([r["labels"] for r in results], [r["time"] for r in results[:-1]])


# --- all three ---------------------------------------------------------------------------


def test_the_three_shippers_send_the_same_labels(sample: list[str]) -> None:
    """Alloy, Vector and Fluent Bit give each sample line the same three labels."""
    alloy = [e["labels"] for e in map(run_alloy, map(_docker_line, sample)) if e is not None]
    vector = [run_vector(line)["labels"] for line in sample]
    fluent = [run_fluent_bit(line)["labels"] for line in sample]
    assert (alloy, alloy) == (vector, fluent)


def test_the_readme_states_the_floors_and_loki_service_name() -> None:
    """logging/README.md names the version floors and Loki's own service_name label."""
    readme = (LOGGING / "README.md").read_text()
    assert (True, True, True) == (
        "Fluent Bit ≥ 3.2" in readme,
        "Vector ≥ 0.41" in readme,
        "service_name" in readme,
    )


def test_compose_mounts_the_alloy_config() -> None:
    """The compose stack mounts the Alloy config that exists here."""
    compose = yaml.safe_load((ROOT / "compose" / "docker-compose.yml").read_text())
    volumes = compose["services"]["alloy"]["volumes"]
    assert any(v.startswith("../logging/alloy/config.alloy:") for v in volumes)


# --- Elasticsearch ------------------------------------------------------------------------

#: Elasticsearch field types a schema rule's JSON value can take without a refusal.
_ES_TYPES = {
    "string": {"keyword", "text", "date"},
    "integer": {"short", "integer", "long"},
    "number": {"double", "float"},
    "boolean": {"boolean"},
}


def _json_type(rule: Mapping[str, Any]) -> str:
    if "const" in rule:
        return type(rule["const"]).__name__.replace("bool", "boolean")
    if "enum" in rule:
        return "string"
    return str(rule["type"])


def test_the_elasticsearch_template_maps_every_schema_field_with_its_type() -> None:
    """Each field of the schema is mapped with a type its values fit (an object's fields
    too), nothing else is indexed (``dynamic: false``: an app field that changes type is
    kept, never refused), and the template matches the data streams Vector's sink
    writes (``logs-<dataset>-*``)."""
    template = json.loads((LOGGING / "elasticsearch" / "index-template.json").read_text())
    mappings = template["template"]["mappings"]
    schema = json.loads((LOGGING / "log-event.schema.json").read_text())
    wrong = []
    for name, rule in schema["properties"].items():
        mapped = mappings["properties"].get(name, {})
        if _json_type(rule) == "object":
            for inner, inner_rule in rule["properties"].items():
                got = mapped.get("properties", {}).get(inner, {}).get("type")
                if got not in _ES_TYPES[_json_type(inner_rule)]:
                    wrong.append(f"{name}.{inner}: {got}")
        elif mapped.get("type") not in _ES_TYPES[_json_type(rule)]:
            wrong.append(f"{name}: {mapped.get('type')}")
    dataset = re.search(r"dataset: (\w+)", VECTOR_TEXT).group(1)  # type: ignore[union-attr]
    assert ([], False, [f"logs-{dataset}-*"], {}) == (
        wrong,
        mappings["dynamic"],
        template["index_patterns"],
        template["data_stream"],
    )
