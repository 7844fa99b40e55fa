"""Creating a namespace's topics, and deleting those of a namespace made for one run."""

from __future__ import annotations

from dataclasses import replace

from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from engine.settings import Settings
from streams.topic_admin import drop_namespace, ensure_topics, namespace_topics
from tests.support.kafka import KafkaFixture
from tests.support.waiting import wait_for


def test_a_namespace_owns_its_topics_and_its_worker_group_topics_only() -> None:
    topics = [
        "t1.events",
        "t1-processor-customers-changelog",
        "t10.events",
        "t10-processor-customers-changelog",
        "t1x.events",
        "other.t1.events",
    ]
    assert namespace_topics("t1", topics) == ["t1-processor-customers-changelog", "t1.events"]


def test_dropping_a_namespace_deletes_its_topics_and_leaves_a_longer_namesake_alone(
    kafka: KafkaFixture, namespace: str
) -> None:
    settings = replace(Settings(), partitions=2)
    created = ensure_topics(kafka.bootstrap, replace(settings, namespace=namespace))
    kept = ensure_topics(kafka.bootstrap, replace(settings, namespace=f"{namespace}0"))
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})

    deleted = drop_namespace(kafka.bootstrap, namespace)

    assert deleted == sorted(created)

    def gone() -> set[str] | None:  # the broker's metadata catches up with the deletion
        remaining = set(admin.list_topics(timeout=10).topics)
        return None if remaining & set(created) else remaining

    remaining = wait_for(gone, timeout_s=30, message="the namespace's topics to disappear")
    assert set(kept) <= remaining
    assert drop_namespace(kafka.bootstrap, namespace) == []  # nothing left: nothing to do
    drop_namespace(kafka.bootstrap, f"{namespace}0")
