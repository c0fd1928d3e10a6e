"""Fuzzed beacons: never an exception, never a series beyond the app's pages x phases."""

from __future__ import annotations

import json
import logging
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limone_obs import conventions as c
from limone_obs.exporter import rum
from tests.exporter.rum_app import PAGES, counts, make_rum_app

APP, METRICS = make_rum_app(LIMONE_OBS_RUM_RATE=1_000_000)
CLIENT = APP.test_client()
TOKEN = CLIENT.get("/editor/1").get_data(as_text=True).split('data-page="')[1].split('"')[0]
TOKEN = TOKEN.replace("&lt;", "<").replace("&gt;", ">")
ALLOWED = {(page, phase) for page in PAGES for phase in (*c.RUM_PHASES, *c.DEFAULT_RUM_MARKS)}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
phases = st.sampled_from([*c.RUM_PHASES, *c.DEFAULT_RUM_MARKS]) | st.text(max_size=30)
pages = st.just(TOKEN) | st.text(max_size=60) | st.sampled_from(PAGES) | json_values
beacon = (
    st.fixed_dictionaries({"p": pages, "v": st.dictionaries(phases, json_values, max_size=20)})
    | json_values
)


class _Records(logging.Handler):
    """Keeps every record the RUM module logs: the beacon view logs swallowed exceptions."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


SWALLOWED = _Records()
logging.getLogger(rum.__name__).addHandler(SWALLOWED)


def send(body: bytes) -> int:
    """POST ``body``; fail if the view had to swallow an exception on the way."""
    SWALLOWED.records.clear()  # only this beacon's records (other tests' apps log too)
    status = CLIENT.post("/rum", data=body, content_type="text/plain").status_code
    assert [r.getMessage() for r in SWALLOWED.records] == []
    return status


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(beacon)
def test_fuzzed_json_beacons(payload: Any) -> None:
    """Any JSON beacon gets 204 or a 4xx without an exception, and every series stays
    within pages x phases."""
    assert send(json.dumps(payload, allow_nan=True).encode()) in (204, 400, 413)
    assert set(counts(METRICS)) <= ALLOWED


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_fuzzed_raw_bodies(body: bytes) -> None:
    """Arbitrary bytes are refused with a 4xx and add no series."""
    before = counts(METRICS)
    assert send(body) in (400, 413)
    assert counts(METRICS) == before
