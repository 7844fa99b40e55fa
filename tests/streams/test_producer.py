"""The producers on the real broker. The bulk producer: what a drain confirms is in the topic,
keyed like the rest, and a record Kafka refuses fails the drain. The producer: a record too large
to queue, or a producer stopped by a fatal error, fails the write with ``ProduceFailed``."""

from __future__ import annotations

import asyncio
import os

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from engine.settings import Settings
from engine.topics import TopicNames
from streams import producer as producer_module
from streams.partitions import partition_for
from streams.producer import BulkProducer, OutRecord, ProduceFailed, Producer
from streams.topic_admin import ensure_topics
from tests.support.kafka import KafkaFixture


def test_a_drain_returns_once_every_queued_record_is_in_the_topic(
    kafka: KafkaFixture, namespace: str
) -> None:
    settings = Settings(namespace=namespace, partitions=2)
    ensure_topics(kafka.bootstrap, settings)
    topic = TopicNames(namespace).events
    records = [(f"c{i}".encode(), f"value {i}".encode()) for i in range(500)]
    producer = BulkProducer(kafka.bootstrap, client_id="test-bulk")

    async def write() -> None:
        producer.queue(topic, [key for key, _ in records[:300]], [value for _, value in records[:300]])
        producer.queue(topic, [key for key, _ in records[300:]], [value for _, value in records[300:]])
        await producer.drain()

    try:
        asyncio.run(write())
        # Read without waiting: the drain promised every record is there already.
        written = kafka.read_all(topic)
    finally:
        producer.close()
    assert sorted((key, value) for key, value, _, _ in written) == sorted(records)
    for key, _, partition, _ in written:
        assert key is not None
        assert partition == partition_for(key.decode(), 2)  # murmur2, as every other write


def test_a_drain_of_nothing_returns_at_once(kafka: KafkaFixture) -> None:
    producer = BulkProducer(kafka.bootstrap, client_id="test-bulk")
    try:
        asyncio.run(producer.drain())
    finally:
        producer.close()


def test_a_record_kafka_refuses_fails_the_drain_and_only_that_drain(
    kafka: KafkaFixture, namespace: str
) -> None:
    topic = f"{namespace}.small-records"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={"max.message.bytes": "2000"})])[topic].result(30)
    producer = BulkProducer(kafka.bootstrap, client_id="test-bulk")

    async def write() -> None:
        producer.queue(topic, [b"a", b"b"], [b"small", os.urandom(20_000)])  # the broker refuses b
        with pytest.raises(ProduceFailed, match=r"too large|MSG_SIZE_TOO_LARGE|larger"):
            await producer.drain()
        producer.queue(topic, [b"c"], [b"small too"])
        await producer.drain()  # the refusal was reported once

    try:
        asyncio.run(write())
        keys = {key for key, _, _, _ in kafka.read_all(topic)}
    finally:
        producer.close()
        admin.delete_topics([topic])
    assert b"c" in keys and b"b" not in keys


def test_a_record_too_large_to_queue_fails_the_write_with_produce_failed(
    kafka: KafkaFixture, namespace: str
) -> None:
    topic = f"{namespace}.any"
    producer = Producer(kafka.bootstrap, client_id="test-producer")

    async def write() -> None:
        with pytest.raises(ProduceFailed, match=r"too large|MSG_SIZE_TOO_LARGE|larger") as refused:
            producer.send_batch([OutRecord(topic, b"a", os.urandom(2_000_000), 0)])
        assert not refused.value.retriable

    try:
        asyncio.run(write())
    finally:
        producer.close(timeout_s=1)


def test_after_a_fatal_error_every_write_fails_instead_of_waiting_forever(
    kafka: KafkaFixture, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # librdkafka's gapless guarantee turns a refused record into a fatal error for the producer.
    settings = producer_module._settings
    monkeypatch.setattr(
        producer_module,
        "_settings",
        lambda *args: {**settings(*args), "enable.gapless.guarantee": True},
    )
    topic = f"{namespace}.small-records"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={"max.message.bytes": "2000"})])[topic].result(30)
    producer = Producer(kafka.bootstrap, client_id="test-producer")

    async def write() -> None:
        refused = [OutRecord(topic, b"a", b"small", 0), OutRecord(topic, b"b", os.urandom(20_000), 0)]
        with pytest.raises(ProduceFailed, match=r"too large|MSG_SIZE_TOO_LARGE|larger"):
            await asyncio.wait_for(producer.send_counted(refused), 30)
        with pytest.raises(ProduceFailed, match=r"[Ff]atal"):
            await asyncio.wait_for(producer.send_batch([OutRecord(topic, b"c", b"small too", 0)]), 30)

    try:
        asyncio.run(write())
    finally:
        producer.close(timeout_s=1)
        admin.delete_topics([topic])
