"""The hand-written writer of flat records: fastavro's exact bytes, or no answer (and fastavro writes)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.segments.membership import SegmentChange
from schemas.codec import DEFAULT_CODEC, decode, encode, encode_segment_changes, encode_typed
from schemas.errors import EncodeError
from schemas.flat_writer import compile_flat_writer

LONGS = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text() | st.text(min_size=600, max_size=1500)  # lengths past one and two varint bytes

FLAT = parse_schema(
    {
        "type": "record",
        "name": "Flat",
        "namespace": "test",
        "fields": [
            {"name": "text", "type": "string"},
            {"name": "long", "type": "long"},
            {"name": "int", "type": "int"},
            {"name": "flag", "type": "boolean"},
            {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        ],
    },
    _write_hint=False,
)


def fastavro_bytes(schema: dict[str, Any], value: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    schemaless_writer(buffer, schema, value)
    return buffer.getvalue()


segment_changes = st.fixed_dictionaries(
    {
        "customer_id": TEXT,
        "segment_id": TEXT,
        "segment_version": LONGS,
        "change": st.sampled_from(["ENTERED", "EXITED"]),
        "caused_by_event_id": TEXT,
        "occurred_at": LONGS,
    }
)


@settings(max_examples=300)
@given(segment_changes)
def test_segment_changes_are_written_as_fastavro_writes_them(change: dict[str, Any]) -> None:
    output = DEFAULT_CODEC._outputs["SegmentChange"]
    assert output.flat is not None
    assert output.flat(change) == fastavro_bytes(output.schema, change)
    assert decode(encode_typed("SegmentChange", change)) == ("SegmentChange", change)


@settings(max_examples=200)
@given(
    st.fixed_dictionaries(
        {
            "text": TEXT,
            "long": LONGS,
            "int": st.integers(-(2**31), 2**31 - 1),
            "flag": st.booleans(),
            "kind": st.sampled_from(["A", "B", "C"]),
            "at": st.integers(0, 2**62),
        }
    )
)
def test_every_flat_field_type_is_written_as_fastavro_writes_it(value: dict[str, Any]) -> None:
    writer = compile_flat_writer(FLAT)
    assert writer is not None
    assert writer(value) == fastavro_bytes(FLAT, value)


def test_a_timestamp_given_as_a_datetime_is_left_to_fastavro() -> None:
    writer = compile_flat_writer(FLAT)
    assert writer is not None
    moment = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    assert writer({"text": "", "long": 0, "int": 0, "flag": True, "kind": "A", "at": moment}) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("segment_version", 1.5),
        ("segment_version", True),
        ("segment_version", 2**63),
        ("change", "MOVED"),
        ("customer_id", None),
        ("customer_id", "\ud800"),
    ],
)
def test_a_value_the_writer_does_not_expect_is_left_to_fastavro(field: str, value: Any) -> None:
    change = {
        "customer_id": "c-1",
        "segment_id": "vip",
        "segment_version": 1,
        "change": "ENTERED",
        "caused_by_event_id": "e-1",
        "occurred_at": 1,
    }
    output = DEFAULT_CODEC._outputs["SegmentChange"]
    assert output.flat is not None
    assert output.flat({**change, field: value}) is None
    with pytest.raises(EncodeError):
        encode("SegmentChange", {**change, field: value})


def test_a_missing_field_is_left_to_fastavro() -> None:
    output = DEFAULT_CODEC._outputs["SegmentChange"]
    assert output.flat is not None
    assert output.flat({"customer_id": "c-1"}) is None


def test_records_with_unions_maps_or_arrays_are_not_flat() -> None:
    assert DEFAULT_CODEC._outputs["Envelope"].flat is None
    assert DEFAULT_CODEC._outputs["Decision"].flat is None
    assert DEFAULT_CODEC._outputs["Delivery"].flat is None


changes = st.lists(
    st.builds(
        SegmentChange,
        st.sampled_from(["vip", "dormant", "ñandú"]) | TEXT,
        st.sampled_from([1, 2]) | LONGS,
        st.sampled_from(["ENTERED", "EXITED"]),
        st.sampled_from([1_764_240_000_000]) | LONGS,
    ),
    max_size=6,
)


@settings(max_examples=300)
@given(TEXT, st.none() | TEXT, changes)
def test_the_changes_of_an_event_are_written_as_each_would_be_alone(
    customer_id: str, caused_by: str | None, customer_changes: list[SegmentChange]
) -> None:
    names = ("customer_id", "segment_id", "segment_version", "change", "caused_by_event_id", "occurred_at")
    expected = [
        encode_typed(
            "SegmentChange",
            dict(
                zip(
                    names,
                    (
                        customer_id,
                        *change[:3],
                        caused_by or ":".join(("backfill", *map(str, change[:2]))),
                        change.at_ms,
                    ),
                    strict=True,
                )
            ),
        )
        for change in customer_changes
    ]
    assert encode_segment_changes(customer_id, caused_by, customer_changes) == expected


def test_a_change_out_of_range_gets_fastavro_error() -> None:
    with pytest.raises(EncodeError):
        encode_segment_changes("c-1", "e-1", [SegmentChange("vip", 2**63, "ENTERED", 1)])
