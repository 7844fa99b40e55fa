"""The contact directory on the real broker: read whole at start, then followed, and caught up
on demand with what was written a moment ago."""

from __future__ import annotations

import asyncio

import pytest

from engine.contact_index import contact_index_records
from engine.settings import Settings
from engine.topics import TopicNames
from streams.contact_directory import ContactDirectory, contact_records
from streams.topic_admin import ensure_topics
from tests.support.kafka import KafkaFixture
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kafka


def produce(kafka: KafkaFixture, records: list[tuple[bytes | None, bytes | None, str]]) -> None:
    producer = kafka.producer()
    for key, value, topic in records:
        producer.produce(topic, value, key)
    assert producer.flush(10) == 0


def test_the_directory_loads_the_topic_and_follows_changes_and_tombstones(
    kafka: KafkaFixture, namespace: str
) -> None:
    topic = TopicNames(namespace).contacts
    assert topic in ensure_topics(kafka.bootstrap, Settings(namespace=namespace, partitions=4))
    changes = [
        *contact_index_records(None, None, "Ana@Example.com", "+59899000001", "ana"),
        *contact_index_records(None, None, None, "+59899000002", "bob"),
        # Bob changes his number: the old key is tombstoned.
        *contact_index_records(None, "+59899000002", None, "+59899000003", "bob"),
    ]
    produce(kafka, [(r.key, r.value, r.topic) for r in contact_records(topic, changes)])

    directory = ContactDirectory(kafka.bootstrap, topic, poll_timeout_s=0.1)
    directory.start()
    try:
        assert directory.loaded.wait(30), "the directory did not finish reading the topic"
        assert directory.customer_for_phone("+59899000001") == "ana"
        assert directory.customer_for_email("ana@example.COM") == "ana"
        assert directory.customer_for_phone("+59899000002") is None
        assert directory.customer_for_phone("+59899000003") == "bob"

        later = contact_index_records("ana@example.com", "+59899000001", None, None, "ana")  # erased
        later += contact_index_records(None, None, None, "+59899000004", "carla")
        produce(kafka, [(r.key, r.value, r.topic) for r in contact_records(topic, later)])
        wait_for(lambda: directory.customer_for_phone("+59899000004") == "carla", message="carla's number")
        assert directory.customer_for_phone("+59899000001") is None
        assert directory.customer_for_email("ana@example.com") is None
        assert len(directory) == 2
    finally:
        directory.stop()


def test_an_empty_topic_is_loaded_at_once(kafka: KafkaFixture, namespace: str) -> None:
    ensure_topics(kafka.bootstrap, Settings(namespace=namespace, partitions=2))
    directory = ContactDirectory(kafka.bootstrap, TopicNames(namespace).contacts, poll_timeout_s=0.1)
    directory.start()
    try:
        assert directory.loaded.wait(30)
        assert len(directory) == 0
    finally:
        directory.stop()


def test_catching_up_finds_a_number_written_a_moment_ago(kafka: KafkaFixture, namespace: str) -> None:
    topic = TopicNames(namespace).contacts
    ensure_topics(kafka.bootstrap, Settings(namespace=namespace, partitions=4))
    # A slow follower: left alone it would see new records up to a second late.
    directory = ContactDirectory(kafka.bootstrap, topic, poll_timeout_s=1.0)
    directory.start()
    try:
        assert directory.loaded.wait(30), "the directory did not finish reading the topic"
        assert asyncio.run(directory.catch_up(10)), "an empty topic is caught up at once"
        for i in range(5):
            phone = f"+5989900010{i}"
            added = contact_index_records(None, None, None, phone, f"customer-{i}")
            produce(kafka, [(r.key, r.value, r.topic) for r in contact_records(topic, added)])
            assert asyncio.run(directory.catch_up(10))
            assert directory.customer_for_phone(phone) == f"customer-{i}"  # no waiting needed
    finally:
        directory.stop()


def test_a_directory_that_is_not_reading_does_not_wait_to_catch_up() -> None:
    directory = ContactDirectory("127.0.0.1:1", "unused")
    assert asyncio.run(directory.catch_up(10)) is False
