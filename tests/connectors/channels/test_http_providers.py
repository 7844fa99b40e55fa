"""Mailgun, Twilio, the SMS gateway and FCM against local servers with their request formats."""

from __future__ import annotations

import json

import pytest

from connectors.channels.errors import InvalidAddress, InvalidPushToken, ProviderError
from connectors.channels.fcm import FcmProvider
from connectors.channels.mailgun import MailgunProvider
from connectors.channels.sms import GatewayProvider, TwilioProvider
from engine.channel_settings import FcmSettings, MailgunSettings, SmsGatewaySettings, TwilioSettings
from engine.errors import ConfigurationError
from tests.connectors.channels.conftest import fields_of, make_delivery
from tests.support.providers.http import HttpProviders


def mailgun(http: HttpProviders, key: str | None = None) -> MailgunProvider:
    settings = MailgunSettings(
        domain=http.mailgun.domain, api_key=key or http.mailgun.api_key, base_url=http.url
    )
    return MailgunProvider(settings)


def twilio(http: HttpProviders) -> TwilioProvider:
    settings = TwilioSettings(
        account_sid=http.twilio.account_sid,
        auth_token=http.twilio.auth_token,
        from_number="+15005550006",
        status_callback_url="https://refract.example/webhooks/twilio",
        base_url=http.url,
    )
    return TwilioProvider(settings)


def gateway(http: HttpProviders) -> GatewayProvider:
    return GatewayProvider(
        SmsGatewaySettings(url=f"{http.url}/sms", authorization=http.gateway.authorization)
    )


def fcm(http: HttpProviders) -> FcmProvider:
    assert http.fcm.account is not None
    return FcmProvider(FcmSettings(service_account_file=http.fcm.account.path, base_url=http.url))


async def test_mailgun_gets_the_fields_tag_variables_and_unsubscribe_headers(
    http_providers: HttpProviders,
) -> None:
    provider = mailgun(http_providers)
    delivery = make_delivery(unsubscribe_url="https://r.example/u/1")
    receipt = await provider.send(delivery)
    await provider.close()
    [record] = http_providers.mailgun.received
    fields = fields_of(record)
    assert receipt.provider_message_id == record["id"]
    assert fields["to"] == ["ana@example.com"] and fields["from"] == ["news@shop.example"]
    assert fields["text"] == ["Hi Ana"] and fields["html"] == ["<p>Hi Ana</p>"]
    assert fields["o:tag"] == ["welcome"]
    assert fields["v:delivery_id"] == [delivery.delivery_id]
    assert fields["h:List-Unsubscribe"] == ["<https://r.example/u/1>"]
    assert fields["h:List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]


def test_mailgun_region_picks_the_api_host() -> None:
    assert MailgunSettings(domain="d", api_key="k").url == "https://api.mailgun.net"
    assert MailgunSettings(domain="d", api_key="k", region="eu").url == "https://api.eu.mailgun.net"
    with pytest.raises(ConfigurationError):
        MailgunSettings(domain="d", api_key="k", region="asia")


async def test_mailgun_wrong_key_is_a_permanent_failure_naming_the_setting(
    http_providers: HttpProviders,
) -> None:
    provider = mailgun(http_providers, key="wrong")
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_delivery())
    await provider.close()
    assert not caught.value.retriable and "REFRACT_MAILGUN_API_KEY" in caught.value.message


async def test_mailgun_429_carries_retry_after(http_providers: HttpProviders) -> None:
    http_providers.mailgun.fail_next(1, 429, retry_after_s=7)
    provider = mailgun(http_providers)
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_delivery())
    await provider.close()
    assert caught.value.retriable and caught.value.retry_after_s == 7


async def test_mailgun_invalid_address_is_rejected(http_providers: HttpProviders) -> None:
    http_providers.mailgun.invalid.add("ana@example.com")
    provider = mailgun(http_providers)
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_delivery())
    await provider.close()
    assert not caught.value.retriable and caught.value.status == "rejected"


async def test_twilio_gets_to_from_body_and_status_callback(http_providers: HttpProviders) -> None:
    provider = twilio(http_providers)
    receipt = await provider.send(make_delivery("sms", "+59899123456"))
    await provider.close()
    [record] = http_providers.twilio.received
    assert record["To"] == "+59899123456" and record["From"] == "+15005550006"
    assert record["Body"] == "Your code is 1234"
    assert record["StatusCallback"] == "https://refract.example/webhooks/twilio"
    assert receipt.provider_message_id == record["sid"]


