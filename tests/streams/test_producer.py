"""The bulk producer on the real broker: what a drain confirms is in the topic, keyed like the
rest, and a record Kafka refuses fails the drain."""

from __future__ import annotations

import asyncio
import os

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from engine.settings import Settings
from engine.topics import TopicNames
from streams.partitions import partition_for
from streams.producer import BulkProducer, ProduceFailed
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
