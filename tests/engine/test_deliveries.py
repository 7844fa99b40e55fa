import pytest

from engine.deliveries import Delivery, delivery_id
from engine.errors import ValidationError
from schemas.codec import decode, encode


def make_delivery(**changes):
    values = dict(
        delivery_id=delivery_id("c-1", "welcome", 3, "run-1", "email-1"),
        customer_id="c-1",
        campaign_id="welcome",
        campaign_version=3,
        run_id="run-1",
        step_id="email-1",
        channel="email",
        address="ana@example.com",
        content={"subject": "Hola", "text": "Hi Ana"},
        created_at_ms=1_700_000_000_000,
        expires_at_ms=1_700_000_600_000,
    )
    values.update(changes)
    return Delivery(**values)


def test_delivery_id_is_the_same_for_the_same_step_of_the_same_run():
    assert delivery_id("c-1", "welcome", 3, "run-1", "email-1") == delivery_id(
        "c-1", "welcome", 3, "run-1", "email-1"
    )
    assert delivery_id("c-1", "welcome", 3, "run-1", "email-1") != delivery_id(
        "c-1", "welcome", 3, "run-2", "email-1"
    )


def test_delivery_survives_the_codec_round_trip():
    delivery = make_delivery()
    name, record = decode(encode("Delivery", delivery.to_record()))
    assert name == "Delivery"
    assert Delivery.from_record(record) == delivery


def test_delivery_expires_at_its_deadline():
    delivery = make_delivery()
    assert not delivery.is_expired(1_700_000_599_999)
    assert delivery.is_expired(1_700_000_600_000)
    assert not make_delivery(expires_at_ms=None).is_expired(2**62)


def test_delivery_without_address_is_refused():
    with pytest.raises(ValidationError) as error:
        make_delivery(address="")
    assert error.value.field == "address"
