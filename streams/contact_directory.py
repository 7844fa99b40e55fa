"""Every worker's in-memory copy of ``<ns>.contacts``: which customer an address belongs to.

The topic is compacted (``engine.contact_index`` says what is in it), so, like the definitions,
each worker reads it whole with a plain confluent-kafka consumer assigned every partition from the
beginning, in a thread of its own, and keeps following it. Lookups are dict reads. ``loaded`` is
set once the topic has been read up to where it ended when the reader started.

Memory: about 150 bytes per address in CPython; ten million customers with an email and a phone
each take some 3 GB on every worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import structlog

from engine.contact_index import ContactIndexRecord, email_key, phone_key
from streams.compacted_topic import CompactedTopicFollower
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


class ContactDirectory(CompactedTopicFollower):
    """Follows ``topic`` from its beginning in a thread; ``customer_for_*`` answer from memory."""

    name = "contacts"

    def __init__(self, bootstrap: str, topic: str, *, poll_timeout_s: float = 0.2) -> None:
        super().__init__(bootstrap, topic, poll_timeout_s=poll_timeout_s)
        self._customers: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._customers)

    def customer_for_phone(self, phone: str) -> str | None:
        return self._customers.get(phone_key(phone))

    def customer_for_email(self, email: str) -> str | None:
        return self._customers.get(email_key(email))

    def take(self, records: Sequence[tuple[bytes | None, bytes | None]]) -> None:
        for key, value in records:
            self.apply_record(key, value)

    def loaded_fields(self) -> dict[str, Any]:
        return {"addresses": len(self._customers)}

    def apply_record(self, key: bytes | None, value: bytes | None) -> None:
        """Take one record of the topic in (a None value is a tombstone)."""
        if key is None:
            return
        address = key.decode("utf-8", "replace")
        if value is None:
            self._customers.pop(address, None)
        else:
            self._customers[address] = value.decode("utf-8", "replace")
