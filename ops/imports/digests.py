"""What each sync last imported for each customer: the digests that make re-imports idempotent.

A RocksDB database (``<data_dir>/imports/digests.db``) maps ``sync id + NUL + customer key`` to
32 bytes: a pre-digest of the row's raw cells (checked before any cell is converted, which is
what makes a re-import of an unchanged file cheap) and the reader's digest of the converted
values (which still recognizes a row whose text changed but whose values did not, e.g. ``034``
and ``34`` in an integer column). Digests are written only after Kafka acknowledged the row's
events, so a crash can make a row be imported twice (its events carry the same ids) but never
skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import rocksdict

from ops.imports.database import open_database

DIGEST_BYTES = 16
NO_DIGEST = bytes(DIGEST_BYTES)
"""The pre-digest stored for a row read by a path that has no raw cells (products)."""


@dataclass(slots=True, frozen=True)
class StoredDigest:
    """What an earlier import stored for one customer of one sync."""

    raw: bytes
    row: bytes


def digest_key(sync_id: str, customer_key: str) -> bytes:
    return f"{sync_id}\0{customer_key}".encode()


class DigestStore:
    """The digest database; open it for one import (RocksDB lets one process hold it)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._db = open_database(path, read_only=read_only)

    def get(self, sync_id: str, customer_key: str) -> StoredDigest | None:
        value: bytes | None = self._db.get(digest_key(sync_id, customer_key))
        if value is None:
            return None
        return StoredDigest(value[:DIGEST_BYTES], value[DIGEST_BYTES:])

    def get_raw(self, key: bytes) -> bytes | None:
        """The stored 32 bytes under an already built ``digest_key`` (the import's hot path)."""
        value: bytes | None = self._db.get(key)
        return value

    def put_many(self, entries: Iterable[tuple[bytes, bytes]]) -> None:
        """Store (``digest_key``, raw pre-digest + row digest) pairs in one atomic write."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in entries:
            batch.put(key, value)
        self._db.write(batch)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DigestStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

