"""How the dispatcher ends a delivery: retries, permanent failures, tokens, expiry (no Kafka)."""

from __future__ import annotations

import pytest

from connectors.channels import InvalidPushToken, ProviderError, Providers, SendReceipt
from engine.channel_settings import ChannelSettings
from engine.deliveries import Delivery
from engine.events import Channel, PushToken
from engine.retry import RetryPolicy
from engine.topics import TopicNames
from streams.dispatcher import Dispatcher
from tests.connectors.channels.conftest import make_delivery


class ScriptedProvider:
    """Answers each call with the next scripted error, then accepts."""

    def __init__(self, channel: Channel, name: str, errors: list[ProviderError] | None = None) -> None:
        self.channel = channel
        self.name = name
        self.errors = list(errors or [])
        self.calls = 0

    async def send(self, delivery: Delivery) -> SendReceipt:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return SendReceipt(f"id-{self.calls}")

    async def close(self) -> None:
        pass


def dispatcher(providers: Providers, now_ms: int = 1_000, max_attempts: int = 3) -> Dispatcher:
    settings = ChannelSettings(
        retry=RetryPolicy(max_attempts=max_attempts, base_delay_s=0.001, max_delay_s=0.01)
    )
    return Dispatcher(
        providers,
        ledger=None,  # type: ignore[arg-type]
        producer=None,  # type: ignore[arg-type]
        topics=TopicNames("t"),
        settings=settings,
        clock_ms=lambda: now_ms,
        random_unit=lambda: 0.5,
    )


def busy(retry_after_s: float | None = None) -> ProviderError:
    return ProviderError("busy", retriable=True, retry_after_s=retry_after_s, provider_code="503")


async def test_transient_failures_are_retried_until_the_provider_accepts() -> None:
    email = ScriptedProvider("email", "smtp", [busy(), busy()])
    outcome = await dispatcher(Providers(email=email)).deliver(make_delivery())
    assert (outcome.status, outcome.provider_message_id, email.calls) == ("sent", "id-3", 3)


async def test_after_the_last_attempt_the_delivery_fails_with_a_dead_letter() -> None:
    email = ScriptedProvider("email", "smtp", [busy(), busy(), busy(), busy()])
    outcome = await dispatcher(Providers(email=email)).deliver(make_delivery())
    assert outcome.status == "failed" and email.calls == 3
    assert outcome.dead_letter is not None and outcome.dead_letter.code == "delivery_retries_exhausted"


async def test_an_unexpected_provider_error_is_retried_then_dead_lettered() -> None:
    class Broken(ScriptedProvider):
        async def send(self, delivery: Delivery) -> SendReceipt:
            self.calls += 1
            raise KeyError("bug")

    email = Broken("email", "smtp")
    outcome = await dispatcher(Providers(email=email)).deliver(make_delivery())
    assert (outcome.status, email.calls) == ("failed", 3)
    assert outcome.dead_letter is not None and "KeyError" in outcome.dead_letter.message


async def test_a_retry_after_beyond_the_bound_fails_at_once() -> None:
    email = ScriptedProvider("email", "smtp", [busy(retry_after_s=3600)])
    outcome = await dispatcher(Providers(email=email)).deliver(make_delivery())
    assert outcome.status == "failed" and email.calls == 1


async def test_a_permanent_failure_is_not_retried_and_keeps_its_status() -> None:
    refusal = ProviderError("no such user", retriable=False, status="bounced", provider_code="550")
    email = ScriptedProvider("email", "smtp", [refusal])
    outcome = await dispatcher(Providers(email=email)).deliver(make_delivery())
    assert (outcome.status, email.calls, outcome.dead_letter) == ("bounced", 1, None)
    assert outcome.reason == "550: no such user"


async def test_an_invalid_push_token_is_to_be_removed() -> None:
    fcm = ScriptedProvider("push", "fcm", [InvalidPushToken("gone", provider_code="UNREGISTERED")])
    outcome = await dispatcher(Providers(fcm=fcm)).deliver(make_delivery("push", "tok-123456"))
    assert outcome.status == "bounced"
    assert outcome.removed_token == PushToken("android", "tok-123456")


async def test_ios_push_goes_to_apns_and_android_to_fcm() -> None:
    fcm, apns = ScriptedProvider("push", "fcm"), ScriptedProvider("push", "apns")
    sender = dispatcher(Providers(fcm=fcm, apns=apns))
    await sender.deliver(make_delivery("push", "tok", platform="ios"))
    await sender.deliver(make_delivery("push", "tok", platform="android"))
    assert (apns.calls, fcm.calls) == (1, 1)


async def test_an_expired_delivery_is_not_sent() -> None:
    email = ScriptedProvider("email", "smtp")
    delivery = make_delivery()
    expired = Delivery(**{**{f: getattr(delivery, f) for f in delivery.__slots__}, "expires_at_ms": 500})  # type: ignore[arg-type]
    outcome = await dispatcher(Providers(email=email), now_ms=1_000).deliver(expired)
    assert (outcome.status, outcome.expired, email.calls) == ("failed", True, 0)


@pytest.mark.parametrize("channel", ["sms", "push"])
async def test_a_channel_without_provider_fails_with_a_dead_letter_naming_the_setting(
    channel: Channel,
) -> None:
    outcome = await dispatcher(Providers(email=ScriptedProvider("email", "smtp"))).deliver(
        make_delivery(channel, "+59899123456")
    )
    assert outcome.status == "failed"
    assert outcome.dead_letter is not None and "REFRACT_" in outcome.dead_letter.message
