"""The hand-written Envelope writer: fastavro's exact bytes, or no answer (and fastavro writes)."""

from __future__ import annotations

import datetime as dt
import enum
import io
from typing import Any

import pytest
from fastavro import schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.events import CustomerUpdate, DeliveryResult, Envelope, Tick
from schemas.avro_binary import encode_long
from schemas.codec import DEFAULT_CODEC, ENVELOPE, encode_envelope, encode_event
from schemas.envelope_writer import compile_writer
from schemas.errors import EncodeError
from schemas.events import envelope_to_avro

LONGS = st.integers(-(2**63), 2**63 - 1)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MS = dt.timedelta(milliseconds=1)
TEXT = st.text() | st.text(min_size=600, max_size=1500)  # lengths past one and two varint bytes
zones = st.sampled_from(
    [dt.UTC, dt.timezone(dt.timedelta(hours=-3)), dt.timezone(dt.timedelta(hours=5, minutes=30))]
)
timestamps = st.builds(
    lambda ms, zone: (EPOCH + ms * MS).astimezone(zone),
    st.integers(-(10**13), 10**13),
    zones,
)
attribute_values = st.one_of(
    TEXT,
    LONGS,
    st.floats(),
    st.booleans(),
    st.dates(),
    timestamps,
    st.lists(TEXT, max_size=5).map(tuple),
)
updates = st.builds(
    CustomerUpdate,
    set=st.dictionaries(TEXT, attribute_values, max_size=8),
    unset=st.lists(TEXT, max_size=4).map(tuple),
    campaign_id=st.none() | TEXT,
)
envelopes = st.builds(
    Envelope,
    event_id=TEXT,
    customer_id=TEXT,
    occurred_at_ms=LONGS,
    received_at_ms=LONGS,
    source=TEXT,
    payload=updates,
)


def fastavro_bytes(envelope: Envelope) -> bytes:
    return DEFAULT_CODEC._write(ENVELOPE, envelope_to_avro(envelope), check_types=False)


def make_envelope(**attributes: Any) -> Envelope:
    return Envelope(
        "evt-1", "cust-1", 1_732_650_000_000, 1_732_650_000_000, "sync:s", CustomerUpdate(attributes)
    )


writer = compile_writer(DEFAULT_CODEC._outputs[ENVELOPE].schema)


def test_the_current_envelope_schema_has_the_layout_the_writer_knows() -> None:
    assert writer is not None


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes)
def test_a_profile_update_is_written_with_the_bytes_fastavro_writes(envelope: Envelope) -> None:
    assert writer is not None
    assert writer.envelope(envelope) == fastavro_bytes(envelope)[10:]
    assert encode_envelope(envelope) == fastavro_bytes(envelope)


@given(LONGS)
def test_longs_are_zigzag_varints(value: int) -> None:
    number = (value << 1) ^ (value >> 63)
    expected = bytearray()
    while True:
        expected.append((number & 0x7F) | (0x80 if number > 0x7F else 0))
        number >>= 7
        if not number:
            break
    assert encode_long(value) == bytes(expected)


class Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    "envelope",
    [
        make_envelope(level=Level.HIGH),  # a subclass: fastavro writes it as the base type
        make_envelope(seen=dt.datetime(2026, 1, 1)),  # naive: refused by the typed path
        make_envelope(big=2**63),  # beyond a long: refused
        make_envelope(gone=None),
        make_envelope(tags=("a", 1)),
        Envelope("evt-1", "cust-1", 1.5, 2, "api", CustomerUpdate({})),  # type: ignore[arg-type]
        Envelope("evt-1", "cust-1", 1, 2, "api", Tick(3, "flow:wait")),
    ],
)
def test_what_the_writer_does_not_know_is_left_to_fastavro(envelope: Envelope) -> None:
    assert writer is not None
    assert writer.envelope(envelope) is None


