"""A worker on the real broker: events in through the API, state out, through crashes."""

from __future__ import annotations

from collections import Counter

import pytest

from api.customer_view import customer_json
from engine.events import BusinessEvent, CustomerUpdate, Envelope
from engine.fold import fold
from engine.topics import TopicNames
from schemas.codec import decode, encode_envelope
from tests.support.kafka import KafkaFixture
from tests.support.waiting import wait_for
from tests.support.workers import READER, WorkerFactory, WorkerProcess

pytestmark = pytest.mark.kafka


def metric(worker: WorkerProcess, name: str) -> float:
    """The sum of a Prometheus metric's samples as /metrics shows it."""
    text = worker.api.get("/metrics", key=None).body
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def post_events(worker: WorkerProcess, events: list[dict], batch: int = 500) -> None:
    for start in range(0, len(events), batch):
        answer = worker.api.post("/v1/events", {"events": events[start : start + batch]})
        assert answer.status == 202, answer.body
        assert answer.body["accepted"] == len(events[start : start + batch])


def counts_of(worker: WorkerProcess, customers: list[str], event: str) -> dict[str, int]:
    result = {}
    for customer in customers:
        answer = worker.api.get(f"/v1/customers/{customer}")
        result[customer] = answer.body["event_counts"].get(event, 0) if answer.status == 200 else 0
    return result


def test_ten_thousand_events_posted_through_the_api_are_all_in_the_profiles(workers: WorkerFactory) -> None:
    worker = workers.start()
    customers = [f"cust-{i}" for i in range(500)]
    events = [
        {"customer_id": customers[i % len(customers)], "name": "card_transaction", "data": {"amount": i}}
        for i in range(10_000)
    ]
    post_events(worker, events)
    expected = Counter(e["customer_id"] for e in events)
    wait_for(
        lambda: metric(worker, "refract_events_processed_total") >= 10_000,
        timeout_s=120,
        message="10,000 events processed",
    )
    assert counts_of(worker, customers, "card_transaction") == dict(expected)
    # An operator (or a bench) polling one series asks for it by name and gets only that one.
    only = worker.api.get("/metrics?name[]=refract_events_processed_total", key=None).body
    series = [line for line in only.splitlines() if line and not line.startswith("#")]
    assert series and all(line.startswith("refract_events_processed_total{") for line in series)
    assert sum(float(line.rsplit(" ", 1)[1]) for line in series) == 10_000


def test_a_customer_upsert_is_readable_with_typed_attributes_and_contacts(workers: WorkerFactory) -> None:
    worker = workers.start()
    answer = worker.api.post(
        "/v1/customers",
        {
            "customer_id": "ana",
            "attributes": {
                "city": "Montevideo",
                "balance": 12000.5,
                "vip": True,
                "birth_date": {"date": "1990-02-28"},
                "products": ["card", "loan"],
            },
            "contacts": {
                "email": "ana@example.com",
                "phone": "+59899123456",
                "push_tokens": [{"platform": "ios", "token": "tok"}],
            },
            "campaign_data": {"loan-q4": {"rate": 11.9}},
            "consent": [{"channel": "sms", "opted_in": False}],
        },
    )
    assert answer.status == 202 and answer.body["accepted"] == 4
    profile = wait_for(
        lambda: (
            (r := worker.api.get("/v1/customers/ana")).status == 200
            and r.body["events_applied"] == 4
            and r.body
        ),
        message="profile of ana",
    )
    assert profile["attributes"] == {
        "balance": 12000.5,
        "birth_date": {"date": "1990-02-28"},
        "city": "Montevideo",
        "products": ["card", "loan"],
        "vip": True,
    }
    assert profile["contacts"]["email"] == "ana@example.com"
    assert profile["contacts"]["push_tokens"] == [{"platform": "ios", "token": "tok"}]
    assert profile["campaign_data"] == {"loan-q4": {"rate": 11.9}}
    assert profile["consent"] == {"channel:sms": False}

    erased = worker.api.request("DELETE", "/v1/customers/ana")
    assert erased.status == 202
    wait_for(lambda: worker.api.get("/v1/customers/ana").status == 404, message="ana erased")
    assert worker.api.get("/v1/customers/ana").body["error"]["code"] == "customer_not_found"


def test_a_restarted_worker_recovers_its_state_from_rocksdb_not_from_the_changelog(
    workers: WorkerFactory,
) -> None:
    worker = workers.start()
    customers = [f"r-{i}" for i in range(200)]
    post_events(worker, [{"customer_id": c, "name": "login"} for c in customers for _ in range(5)])
    wait_for(lambda: metric(worker, "refract_events_processed_total") >= 1000, message="1,000 events")
    worker.stop()

    worker.start()
    worker.wait_ready()
    assert counts_of(worker, customers, "login") == dict.fromkeys(customers, 5)
    # Recovery seeks to the offset RocksDB has persisted: at most the last record of each
    # partition is read again, not the 200+ changelog records written before the stop.
    assert metric(worker, "refract_changelog_records_restored_total") <= 4


