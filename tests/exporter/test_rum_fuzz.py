"""Fuzzed beacons: never an exception, never a series beyond the app's pages x phases."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limone_obs import conventions as c
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


def send(body: bytes) -> int:
    return CLIENT.post("/rum", data=body, content_type="text/plain").status_code


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(beacon)
def test_fuzzed_json_beacons(payload: Any) -> None:
    """Any JSON beacon gets 204 or a 4xx, and every series stays within pages x phases."""
    assert send(json.dumps(payload, allow_nan=True).encode()) in (204, 400, 413)
    assert set(counts(METRICS)) <= ALLOWED


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_fuzzed_raw_bodies(body: bytes) -> None:
    """Arbitrary bytes are refused with a 4xx and add no series."""
    before = counts(METRICS)
    assert send(body) in (400, 413)
    assert counts(METRICS) == before
