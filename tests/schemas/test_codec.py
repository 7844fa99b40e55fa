"""The codec: typed events and generic records survive the log, and bad bytes fail clearly."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import io
import json
import re
from typing import Any

import avro.io
import avro.schema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import DecodeError, RefractError, UnknownSchemaFingerprint
from engine.events import (
    CHANNELS,
    DELIVERY_STATUSES,
    INTERACTION_KINDS,
    PUSH_PLATFORMS,
    BusinessEvent,
    ConsentUpdate,
    ContactUpdate,
    CustomerErased,
    CustomerUpdate,
    DeliveryResult,
    Envelope,
    Interaction,
    PushToken,
    ReferralClick,
    Tick,
)
from engine.values import type_name
from schemas import (
    Codec,
    decode,
    decode_envelope,
    encode,
    encode_dead_letter,
    encode_envelope,
    encode_typed,
    fingerprint,
)
from schemas.catalog import SchemaSet, load_schema_set
from schemas.codec import _without_logical_types
from schemas.errors import EncodeError
from schemas.framing import HEADER_SIZE, MARKER, schema_fingerprint
from schemas.records import DeliveryRecord

LONGS = st.integers(-(2**63), 2**63 - 1)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MS = dt.timedelta(milliseconds=1)
FIRST_MS = (dt.datetime(1, 1, 1, tzinfo=dt.UTC) - EPOCH) // MS
LAST_MS = (dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC) - EPOCH) // MS
TEXT = st.text()
OPTIONAL_TEXT = st.none() | TEXT

timestamps = st.integers(FIRST_MS, LAST_MS).map(lambda ms: EPOCH + ms * MS)
attribute_values = st.one_of(
    TEXT,
    LONGS,
    st.floats(allow_nan=False),
    st.booleans(),
    st.dates(),
    timestamps,
    st.lists(TEXT, max_size=5).map(tuple),
)
attribute_maps = st.dictionaries(TEXT, attribute_values, max_size=8)
business_values = st.one_of(st.none(), TEXT, LONGS, st.floats(allow_nan=False), st.booleans())
push_tokens = st.builds(PushToken, platform=st.sampled_from(PUSH_PLATFORMS), token=TEXT)

payloads = st.one_of(
    st.builds(
        CustomerUpdate,
        set=attribute_maps,
        unset=st.lists(TEXT, max_size=4).map(tuple),
        campaign_id=OPTIONAL_TEXT,
    ),
    st.builds(
        ContactUpdate,
        email=OPTIONAL_TEXT,
        phone=OPTIONAL_TEXT,
        add_push_tokens=st.lists(push_tokens, max_size=3).map(tuple),
        remove_push_tokens=st.lists(push_tokens, max_size=3).map(tuple),
    ),
    st.builds(
        ConsentUpdate,
        opted_in=st.booleans(),
        channel=st.none() | st.sampled_from(CHANNELS),
        campaign_id=OPTIONAL_TEXT,
        category=OPTIONAL_TEXT,
    ),
    st.builds(
        Interaction,
        kind=st.sampled_from(INTERACTION_KINDS),
        interaction_id=TEXT,
        campaign_id=OPTIONAL_TEXT,
        placement_id=OPTIONAL_TEXT,
        delivery_id=OPTIONAL_TEXT,
        channel=OPTIONAL_TEXT,
        data=st.dictionaries(TEXT, TEXT, max_size=5),
    ),
    st.builds(BusinessEvent, name=TEXT, data=st.dictionaries(TEXT, business_values, max_size=8)),
    st.builds(
        ReferralClick,
        code=TEXT,
        campaign_id=TEXT,
        source=OPTIONAL_TEXT,
        visitor_id=OPTIONAL_TEXT,
    ),
    st.builds(
        DeliveryResult,
        delivery_id=TEXT,
        status=st.sampled_from(DELIVERY_STATUSES),
        channel=st.sampled_from(CHANNELS),
        campaign_id=OPTIONAL_TEXT,
        provider_message_id=OPTIONAL_TEXT,
        reason=OPTIONAL_TEXT,
    ),
    st.builds(Tick, due_at_ms=LONGS, reason=TEXT),
    st.builds(CustomerErased, reason=OPTIONAL_TEXT),
)
envelopes = st.builds(
    Envelope,
    event_id=TEXT,
    customer_id=TEXT,
    occurred_at_ms=LONGS,
    received_at_ms=LONGS,
    source=TEXT,
    payload=payloads,
)


def make_envelope(payload: Any = None, **overrides: Any) -> Envelope:
    fields: dict[str, Any] = {
        "event_id": "evt-1",
        "customer_id": "cust-1",
        "occurred_at_ms": 1_732_650_000_000,
        "received_at_ms": 1_732_650_000_123,
        "source": "api",
        "payload": payload if payload is not None else Tick(1_732_650_060_000, "flow:wait"),
    }
    return Envelope(**{**fields, **overrides})


def make_delivery(**overrides: Any) -> DeliveryRecord:
    record: DeliveryRecord = {
        "delivery_id": "dlv-1",
        "customer_id": "cust-1",
        "campaign_id": "spring",
        "campaign_version": 3,
        "run_id": "run-1",
        "step_id": "email-1",
        "channel": "email",
        "address": "ana@example.com",
        "content": {"subject": "Olá", "html": "<p>…</p>"},
        "created_at": 1_732_650_000_000,
        "expires_at": None,
    }
    return {**record, **overrides}  # type: ignore[typeddict-item]


def attribute_types(envelope: Envelope) -> dict[str, str]:
    assert isinstance(envelope.payload, CustomerUpdate)
    return {name: type_name(value) for name, value in envelope.payload.set.items()}


# -- typed events ---------------------------------------------------------------------------------


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes)
def test_every_envelope_survives_encode_then_decode(envelope: Envelope) -> None:
    decoded = decode_envelope(encode_envelope(envelope))
    assert decoded == envelope
    assert type(decoded.payload) is type(envelope.payload)


@given(st.builds(CustomerUpdate, set=attribute_maps).map(make_envelope))
def test_attribute_values_keep_their_type(envelope: Envelope) -> None:
    # 1 == 1.0 == True in Python, and a date equals no datetime: compare the type names too.
    assert attribute_types(decode_envelope(encode_envelope(envelope))) == attribute_types(envelope)


def test_empty_maps_and_lists_survive() -> None:
    for payload in (
        CustomerUpdate(),
        ContactUpdate(),
        Interaction("open", "i-1"),
        BusinessEvent("login"),
        CustomerUpdate(set={"products": ()}),
    ):
        envelope = make_envelope(payload)
        assert decode_envelope(encode_envelope(envelope)) == envelope


def test_timestamps_come_back_aware_in_utc_at_the_same_instant() -> None:
    lisbon_summer = dt.timezone(dt.timedelta(hours=1))
    sent = dt.datetime(2024, 7, 1, 9, 30, 0, 123000, tzinfo=lisbon_summer)
    envelope = make_envelope(CustomerUpdate(set={"last_login": sent}))
    payload = decode_envelope(encode_envelope(envelope)).payload
    assert isinstance(payload, CustomerUpdate)
    assert payload.set["last_login"] == sent
    assert payload.set["last_login"].tzinfo == dt.UTC  # type: ignore[union-attr]


def test_timestamps_are_kept_to_the_millisecond() -> None:
    sent = dt.datetime(2024, 7, 1, 9, 30, 0, 123456, tzinfo=dt.UTC)
    payload = decode_envelope(encode_envelope(make_envelope(CustomerUpdate(set={"t": sent})))).payload
    assert isinstance(payload, CustomerUpdate)
    assert payload.set["t"] == sent.replace(microsecond=123000)


def test_a_naive_timestamp_attribute_is_refused_with_the_attribute_named() -> None:
    envelope = make_envelope(CustomerUpdate(set={"last_login": dt.datetime(2024, 7, 1)}))
    with pytest.raises(EncodeError, match=r"set\.last_login.*time zone"):
        encode_envelope(envelope)


@pytest.mark.parametrize(
    "payload",
    [
        CustomerUpdate(set={"big": 2**63}),
        BusinessEvent("x", {"big": -(2**63) - 1}),
    ],
)
def test_an_int_beyond_64_bits_is_refused_not_turned_into_a_double(payload: Any) -> None:
    with pytest.raises(EncodeError, match="64 bits"):
        encode_envelope(make_envelope(payload))


@pytest.mark.parametrize(
    ("envelope", "field"),
    [
        (make_envelope(occurred_at_ms=1.7e12), "occurred_at_ms"),
        (make_envelope(received_at_ms=True), "received_at_ms"),
        (make_envelope(Tick(1.5, "flow:wait")), "payload.due_at_ms"),  # type: ignore[arg-type]
    ],
)
def test_a_timestamp_that_is_not_an_int_is_refused_not_truncated(envelope: Envelope, field: str) -> None:
    with pytest.raises(EncodeError, match=rf"^{re.escape(field)} must be int epoch milliseconds"):
        encode_envelope(envelope)


def test_a_value_that_is_not_an_attribute_type_is_refused() -> None:
    with pytest.raises(EncodeError, match=r"set\.odd: bytes is not an attribute type"):
        encode_envelope(make_envelope(CustomerUpdate(set={"odd": b"raw"})))  # type: ignore[dict-item]


def test_subclasses_of_attribute_types_are_written_as_the_base_type() -> None:
    class Tier(str):
        pass

    envelope = make_envelope(CustomerUpdate(set={"tier": Tier("gold")}))
    payload = decode_envelope(encode_envelope(envelope)).payload
    assert isinstance(payload, CustomerUpdate)
    assert type(payload.set["tier"]) is str and payload.set["tier"] == "gold"


def test_a_null_attribute_from_another_producer_reads_as_unset() -> None:
    value = {
        "event_id": "e",
        "customer_id": "c",
        "occurred_at": 1,
        "received_at": 2,
        "source": "java-service",
        "payload": (
            "io.refract.CustomerUpdate",
            {"set": {"tier": None, "age": ("long", 41)}, "unset": ["city"], "campaign_id": None},
        ),
    }
    payload = decode_envelope(encode("Envelope", value)).payload
    assert payload == CustomerUpdate(set={"age": 41}, unset=("city", "tier"))


def test_an_unknown_interaction_kind_from_another_producer_is_a_decode_error() -> None:
    value = {
        "event_id": "e",
        "customer_id": "c",
        "occurred_at": 1,
        "received_at": 2,
        "source": "x",
        "payload": (
            "io.refract.Interaction",
            {"kind": "hover", "interaction_id": "i", "data": {}},
        ),
    }
    with pytest.raises(DecodeError, match=r"Interaction\.kind is 'hover'"):
        decode_envelope(encode("Envelope", value))


# -- generic records ------------------------------------------------------------------------------


def test_a_delivery_survives_encode_then_decode() -> None:
    delivery = make_delivery(expires_at=1_732_736_400_000)
    assert decode(encode("Delivery", delivery)) == ("Delivery", delivery)


def test_fields_with_defaults_may_be_left_out() -> None:
    delivery = make_delivery()
    del delivery["content"]
    del delivery["expires_at"]
    _, value = decode(encode("Delivery", delivery))
    assert (value["content"], value["expires_at"]) == ({}, None)


@pytest.mark.parametrize(
    ("record_name", "value"),
    [
        (
            "Definition",
            {
                "kind": "segment",
                "id": "vip",
                "version": 2,
                "body": '{"rule": "balance > 10000"}',
                "deleted": False,
                "updated_at": 1,
            },
        ),
        (
            "SegmentChange",
            {
                "customer_id": "c",
                "segment_id": "vip",
                "segment_version": 2,
                "change": "EXITED",
                "caused_by_event_id": "e",
                "occurred_at": 1,
            },
        ),
        (
            "Decision",
            {
                "decision_id": "d",
                "customer_id": "c",
                "kind": "send",
                "campaign_id": None,
                "outcome": "suppressed",
                "reason": "quiet_hours",
                "details": {"until": "08:00"},
                "occurred_at": 1,
                "then": [
                    {
                        "decision_id": "d.1",
                        "kind": "flow",
                        "campaign_id": "c",
                        "outcome": "waiting",
                        "reason": "wait",
                        "details": {},
                    }
                ],
            },
        ),
    ],
)
def test_every_generic_record_survives_encode_then_decode(record_name: str, value: dict[str, Any]) -> None:
    data = encode(record_name, value)
    assert data[:HEADER_SIZE] == MARKER + fingerprint(record_name)
    assert decode(data) == (record_name, value)


def test_a_dead_letter_keeps_the_raw_bytes_and_the_reason() -> None:
    data = encode_dead_letter(
        original_topic="refract.events",
        partition=3,
        offset=42,
        key=b"cust-1",
        value=b"\x00\xff not avro",
        error_code="undecodable",
        error_message="value starts with 00 FF",
        failed_at_ms=1_732_650_000_000,
    )
    name, letter = decode(data)
    assert name == "DeadLetter"
    assert letter == {
        "original_topic": "refract.events",
        "partition": 3,
        "offset": 42,
        "key": b"cust-1",
        "value": b"\x00\xff not avro",
        "error_code": "undecodable",
        "error_message": "value starts with 00 FF",
        "failed_at": 1_732_650_000_000,
    }


@pytest.mark.parametrize(
    ("field", "wrong", "message"),
    [
        ("campaign_version", 1.5, r"Delivery\.campaign_version must be an int .* got float"),
        ("campaign_version", True, r"Delivery\.campaign_version must be an int .* got bool"),
        ("created_at", 2**63, r"Delivery\.created_at must be an int that fits an Avro long"),
    ],
)
def test_a_number_of_the_wrong_type_is_refused_not_silently_converted(
    field: str, wrong: object, message: str
) -> None:
    with pytest.raises(EncodeError, match=message):
        encode("Delivery", make_delivery(**{field: wrong}))


def test_a_wrong_type_is_reported_by_field_without_the_value() -> None:
    with pytest.raises(EncodeError) as caught:
        encode("Delivery", make_delivery(address=["ana@example.com"]))
    assert "address" in caught.value.message
    assert "ana@example.com" not in caught.value.message


def test_a_missing_required_field_is_reported_by_name() -> None:
    delivery = make_delivery()
    del delivery["address"]  # type: ignore[misc]
    with pytest.raises(EncodeError, match="address"):
        encode("Delivery", delivery)


def test_an_unknown_record_name_is_refused_with_the_known_names() -> None:
    with pytest.raises(EncodeError, match=r"'Deliveries' is not a record on the log; known: .*Delivery"):
        encode("Deliveries", make_delivery())


# -- bad bytes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "0 bytes is too short"),
        (b"\xc3\x01\x00", "3 bytes is too short"),
        (b'{"customer_id": "c-1", "type": "login"}', "not the Avro single-object marker C3 01"),
        (b"\x00\x00\x00\x00\x01" + b"\x00" * 20, "starts with 00 00"),
    ],
)
def test_bytes_without_a_header_are_a_decode_error_that_says_why(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message) as caught:
        decode_envelope(data)
    assert not isinstance(caught.value, UnknownSchemaFingerprint)


def test_an_unknown_fingerprint_names_it_and_what_to_do() -> None:
    data = MARKER + bytes.fromhex("0102030405060708") + b"\x00"
    with pytest.raises(UnknownSchemaFingerprint, match=r"0102030405060708.*upgrade") as caught:
        decode(data)
    assert caught.value.code == "unknown_schema"


def test_every_truncation_of_an_event_is_a_decode_error() -> None:
    envelope = make_envelope(
        CustomerUpdate(
            set={"name": "Ana", "born": dt.date(1983, 5, 2), "tags": ("a", "b"), "n": 1.5},
            campaign_id="c",
        )
    )
    data = encode_envelope(envelope)
    for end in range(len(data)):
        with pytest.raises(DecodeError):
            decode_envelope(data[:end])


def test_trailing_bytes_are_a_decode_error() -> None:
    data = encode_envelope(make_envelope()) + b"\x00"
    with pytest.raises(DecodeError, match="followed by 1 unexpected bytes"):
        decode_envelope(data)


def test_decoding_another_record_as_an_envelope_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="expected an Envelope, found a Delivery"):
        decode_envelope(encode("Delivery", make_delivery()))


@settings(max_examples=500)
@given(st.sampled_from(["Envelope", "Delivery", "DeadLetter"]), st.binary(max_size=120))
def test_random_bodies_decode_or_raise_a_decode_error_never_anything_else(
    record_name: str, body: bytes
) -> None:
    data = MARKER + fingerprint(record_name) + body
    with contextlib.suppress(DecodeError):
        decode(data)
        if record_name == "Envelope":
            decode_envelope(data)


@settings(max_examples=300)
@given(envelopes, st.data())
def test_corrupting_one_byte_of_an_event_never_raises_anything_but_a_decode_error(
    envelope: Envelope, data: st.DataObject
) -> None:
    encoded = bytearray(encode_envelope(envelope))
    position = data.draw(st.integers(HEADER_SIZE, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError):
        decode_envelope(bytes(encoded))


def test_decode_errors_are_refract_errors_that_dead_letters_can_name() -> None:
    with pytest.raises(RefractError) as caught:
        decode_envelope(b"junk")
    assert caught.value.code == "undecodable" and not caught.value.retriable


# -- schema versions ------------------------------------------------------------------------------


def with_attempt_field(envelope_schema: dict[str, Any]) -> dict[str, Any]:
    """A hypothetical Envelope v2: Tick gains ``attempt`` with a default (a compatible change)."""
    changed = copy.deepcopy(envelope_schema)
    payload = next(f for f in changed["fields"] if f["name"] == "payload")
    tick = next(branch for branch in payload["type"] if branch["name"] == "Tick")
    tick["fields"].append(
        {"name": "attempt", "type": "long", "default": 0, "doc": "How many times it fired."}
    )
    return changed


def codec_with_envelope_v2(*, write_version: int | None = None) -> tuple[Codec, SchemaSet]:
    released = load_schema_set()
    v1 = released.released["Envelope"][-1]
    v2 = with_attempt_field(v1)
    schemas = SchemaSet(
        current={**released.current, "Envelope": v2},
        released={**released.released, "Envelope": (v1, v2)},
    )
    write_versions = {"Envelope": write_version} if write_version else None
    return Codec(schemas, write_versions=write_versions), schemas


def test_a_record_written_with_an_older_version_reads_with_the_new_fields_defaults() -> None:
    new_codec, _ = codec_with_envelope_v2()
    old_data = encode_envelope(make_envelope(Tick(5, "flow:wait")))  # written with v1

    _, value = new_codec.decode(old_data)
    assert value["payload"] == ("io.refract.Tick", {"due_at": 5, "reason": "flow:wait", "attempt": 0})
    assert new_codec.decode_envelope(old_data) == make_envelope(Tick(5, "flow:wait"))


def test_the_codec_lists_every_version_it_reads() -> None:
    new_codec, schemas = codec_with_envelope_v2()
    envelope_versions = {
        (version, fingerprint)
        for record, version, fingerprint in new_codec.readable_versions()
        if record == "Envelope"
    }
    assert envelope_versions == {
        (1, schema_fingerprint(schemas.released["Envelope"][0])),
        (2, schema_fingerprint(schemas.released["Envelope"][1])),
    }


def test_a_record_written_with_a_newer_version_is_unknown_to_an_old_reader() -> None:
    new_codec, _ = codec_with_envelope_v2()
    with pytest.raises(UnknownSchemaFingerprint):
        decode_envelope(new_codec.encode_envelope(make_envelope()))


def test_a_pinned_write_version_lets_old_readers_read_during_a_rolling_upgrade() -> None:
    pinned, schemas = codec_with_envelope_v2(write_version=1)
    data = pinned.encode_envelope(make_envelope())
    assert data[2:HEADER_SIZE] == schema_fingerprint(schemas.released["Envelope"][0])
    assert decode_envelope(data) == make_envelope()  # the current release reads it


def test_pinning_a_version_that_was_never_released_is_a_configuration_error() -> None:
    with pytest.raises(RefractError, match=r"released versions of Envelope are 1\.\.1"):
        Codec(load_schema_set(), write_versions={"Envelope": 2})


# -- other Avro libraries -------------------------------------------------------------------------


def plain_avro_schema(record_name: str) -> avro.schema.Schema:
    schema = load_schema_set().current[record_name]
    return avro.schema.parse(json.dumps(_without_logical_types(schema)))


def test_the_avro_library_reads_the_body_after_the_header() -> None:
    data = encode_envelope(make_envelope(Tick(7, "flow:wait"), source="timer"))
    reader = avro.io.DatumReader(plain_avro_schema("Envelope"))
    value: Any = reader.read(avro.io.BinaryDecoder(io.BytesIO(data[HEADER_SIZE:])))
    assert value["source"] == "timer"
    assert value["payload"] == {"due_at": 7, "reason": "flow:wait"}


def test_a_value_written_by_the_avro_library_decodes() -> None:
    value = {
        "event_id": "e-9",
        "customer_id": "c-9",
        "occurred_at": 10,
        "received_at": 11,
        "source": "python-avro",
        "payload": {"due_at": 12, "reason": "window:end"},
    }
    body = io.BytesIO()
    avro.io.DatumWriter(plain_avro_schema("Envelope")).write(value, avro.io.BinaryEncoder(body))
    data = MARKER + fingerprint("Envelope") + body.getvalue()
    assert decode_envelope(data) == Envelope("e-9", "c-9", 10, 11, "python-avro", Tick(12, "window:end"))


def test_a_typed_record_is_written_with_the_same_bytes_as_a_checked_one() -> None:
    decision = {
        "decision_id": "dec_1",
        "customer_id": "c-1",
        "kind": "send",
        "campaign_id": "card-upsell",
        "outcome": "suppressed",
        "reason": "no_consent",
        "details": {"channel": "sms"},
        "occurred_at": 1_700_000_000_000,
    }
    assert encode_typed("Decision", decision) == encode("Decision", decision)