async def test_twilio_429_is_retriable_after_its_retry_after(http_providers: HttpProviders) -> None:
    http_providers.twilio.fail_next(1, 429, retry_after_s=3)
    provider = twilio(http_providers)
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_delivery("sms", "+59899123456"))
    await provider.close()
    assert caught.value.retriable and caught.value.retry_after_s == 3
    assert caught.value.provider_code == "20429"


async def test_twilio_503_is_retriable(http_providers: HttpProviders) -> None:
    http_providers.twilio.fail_next(1, 503)
    provider = twilio(http_providers)
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_delivery("sms", "+59899123456"))
    await provider.close()
    assert caught.value.retriable


async def test_a_number_that_is_not_e164_is_refused_without_calling_twilio(
    http_providers: HttpProviders,
) -> None:
    provider = twilio(http_providers)
    with pytest.raises(InvalidAddress):
        await provider.send(make_delivery("sms", "099 123 456"))
    await provider.close()
    assert http_providers.twilio.requests == 0


async def test_gateway_body_is_the_template_with_values_escaped(http_providers: HttpProviders) -> None:
    provider = gateway(http_providers)
    text = 'He said "hi"\nand {to} stays literal'
    receipt = await provider.send(make_delivery("sms", "+59899123456", text=text))
    await provider.close()
    [record] = http_providers.gateway.received
    assert record["to"] == "+59899123456" and record["text"] == text
    assert record["reference"] == "dlv_0123456789abcdef01234567"
    assert receipt.provider_message_id == record["id"]


def test_a_gateway_template_that_is_not_json_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="BODY_TEMPLATE"):
        GatewayProvider(SmsGatewaySettings(url="http://x", body_template="{to}"))


async def test_fcm_sends_with_an_access_token_fetched_once(http_providers: HttpProviders) -> None:
    provider = fcm(http_providers)
    for _ in range(3):
        receipt = await provider.send(
            make_delivery("push", "token-android-1", data=json.dumps({"offer": "x"}))
        )
    await provider.close()
    assert http_providers.fcm.tokens_issued == 1
    message = http_providers.fcm.received[-1]["message"]
    assert message["token"] == "token-android-1"
    assert message["notification"] == {"title": "Offer", "body": "20% off today"}
    assert message["data"]["offer"] == "x"
    assert receipt.provider_message_id == http_providers.fcm.received[-1]["name"]


async def test_fcm_fetches_a_new_token_when_the_old_one_is_refused(http_providers: HttpProviders) -> None:
    provider = fcm(http_providers)
    await provider.send(make_delivery("push", "token-android-1"))
    http_providers.fcm.revoke_tokens()
    await provider.send(make_delivery("push", "token-android-1"))
    await provider.close()
    assert http_providers.fcm.tokens_issued == 2 and len(http_providers.fcm.received) == 2


async def test_fcm_unregistered_token_is_an_invalid_push_token(http_providers: HttpProviders) -> None:
    http_providers.fcm.unregistered.add("token-gone-123")
    provider = fcm(http_providers)
    with pytest.raises(InvalidPushToken) as caught:
        await provider.send(make_delivery("push", "token-gone-123"))
    await provider.close()
    assert caught.value.provider_code == "UNREGISTERED"


async def test_fcm_invalid_token_argument_is_an_invalid_push_token(http_providers: HttpProviders) -> None:
    provider = fcm(http_providers)
    with pytest.raises(InvalidPushToken) as caught:
        await provider.send(make_delivery("push", "short"))
    await provider.close()
    assert caught.value.provider_code == "INVALID_ARGUMENT"


async def test_fcm_quota_exceeded_is_retriable_after_retry_after(http_providers: HttpProviders) -> None:
    http_providers.fcm.fail_next(1, 429, retry_after_s=5)
    provider = fcm(http_providers)
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_delivery("push", "token-android-1"))
    await provider.close()
    assert caught.value.retriable and caught.value.retry_after_s == 5
    assert caught.value.provider_code == "QUOTA_EXCEEDED"
