"""Creating Refract's topics with the configured partition counts and policies (and deleting
the topics of a namespace made for one benchmark or test run)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import Future

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
    if not wanted:
        return []
    return _settle(admin.create_topics(wanted, request_timeout=timeout_s), "create", "TOPIC_ALREADY_EXISTS")


def namespace_topics(namespace: str, topics: Iterable[str]) -> list[str]:
    """Those of ``topics`` that belong to ``namespace``: its own and its worker group's (faust's)."""
    own, group = f"{namespace}.", f"{namespace}-"
    return sorted(topic for topic in topics if topic.startswith((own, group)))


def drop_namespace(bootstrap: str, namespace: str, timeout_s: float = 30.0) -> list[str]:
    """Delete every topic of ``namespace`` (events, outputs, changelogs): what a benchmark or a
    test made, so that runs do not pile partitions up on the broker.

    Returns the names of the topics deleted. Only for namespaces made for one run: the events of
    a real namespace are its source of truth.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        doomed = namespace_topics(namespace, admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise InfrastructureError(f"cannot reach Kafka at {bootstrap} to delete topics: {exc}") from exc
    if not doomed:
        return []
    return sorted(
        _settle(admin.delete_topics(doomed, operation_timeout=timeout_s), "delete", "UNKNOWN_TOPIC_OR_PART")
    )


def _settle(futures: Mapping[str, Future[None]], verb: str, already: str) -> list[str]:
    """The topics whose admin operation succeeded; ``already`` (e.g. exists) is no failure."""
    done: list[str] = []
    for topic, future in futures.items():
        try:
            future.result()
            done.append(topic)
        except KafkaException as exc:
            if exc.args[0].name() != already:
                raise InfrastructureError(f"could not {verb} topic {topic}: {exc}") from exc
    return done
