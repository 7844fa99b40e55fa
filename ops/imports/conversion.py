"""Turning the raw records of changed rows into encoded events, here or in a pool of processes.

This is the expensive part of an import (converting cells, building the payload, Avro encoding:
tens of microseconds a row, all of it holding the GIL), and it needs nothing but the row: so a
large file can spread it over processes while the importing process reads the file, checks
pre-digests and produces. A ``Converter`` runs the same code either way, on chunks of rows, and
answers one ``Converted`` (or the row's errors) per row, in order.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple, TypeAlias

from connectors.csv import EventIds, RowError, Sync, event_source
from connectors.csv.plan import RowPlan
from ops.imports.digests import DIGEST_BYTES
from ops.imports.key_index import identity_fields
from schemas.codec import encode_event

Pending: TypeAlias = tuple[int, list[str], "str | None", "bytes | None"]
"""A row to convert: (line, cells, resolved customer id or None, stored row digest or None)."""


class Converted(NamedTuple):
    """A valid row: its key, customer, digest, and its encoded events (None when the digest is
    the stored one: the row is unchanged) with the identity fields to index.

    A named tuple rather than a frozen dataclass: one is made per row, and a frozen dataclass
    costs several times more to build.
    """

    line: int
    key: str
    customer: str
    row_digest: bytes
    values: tuple[bytes, ...] | None
    identities: tuple[tuple[str, str], ...]


Outcome: TypeAlias = Converted | list[RowError]


def bound_digest(row_digest: bytes, customer_id: str) -> bytes:
    """A row digest that also changes when the key resolves to another customer."""
    return hashlib.blake2b(row_digest + customer_id.encode(), digest_size=DIGEST_BYTES).digest()


class Converter:
    """Rows of one file (its ``columns``) read with ``sync`` into the events of ``import_id``."""

    def __init__(
        self, sync: Sync, columns: tuple[str, ...], import_id: str, now_ms: int, *, index: bool
    ) -> None:
        self._sync = sync
        positions = {name: columns.index(name) for name in sync.file_columns}
        self._plan = RowPlan(sync, positions, len(columns))
        self._event_ids = EventIds(sync.id, import_id)
        self._source = event_source(sync.id)
        self._now_ms = now_ms
        self._index = index

    def convert(self, chunk: list[Pending]) -> list[Outcome]:
        sync = self._sync
        parse, build, digest = self._plan.parse, self._plan.build, self._plan.digest
        resolve, field_name, key_column = sync.key.needs_resolution, sync.key.field, sync.key.column
        event_ids, source, now_ms, index = self._event_ids, self._source, self._now_ms, self._index
        outcomes: list[Outcome] = []
        for line, record, customer, stored in chunk:
            parsed = parse(line, record)
            if isinstance(parsed, list):
                outcomes.append(parsed)
                continue
            key, values = parsed
            if customer is None:
                outcomes.append([RowError(line, key_column, key, f"no customer has {field_name} {key}")])
                continue
            row_digest = digest(values)
            if resolve:
                row_digest = bound_digest(row_digest, customer)
            if stored == row_digest:
                outcomes.append(Converted(line, key, customer, row_digest, None, ()))
                continue
            # A row is one event (only products rows, read by CsvReader, fold into several): the
            # Envelope ``envelope_for`` makes of it, encoded without building the row or Envelope.
            payload = build(values)
            value = encode_event(event_ids(line), customer, now_ms, now_ms, source, payload)
            identities = tuple(identity_fields(payload)) if index else ()
            outcomes.append(Converted(line, key, customer, row_digest, (value,), identities))
        return outcomes


# --- in a pool's processes -------------------------------------------------------------------------

_converter: Converter | None = None


def start_process(sync: Sync, columns: tuple[str, ...], import_id: str, now_ms: int, index: bool) -> None:
    """The pool's initializer: compile the sync once per process."""
    global _converter
    _converter = Converter(sync, columns, import_id, now_ms, index=index)


def convert_in_process(chunk: list[Pending]) -> list[Outcome]:
    assert _converter is not None, "start_process was not run in this process"
    return _converter.convert(chunk)
