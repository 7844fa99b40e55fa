"""An import run by the command line (or a benchmark): stores, a producer and an event loop.

The worker's API runs ``run_import`` itself (``service``); this module is for a
process that imports one file and exits.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

from connectors.csv import Sync
from engine.errors import ValidationError
from engine.settings import Settings
from engine.topics import TopicNames
from ops.gc_tuning import throughput_collection
from ops.imports.digests import DigestStore
from ops.imports.key_index import KeyIndex
from ops.imports.runner import (
    ImportProgress,
    ImportResult,
    imports_folder,
    new_import_id,
    run_import,
)
from streams.producer import BulkProducer

DIGESTS_DB = "digests.db"
KEYS_DB = "keys.db"
_IMPORT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")


def import_file(
    path: Path,
    sync: Sync,
    settings: Settings,
    *,
    bootstrap: str | None,
    dry_run: bool = False,
    import_id: str | None = None,
    progress: Callable[[ImportProgress], None] | None = None,
    processes: int = 1,
) -> ImportResult:
    """Import the file at ``path`` into ``settings.namespace`` on the Kafka at ``bootstrap``.

    ``bootstrap`` may be None for a dry run. ``processes`` > 1 converts the rows of a large file
    in that many processes (worth it only with spare CPUs: on two CPUs it gained nothing).
    Raises ``FileRefused`` for a file that cannot be imported at all, before anything is
    produced.
    """
    import_id = import_id or new_import_id()
    if not _IMPORT_ID.match(import_id):
        raise ValidationError(
            f"{import_id!r} is not an import id (letters, digits, '_', '.', '-')", field="import_id"
        )
    folder = imports_folder(settings.data_dir)
    with (
        DigestStore(folder / DIGESTS_DB, read_only=dry_run) as digests,
        KeyIndex(folder / KEYS_DB, read_only=dry_run) as keys,
    ):
        producer = None
        if not dry_run:
            if bootstrap is None:
                raise ValueError("a Kafka bootstrap is needed unless dry_run")
            producer = BulkProducer(bootstrap, client_id=f"refract-import-{import_id}")
        try:
            # A row allocates a few dozen short-lived objects: with CPython's default young
            # threshold (700) the collector took ~9% of an import's CPU.
            with throughput_collection():
                return asyncio.run(
                    run_import(
                        path,
                        sync,
                        producer=producer,
                        topics=TopicNames(settings.namespace),
                        import_id=import_id,
                        digests=digests,
                        keys=keys,
                        folder=folder / import_id,
                        dry_run=dry_run,
                        progress=progress,
                        processes=processes,
                    )
                )
        finally:
            if producer is not None:
                producer.close()
