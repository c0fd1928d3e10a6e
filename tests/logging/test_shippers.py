"""The shipper configs in logging/: Loki labels are only service/env/level, ids are metadata.

Alloy, Vector and Fluent Bit are not installable here, so these tests check the configs'
structure (what each would send as labels and structured metadata), not a live run.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from limone_obs import conventions as c
from tests.support import ROOT

LOGGING = ROOT / "logging"
IDS = {c.LOG_REQUEST_ID, c.LOG_TRACE_ID, c.LOG_SPAN_ID, c.LOG_USER_ID}


def _alloy_block(stage: str) -> set[str]:
    text = (LOGGING / "alloy" / "config.alloy").read_text()
    match = re.search(rf"stage\.{stage}\s*\{{\s*values\s*=\s*\{{(.*?)\}}", text, re.S)
    assert match is not None, f"stage.{stage} not found"
    return set(re.findall(r"^\s*(\w+)\s*=", match.group(1), re.M))


def _yaml(path: str) -> Any:
    return yaml.safe_load((LOGGING / path).read_text())


def _pairs(text: str) -> dict[str, str]:
    return dict(item.strip().split("=", 1) for item in text.split(","))


def test_alloy_labels_are_service_env_level() -> None:
    """Alloy's stage.labels holds exactly the three low-cardinality labels."""
    assert set(c.LOKI_LABELS) == _alloy_block("labels")


def test_alloy_ids_are_structured_metadata() -> None:
    """Alloy sends request/trace/span/user ids as structured metadata."""
    assert IDS <= _alloy_block("structured_metadata")


def test_compose_mounts_the_alloy_config() -> None:
    """The compose stack mounts the Alloy config that exists here."""
    compose = yaml.safe_load((ROOT / "compose" / "docker-compose.yml").read_text())
    volumes = compose["services"]["alloy"]["volumes"]
    assert any(v.startswith("../logging/alloy/config.alloy:") for v in volumes)


def test_vector_labels_and_metadata() -> None:
    """Vector's loki sink: labels service/env/level, ids in structured metadata."""
    sink = _yaml("vector/vector.yaml")["sinks"]["loki"]
    assert (set(c.LOKI_LABELS), True) == (
        set(sink["labels"]),
        IDS <= set(sink["structured_metadata"]),
    )


def test_fluent_bit_labels_and_metadata() -> None:
    """Fluent Bit's loki output: labels service/env/level, ids in structured metadata."""
    [output] = _yaml("fluent-bit/fluent-bit.yaml")["pipeline"]["outputs"]
    labels, metadata = _pairs(output["labels"]), _pairs(output["structured_metadata"])
    assert (set(c.LOKI_LABELS), True) == (set(labels), IDS <= set(metadata))


def test_fluent_bit_parser_reads_our_timestamp() -> None:
    """The parser's time key is the schema's timestamp field."""
    [parser] = _yaml("fluent-bit/parsers.yaml")["parsers"]
    assert (c.LOG_TIMESTAMP, "json") == (parser["time_key"], parser["format"])
