"""ApnsProvider against a local HTTP/2 APNs with token auth."""

from __future__ import annotations

import pytest

from connectors.channels.apns import TOKEN_LIFETIME_S, ApnsProvider
from connectors.channels.base import uuid_of
from connectors.channels.errors import InvalidPushToken, ProviderError
from engine.channel_settings import ApnsSettings
from tests.connectors.channels.conftest import make_delivery
from tests.support.providers.apns import FakeApns

DEVICE = "a" * 64


def apns(server: FakeApns, clock: object = None) -> ApnsProvider:
    settings = ApnsSettings(
        key_file=server.key.path,
        key_id=server.key.key_id,
        team_id=server.key.team_id,
        topic=server.topic,
        base_url=server.url,
        ca_file=server.certificate.cert_file,
    )
    return ApnsProvider(settings) if clock is None else ApnsProvider(settings, clock=clock)  # type: ignore[arg-type]


async def test_a_push_goes_over_http2_with_topic_type_and_an_id_derived_from_the_delivery(
    fake_apns: FakeApns,
) -> None:
    provider = apns(fake_apns)
    delivery = make_delivery("push", DEVICE, platform="ios", deep_link="app://offers/1")
    receipt = await provider.send(delivery)
    await provider.close()
    [record] = fake_apns.received
    assert fake_apns.http_versions == {"2"}
    assert record["headers"]["apns-topic"] == "com.example.app"
    assert record["headers"]["apns-push-type"] == "alert"
    assert record["headers"]["apns-id"] == uuid_of(delivery.delivery_id) == receipt.provider_message_id
    assert record["payload"]["aps"]["alert"] == {"title": "Offer", "body": "20% off today"}
    assert record["payload"]["deep_link"] == "app://offers/1"


async def test_the_provider_token_is_reused_then_renewed_after_fifty_minutes(fake_apns: FakeApns) -> None:
    now = [1_000_000.0]
    provider = apns(fake_apns, clock=lambda: now[0])
    await provider.send(make_delivery("push", DEVICE, platform="ios"))
    first = fake_apns.received[-1]["headers"]["authorization"]
    now[0] += 60
    await provider.send(make_delivery("push", DEVICE, platform="ios"))
    assert fake_apns.received[-1]["headers"]["authorization"] == first
    now[0] += TOKEN_LIFETIME_S
    await provider.send(make_delivery("push", DEVICE, platform="ios"))
    await provider.close()
    assert fake_apns.received[-1]["headers"]["authorization"] != first


async def test_unregistered_device_is_an_invalid_push_token(fake_apns: FakeApns) -> None:
    fake_apns.unregistered.add(DEVICE)
    provider = apns(fake_apns)
    with pytest.raises(InvalidPushToken) as caught:
        await provider.send(make_delivery("push", DEVICE, platform="ios"))
    await provider.close()
    assert caught.value.provider_code == "Unregistered"


async def test_bad_device_token_is_an_invalid_push_token(fake_apns: FakeApns) -> None:
    provider = apns(fake_apns)
    with pytest.raises(InvalidPushToken) as caught:
        await provider.send(make_delivery("push", "not-hex", platform="ios"))
    await provider.close()
    assert caught.value.provider_code == "BadDeviceToken"


async def test_too_many_requests_is_retriable(fake_apns: FakeApns) -> None:
    fake_apns.fail_next(1, 429, retry_after_s=2)
    provider = apns(fake_apns)
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_delivery("push", DEVICE, platform="ios"))
    await provider.close()
    assert caught.value.retriable and caught.value.retry_after_s == 2
