"""JSON bodies become typed envelopes; anything wrong names its field."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from api.payloads import EnvelopeFactory
from engine.errors import UnknownEventType, ValidationError
from engine.events import BusinessEvent, ConsentUpdate, ContactUpdate, CustomerUpdate


def make_factory() -> EnvelopeFactory:
    ids = iter(range(1000))
    return EnvelopeFactory("api", lambda: 1_700_000_000_000, lambda: f"id{next(ids)}")


def test_a_business_event_defaults_its_type_id_and_time() -> None:
    (envelope,) = make_factory().events(
        {"customer_id": "c1", "name": "card_transaction", "data": {"amount": 10.5}}
    )
    assert envelope.payload == BusinessEvent("card_transaction", {"amount": 10.5})
    assert (envelope.event_id, envelope.occurred_at_ms, envelope.source) == ("id0", 1_700_000_000_000, "api")


def test_occurred_at_must_carry_a_time_zone() -> None:
    with pytest.raises(ValidationError, match="no time zone") as error:
        make_factory().events({"customer_id": "c1", "name": "x", "occurred_at": "2024-01-01T10:00:00"})
    assert error.value.field == "occurred_at"


def test_a_time_out_of_the_range_of_dates_in_utc_is_refused_not_crashed() -> None:
    with pytest.raises(ValidationError, match="out of the range") as error:
        make_factory().events({"customer_id": "c1", "name": "x", "occurred_at": "0001-01-01T00:00:00+01:00"})
    assert error.value.field == "occurred_at"


def test_the_wrong_item_of_a_batch_is_named_and_nothing_is_built() -> None:
    with pytest.raises(ValidationError) as error:
        make_factory().events(
            {"events": [{"customer_id": "c1", "name": "ok"}, {"customer_id": "c2", "name": "bad name"}]}
        )
    assert error.value.field == "events[1].name"


def test_an_unknown_event_type_lists_the_known_ones() -> None:
    with pytest.raises(UnknownEventType, match="known types are business_event"):
        make_factory().events({"customer_id": "c1", "type": "teleport"})


def test_a_customer_upsert_becomes_one_event_per_concern() -> None:
    envelopes = make_factory().customers(
        {
            "customer_id": "c1",
            "attributes": {
                "birth_date": {"date": "1990-02-28"},
                "seen": {"timestamp": "2024-05-01T10:00:00Z"},
                "tags": ["a", "b"],
                "old": None,
            },
            "contacts": {"email": "a@b.uy", "phone": "+59899123456"},
            "campaign_data": {"loan-q4": {"rate": 11.9}},
            "consent": [{"channel": "email", "opted_in": False}],
        }
    )
    payloads = [e.payload for e in envelopes]
    assert payloads[0] == CustomerUpdate(
        set={
            "birth_date": dt.date(1990, 2, 28),
            "seen": dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC),
            "tags": ("a", "b"),
        },
        unset=("old",),
    )
    assert payloads[1] == ContactUpdate(email="a@b.uy", phone="+59899123456")
    assert payloads[2] == CustomerUpdate(set={"rate": 11.9}, campaign_id="loan-q4")
    assert payloads[3] == ConsentUpdate(opted_in=False, channel="email")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": "c1", "attributes": {"x": {"nested": 1}}}, "attributes.x"),
        ({"customer_id": "c1", "attributes": {"when": {"date": "31/12/2024"}}}, "attributes.when.date"),
        ({"customer_id": "c1", "contacts": {"phone": "099 123"}}, "contacts.phone"),
        ({"customer_id": "c1", "consent": [{"channel": "fax", "opted_in": True}]}, "consent[0].channel"),
        ({"customer_id": "", "attributes": {"a": 1}}, "customer_id"),
        ({"customer_id": "c1", "atributes": {"a": 1}}, "atributes"),
        ({"customer_id": "c1", "contacts": {"push_tokens": 5}}, "contacts.push_tokens"),
        (
            {"customer_id": "c1", "attributes": {"t": {"timestamp": "9999-12-31T23:59:59-01:00"}}},
            "attributes.t.timestamp",
        ),
    ],
)
def test_invalid_customer_fields_are_named(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        make_factory().customers(body)
    assert error.value.field == field
