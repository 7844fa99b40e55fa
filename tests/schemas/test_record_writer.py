"""The hand-written writer of plain records: fastavro's exact bytes, or no answer (and fastavro writes)."""

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
from schemas.record_writer import compile_record_writer

LONGS = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text() | st.text(min_size=600, max_size=1500)  # lengths past one and two varint bytes

SCALARS: dict[str, Any] = parse_schema(  # type: ignore[assignment]
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
    assert output.by_hand is not None
    assert output.by_hand(change) == fastavro_bytes(output.schema, change)
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
def test_every_scalar_field_type_is_written_as_fastavro_writes_it(value: dict[str, Any]) -> None:
    writer = compile_record_writer(SCALARS)
    assert writer is not None
    assert writer(value) == fastavro_bytes(SCALARS, value)


def test_a_timestamp_given_as_a_datetime_is_left_to_fastavro() -> None:
    writer = compile_record_writer(SCALARS)
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
    assert output.by_hand is not None
    assert output.by_hand({**change, field: value}) is None
    with pytest.raises(EncodeError):
        encode("SegmentChange", {**change, field: value})


def test_a_missing_field_is_left_to_fastavro() -> None:
    output = DEFAULT_CODEC._outputs["SegmentChange"]
    assert output.by_hand is not None
    assert output.by_hand({"customer_id": "c-1"}) is None


def test_records_with_unions_of_several_types_are_not_written_by_hand() -> None:
    assert DEFAULT_CODEC._outputs["Envelope"].by_hand is None


details = st.dictionaries(TEXT, TEXT, max_size=4)
optional_text = st.none() | TEXT


@settings(max_examples=200)
@given(
    st.fixed_dictionaries(
        {
            "decision_id": TEXT,
            "customer_id": TEXT,
            "kind": TEXT,
            "campaign_id": optional_text,
            "outcome": TEXT,
            "reason": TEXT,
            "details": details,
            "occurred_at": LONGS,
            "then": st.lists(
                st.fixed_dictionaries(
                    {
                        "decision_id": TEXT,
                        "kind": TEXT,
                        "campaign_id": optional_text,
                        "outcome": TEXT,
                        "reason": TEXT,
                        "details": details,
                    }
                ),
                max_size=3,
            ),
        }
    )
)
def test_decisions_with_their_steps_are_written_as_fastavro_writes_them(decision: dict[str, Any]) -> None:
    output = DEFAULT_CODEC._outputs["Decision"]
    assert output.by_hand is not None
    assert output.by_hand(decision) == fastavro_bytes(output.schema, decision)


@settings(max_examples=200)
@given(
    st.fixed_dictionaries(
        {
            "delivery_id": TEXT,
            "customer_id": TEXT,
            "campaign_id": TEXT,
            "campaign_version": LONGS,
            "run_id": TEXT,
            "step_id": TEXT,
            "channel": TEXT,
            "address": TEXT,
            "content": details,
            "created_at": LONGS,
            "expires_at": st.none() | LONGS,
        }
    )
)
def test_deliveries_are_written_as_fastavro_writes_them(delivery: dict[str, Any]) -> None:
    output = DEFAULT_CODEC._outputs["Delivery"]
    assert output.by_hand is not None
    assert output.by_hand(delivery) == fastavro_bytes(output.schema, delivery)


@settings(max_examples=100)
@given(st.none() | st.binary(), st.none() | st.binary(max_size=2000), st.integers(-(2**31), 2**31 - 1))
def test_dead_letters_are_written_as_fastavro_writes_them(
    key: bytes | None, value: bytes | None, partition: int
) -> None:
    letter = {
        "original_topic": "refract.events",
        "partition": partition,
        "offset": 7,
        "key": key,
        "value": value,
        "error_code": "decode_failed",
        "error_message": "bad bytes",
        "failed_at": 1,
    }
    output = DEFAULT_CODEC._outputs["DeadLetter"]
    assert output.by_hand is not None
    assert output.by_hand(letter) == fastavro_bytes(output.schema, letter)


@pytest.mark.parametrize(
    "details",
    [{"n": 1}, {1: "one"}, [("a", "b")], None],
)
def test_a_map_the_writer_does_not_expect_is_left_to_fastavro(details: Any) -> None:
    decision = {
        "decision_id": "d",
        "customer_id": "c",
        "kind": "trigger",
        "campaign_id": None,
        "outcome": "started",
        "reason": "started",
        "details": details,
        "occurred_at": 1,
        "then": [],
    }
    output = DEFAULT_CODEC._outputs["Decision"]
    assert output.by_hand is not None
    assert output.by_hand(decision) is None


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
