"""Every worker's in-memory copy of ``<ns>.contacts``: which customer an address belongs to.

The topic is compacted (``engine.contact_index`` says what is in it), so, like the definitions,
each worker reads it whole with a plain confluent-kafka consumer assigned every partition from the
beginning, in a thread of its own, and keeps following it. Lookups are dict reads. ``loaded`` is
set once the topic has been read up to where it ended when the reader started.

Memory: about 150 bytes per address in CPython; ten million customers with an email and a phone
each take some 3 GB on every worker.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from engine.contact_index import ContactIndexRecord, email_key, phone_key
from streams.producer import OutRecord

log = structlog.get_logger(__name__)


def contact_records(topic: str, records: Iterable[ContactIndexRecord]) -> list[OutRecord]:
    """What to produce to ``topic`` (the contacts topic) for ``engine.contact_index`` records."""
    return [
        OutRecord(
            topic,
            record.key.encode("utf-8"),
            record.customer_id.encode("utf-8") if record.customer_id is not None else None,
        )
        for record in records
    ]


class ContactDirectory:
    """Follows ``topic`` from its beginning in a thread; ``customer_for_*`` answer from memory."""

    def __init__(self, bootstrap: str, topic: str, *, poll_timeout_s: float = 0.2) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._poll_timeout_s = poll_timeout_s
        self._customers: dict[str, str] = {}
        self.loaded = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._customers)

    def customer_for_phone(self, phone: str) -> str | None:
        return self._customers.get(phone_key(phone))

    def customer_for_email(self, email: str) -> str | None:
        return self._customers.get(email_key(email))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="refract-contacts", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": f"refract-contacts-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            partitions = self._assign(consumer)
            at_end: set[int] = set()
            while not self._stopping.is_set():
                for message in consumer.consume(1000, self._poll_timeout_s):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            at_end.add(message.partition() or 0)
                        else:
                            log.warning("contacts.read_error", error=str(error))
                        continue
                    self.apply_record(message.key(), message.value())
                if not self.loaded.is_set() and at_end >= partitions:
                    self.loaded.set()
                    log.info("contacts.loaded", addresses=len(self._customers))
        except Exception:
            log.exception("contacts.reader_failed")
            raise
        finally:
            consumer.close()

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

    def apply_record(self, key: bytes | None, value: bytes | None) -> None:
        """Take one record of the topic in (a None value is a tombstone)."""
        if key is None:
            return
        address = key.decode("utf-8", "replace")
        if value is None:
            self._customers.pop(address, None)
        else:
            self._customers[address] = value.decode("utf-8", "replace")
