"""Values orjson cannot encode, line breaks and the size cap never break a line."""

from __future__ import annotations

import datetime as dt
import enum
import io
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from limone_obs.errors import ConfigError
from limone_obs.logging import bind, configure_logging, get_logger
from limone_obs.logging._encode import encode_line
from tests.logging.helpers import parse_lines, schema_errors, stdlib_logger


class BrokenRepr:
    """An object whose ``__repr__`` raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


AWKWARD: dict[str, Any] = {
    "a_set": {1, 2},
    "a_datetime": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    "a_decimal": Decimal("1.10"),
    "custom": object(),
    "broken": BrokenRepr(),
    "int_keys": {1: "a", (2, 3): "b"},
    "huge": 2**80,
    "surrogate": "bad \udc80 text",
    "nan": float("nan"),
    "inf": float("inf"),
    "raw_bytes": b"\xff\x00",
    "exception": ValueError("x"),
    "nested": [[[[{"deep": {1, 2}}]]]],
}


@pytest.mark.parametrize("key", sorted(AWKWARD))
def test_awkward_value_gives_one_valid_line(
    key: str, out: io.BytesIO, validator: Draft202012Validator
) -> None:
    """Each value orjson refuses is converted: one valid line, no exception."""
    configure_logging(stream=out)
    get_logger().info("awkward", **{key: AWKWARD[key]})
    events = parse_lines(out.getvalue())
    assert (1, []) == (len(events), schema_errors(validator, events))
    assert key in events[0]


def test_huge_int_keeps_its_digits(out: io.BytesIO) -> None:
    """An int over 64 bits is written as its decimal string."""
    configure_logging(stream=out)
    get_logger().info("x", n=2**80)
    assert str(2**80) == parse_lines(out.getvalue())[0]["n"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("forced_fallback", [False, True])
def test_non_finite_float_is_null_on_both_paths(
    value: float, forced_fallback: bool, out: io.BytesIO
) -> None:
    """NaN/Infinity are written as null, by orjson directly and by the sanitising fallback
    (forced here by an int dict key orjson refuses)."""
    configure_logging(stream=out)
    extra: dict[str, Any] = {"int_keys": {1: "a"}} if forced_fallback else {}
    get_logger().info("x", v=value, **extra)
    assert None is parse_lines(out.getvalue())[0]["v"]


class Colour(enum.Enum):
    RED = "red"


@pytest.mark.parametrize("forced_fallback", [False, True])
def test_uuids_and_enums_are_written_alike_on_both_paths(
    forced_fallback: bool, out: io.BytesIO
) -> None:
    """A UUID is its text and an enum member its value, also nested in a list or a set,
    whether orjson writes the line or the sanitising fallback does (forced by an int
    dict key orjson refuses): never their ``repr()``."""
    configure_logging(stream=out)
    some = uuid.UUID(int=7)
    extra: dict[str, Any] = {"int_keys": {1: "a"}} if forced_fallback else {}
    get_logger().info(
        "x", u=some, nested=[some], members={Colour.RED}, c=Colour.RED, keyed={Colour.RED: 1},
        **extra,
    )  # fmt: skip
    line = parse_lines(out.getvalue())[0]
    assert (line["u"], line["nested"]) == (str(some), [str(some)])
    assert (line["members"], line["c"]) == (["red"], "red")
    assert line["keyed"] == {"red": 1}


def test_self_referencing_dict_does_not_raise(out: io.BytesIO) -> None:
    """A dict that contains itself is cut at a depth limit, not an error."""
    configure_logging(stream=out)
    loop: dict[str, Any] = {}
    loop["self"] = loop
    get_logger().info("x", loop=loop)
    assert 1 == len(parse_lines(out.getvalue()))


@pytest.mark.parametrize("separator", ["\n", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x1e"])
def test_line_separators_never_split_a_line(separator: str, out: io.BytesIO) -> None:
    """Characters ``str.splitlines`` breaks on stay inside the one line, escaped."""
    configure_logging(stream=out)
    get_logger().info(f"a{separator}b", field=f"c{separator}d")
    [event] = parse_lines(out.getvalue())
    assert (f"a{separator}b", f"c{separator}d") == (event["message"], event["field"])


def test_long_line_is_capped_with_marker(out: io.BytesIO, validator: Draft202012Validator) -> None:
    """A line over the cap is cut below it, valid, and marked truncated; original_bytes
    counts the line once texts over twice the cap were cut (the redactor's work bound)."""
    configure_logging(stream=out, max_line_bytes=4096)
    get_logger().info("x" * 10_000, blob="y" * 10_000, request_id="r1")
    raw = out.getvalue()
    events = parse_lines(raw)
    assert [] == schema_errors(validator, events)
    event = events[0]
    assert (True, "r1") == (event["truncated"], event["request_id"])
    assert len(raw) <= 4096
    assert event["original_bytes"] > 2 * 4096


def test_long_traceback_keeps_its_end(out: io.BytesIO) -> None:
    """A capped exception keeps the end of its traceback (where the failing line is)."""
    configure_logging(stream=out, max_line_bytes=2048)

    def recurse(n: int) -> None:
        if n == 0:
            raise ValueError("bottom")
        recurse(n - 1)

    try:
        recurse(60)
    except ValueError:
        get_logger().exception("deep")
    event = parse_lines(out.getvalue())[0]
    assert event["exception"]["traceback"].endswith("ValueError: bottom\n")


def test_too_small_cap_is_rejected() -> None:
    """max_line_bytes below 1024 is a ConfigError naming the argument."""
    with pytest.raises(ConfigError, match="max_line_bytes=100"):
        configure_logging(max_line_bytes=100)


def test_unknown_level_is_rejected() -> None:
    """An unknown level name is a ConfigError listing the valid ones."""
    with pytest.raises(ConfigError, match="level='loud'"):
        configure_logging(level="loud")


def test_a_cut_line_keeps_every_small_field(
    out: io.BytesIO, validator: Draft202012Validator
) -> None:
    """Over the cap (a pipe's 4096 bytes), only the large values are cut, keeping their
    type and head; the small fields, bound ones too, stay whole."""
    configure_logging(stream=out, max_line_bytes=4096)
    bind(tenant="acme")
    rows = [{"id": n, "name": "x" * 40} for n in range(200)]
    get_logger("k").info("order", order_id=42, note="n" * 5000, amount=10, rows=rows)
    stdlib_logger("lib").warning("m" * 5000)
    raw = out.getvalue()
    order, warning = parse_lines(raw)
    assert [] == schema_errors(validator, [order, warning])
    assert all(len(line) < 4096 for line in raw.splitlines(keepends=True))
    assert (42, 10, "acme", "order") == (
        order["order_id"], order["amount"], order["tenant"], order["message"]
    )  # fmt: skip
    assert order["note"].startswith("nnn")
    assert order["note"].endswith("...[truncated]")
    assert 1000 < len(order["note"]) < 5000
    assert 10 < len(order["rows"]) < 200
    assert rows[: len(order["rows"]) - 1] == order["rows"][:-1]  # whole items, the last cut
    assert (True, True) == (order["truncated"], warning["truncated"])
    # The message alone over the cap gets nearly all of it (it was cut to ~1 KiB).
    assert 3500 < len(warning["message"]) < 4096


def test_a_line_of_many_fields_keeps_the_smallest_whole(out: io.BytesIO) -> None:
    """Too many fields for useful shares: the message and the smallest fields, whole."""
    configure_logging(stream=out, max_line_bytes=4096)
    fields = {f"f{n:03d}": "v" * (30 + n % 7) for n in range(300)}
    get_logger().info("many", tiny=1, **fields)
    raw = out.getvalue()
    [event] = parse_lines(raw)
    assert len(raw) <= 4096
    assert ("many", 1) == (event["message"], event["tiny"])
    kept = [key for key in fields if key in event]
    assert len(kept) > 50
    assert all(event[key] == fields[key] for key in kept)


def _utf8_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


#: Text as it is written (no lone surrogates, which are replaced) and masks nothing.
_TEXT = st.text(st.characters(codec="utf-8"), max_size=3000)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.text(alphabet="abcdefgh_", min_size=1, max_size=12),
        st.recursive(
            _TEXT | st.integers(-(2**63), 2**63 - 1) | st.none(),
            lambda inner: (
                st.lists(inner, max_size=30)
                | st.dictionaries(st.text(alphabet="0123456789", max_size=8), inner, max_size=10)
            ),
            max_leaves=60,
        ),
        max_size=12,
    ),
    st.text(st.characters(codec="utf-8"), max_size=6000),
)
def test_property_a_cut_line_fits_and_keeps_small_fields(
    fields: dict[str, Any], message: str
) -> None:
    """Whatever the event, its line fits the cap, parses, and keeps its core fields and
    every value under 40 encoded bytes (it has at most 12 fields). Unmasked: a value of
    a secret's shape (``"[parameters: "``) would be masked, not kept."""
    out = io.BytesIO()
    configure_logging(stream=out, max_line_bytes=1024, redact=False)
    fields = {f"x_{key}": value for key, value in fields.items()}  # no core names
    get_logger("p").info(message, **fields)
    raw = out.getvalue()
    [event] = parse_lines(raw)
    assert len(raw) <= 1024
    assert {"timestamp", "level", "logger", "message", "service", "env"} <= set(event)
    small = {k: v for k, v in fields.items() if len(_utf8_json(v)) < 40}
    assert small == {k: event[k] for k in small}


