"""Saving a definition from the admin API: append a new version and answer once this worker has it.

Every save appends an immutable version to ``refract.definitions``; the answer waits (bounded)
until this worker's ``DefinitionsReader`` has taken the version in and compiled it, so a GET right
after a PUT shows it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from streams.app import Worker
from streams.definitions import definition_record

READ_BACK_TIMEOUT_S = 10.0


async def save_definition(
    worker: Worker,
    kind: str,
    definition_id: str,
    version: int,
    body: dict[str, Any],
    *,
    deleted: bool,
    compiled_version: Callable[[], int | None],
) -> None:
    """Append ``version`` and wait until ``compiled_version()`` shows it (None once deleted)."""
    record = definition_record(
        worker.topics.definitions,
        kind,
        definition_id,
        version,
        body,
        deleted=deleted,
        now_ms=worker.clock_ms(),
    )
    await worker.producer.send_batch([record])
    deadline = time.monotonic() + READ_BACK_TIMEOUT_S
    while time.monotonic() < deadline:
        current = compiled_version()
        if (deleted and current is None) or (not deleted and current is not None and current >= version):
            return
        latest = worker.definitions.latest(kind, definition_id)
        if latest is not None and latest.version >= version and not deleted and current is None:
            # Read back but not compiled: the reader logged why; do not wait for it.
            await asyncio.sleep(0.05)
            if compiled_version() is None:
                return
        await asyncio.sleep(0.02)
