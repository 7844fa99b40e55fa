"""The import runner of a worker's API (``api.imports``): ``run_import`` next to the worker.

An import is CPU-bound for as long as the file takes to read: it runs in a thread with its own
event loop, so the worker's loop keeps serving requests and folding events (they still share
one CPU through the GIL). Each import has its own ``BulkProducer``: it learns what Kafka
acknowledged by draining its producer, which the worker's shared one could not be. The digest
store and the key index are opened per import, by one import at a time per data folder: the
API's imports and the scheduler's share the lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

from api.imports import ImportRunner, Progress, use_import_runner
from connectors.csv import Sync
from ops.imports.digests import DigestStore
from ops.imports.key_index import KeyIndex
from ops.imports.runner import ImportProgress, imports_folder, run_import
from ops.imports.session import DIGESTS_DB, KEYS_DB
from streams.app import Worker
from streams.producer import BulkProducer

_locks: dict[Path, asyncio.Lock] = {}


def worker_runner(worker: Worker) -> ImportRunner:
    """The runner ``api.imports`` (and the sync scheduler) calls on ``worker``."""
    stores = imports_folder(worker.settings.data_dir)
    one_at_a_time = _locks.setdefault(stores, asyncio.Lock())

    async def runner(
        upload: Path, sync: Sync, *, import_id: str, folder: Path, progress: Progress
    ) -> Mapping[str, Any]:
        def report(now: ImportProgress) -> None:
            progress(
                {
                    "rows_read": now.rows_read,
                    "imported": now.imported,
                    "unchanged": now.unchanged,
                    "invalid": now.invalid,
                    "events": now.events,
                }
            )

        async def in_thread() -> Mapping[str, Any]:
            producer = BulkProducer(
                worker.bootstrap, client_id=f"{worker.settings.group_id}-import-{import_id}"
            )
            with (
                DigestStore(stores / DIGESTS_DB) as digests,
                KeyIndex(stores / KEYS_DB) as keys,
                closing(producer),
            ):
                result = await run_import(
                    upload,
                    sync,
                    producer=producer,
                    topics=worker.topics,
                    import_id=import_id,
                    digests=digests,
                    keys=keys,
                    folder=folder,
                    progress=report,
                )
            return result.to_json()

        async with one_at_a_time:
            return await asyncio.to_thread(asyncio.run, in_thread())

    return runner


def enable_api_imports() -> None:
    """Let workers started by this process run ``POST /v1/imports/{sync}``."""
    use_import_runner(worker_runner)