def test_a_worker_killed_mid_stream_ends_with_the_state_a_pure_fold_gives(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str
) -> None:
    topics = TopicNames(namespace)
    worker = workers.start()
    customers = [f"k-{i}" for i in range(300)]
    envelopes = []
    for i in range(30_000):
        customer = customers[(i * 7) % len(customers)]
        payload = (
            CustomerUpdate(set={"last": i, "even": i % 2 == 0})
            if i % 3 == 0
            else BusinessEvent("card_transaction", {"amount": i})
        )
        envelopes.append(
            Envelope(f"ev-{i}", customer, 1_700_000_000_000 + i, 1_700_000_000_000 + i, "test", payload)
        )
    producer = kafka.producer()
    for envelope in envelopes:
        producer.produce(topics.events, encode_envelope(envelope), envelope.customer_id.encode())
        producer.poll(0)
    producer.flush(30)

    wait_for(lambda: metric(worker, "refract_events_processed_total") >= 3_000, message="some progress")
    processed_before_kill = metric(worker, "refract_events_processed_total")
    worker.kill()
    assert processed_before_kill < len(envelopes), "the kill must land mid-stream"
    worker.start()
    worker.wait_ready()

    expected = {}
    for offset, envelope in enumerate(envelopes):
        expected[envelope.customer_id] = fold(expected.get(envelope.customer_id), envelope, offset)

    def all_folded() -> bool:
        return all(
            worker.api.get(f"/v1/customers/{c}").body.get("events_applied") == expected[c].events_applied
            for c in customers
        )

    wait_for(all_folded, timeout_s=180, interval_s=0.5, message="every event folded after the restart")
    for customer in customers:
        answer = worker.api.get(f"/v1/customers/{customer}")
        state = expected[customer]
        assert state is not None
        assert answer.body == customer_json(state), customer


def test_malformed_input_gets_clear_errors_and_nothing_accepted_is_lost(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str
) -> None:
    worker = workers.start()
    api = worker.api
    assert api.post("/v1/events", {"customer_id": "m-1", "name": "login"}).status == 202

    bad_json = api.post("/v1/events", raw=b'{"customer_id": "m-1", ')
    assert (bad_json.status, bad_json.body["error"]["code"]) == (400, "invalid_json")

    wrong_type = api.post(
        "/v1/events", {"events": [{"customer_id": "m-1", "name": "ok"}, {"customer_id": 42, "name": "login"}]}
    )
    assert wrong_type.status == 400
    assert wrong_type.body["error"]["field"] == "events[1].customer_id"
    assert "expected a non-empty string" in wrong_type.body["error"]["message"]

    unknown = api.post("/v1/events", {"customer_id": "m-1", "type": "teleport"})
    assert (unknown.status, unknown.body["error"]["code"]) == (400, "unknown_event_type")

    huge = api.post(
        "/v1/events", raw=b'{"customer_id": "m-1", "name": "x", "data": {"pad": "' + b"x" * 2_000_000 + b'"}}'
    )
    assert (huge.status, huge.body["error"]["code"]) == (413, "body_too_large")

    no_key = api.post("/v1/events", {"customer_id": "m-1", "name": "login"}, key=None)
    assert (no_key.status, no_key.body["error"]["code"]) == (401, "missing_api_key")
    wrong_scope = api.post("/v1/events", {"customer_id": "m-1", "name": "login"}, key=READER.secret)
    assert (wrong_scope.status, wrong_scope.body["error"]["code"]) == (403, "insufficient_scope")

    topics = TopicNames(namespace)
    producer = kafka.producer()
    producer.produce(topics.events, b"\x00garbage bytes", b"m-1")
    producer.flush(10)
    assert api.post("/v1/events", {"customer_id": "m-1", "name": "login"}).status == 202

    letters = wait_for(lambda: kafka.read_all(topics.dead_letters), message="a dead letter")
    name, letter = decode(letters[0][1])
    assert name == "DeadLetter"
    assert letter["value"] == b"\x00garbage bytes" and letter["original_topic"] == topics.events
    assert letter["error_code"] in ("undecodable", "unknown_schema")
    profile = wait_for(
        lambda: (
            (r := api.get("/v1/customers/m-1")).status == 200
            and r.body["event_counts"].get("login") == 2
            and r.body
        ),
        message="both logins",
    )
    assert profile["events_applied"] == 2
    assert metric(worker, "refract_dead_letters_total") == 1


def test_a_request_for_a_customer_owned_by_the_other_worker_is_answered(workers: WorkerFactory) -> None:
    first = workers.start("w1")
    second = workers.start("w2")

    def split() -> bool:
        mine = first.api.get("/readyz", key=None).body
        theirs = second.api.get("/readyz", key=None).body
        return bool(
            mine
            and theirs
            and mine.get("partitions")
            and theirs.get("partitions")
            and sorted(mine["partitions"] + theirs["partitions"]) == [0, 1, 2, 3]
        )

    wait_for(split, timeout_s=90, message="the two workers sharing the four partitions")
    owned_by_second = set(second.api.get("/readyz", key=None).body["partitions"])
    from streams.partitions import partition_for

    customer = next(f"o-{i}" for i in range(1000) if partition_for(f"o-{i}", 4) in owned_by_second)
    assert first.api.post("/v1/events", {"customer_id": customer, "name": "login"}).status == 202
    profile = wait_for(
        lambda: (r := first.api.get(f"/v1/customers/{customer}")).status == 200 and r.body,
        message="the profile through the worker that does not own it",
    )
    assert profile["customer_id"] == customer and profile["event_counts"] == {"login": 1}
    direct = second.api.get(f"/v1/customers/{customer}").body
    assert direct == profile
