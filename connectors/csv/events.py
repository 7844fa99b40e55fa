"""Envelopes for the events of an imported row, with ids that a re-run of the import repeats.

An event id is derived from (sync id, import id, line, position in the row), so an import that
is interrupted and redone under the same import id appends events the processor recognizes as
already applied, instead of new ones.
"""

from __future__ import annotations

import hashlib

import orjson

from connectors.csv.reader import RowResult
from engine.events import Envelope


def event_id(sync_id: str, import_id: str, line: int, index: int = 0) -> str:
    """The id of the ``index``-th event of the row at ``line`` (32 hex digits)."""
    material = orjson.dumps([sync_id, import_id, line, index])
    return hashlib.blake2b(material, digest_size=16).hexdigest()


def event_source(sync_id: str) -> str:
    """The ``source`` of the events a sync imports."""
    return f"sync:{sync_id}"


class EventIds:
    """``event_id`` for the rows of one import, with the part common to them hashed once."""

    __slots__ = ("_common",)

    def __init__(self, sync_id: str, import_id: str) -> None:
        # The material is the JSON list [sync_id, import_id, line, index]: its common beginning.
        opening = orjson.dumps([sync_id, import_id])[:-1] + b","
        self._common = hashlib.blake2b(opening, digest_size=16)

    def __call__(self, line: int, index: int = 0) -> str:
        hasher = self._common.copy()
        hasher.update(b"%d,%d]" % (line, index))
        return hasher.hexdigest()


def envelope_for(
    row: RowResult,
    sync_id: str,
    import_id: str,
    now_ms: int,
    *,
    customer_id: str | None = None,
) -> list[Envelope]:
    """The envelopes of ``row``'s events, received and occurred at ``now_ms``.

    ``customer_id`` defaults to the row's key; give it when the sync's key is another field
    (``Key.needs_resolution``) and the caller resolved it.
    """
    customer = row.customer_key if customer_id is None else customer_id
    source = event_source(sync_id)
    return [
        Envelope(
            event_id=event_id(sync_id, import_id, row.line, index),
            customer_id=customer,
            occurred_at_ms=now_ms,
            received_at_ms=now_ms,
            source=source,
            payload=payload,
        )
        for index, payload in enumerate(row.events)
    ]
