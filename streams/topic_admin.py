"""Creating Refract's topics with the configured partition counts and policies."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from engine.errors import ConfigurationError, InfrastructureError
from engine.settings import Settings
from engine.topics import TopicNames

WEEK_MS = 7 * 24 * 3600 * 1000


def topic_configs(names: TopicNames) -> dict[str, dict[str, str]]:
    """The Kafka configuration of each topic (see the table in DESIGN.md)."""
    deleted = {"cleanup.policy": "delete"}
    return {
        names.events: {"cleanup.policy": "delete", "retention.ms": str(-1)},
        names.definitions: {"cleanup.policy": "compact"},
        names.deliveries: {**deleted, "retention.ms": str(4 * WEEK_MS)},
        names.segment_changes: {**deleted, "retention.ms": str(4 * WEEK_MS)},
        names.audit: {**deleted, "retention.ms": str(52 * WEEK_MS)},
        names.dead_letters: {**deleted, "retention.ms": str(8 * WEEK_MS)},
        names.contacts: {"cleanup.policy": "compact"},
    }


def ensure_topics(bootstrap: str, settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics; check that existing customer-keyed ones are co-partitioned.

    Returns the names of the topics it created.
    """
    names = TopicNames(settings.namespace)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise InfrastructureError(
            f"cannot reach Kafka at {bootstrap} to create topics: {exc}. Is the broker running"
            " (refract kafka status)?"
        ) from exc
    for topic in names.customer_keyed():
        if topic in existing and len(existing[topic].partitions) != settings.partitions:
            raise ConfigurationError(
                f"topic {topic} has {len(existing[topic].partitions)} partitions but partitions is"
                f" {settings.partitions}: customer-keyed topics must be co-partitioned."
                " Set REFRACT_PARTITIONS to match, or use another REFRACT_NAMESPACE."
            )
    wanted = [
        NewTopic(
            topic,
            num_partitions=settings.partitions if topic != names.definitions else 1,
            replication_factor=settings.replication_factor,
            config=config,
        )
        for topic, config in topic_configs(names).items()
        if topic not in existing
    ]
    created: list[str] = []
    if not wanted:
        return created
    for topic, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
        try:
            future.result()
            created.append(topic)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise InfrastructureError(f"could not create topic {topic}: {exc}") from exc
    return created
