"""What each sync last imported for each customer: the digests that make re-imports idempotent.

A RocksDB database (``<data_dir>/imports/digests.db``) maps ``sync id + NUL + customer key`` to
32 bytes: a pre-digest of the row's raw cells (checked before any cell is converted, which is
what makes a re-import of an unchanged file cheap) and the reader's digest of the converted
values (which still recognizes a row whose text changed but whose values did not, e.g. ``034``
and ``34`` in an integer column). Digests are written only after Kafka acknowledged the row's
events, so a crash can make a row be imported twice (its events carry the same ids) but never
skipped. Beside them, per sync, the ``LastFile`` its last import read, which lets a re-import of
the very same file skip reading it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
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


@dataclass(slots=True, frozen=True)
class LastFile:
    """The file a sync's last finished import read, and what came of it.

    While it is the sync's last import, every digest it stored is still there, so the same file
    (same bytes, same mapping: ``mapping`` is the raw pre-digest key) changes no row: a re-import
    can say so without reading a row. Any other import of the sync forgets it first.
    """

    file: str  # BLAKE2b of the file's bytes, hex
    size: int
    mapping: str  # the raw pre-digest key (sync and header), hex
    import_id: str  # whose error report applies
    rows_read: int
    valid: int
    invalid: int
    errors: int


def _last_file_key(sync_id: str) -> bytes:
    # Digest keys start with the sync id, which never starts with a control character.
    return f"\x01last-file\0{sync_id}".encode()


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

    def last_file(self, sync_id: str) -> LastFile | None:
        """What the sync's last finished import of a file recorded, or None."""
        value: bytes | None = self._db.get(_last_file_key(sync_id))
        if value is None:
            return None
        try:
            return LastFile(**orjson.loads(value))
        except (orjson.JSONDecodeError, TypeError):
            return None  # written by another version: as if there were none

    def set_last_file(self, sync_id: str, last: LastFile | None) -> None:
        """Record (or, with None, forget) the sync's last imported file."""
        if last is None:
            self._db.delete(_last_file_key(sync_id))
        else:
            self._db.put(_last_file_key(sync_id), orjson.dumps(asdict(last)))

    def has_sync(self, sync_id: str) -> bool:
        """Whether anything is stored for ``sync_id`` (a sync's first import looks nothing up)."""
        prefix = digest_key(sync_id, "")
        for key in self._db.keys(from_key=prefix):
            return isinstance(key, bytes) and key.startswith(prefix)
        return False

    def put_many(self, keys: Iterable[bytes], values: Iterable[bytes]) -> None:
        """Store ``digest_key``s with their raw pre-digest + row digest, in one atomic write."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        deque(map(batch.put, keys, values), maxlen=0)  # the loop in C: an import's hot path
        self._db.write(batch)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DigestStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
