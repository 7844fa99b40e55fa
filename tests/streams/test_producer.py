"""The producer on the real broker: bulk writes are acknowledged as a whole, keyed like the rest."""

from __future__ import annotations

import asyncio

from engine.settings import Settings
from engine.topics import TopicNames
from streams.partitions import partition_for
from streams.producer import Producer
from streams.topic_admin import ensure_topics
from tests.support.kafka import KafkaFixture


def test_send_many_resolves_with_the_count_once_every_record_is_in_the_topic(
    kafka: KafkaFixture, namespace: str
) -> None:
    settings = Settings(namespace=namespace, partitions=2)
    ensure_topics(kafka.bootstrap, settings)
    topic = TopicNames(namespace).events
    records = [(f"c{i}".encode(), f"value {i}".encode()) for i in range(500)]
    producer = Producer(kafka.bootstrap, client_id="test-send-many")

    async def send() -> int:
        return await producer.send_many(topic, [key for key, _ in records], [value for _, value in records])

    try:
        assert asyncio.run(send()) == 500
    finally:
        producer.close()

    written = kafka.read_all(topic)
    assert sorted((key, value) for key, value, _, _ in written) == sorted(records)
    for key, _, partition, _ in written:
        assert key is not None
        assert partition == partition_for(key.decode(), 2)  # murmur2, as every other write


def test_send_many_of_nothing_resolves_at_once(kafka: KafkaFixture) -> None:
    producer = Producer(kafka.bootstrap, client_id="test-send-many")

    async def send() -> int:
        return await producer.send_many("unused", [], [])

    try:
        assert asyncio.run(send()) == 0
    finally:
        producer.close()
