"""Feedback on a real worker and broker: tracking links, unsubscribe pages and provider webhooks."""

from __future__ import annotations

import http.client
import time
import urllib.parse
from typing import Any

import pytest

from connectors.webhooks.mailgun import mailgun_signature
from connectors.webhooks.twilio import twilio_signature
from engine.events import ConsentUpdate, Envelope, Interaction
from engine.feedback import MessageContext, open_interaction_id
from engine.signing import Signer
from engine.topics import TopicNames
from engine.tracking import TrackingLinks
from schemas.codec import decode_envelope
from tests.support.kafka import KafkaFixture
from tests.support.waiting import wait_for
from tests.support.workers import SIGNING_SECRET, WorkerFactory, WorkerProcess

pytestmark = pytest.mark.kafka

MAILGUN_KEY = "key-integration-mailgun-0001"
TWILIO_TOKEN = "integration-twilio-token"
EMAIL = MessageContext("dlv_int0000000000000000000001", "fb-ana", "loan-q4", "email", "offers")


def raw_request(
    worker: WorkerProcess,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request, redirects not followed (urllib would follow the click's 302)."""
    connection = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def form(params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return urllib.parse.urlencode(params).encode(), {"Content-Type": "application/x-www-form-urlencoded"}


def events_of(kafka: KafkaFixture, namespace: str, customer: str) -> list[Envelope]:
    records = kafka.read_all(TopicNames(namespace).events)
    return [decode_envelope(value) for key, value, _, _ in records if key == customer.encode() and value]


def profile(worker: WorkerProcess, customer: str, events: int) -> dict[str, Any] | None:
    answer = worker.api.get(f"/v1/customers/{customer}")
    if answer.status == 200 and answer.body["events_applied"] >= events:
        body: dict[str, Any] = answer.body
        return body
    return None


def test_opens_clicks_and_unsubscribes_reach_the_log_and_the_profile(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str
) -> None:
    worker = workers.start()
    links = TrackingLinks(Signer([SIGNING_SECRET]), worker.api.url)
    path = links.open_pixel_url(EMAIL).removeprefix(worker.api.url)

    for _ in range(2):
        status, headers, body = raw_request(worker, "GET", path)
        assert (status, headers["Content-Type"], body[:6]) == (200, "image/gif", b"GIF89a")
    click = links.click_url(EMAIL, "https://bank.example/loan?id=7").removeprefix(worker.api.url)
    status, headers, _ = raw_request(worker, "GET", click)
    assert (status, headers["Location"]) == (302, "https://bank.example/loan?id=7")
    status, headers, body = raw_request(worker, "GET", click[:-4] + "AAAA")
    assert (status, headers["Content-Type"].split(";")[0]) == (404, "text/html")
    assert b"This link does not work" in body and b"Traceback" not in body

    unsubscribe = links.unsubscribe_url(EMAIL).removeprefix(worker.api.url)
    status, _, page = raw_request(worker, "GET", unsubscribe)
    assert status == 200 and b'value="campaign" checked' in page
    status, _, page = raw_request(worker, "POST", unsubscribe, *form({"scope": "campaign"}))
    assert status == 200 and b"You are unsubscribed" in page

    # Four: the repeated open is dropped by the fold.
    state = wait_for(lambda: profile(worker, "fb-ana", 4), message="the feedback folded into fb-ana")
    assert state["interaction_counts"] == {
        "open": 1,  # the second pixel load carried the same interaction id
        "open:loan-q4": 1,
        "click": 1,
        "click:loan-q4": 1,
        "unsubscribe": 1,
        "unsubscribe:loan-q4": 1,
    }
    assert state["consent"] == {"campaign:loan-q4": False}

    payloads = [e.payload for e in events_of(kafka, namespace, "fb-ana")]
    assert [p.kind for p in payloads if isinstance(p, Interaction)] == [
        "open",
        "open",
        "click",
        "unsubscribe",
    ]
    assert {p.interaction_id for p in payloads if isinstance(p, Interaction) and p.kind == "open"} == {
        open_interaction_id(EMAIL.delivery_id)
    }
    assert ConsentUpdate(opted_in=False, campaign_id="loan-q4") in payloads


def test_provider_webhooks_are_verified_and_stop_finds_the_customer_by_phone(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str
) -> None:
    worker = workers.start(
        REFRACT_MAILGUN_WEBHOOK_KEY=MAILGUN_KEY,
        REFRACT_TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        REFRACT_PUBLIC_URL="https://go.bank.example",
    )
    # The customer processor keeps the contact index from the profile's contacts.
    posted = worker.api.post(
        "/v1/customers", {"customer_id": "fb-bob", "contacts": {"phone": "+59899123456"}}
    )
    assert posted.status == 202
    wait_for(lambda: profile(worker, "fb-bob", 1), message="bob's phone folded")
    contacts = TopicNames(namespace).contacts
    wait_for(
        lambda: (b"phone:+59899123456", b"fb-bob") in [(k, v) for k, v, _, _ in kafka.read_all(contacts)],
        message="bob's phone in the contact index",
    )

    token, timestamp = "t" * 50, str(int(time.time()))
    event = {
        "event": "delivered",
        "id": "mg-1",
        "user-variables": {"delivery_id": "dlv_mg1", "customer_id": "fb-bob", "campaign_id": "welcome"},
    }
    signature = {"timestamp": timestamp, "token": token, "signature": "0" * 64}
    forged = {"signature": signature, "event-data": event}
    refused = worker.api.post("/webhooks/mailgun", forged, key=None)
    assert (refused.status, refused.body["error"]["code"]) == (401, "invalid_webhook_signature")
    genuine_signature = {**signature, "signature": mailgun_signature(MAILGUN_KEY, timestamp, token)}
    genuine = {"signature": genuine_signature, "event-data": event}
    accepted = worker.api.post("/webhooks/mailgun", genuine, key=None)
    assert (accepted.status, accepted.body) == (200, {"accepted": 1})

    params = {"From": "+59899123456", "To": "+59821000000", "Body": "STOP", "MessageSid": "SM-int-1"}
    path = "/webhooks/twilio/inbound"
    twilio_header = twilio_signature(TWILIO_TOKEN, "https://go.bank.example" + path, params.items())
    body, headers = form(params)
    status, _, twiml = raw_request(
        worker, "POST", path, body, {**headers, "X-Twilio-Signature": twilio_header}
    )
    assert status == 200 and b"<Response>" in twiml

    state = wait_for(lambda: profile(worker, "fb-bob", 3), message="bob's delivery and STOP folded")
    assert state["delivery_counts"] == {"sent:email": 1}
    assert state["consent"] == {"channel:sms": False}
