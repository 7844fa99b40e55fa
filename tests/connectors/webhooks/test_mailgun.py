"""Mailgun webhooks: the signature check, and what each documented event becomes."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.webhooks.errors import WebhookPayloadError, WebhookSignatureError
from connectors.webhooks.mailgun import MAX_AGE_S, mailgun_signature, parse_mailgun, verify_mailgun
from engine.events import ConsentUpdate, DeliveryResult, Interaction
from engine.feedback import click_interaction_id, open_interaction_id, result_event_id

KEY = "key-7f3c2a1b9e8d4f6a0b5c3d2e1f4a6b8c"
TIMESTAMP = "1529006854"
TOKEN = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
# Computed independently: printf '%s' "$TIMESTAMP$TOKEN" | openssl dgst -sha256 -hmac "$KEY"
SIGNATURE = "ddd604e9573e0322369283eef379b7a418758883e26d6af40f2196596a964021"
NOW_MS = int(TIMESTAMP) * 1000 + 30_000


def signed(event: dict[str, Any], *, key: str = KEY, timestamp: str = TIMESTAMP) -> dict[str, Any]:
    signature = {
        "timestamp": timestamp,
        "token": TOKEN,
        "signature": mailgun_signature(key, timestamp, TOKEN),
    }
    return {"signature": signature, "event-data": event}


def event(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "event": name,
        "id": "CPgfbmQMTCKtHW6uIWtuVe",
        "timestamp": 1529006854.329574,
        "recipient": "ana@example.com",
        "user-variables": {"delivery_id": "dlv_1", "customer_id": "cust-1", "campaign_id": "loan-q4"},
        "message": {"headers": {"message-id": "20180614192734.1.ABC@mg.bank.example"}},
        **extra,
    }


def test_the_signature_is_the_hmac_of_timestamp_and_token() -> None:
    assert mailgun_signature(KEY, TIMESTAMP, TOKEN) == SIGNATURE
    verify_mailgun(
        {"signature": {"timestamp": TIMESTAMP, "token": TOKEN, "signature": SIGNATURE}}, KEY, now_ms=NOW_MS
    )


@pytest.mark.parametrize(
    "signature",
    [
        {"timestamp": TIMESTAMP, "token": TOKEN, "signature": "0" * 64},
        {"timestamp": "1529006855", "token": TOKEN, "signature": SIGNATURE},
        {"timestamp": TIMESTAMP, "token": TOKEN[:-1] + "1", "signature": SIGNATURE},
        {"timestamp": TIMESTAMP, "token": TOKEN},
        "not an object",
    ],
)
def test_a_wrong_or_incomplete_signature_is_refused(signature: Any) -> None:
    with pytest.raises(WebhookSignatureError):
        verify_mailgun({"signature": signature}, KEY, now_ms=NOW_MS)


def test_a_signature_made_with_another_key_is_refused() -> None:
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_mailgun(signed(event("delivered"), key="key-someone-else"), KEY, now_ms=NOW_MS)


def test_a_stale_signature_is_refused_even_when_genuine() -> None:
    body = signed(event("delivered"))
    verify_mailgun(body, KEY, now_ms=(int(TIMESTAMP) + MAX_AGE_S) * 1000)
    with pytest.raises(WebhookSignatureError, match="old"):
        verify_mailgun(body, KEY, now_ms=(int(TIMESTAMP) + MAX_AGE_S + 1) * 1000)


def test_delivered_is_a_sent_result_with_the_message_id() -> None:
    (feedback,) = parse_mailgun(signed(event("delivered"))).feedback
    assert feedback.customer_id == "cust-1"
    assert feedback.event_id == result_event_id("dlv_1", "sent")
    assert feedback.occurred_at_ms == 1529006854329
    assert feedback.payload == DeliveryResult(
        "dlv_1", "sent", "email", "loan-q4", "20180614192734.1.ABC@mg.bank.example"
    )


def test_a_permanent_failure_is_a_bounce_with_the_reason() -> None:
    failed = event(
        "failed",
        severity="permanent",
        reason="bounce",
        **{"delivery-status": {"code": 550, "description": "No such mailbox"}},
    )
    (feedback,) = parse_mailgun(signed(failed)).feedback
    assert isinstance(feedback.payload, DeliveryResult)
    assert (feedback.payload.status, feedback.payload.reason) == ("bounced", "bounce 550 No such mailbox")


def test_a_suppressed_address_is_a_failure_not_a_bounce() -> None:
    (feedback,) = parse_mailgun(
        signed(event("failed", severity="permanent", reason="suppress-bounce"))
    ).feedback
    assert isinstance(feedback.payload, DeliveryResult) and feedback.payload.status == "failed"


def test_a_temporary_failure_records_nothing_because_mailgun_retries() -> None:
    parsed = parse_mailgun(signed(event("failed", severity="temporary", reason="generic")))
    assert parsed.feedback == () and parsed.ignored is not None and "retries" in parsed.ignored


def test_opened_is_the_same_open_as_the_pixel_reports() -> None:
    (feedback,) = parse_mailgun(signed(event("opened"))).feedback
    assert isinstance(feedback.payload, Interaction)
    assert feedback.payload.kind == "open"
    assert feedback.payload.interaction_id == open_interaction_id("dlv_1")


def test_clicked_is_a_click_on_its_url() -> None:
    (feedback,) = parse_mailgun(signed(event("clicked", url="https://bank.example/loan"))).feedback
    assert feedback.payload == Interaction(
        kind="click",
        interaction_id=click_interaction_id("dlv_1", "https://bank.example/loan"),
        campaign_id="loan-q4",
        delivery_id="dlv_1",
        channel="email",
        data={"url": "https://bank.example/loan"},
    )


def test_a_complaint_is_counted_and_stops_email() -> None:
    interaction, consent = parse_mailgun(signed(event("complained"))).feedback
    assert isinstance(interaction.payload, Interaction) and interaction.payload.kind == "complaint"
    assert consent.payload == ConsentUpdate(opted_in=False, channel="email")
    assert interaction.event_id != consent.event_id


def test_an_unsubscribe_opts_out_of_email() -> None:
    consent, interaction = parse_mailgun(signed(event("unsubscribed"))).feedback
    assert consent.payload == ConsentUpdate(opted_in=False, channel="email")
    assert isinstance(interaction.payload, Interaction) and interaction.payload.kind == "unsubscribe"


def test_variables_with_the_v_prefix_and_a_category_are_understood() -> None:
    variables = {"v:delivery_id": "dlv_2", "v:customer_id": "c-2", "v:campaign_id": "k", "v:category": "news"}
    (feedback,) = parse_mailgun(signed(event("opened", **{"user-variables": variables}))).feedback
    assert (feedback.customer_id, feedback.payload.delivery_id) == ("c-2", "dlv_2")  # type: ignore[union-attr]


def test_a_message_not_sent_by_refract_is_ignored() -> None:
    parsed = parse_mailgun(signed(event("opened", **{"user-variables": {}})))
    assert parsed.feedback == () and parsed.ignored


def test_an_event_refract_does_not_use_is_ignored() -> None:
    assert parse_mailgun(signed(event("accepted"))).ignored == "event 'accepted' is not used"


def test_a_body_without_event_data_is_a_payload_error() -> None:
    with pytest.raises(WebhookPayloadError):
        parse_mailgun({"signature": {}})
    with pytest.raises(WebhookPayloadError):
        parse_mailgun(signed(event("clicked")))  # a click without its url
