"""The index from a unique field's value (an email, a phone, a national id) to the customer id.

A sync keyed by ``email`` (or another field) needs the customer id of each row's key before its
events can be written (events are keyed by customer id). Imports of syncs keyed by customer id
fill this index with the identity fields their rows carry (``INDEXED_FIELDS``), after Kafka
acknowledged the rows. It is a RocksDB database at ``<data_dir>/imports/keys.db``.

Limitation: the index is local to the machine (the data folder) that ran those imports. It is
not built from the log, so an email-keyed import on another machine, or after the data folder
was lost, resolves nothing until a customer-id-keyed import that carries the field runs there.
Customers created through the API are not indexed either.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from pathlib import Path

import rocksdict

from connectors.csv.mapping import INDEXED_FIELDS
from engine.events import ContactUpdate, CustomerUpdate, Payload
from ops.imports.database import open_database


def normalized(field: str, value: str) -> str:
    """The form a value is indexed and looked up in (emails are case-insensitive)."""
    value = value.strip()
    return value.lower() if field == "email" else value


def index_key(field: str, value: str) -> bytes:
    return f"{field}\0{normalized(field, value)}".encode()


def identity_fields(payload: Payload) -> list[tuple[str, str]]:
    """The (field, value) pairs of ``payload`` that belong in the index."""
    found: list[tuple[str, str]] = []
    if isinstance(payload, CustomerUpdate):
        if payload.campaign_id is None:
            for field in INDEXED_FIELDS:
                value = payload.set.get(field)
                if isinstance(value, str) and value.strip():
                    found.append((field, value))
    elif isinstance(payload, ContactUpdate):
        if payload.email:
            found.append(("email", payload.email))
        if payload.phone:
            found.append(("phone", payload.phone))
    return found


class KeyIndex:
    """Field value -> customer id, for resolving the keys of syncs keyed by another field."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._db = open_database(path, read_only=read_only)

    def lookup(self, field: str, value: str) -> str | None:
        """The customer id whose ``field`` is ``value``, or None if no import recorded one."""
        found: bytes | None = self._db.get(index_key(field, value))
        return None if found is None else found.decode()

    def record(self, entries: Iterable[tuple[str, str, str]]) -> None:
        """Store (field, value, customer id) triples in one atomic write."""
        triples = list(entries)
        self.record_keys(
            [index_key(field, value) for field, value, _ in triples], [c.encode() for _, _, c in triples]
        )

    def record_keys(self, keys: Iterable[bytes], customer_ids: Iterable[bytes]) -> None:
        """Store ``index_key``s with their customer ids, already encoded, in one atomic write."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        deque(map(batch.put, keys, customer_ids), maxlen=0)  # the loop in C: an import's hot path
        self._db.write(batch)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> KeyIndex:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
