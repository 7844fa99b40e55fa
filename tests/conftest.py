"""Shared fixtures: the real Kafka broker for the session, namespaces, workers as processes."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.topic_admin import drop_namespace
from tests.support.kafka import KafkaFixture
from tests.support.workers import WorkerFactory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaFixture]:
    """The real broker: REFRACT_TEST_KAFKA_BOOTSTRAP if set, else a local one for the session."""
    external = os.environ.get("REFRACT_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield KafkaFixture(external)
        return
    from ops.kafka import LocalKafka

    broker = LocalKafka(tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port())
    status = broker.start()
    try:
        yield KafkaFixture(status.bootstrap)
    finally:
        broker.stop()


@pytest.fixture
def namespace() -> str:
    """A fresh topic namespace (and so consumer group) for one test."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def workers(kafka: KafkaFixture, namespace: str, tmp_path: Path) -> Iterator[WorkerFactory]:
    factory = WorkerFactory(kafka.bootstrap, namespace, tmp_path, free_port)
    try:
        yield factory
    finally:
        factory.stop_all()
        # A suite makes hundreds of namespaces: left behind, their partitions' open files reach
        # the broker's limit (it shuts down at 20,000 here).
        drop_namespace(kafka.bootstrap, namespace)
