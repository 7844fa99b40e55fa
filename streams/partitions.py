"""Which partition a customer id lands in: Kafka's default (murmur2) partitioner, as producers use."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for(customer_id: str, partitions: int) -> int:
    hashed: int = murmur2(customer_id.encode("utf-8"))
    return (hashed & 0x7FFFFFFF) % partitions
