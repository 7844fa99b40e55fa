"""Following a small compacted topic whole, in a thread: every worker keeps its own copy in memory.

Definitions and the contact index are read this way: a plain confluent-kafka consumer, assigned
every partition from the beginning (no consumer group: every worker must see every record),
kept following. ``loaded`` is set once the topic has been read up to where it ended at start.
Subclasses take records in with ``take`` (called in the thread, once per polled batch).
``catch_up`` waits until the copy holds every record written before it was called, for a reader
that must see a record appended a moment ago (a STOP from a phone number just added).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

log = structlog.get_logger(__name__)


class CompactedTopicFollower:
    name = "topic"  # names the thread, the consumer group and the log events

    def __init__(self, bootstrap: str, topic: str, *, poll_timeout_s: float = 0.2) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._poll_timeout_s = poll_timeout_s
        self.loaded = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Asked for by ``catch_up``, served by the thread: each event with the offsets to reach.
        self._catch_up_asked: list[threading.Event] = []
        self._catching_up: list[tuple[dict[int, int], threading.Event]] = []
        self._asked_lock = threading.Lock()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"refract-{self.name}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    async def catch_up(self, within_s: float) -> bool:
        """Wait until every record in the topic when called has been taken in (True), or
        ``within_s`` seconds (False). False at once when no thread is reading the topic."""
        if self._thread is None or not self._thread.is_alive():
            return False
        caught_up = threading.Event()
        with self._asked_lock:
            self._catch_up_asked.append(caught_up)
        return await asyncio.get_running_loop().run_in_executor(None, caught_up.wait, within_s)

    def take(self, records: Sequence[tuple[bytes | None, bytes | None]]) -> None:
        """Take a batch of (key, value) records in; a None value is a tombstone."""
        raise NotImplementedError

    def loaded_fields(self) -> dict[str, Any]:
        """What the ``<name>.loaded`` log event says."""
        return {}

    def _run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": f"refract-{self.name}-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            partitions = self._assign(consumer)
            at_end: set[int] = set()
            while not self._stopping.is_set():
                records: list[tuple[bytes | None, bytes | None]] = []
                for message in consumer.consume(1000, self._poll_timeout_s):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            at_end.add(message.partition() or 0)
                        else:
                            log.warning(f"{self.name}.read_error", error=str(error))
                        continue
                    records.append((message.key(), message.value()))
                if records:
                    self.take(records)
                if not self.loaded.is_set() and at_end >= partitions:
                    self.loaded.set()
                    log.info(f"{self.name}.loaded", **self.loaded_fields())
                if self._catch_up_asked or self._catching_up:
                    self._serve_catch_ups(consumer, partitions)
        except Exception:
            log.exception(f"{self.name}.reader_failed")
            raise
        finally:
            consumer.close()

    def _serve_catch_ups(self, consumer: Consumer, partitions: set[int]) -> None:
        """Note where the topic ends for new ``catch_up`` calls; release those now read up to it."""
        with self._asked_lock:
            asked, self._catch_up_asked = self._catch_up_asked, []
        if asked:
            try:
                ends = {}
                for p in partitions:
                    low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p), 5.0, False)
                    ends[p] = high if high > low else 0  # nothing left to read: caught up
            except KafkaException as exc:
                log.warning(f"{self.name}.catch_up_failed", error=str(exc))
                return  # they wait out their time, and find what was read by then
            self._catching_up.extend((ends, event) for event in asked)
        positions = consumer.position([TopicPartition(self.topic, p) for p in partitions])
        read = {tp.partition: tp.offset for tp in positions}
        waiting = []
        for ends, event in self._catching_up:
            # A partition not read yet has no position (negative), so only an empty one counts.
            if all(end == 0 or read.get(p, -1) >= end for p, end in ends.items()):
                event.set()
            else:
                waiting.append((ends, event))
        self._catching_up = waiting

    def _assign(self, consumer: Consumer) -> set[int]:
        while not self._stopping.is_set():
            metadata = consumer.list_topics(self.topic, timeout=10.0)
            topic = metadata.topics.get(self.topic)
            if topic is not None and topic.error is None and topic.partitions:
                partitions = set(topic.partitions)
                consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
                return partitions
            time.sleep(0.5)
        return set()
