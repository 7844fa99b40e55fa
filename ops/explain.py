"""``refract explain --customer ID [--campaign ID]``: a customer's campaign decisions, in plain language.

Reads the customer's partition of ``refract.audit`` (every record there says what was decided and
why: started, sent, suppressed and the reason, deferred, waited, converted...) to its end and
prints one line per decision, oldest first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, TopicPartition

from engine.campaigns.audit import Decision, decisions_of, describe
from engine.errors import InfrastructureError
from schemas.codec import decode
from streams.partitions import partition_for


def read_decisions(
    bootstrap: str,
    topic: str,
    customer_id: str,
    partitions: int,
    *,
    campaign_id: str | None = None,
    timeout_s: float = 10.0,
) -> Iterator[Decision]:
    """The customer's decisions now in ``topic``, oldest first (only their own partition is read)."""
    partition = partition_for(customer_id, partitions)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"refract-explain-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    key = customer_id.encode("utf-8")
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
        if high <= low:
            return
        consumer.assign([TopicPartition(topic, partition, low)])
        while True:
            message = consumer.poll(timeout_s)
            if message is None:
                raise InfrastructureError(f"reading {topic} stalled; is Kafka at {bootstrap} up?")
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return
                continue
            value = message.value()
            if message.key() == key and value is not None:
                name, record = decode(value)
                if name == "Decision":
                    for decision in decisions_of(record):
                        if campaign_id is None or _about(decision, campaign_id):
                            yield decision
            if (message.offset() or 0) + 1 >= high:
                return
    finally:
        consumer.close()


def _about(decision: Decision, campaign_id: str) -> bool:
    """A decision about ``campaign_id``: its own, or a page view that showed or withheld it."""
    if decision.campaign_id == campaign_id:
        return True
    details = decision.details
    listed = f"{details.get('shown', '')},{details.get('control', '')}"
    return any(item.split(":")[1:2] == [campaign_id] for item in listed.split(",") if item)


def explain_lines(decisions: list[Decision], timezone: str = "UTC") -> list[str]:
    return [describe(decision, timezone) for decision in decisions]
