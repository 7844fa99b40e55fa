"""Provider webhooks over HTTP: signatures enforced, events appended, STOP finds its customer."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from api.webhooks import EMPTY_TWIML
from connectors.webhooks.mailgun import mailgun_signature
from connectors.webhooks.twilio import twilio_signature
from engine.events import ConsentUpdate, DeliveryResult, Interaction
from engine.feedback import result_event_id
from streams.contact_directory import ContactDirectory
from tests.api.feedback_support import (
    BASE,
    LINKS,
    MAILGUN_KEY,
    NOW_MS,
    SMS,
    TWILIO_TOKEN,
    feedback_server,
    path_of,
)


def mailgun_body(event: str, *, key: str = MAILGUN_KEY, timestamp: int = NOW_MS // 1000) -> dict[str, Any]:
    token = "f" * 50
    return {
        "signature": {
            "timestamp": str(timestamp),
            "token": token,
            "signature": mailgun_signature(key, str(timestamp), token),
        },
        "event-data": {
            "event": event,
            "id": "mg-event-1",
            "timestamp": NOW_MS / 1000,
            "user-variables": {"delivery_id": "dlv_1", "customer_id": "cust-1", "campaign_id": "loan-q4"},
            "message": {"headers": {"message-id": "m1@mg.bank.example"}},
        },
    }


def twilio_headers(path: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": twilio_signature(token, BASE + path, params.items())}


def directory(**phones: str) -> ContactDirectory:
    contacts = ContactDirectory("127.0.0.1:1", "unused")
    for phone, customer in phones.items():
        contacts.apply_record(f"phone:{phone}".encode(), customer.encode())
    contacts.loaded.set()
    return contacts


async def test_a_mailgun_event_with_a_good_signature_is_appended() -> None:
    async with feedback_server() as (client, log):
        answer = await client.post("/webhooks/mailgun", json=mailgun_body("delivered"))
        assert (answer.status, await answer.json()) == (200, {"accepted": 1})
    (envelope,) = log.envelopes
    assert (envelope.customer_id, envelope.source) == ("cust-1", "webhook")
    assert envelope.event_id == result_event_id("dlv_1", "sent")
    assert envelope.payload == DeliveryResult("dlv_1", "sent", "email", "loan-q4", "m1@mg.bank.example")


async def test_a_mailgun_event_with_a_bad_or_stale_signature_is_refused_with_401() -> None:
    async with feedback_server() as (client, log):
        for body in (
            mailgun_body("opened", key="key-of-someone-else"),
            mailgun_body("opened", timestamp=NOW_MS // 1000 - 3600),
            {"event-data": {"event": "opened"}},
        ):
            answer = await client.post("/webhooks/mailgun", json=body)
            error = (await answer.json())["error"]
            assert (answer.status, error["code"]) == (401, "invalid_webhook_signature")
    assert log.envelopes == []


async def test_an_unused_mailgun_event_is_acknowledged_so_mailgun_does_not_retry() -> None:
    async with feedback_server() as (client, log):
        answer = await client.post("/webhooks/mailgun", json=mailgun_body("accepted"))
        assert (answer.status, await answer.json()) == (200, {"accepted": 0})
    assert log.envelopes == []


async def test_a_webhook_without_its_secret_configured_says_what_to_set() -> None:
    async with feedback_server(mailgun_key=None, twilio_token=None) as (client, _):
        mailgun = await client.post("/webhooks/mailgun", json=mailgun_body("opened"))
        twilio = await client.post("/webhooks/twilio/inbound", data={"From": "+1555", "Body": "STOP"})
        assert mailgun.status == twilio.status == 503
        assert "REFRACT_MAILGUN_WEBHOOK_KEY" in (await mailgun.json())["error"]["message"]
        assert "REFRACT_TWILIO_AUTH_TOKEN" in (await twilio.json())["error"]["message"]


async def test_a_twilio_status_callback_becomes_the_deliverys_result() -> None:
    path = path_of(LINKS.sms_status_url(SMS))
    params = {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003", "To": "+59899123456"}
    async with feedback_server() as (client, log):
        answer = await client.post(path, data=params, headers=twilio_headers(path, params))
        assert answer.status == 204
    (envelope,) = log.envelopes
    assert envelope.customer_id == "cust-2"
    assert envelope.payload == DeliveryResult(
        SMS.delivery_id, "bounced", "sms", "promo", "SM1", "twilio undelivered (error 30003)"
    )


async def test_a_twilio_callback_with_a_bad_signature_or_a_forged_url_is_refused() -> None:
    path = path_of(LINKS.sms_status_url(SMS))
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    forged = path[:-3] + "AAA"
    async with feedback_server() as (client, log):
        unsigned = await client.post(path, data=params)
        wrong = await client.post(path, data=params, headers=twilio_headers(path, params, "other-token"))
        changed = await client.post(
            path, data={**params, "MessageStatus": "failed"}, headers=twilio_headers(path, params)
        )
        not_ours = await client.post(forged, data=params, headers=twilio_headers(forged, params))
        assert [unsigned.status, wrong.status, changed.status, not_ours.status] == [401, 401, 401, 404]
        assert (await not_ours.json())["error"]["code"] == "unknown_callback"
    assert log.envelopes == []


async def test_a_twilio_body_that_is_not_a_form_is_refused_with_400_not_a_crash() -> None:
    path = path_of(LINKS.sms_status_url(SMS))
    async with feedback_server() as (client, log):
        for where in (path, "/webhooks/twilio/inbound"):
            for content_type, body in (
                ("multipart/form-data", b"From=%2B1555&Body=STOP"),  # no boundary
                ("multipart/form-data; boundary=x", b"no boundary in here"),
                ("application/x-www-form-urlencoded", b"Body=\xff\xfe"),  # not UTF-8
            ):
                answer = await client.post(where, data=body, headers={"Content-Type": content_type})
                error = (await answer.json())["error"]
                assert (answer.status, error["code"]) == (400, "invalid_input"), (where, content_type)
    assert log.envelopes == []


async def test_stop_from_a_known_number_opts_that_customer_out_of_sms() -> None:
    params = {"From": "+59899123456", "To": "+59821000000", "Body": "Stop", "MessageSid": "SM9"}
    path = "/webhooks/twilio/inbound"
    async with feedback_server(directory(**{"+59899123456": "cust-7"})) as (client, log):
        answer = await client.post(path, data=params, headers=twilio_headers(path, params))
        assert (answer.status, await answer.text()) == (200, EMPTY_TWIML)
        assert answer.content_type == "text/xml"
    (envelope,) = log.envelopes
    assert (envelope.customer_id, envelope.event_id) == ("cust-7", "twilio:SM9")
    assert envelope.payload == ConsentUpdate(opted_in=False, channel="sms")


async def test_start_opts_back_in_and_other_replies_change_nothing() -> None:
    path = "/webhooks/twilio/inbound"
    async with feedback_server(directory(**{"+15550001": "cust-8"})) as (client, log):
        for body in ("START", "thanks!"):
            params = {"From": "+15550001", "Body": body, "MessageSid": f"SM-{body}"}
            assert (await client.post(path, data=params, headers=twilio_headers(path, params))).status == 200
    assert [e.payload for e in log.envelopes] == [ConsentUpdate(opted_in=True, channel="sms")]


async def test_stop_from_an_unknown_number_is_acknowledged_and_logged_without_the_number() -> None:
    params = {"From": "+59899999999", "Body": "STOP", "MessageSid": "SM10"}
    path = "/webhooks/twilio/inbound"
    async with feedback_server(directory()) as (client, log):
        with capture_logs() as logs:
            answer = await client.post(path, data=params, headers=twilio_headers(path, params))
        assert answer.status == 200
    assert log.envelopes == []
    (entry,) = [e for e in logs if e["event"] == "webhook.unknown_sender"]
    assert entry["log_level"] == "warning" and entry["sender"]
    assert "59899999999" not in repr(logs)


async def test_interactions_reported_by_mailgun_keep_the_event_order_of_the_body() -> None:
    async with feedback_server() as (client, log):
        answer = await client.post("/webhooks/mailgun", json=mailgun_body("complained"))
        assert (await answer.json()) == {"accepted": 2}
    interaction, consent = (e.payload for e in log.envelopes)
    assert isinstance(interaction, Interaction) and interaction.kind == "complaint"
    assert consent == ConsentUpdate(opted_in=False, channel="email")