@pytest.mark.parametrize("cap", range(2048, 8192, 100))
def test_a_large_list_or_mapping_is_cut_never_dropped(cap: int) -> None:
    """Whatever the cap, a list of 300 records or a mapping of 1500 keys over it keeps its
    first items (or its smallest keys), beside every small field: never left out."""
    base: dict[str, Any] = {"timestamp": "2026-12-05T08:00:00.000Z", "level": "info"}
    base["logger"] = "k"
    base |= {"message": "big", "service": "s", "env": "e", "tenant": "acme", "order_id": 1}
    rows = [{"id": n, "name": "x" * 30, "qty": n} for n in range(300)]
    for field, value in (("rows", rows), ("stock", {f"k{n}": n for n in range(1500)})):
        line = encode_line({**base, field: value}, cap)
        event = json.loads(line)
        assert len(line) <= cap
        assert ("acme", 1) == (event["tenant"], event["order_id"])
        assert 0 < len(event[field]) < len(value)


def test_a_long_exception_message_leaves_the_traceback_its_frames(out: io.BytesIO) -> None:
    """An exception whose message alone overflows the cap (a long SQL statement): the cut
    traceback keeps its last frames, where it failed, not only the message's tail (the
    exception's message field holds the message)."""
    configure_logging(stream=out, max_line_bytes=4096)

    def query(depth: int) -> None:
        if depth == 0:
            raise RuntimeError("SELECT " + ", ".join(f"col_{n}" for n in range(500)))
        query(depth - 1)

    try:
        query(30)
    except RuntimeError:
        get_logger().exception("query failed")
    raw = out.getvalue()
    [event] = parse_lines(raw)
    assert len(raw) <= 4096
    assert event["exception"]["message"].startswith("SELECT col_0, col_1")
    assert event["exception"]["traceback"].count('File "') >= 3
    assert "in query" in event["exception"]["traceback"]


