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
    source = f"sync:{sync_id}"
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
