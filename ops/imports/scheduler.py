"""Scheduled syncs: a worker runs the syncs it owns when their cron expression says so.

Every ``sync_check_interval_s`` the worker looks at its syncs: those stored as definitions
(``refract apply``, ``PUT /v1/syncs/{id}``) and, as before they were, the files
``<data_dir>/syncs/*.yaml`` (a stored sync wins over a file of the same id). A sync with a
``schedule`` is run by the worker owning its events partition (``engine.syncs``), when a fire
time passed since its last recorded run. A run imports, oldest first, the files of its folder
not imported before (each under an import id derived from the file, remembered only once its
import finished), or downloads its URL and imports that; it stops at the first file that fails.
Each run leaves a record (``connectors.syncs.SyncRecords``) and counts in the metrics.

Runs are redone, never skipped, after a crash: a run cut short leaves a ``running`` record that
does not count as done, and the redo imports the same files under the same import ids, so the
events it appends again carry the ids the processor already applied.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from api.imports import ImportRunner
from connectors.csv import FolderSource, Sync, UrlSource, load_sync
from connectors.syncs import (
    SYNCS_FOLDER,
    RunFile,
    RunStatus,
    SyncDefinition,
    SyncRecords,
    SyncRun,
    fetch,
    file_import_id,
    list_folder,
    new_files,
    run_id_for,
)
from engine.errors import RefractError
from engine.syncs import due_fire_ms, owns_sync
from ops.imports.runner import imports_folder
from ops.imports.service import worker_runner
from streams import metrics
from streams.app import Worker
from streams.clock import Clock

log = structlog.get_logger(__name__)

SETTLE_S = 5.0
"""A folder file modified less than this long ago may still be being written: it waits."""
FETCH_TIMEOUT_S = 300.0
"""The longest a URL source may take to send its file."""
_COUNTS = ("rows_read", "imported", "unchanged", "invalid", "events")
_ROW_OUTCOMES = {"rows_read": "read", "imported": "imported", "unchanged": "unchanged", "invalid": "invalid"}


class RunCrashed(RefractError):
    """A run ended by an unexpected error (a bug, or a failure no source or import names)."""

    code = "internal_error"


class SyncScheduler:
    """Runs the due scheduled syncs of one worker, one run at a time."""

    def __init__(
        self,
        *,
        data_dir: Path,
        partitions: int,
        runner: ImportRunner,
        clock_ms: Clock,
        environ: Mapping[str, str] = os.environ,
        settle_s: float = SETTLE_S,
        file_clock_ns: Callable[[], int] = time.time_ns,
        stored_syncs: Callable[[], Mapping[str, SyncDefinition]] = dict,
    ) -> None:
        self.data_dir = data_dir
        self.partitions = partitions
        self.runner = runner
        self.clock_ms = clock_ms
        self.environ = environ
        self.settle_s = settle_s
        self.file_clock_ns = file_clock_ns
        self.stored_syncs = stored_syncs
        self._broken: dict[Path, int] = {}  # sync files that do not load, by mtime (logged once)

    async def run_due(self, owned: set[int]) -> list[SyncRun]:
        """Run each scheduled sync of ``owned`` partitions that is due now; returns the runs."""
        runs = []
        for sync in self._scheduled_syncs():
            if not owns_sync(sync.id, self.partitions, owned):
                continue
            assert sync.schedule is not None
            records = SyncRecords.of(self.data_dir, sync.id)
            fire_ms = due_fire_ms(
                sync.schedule.cron, sync.schedule.timezone, records.last_fire_ms(), self.clock_ms()
            )
            if fire_ms is not None:
                runs.append(await self.run(sync, fire_ms, records))
        return runs

    async def run(self, sync: Sync, fire_ms: int, records: SyncRecords) -> SyncRun:
        """One run of ``sync`` for the fire time ``fire_ms``, recorded and counted."""
        run = SyncRun(
            sync_id=sync.id,
            run_id=run_id_for(fire_ms),
            scheduled_at_ms=fire_ms,
            started_at_ms=_now_ms(),
            status="running",
        )
        records.write(run)
        log.info("sync.started", sync=sync.id, run_id=run.run_id)
        files: list[RunFile] = []
        error: RefractError | None = None
        try:
            if isinstance(sync.source, FolderSource):
                await self._folder_run(sync, sync.source, records, files)
            elif isinstance(sync.source, UrlSource):
                await self._url_run(sync, sync.source, run.run_id, records, files)
        except RefractError as exc:
            error = exc
        except Exception as exc:  # recorded as a failed run; the scheduler goes on
            log.exception("sync.crashed", sync=sync.id, run_id=run.run_id)
            error = RunCrashed(f"{type(exc).__name__}: {exc}")
        counts = {name: sum(getattr(f, name) for f in files) for name in _COUNTS}
        status: RunStatus = "finished"
        if error is not None:
            status = "failed"
        elif not counts["events"] and not counts["invalid"]:
            status = "nothing_new"
        run = replace(
            run,
            status=status,
            finished_at_ms=_now_ms(),
            files=tuple(files),
            error_code=error.code if error else None,
            error_message=error.message if error else None,
            **counts,
        )
        records.write(run)
        metrics.SYNC_RUNS.labels(sync.id, status).inc()
        for name, outcome in _ROW_OUTCOMES.items():
            metrics.SYNC_ROWS.labels(sync.id, outcome).inc(counts[name])
        log.info(
            "sync.ended",
            sync=sync.id,
            run_id=run.run_id,
            status=status,
            files=len(files),
            rows=run.rows_read,
            imported=run.imported,
            error=run.error_code,
        )
        return run

    # --- sources ------------------------------------------------------------------------------

    async def _folder_run(
        self, sync: Sync, source: FolderSource, records: SyncRecords, files: list[RunFile]
    ) -> None:
        folder = Path(source.path)
        listed = list_folder(folder, source.pattern)
        seen = records.seen()
        for file in new_files(listed, seen, now_ns=self.file_clock_ns(), settle_s=self.settle_s):
            await self._import(sync, folder / file.name, file_import_id(sync.id, file), file.name, files)
            records.remember(file)

    async def _url_run(
        self, sync: Sync, source: UrlSource, run_id: str, records: SyncRecords, files: list[RunFile]
    ) -> None:
        records.folder.mkdir(parents=True, exist_ok=True)
        download = records.folder / f"download-{run_id}.csv"
        try:
            await fetch(source, download, environ=self.environ, timeout_s=FETCH_TIMEOUT_S)
            # One import id per fire time: a redo after a crash appends under the same ids.
            await self._import(sync, download, f"{sync.id[:100]}-{run_id}", source.url, files)
        finally:
            download.unlink(missing_ok=True)

    async def _import(self, sync: Sync, path: Path, import_id: str, name: str, files: list[RunFile]) -> None:
        """Import one file and add its outcome to ``files`` (a failed one too, then re-raise)."""
        folder = imports_folder(self.data_dir) / import_id
        counts: dict[str, Any] = {}

        def progress(now: Mapping[str, Any]) -> None:
            counts.update(now)

        try:
            result = await self.runner(path, sync, import_id=import_id, folder=folder, progress=progress)
        except Exception:
            files.append(RunFile(name, import_id, "failed", **_counts(counts)))
            raise
        files.append(RunFile(name, import_id, "finished", **_counts(result)))

    # --- definitions --------------------------------------------------------------------------

    def _scheduled_syncs(self) -> list[Sync]:
        """The scheduled syncs, by id: the stored ones, and the files of ids no stored one has."""
        syncs = {sync.id: sync for sync in self._sync_files()}
        syncs.update((sync_id, stored.sync) for sync_id, stored in self.stored_syncs().items())
        return [
            syncs[sync_id]
            for sync_id in sorted(syncs)
            if syncs[sync_id].schedule is not None and syncs[sync_id].source is not None
        ]

    def _sync_files(self) -> list[Sync]:
        folder = self.data_dir / SYNCS_FOLDER
        if not folder.is_dir():
            return []
        syncs = []
        for path in sorted(folder.glob("*.yaml")):
            try:
                mtime = path.stat().st_mtime_ns
                sync = load_sync(path.read_bytes())
            except (OSError, RefractError) as exc:
                if self._broken.get(path) != mtime:
                    self._broken[path] = mtime
                    log.warning("sync.unreadable", path=str(path), error=str(exc))
                continue
            syncs.append(sync)
        return syncs


def _counts(body: Mapping[str, Any]) -> dict[str, int]:
    return {name: int(body.get(name, 0)) for name in _COUNTS}


def _now_ms() -> int:
    return int(time.time() * 1000)


def install_sync_scheduler(worker: Worker) -> SyncScheduler:
    """Run ``worker``'s due scheduled syncs every ``sync_check_interval_s`` once it is ready."""
    settings = worker.settings
    scheduler = SyncScheduler(
        data_dir=settings.data_dir,
        partitions=settings.partitions,
        runner=worker_runner(worker),
        clock_ms=worker.clock_ms,
        stored_syncs=lambda: worker.definitions.syncs,
    )

    @worker.app.timer(interval=settings.sync_check_interval_s)  # type: ignore[untyped-decorator]
    async def run_due_syncs() -> None:
        if worker.is_ready()[0]:
            await scheduler.run_due(worker.events_partitions())

    return scheduler
