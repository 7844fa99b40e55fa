"""Talking to the test broker directly: producing raw records, reading a topic to its end."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition


@dataclass(slots=True, frozen=True)
class KafkaFixture:
    bootstrap: str

    def producer(self) -> Producer:
        return Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "partitioner": "murmur2_random",
                "linger.ms": 5,
            }
        )

    def read_all(
        self, topic: str, timeout_s: float = 10.0
    ) -> list[tuple[bytes | None, bytes | None, int, int]]:
        """Every record now in ``topic``: (key, value, partition, offset)."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"test-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        try:
            metadata = consumer.list_topics(topic, timeout=timeout_s)
            partitions = list(metadata.topics[topic].partitions)
            ends = {}
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
                if high > low:
                    ends[p] = high
            if not ends:
                return []
            consumer.assign([TopicPartition(topic, p, 0) for p in ends])
            records = []
            remaining = dict(ends)
            while remaining:
                message = consumer.poll(timeout_s)
                if message is None:
                    raise AssertionError(f"reading {topic} stalled with {remaining} left")
                if message.error():
                    continue
                records.append((message.key(), message.value(), message.partition(), message.offset()))
                if message.offset() + 1 >= remaining.get(message.partition(), 0):
                    remaining.pop(message.partition(), None)
            return records
        finally:
            consumer.close()