def test_values_the_typed_path_refuses_are_still_refused() -> None:
    with pytest.raises(EncodeError, match=r"set\.seen"):
        encode_envelope(make_envelope(seen=dt.datetime(2026, 1, 1)))
    with pytest.raises(EncodeError, match="64 bits"):
        encode_envelope(make_envelope(big=2**63))


def test_another_layout_of_the_envelope_gets_no_writer() -> None:
    schema = dict(DEFAULT_CODEC._outputs[ENVELOPE].schema)
    schema["fields"] = [*schema["fields"][:2], *schema["fields"][3:]]  # no occurred_at
    assert compile_writer(schema) is None
    reordered = dict(DEFAULT_CODEC._outputs[ENVELOPE].schema)
    payloads = list(reordered["fields"][5]["type"])
    reordered["fields"] = [*reordered["fields"][:5], {**reordered["fields"][5], "type": payloads[::-1]}]
    reordered_writer = compile_writer(reordered)  # the union index is read from the schema
    assert reordered_writer is not None
    envelope = make_envelope(name="Ana", born=dt.date(1990, 5, 1))
    written = io.BytesIO()
    schemaless_writer(written, reordered, envelope_to_avro(envelope))
    assert reordered_writer.envelope(envelope) == written.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes | st.builds(Envelope, st.text(), st.text(), LONGS, LONGS, st.text(), st.builds(Tick, LONGS)))
def test_an_event_encoded_from_its_fields_has_the_bytes_of_its_envelope(envelope: Envelope) -> None:
    fields = (
        envelope.event_id,
        envelope.customer_id,
        envelope.occurred_at_ms,
        envelope.received_at_ms,
        envelope.source,
        envelope.payload,
    )
    assert encode_event(*fields) == encode_envelope(envelope)


results = st.builds(
    DeliveryResult,
    delivery_id=TEXT,
    status=st.sampled_from(["sent", "failed", "bounced", "rejected"]),
    channel=st.sampled_from(["email", "sms", "push"]),
    campaign_id=st.none() | TEXT,
    provider_message_id=st.none() | TEXT,
    reason=st.none() | TEXT,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.builds(Envelope, TEXT, TEXT, LONGS, LONGS, TEXT, results))
def test_a_delivery_result_is_written_with_the_bytes_fastavro_writes(envelope: Envelope) -> None:
    assert writer is not None
    assert writer.envelope(envelope) == fastavro_bytes(envelope)[10:]
    fields = (
        envelope.event_id,
        envelope.customer_id,
        envelope.occurred_at_ms,
        envelope.received_at_ms,
        envelope.source,
        envelope.payload,
    )
    assert encode_event(*fields) == fastavro_bytes(envelope)


def test_a_delivery_result_with_a_value_of_another_type_is_left_to_fastavro() -> None:
    assert writer is not None
    odd = DeliveryResult("dlv_1", "sent", "email", campaign_id=7)  # type: ignore[arg-type]
    assert writer.envelope(Envelope("dlv_1:result", "cust-1", 1, 2, "dispatcher:smtp", odd)) is None


def test_another_layout_of_the_delivery_result_is_left_to_fastavro() -> None:
    schema = dict(DEFAULT_CODEC._outputs[ENVELOPE].schema)
    payloads = [
        dict(p) if p.get("name") == "io.refract.DeliveryResult" else p for p in schema["fields"][5]["type"]
    ]
    result = next(p for p in payloads if p.get("name") == "io.refract.DeliveryResult")
    result["fields"] = result["fields"][:-1]  # no reason
    schema["fields"] = [*schema["fields"][:5], {**schema["fields"][5], "type": payloads}]
    other = compile_writer(schema)
    assert other is not None
    envelope = Envelope(
        "dlv_1:result", "cust-1", 1, 2, "dispatcher:smtp", DeliveryResult("dlv_1", "sent", "email")
    )
    assert other.envelope(envelope) is None
    assert other.envelope(make_envelope(name="Ana")) is not None
