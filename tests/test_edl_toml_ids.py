"""The TOML writer (read back with stdlib tomllib) and the UUIDv7 generator."""

from __future__ import annotations

import datetime
import math
import time
import tomllib
import uuid

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwlink.edl.ids import uuid7, uuid7_time_ms
from hwlink.edl.toml import TomlWriteError, dumps

keys = st.text(min_size=1, max_size=12)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.datetimes(timezones=st.sampled_from([datetime.UTC, datetime.timezone(datetime.timedelta(hours=2)),
                                            datetime.timezone(datetime.timedelta(hours=-5, minutes=-30))])),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=6))
def test_any_document_reads_back_equal_with_tomllib(document: dict) -> None:
    assert tomllib.loads(dumps(document)) == document


def test_manifest_shape_arrays_of_tables_and_offset_datetime() -> None:
    created = datetime.datetime(2026, 6, 12, 19, 14, 14, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    document = {
        "format_version": "1", "type": "dataset", "time_created": created,
        "data": {"file_type": "csv", "parts": [{"fname": "a.csv", "index": 0}, {"fname": "b.csv", "index": 1}]},
        "data_aux": [{"file_type": "tsync", "parts": [{"fname": "x.tsync"}]},
                     {"file_type": "xml", "summary": "settings", "parts": [{"fname": "settings.xml"}]}],
    }
    text = dumps(document)
    assert "time_created = 2026-06-12T19:14:14+02:00\n" in text
    assert "[[data_aux.parts]]" in text and "[[data.parts]]" in text
    assert tomllib.loads(text) == document


def test_strings_are_escaped() -> None:
    nasty = 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f unicode µ☑'
    document = {"s": nasty, "key with space": 1, "ключ": 2, "bare\n": 3, "bare": {"x\n": [{}]}}
    assert tomllib.loads(dumps(document)) == document


def test_numpy_values_none_and_special_floats() -> None:
    document = {"i": np.int16(-3), "f": np.float32(0.5), "arr": np.arange(3), "none": None, "t": (1, "a"),
                "inf": math.inf, "nested": {"gone": None, "kept": [None, 1]}}
    read = tomllib.loads(dumps(document))
    assert read == {"i": -3, "f": 0.5, "arr": [0, 1, 2], "t": [1, "a"], "inf": math.inf,
                    "nested": {"kept": ["null", 1]}}
    assert math.isnan(tomllib.loads(dumps({"n": math.nan}))["n"])


def test_unsupported_values_raise() -> None:
    with pytest.raises(TomlWriteError, match="cannot write"):
        dumps({"x": object()})
    with pytest.raises(TomlWriteError, match="keys must be strings"):
        dumps({1: 2})


def test_uuid7_layout_time_and_order() -> None:
    before = time.time_ns() // 1_000_000
    ids = [uuid7() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert before <= uuid7_time_ms(ids[0]) <= uuid7_time_ms(ids[-1]) <= after
    assert str(ids[0]) == str(ids[0]).lower()


def test_uuid7_from_given_time() -> None:
    value = uuid7(1_700_000_000_123_456_789)
    assert uuid7_time_ms(value) == 1_700_000_000_123 and value.version == 7