def test_an_integer_past_pythons_conversion_limit_keeps_its_line(out: io.BytesIO) -> None:
    """An int of 5000 digits (past str()'s 4300-digit limit) becomes a marker giving its
    size, on both paths, and the line keeps its level and other fields; one of 4000
    digits on a pipe-sized cap is cut as text, not dropped."""
    configure_logging(stream=out, max_line_bytes=4096)
    get_logger("a").info("huge", order_id="o-2", d={"x": [10**5000]})
    stdlib_logger("s").warning("stdlib huge", extra={"order_id": "o-1", "n": 10**5000})
    get_logger("a").info("long", s=10**4000, order_id="o-3")
    huge, stdlib_huge, long = parse_lines(out.getvalue())
    assert ("info", "o-2", "<integer of about 5001 digits>") == (
        huge["level"], huge["order_id"], huge["d"]["x"][0]
    )  # fmt: skip
    assert ("warning", "o-1") == (stdlib_huge["level"], stdlib_huge["order_id"])
    assert stdlib_huge["n"].startswith("<integer of about")
    assert ("o-3", True) == (long["order_id"], long["truncated"])
    assert long["s"].startswith("1000")
    assert long["s"].endswith("...[truncated]")


@pytest.mark.parametrize("count", [30, 40, 50, 80, 300])
def test_a_cut_exception_keeps_its_type_and_message(
    count: int, out: io.BytesIO, validator: Draft202012Validator
) -> None:
    """However many other fields share the cap, a cut line's exception keeps the type and
    the message the schema requires (the message cut), from structlog and stdlib alike."""
    configure_logging(stream=out, max_line_bytes=4096)
    fields = {f"f{n:03d}": "v" * 200 for n in range(count)}
    try:
        raise ValueError("m" * 3000)
    except ValueError:
        get_logger().exception("boom", **fields)
        stdlib_logger("cut").exception("boom std", extra=fields)
    events = parse_lines(out.getvalue())
    assert [] == schema_errors(validator, events)
    for event in events:
        assert ("ValueError", True) == (event["exception"]["type"], event["truncated"])
        assert event["exception"]["message"].startswith("m" * 400)
