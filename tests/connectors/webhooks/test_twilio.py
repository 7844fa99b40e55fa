"""Twilio webhooks: X-Twilio-Signature (with Twilio's published vectors), receipts, STOP/START."""

from __future__ import annotations

import pytest

from connectors.webhooks.errors import WebhookPayloadError, WebhookSignatureError
from connectors.webhooks.twilio import (
    inbound_consent,
    parse_inbound,
    parse_status,
    twilio_signature,
    verify_twilio,
)
from engine.events import ConsentUpdate, DeliveryResult
from engine.feedback import MessageContext, result_event_id

# The vectors of Twilio's own helper library (twilio-python, tests/unit/test_request_validator.py).
TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
    ("Caller", "+14158675309"),
]
CONTEXT = MessageContext("dlv_9", "cust-9", "promo", "sms")


def test_the_signature_matches_twilios_published_example() -> None:
    assert twilio_signature(TOKEN, URL, PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_repeated_parameters_are_signed_in_sorted_order() -> None:
    params = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert twilio_signature(TOKEN, URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        (URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (URL.replace(".com", ".com:1234"), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),  # signed without the port
        (URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),  # signed with :443
        (URL.replace("https", "http"), "0ZXoZLH/DfblKGATFgpif+LLRf4="),  # signed with :80
        (URL.replace(".com", ".com:1234").replace("https", "http"), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
    ],
)
def test_a_genuine_signature_verifies_with_or_without_the_port(url: str, signature: str) -> None:
    verify_twilio(TOKEN, url, PARAMS, signature)


@pytest.mark.parametrize(
    ("token", "url", "params", "signature"),
    [
        ("54321", URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (TOKEN, URL + "&baz=3", PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (TOKEN, URL, [*PARAMS[:-1], ("Caller", "+10000000000")], "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (TOKEN, URL, PARAMS, None),
        (TOKEN, URL, PARAMS, ""),
    ],
)
def test_a_wrong_token_url_parameter_or_missing_header_is_refused(
    token: str, url: str, params: list[tuple[str, str]], signature: str | None
) -> None:
    with pytest.raises(WebhookSignatureError):
        verify_twilio(token, url, params, signature)


@pytest.mark.parametrize(
    ("status", "result", "reason"),
    [
        ("delivered", "sent", None),
        ("undelivered", "bounced", "twilio undelivered (error 30003)"),
        ("failed", "failed", "twilio failed (error 30003)"),
    ],
)
def test_final_statuses_are_delivery_results(status: str, result: str, reason: str | None) -> None:
    params = [("MessageSid", "SM1"), ("MessageStatus", status), ("ErrorCode", "30003" if reason else "")]
    (feedback,) = parse_status(CONTEXT, params).feedback
    assert feedback.customer_id == "cust-9"
    assert feedback.event_id == result_event_id("dlv_9", result)  # type: ignore[arg-type]
    assert feedback.payload == DeliveryResult("dlv_9", result, "sms", "promo", "SM1", reason)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", ["queued", "sending", "sent", "accepted", "read"])
def test_intermediate_statuses_record_nothing(status: str) -> None:
    parsed = parse_status(CONTEXT, [("MessageSid", "SM1"), ("MessageStatus", status)])
    assert parsed.feedback == () and parsed.ignored


def test_a_status_callback_without_a_status_is_a_payload_error() -> None:
    with pytest.raises(WebhookPayloadError):
        parse_status(CONTEXT, [("MessageSid", "SM1")])


@pytest.mark.parametrize("body", ["STOP", " stop ", "StopAll", "UNSUBSCRIBE", "cancel", "END", "quit"])
def test_stop_words_opt_out_of_sms(body: str) -> None:
    inbound = parse_inbound([("From", "+59899123456"), ("Body", body), ("MessageSid", "SM7")])
    assert inbound.keyword == "stop" and inbound.sender == "+59899123456"
    feedback = inbound_consent("cust-9", inbound)
    assert feedback.payload == ConsentUpdate(opted_in=False, channel="sms")
    assert feedback.event_id == "twilio:SM7"


@pytest.mark.parametrize("body", ["START", "unstop"])
def test_start_words_opt_back_in(body: str) -> None:
    inbound = parse_inbound([("From", "+59899123456"), ("Body", body)])
    assert inbound_consent("cust-9", inbound).payload == ConsentUpdate(opted_in=True, channel="sms")


@pytest.mark.parametrize("body", ["stop it please", "Thanks!", "", "HELP"])
def test_other_replies_are_neither(body: str) -> None:
    assert parse_inbound([("From", "+59899123456"), ("Body", body)]).keyword is None


def test_twilios_advanced_opt_out_type_wins_over_the_words() -> None:
    inbound = parse_inbound([("From", "+1555"), ("Body", "arret"), ("OptOutType", "STOP")])
    assert inbound.keyword == "stop"


def test_an_inbound_message_without_a_sender_is_a_payload_error() -> None:
    with pytest.raises(WebhookPayloadError):
        parse_inbound([("Body", "STOP")])
