"""Dispatchers on the real broker: deliveries written to refract.deliveries reach local providers once.

Workers run as processes configured with local providers (aiosmtpd, the SMS gateway, FCM); the
tests write ``Delivery`` records straight to the deliveries topic and read what came back on
``refract.events`` and ``refract.dead-letters``.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.deliveries import Delivery, delivery_id
from engine.events import ContactUpdate, DeliveryResult, Envelope, PushToken
from engine.topics import TopicNames
from schemas.codec import decode, decode_envelope, encode
from tests.conftest import free_port
from tests.support.kafka import KafkaFixture
from tests.support.providers.http import HttpProviders
from tests.support.providers.keys import service_account
from tests.support.providers.smtp import FakeSmtp
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory, WorkerProcess

pytestmark = pytest.mark.kafka


@pytest.fixture
def smtp() -> Iterator[FakeSmtp]:
    with FakeSmtp(free_port()) as server:
        yield server


@pytest.fixture
def http(tmp_path: Path) -> Iterator[HttpProviders]:
    port = free_port()
    with HttpProviders(port, account=service_account(tmp_path, f"http://127.0.0.1:{port}/token")) as servers:
        yield servers


def channel_env(smtp: FakeSmtp, http: HttpProviders, **extra: str) -> dict[str, Any]:
    assert http.fcm.account is not None
    env = {
        "REFRACT_SMTP_HOST": "127.0.0.1",
        "REFRACT_SMTP_PORT": str(smtp.port),
        "REFRACT_SMTP_SECURITY": "none",
        "REFRACT_EMAIL_FROM": "Shop <news@shop.example>",
        "REFRACT_SMS_GATEWAY_URL": f"{http.url}/sms",
        "REFRACT_SMS_GATEWAY_AUTHORIZATION": http.gateway.authorization,
        "REFRACT_FCM_SERVICE_ACCOUNT_FILE": str(http.fcm.account.path),
        "REFRACT_FCM_BASE_URL": http.url,
        "REFRACT_DELIVERY_BASE_DELAY_S": "0.2",
        "REFRACT_DELIVERY_MAX_DELAY_S": "1",
        "REFRACT_DELIVERY_MAX_ATTEMPTS": "4",
    }
    env.update(extra)
    return env


def make_delivery(
    customer: str,
    channel: str,
    address: str,
    step: str = "s1",
    expires_at_ms: int | None = None,
    **content: str,
) -> Delivery:
    defaults = {
        "email": {"subject": "Welcome", "text": "Hello", "html": "<p>Hello</p>"},
        "sms": {"text": "Your offer is ready"},
        "push": {"platform": "android", "title": "Offer", "body": "Open the app"},
    }[channel]
    return Delivery(
        delivery_id=delivery_id(customer, "welcome", 1, "run-1", step),
        customer_id=customer,
        campaign_id="welcome",
        campaign_version=1,
        run_id="run-1",
        step_id=step,
        channel=channel,  # type: ignore[arg-type]
        address=address,
        content={**defaults, **content},
        created_at_ms=int(time.time() * 1000),
        expires_at_ms=expires_at_ms,
    )


def write_deliveries(kafka: KafkaFixture, namespace: str, deliveries: list[Delivery]) -> None:
    producer = kafka.producer()
    topic = TopicNames(namespace).deliveries
    for delivery in deliveries:
        producer.produce(topic, encode("Delivery", delivery.to_record()), delivery.customer_id.encode())
        producer.poll(0)
    assert producer.flush(30) == 0


def events_of(kafka: KafkaFixture, namespace: str) -> list[Envelope]:
    return [
        decode_envelope(value) for _, value, _, _ in kafka.read_all(TopicNames(namespace).events) if value
    ]


def results_of(kafka: KafkaFixture, namespace: str) -> list[DeliveryResult]:
    return [e.payload for e in events_of(kafka, namespace) if isinstance(e.payload, DeliveryResult)]


def wait_results(
    kafka: KafkaFixture, namespace: str, count: int, timeout_s: float = 60
) -> list[DeliveryResult]:
    def enough() -> list[DeliveryResult] | None:
        results = results_of(kafka, namespace)
        return results if len(results) >= count else None

    return wait_for(enough, timeout_s=timeout_s, interval_s=0.5, message=f"{count} delivery results")


def metric(worker: WorkerProcess, name: str, **labels: str) -> float:
    text = worker.api.get("/metrics", key=None).body
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_an_email_is_sent_once_with_both_parts_and_the_unsubscribe_headers(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str, smtp: FakeSmtp, http: HttpProviders
) -> None:
    worker = workers.start(**channel_env(smtp, http))
    delivery = make_delivery("ana", "email", "ana@example.com", unsubscribe_url="https://r.example/u/ana")
    write_deliveries(kafka, namespace, [delivery, delivery])  # the outbox replayed: same id twice
    [result] = wait_results(kafka, namespace, 1)
    [mail] = smtp.received
    message = mail.message
    assert message["Message-ID"] == f"<{delivery.delivery_id}@shop.example>"
    assert message["List-Unsubscribe"] == "<https://r.example/u/ana>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_body(("plain",)).get_content().strip() == "Hello"  # type: ignore[union-attr]
    assert message.get_body(("html",)).get_content().strip() == "<p>Hello</p>"  # type: ignore[union-attr]
    assert (result.status, result.delivery_id, result.provider_message_id) == (
        "sent",
        delivery.delivery_id,
        message["Message-ID"],
    )
    profile = wait_for(
        lambda: (
            (a := worker.api.get("/v1/customers/ana")).status == 200 and a.body["delivery_counts"] and a.body
        ),
        message="the result folded into the profile",
    )
    assert profile["delivery_counts"] == {"sent:email": 1}
    wait_for(lambda: metric(worker, "refract_deliveries_skipped_total") == 1, message="the duplicate skipped")
    assert len(smtp.received) == 1


def test_transient_failures_are_retried_honouring_retry_after(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str, smtp: FakeSmtp, http: HttpProviders
) -> None:
    smtp.fail_next(2, "421 4.7.0 Try again later")
    http.gateway.fail_next(1, 429, retry_after_s=2)
    http.gateway.fail_next(1, 503)
    worker = workers.start(**channel_env(smtp, http))
    write_deliveries(
        kafka,
        namespace,
        [make_delivery("ana", "email", "ana@example.com"), make_delivery("bob", "sms", "+59899123456")],
    )
    results = wait_results(kafka, namespace, 2)
    assert sorted(r.status for r in results) == ["sent", "sent"]
    assert smtp.attempts == 3 and len(smtp.received) == 1
    assert http.gateway.requests == 3 and len(http.gateway.received) == 1
    first, second, _ = http.gateway.requested_at
    assert second - first >= 2.0  # the gateway asked for 2 s
    assert metric(worker, "refract_deliveries_retried_total", channel="email") == 2
    assert metric(worker, "refract_deliveries_retried_total", channel="sms") == 2


def test_invalid_addresses_fail_at_once_and_exhausted_retries_go_to_dead_letters(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str, smtp: FakeSmtp, http: HttpProviders
) -> None:
    smtp.refuse("gone@example.com")
    workers.start(**channel_env(smtp, http))
    bad_number = make_delivery("ana", "sms", "099 123 456")
    no_mailbox = make_delivery("bob", "email", "gone@example.com")
    write_deliveries(kafka, namespace, [bad_number, no_mailbox])
    by_id = {r.delivery_id: r for r in wait_results(kafka, namespace, 2)}
    assert by_id[bad_number.delivery_id].status == "rejected"
    assert by_id[no_mailbox.delivery_id].status == "bounced"
    assert http.gateway.requests == 0 and smtp.attempts == 0  # refused at RCPT, never retried

    http.gateway.fail_next(10, 503)
    unlucky = make_delivery("carla", "sms", "+59899000111")
    write_deliveries(kafka, namespace, [unlucky])
    results = wait_results(kafka, namespace, 3)
    assert [r.status for r in results if r.delivery_id == unlucky.delivery_id] == ["failed"]
    assert http.gateway.requests == 4  # REFRACT_DELIVERY_MAX_ATTEMPTS
    letters = [decode(v)[1] for _, v, _, _ in kafka.read_all(TopicNames(namespace).dead_letters) if v]
    assert [letter["error_code"] for letter in letters] == ["delivery_retries_exhausted"]
    assert letters[0]["original_topic"] == TopicNames(namespace).deliveries


def test_an_expired_delivery_is_not_sent(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str, smtp: FakeSmtp, http: HttpProviders
) -> None:
    workers.start(**channel_env(smtp, http))
    expired = make_delivery("ana", "email", "ana@example.com", expires_at_ms=int(time.time() * 1000) - 1)
    fresh = make_delivery("ana", "email", "ana@example.com", step="s2")
    write_deliveries(kafka, namespace, [expired, fresh])
    by_id = {r.delivery_id: r for r in wait_results(kafka, namespace, 2)}
    assert by_id[expired.delivery_id].status == "failed"
    assert "expired" in (by_id[expired.delivery_id].reason or "")
    assert by_id[fresh.delivery_id].status == "sent"
    assert [str(m.message["Message-ID"]) for m in smtp.received] == [f"<{fresh.delivery_id}@shop.example>"]


def test_an_unregistered_push_token_is_removed_from_the_profile(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str, smtp: FakeSmtp, http: HttpProviders
) -> None:
    worker = workers.start(**channel_env(smtp, http))
    tokens = [
        {"platform": "android", "token": "token-gone-123"},
        {"platform": "android", "token": "token-live-456"},
    ]
    answer = worker.api.post("/v1/customers", {"customer_id": "ana", "contacts": {"push_tokens": tokens}})
    assert answer.status == 202, answer.body
    http.fcm.unregistered.add("token-gone-123")
    write_deliveries(
        kafka,
        namespace,
        [
            make_delivery("ana", "push", "token-gone-123"),
            make_delivery("ana", "push", "token-live-456", step="s2"),
        ],
    )
    results = wait_results(kafka, namespace, 2)
    assert sorted(r.status for r in results) == ["bounced", "sent"]
    updates = [e.payload for e in events_of(kafka, namespace) if isinstance(e.payload, ContactUpdate)]
    removals = [u.remove_push_tokens for u in updates if u.remove_push_tokens]
    assert removals == [(PushToken("android", "token-gone-123"),)]
    wait_for(
        lambda: (
            worker.api.get("/v1/customers/ana").body["contacts"]["push_tokens"]
            == [{"platform": "android", "token": "token-live-456"}]
        ),
        message="the unregistered token removed from the profile",
    )


def test_a_rate_limit_of_50_per_second_holds_under_a_burst_of_1000(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str, smtp: FakeSmtp, http: HttpProviders
) -> None:
    workers.start(**channel_env(smtp, http, REFRACT_SMS_GATEWAY_RATE_PER_S="50"))
    deliveries = [make_delivery(f"c{i}", "sms", f"+5989900{i:04d}") for i in range(1000)]
    write_deliveries(kafka, namespace, deliveries)
    wait_for(lambda: len(http.gateway.received) >= 1000, timeout_s=90, interval_s=0.5, message="1,000 SMS")
    arrivals = sorted(http.gateway.arrivals)
    # Sends leave the worker on their slots, but a server that wakes up late (two busy processes
    # and a broker on two cores) records the requests that queued meanwhile at once: allow for
    # the lateness this server measured of itself, and nothing more.
    queued = math.ceil(50 * http.stalled_s(arrivals[0], arrivals[-1]))
    per_second = Counter(int(at - arrivals[0]) for at in arrivals)
    assert max(per_second.values()) <= 51 + queued, (queued, per_second)  # a slot starts each window
    most, start = 0, 0  # any one-second window, not only whole seconds
    for end, at in enumerate(arrivals):
        while at - arrivals[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    assert most <= 53 + queued, f"{most} SMS within one second (server late by up to {queued} sends)"
    assert arrivals[-1] - arrivals[0] >= 999 / 50 * 0.98  # 50/s on average
    assert len(http.gateway.received) == 1000


def test_a_worker_killed_after_the_provider_accepted_sends_again_once_and_one_result_is_counted(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str, smtp: FakeSmtp, http: HttpProviders
) -> None:
    env = channel_env(smtp, http)
    worker = workers.start(**env)
    first = make_delivery("ana", "email", "ana@example.com")
    killed: list[int] = []

    def kill_the_dispatcher(message: object) -> None:
        # The server has the message; the worker dies before it hears 250 or records anything.
        if not killed:
            assert worker.process is not None
            os.kill(worker.process.pid, signal.SIGKILL)
            worker.process.wait()
            killed.append(worker.process.pid)

    smtp.before_accept(kill_the_dispatcher)
    write_deliveries(kafka, namespace, [first])
    wait_for(lambda: killed, message="the worker killed while the provider accepted")
    smtp.before_accept(None)
    assert results_of(kafka, namespace) == []

    second = make_delivery("bob", "email", "bob@example.com")
    restarted = workers.start("w2", **env)
    write_deliveries(kafka, namespace, [second])
    results = wait_results(kafka, namespace, 2)
    message_ids = Counter(smtp.message_ids())
    assert message_ids[f"<{first.delivery_id}@shop.example>"] == 2  # at most twice: once per owner
    assert message_ids[f"<{second.delivery_id}@shop.example>"] == 1
    assert sorted((r.delivery_id, r.status) for r in results) == sorted(
        [(first.delivery_id, "sent"), (second.delivery_id, "sent")]
    )
    profile = wait_for(
        lambda: (
            (a := restarted.api.get("/v1/customers/ana")).status == 200
            and a.body["delivery_counts"]
            and a.body
        ),
        message="the result in the profile",
    )
    assert profile["delivery_counts"] == {"sent:email": 1}
