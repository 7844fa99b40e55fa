"""What a worker remembers of a scheduled sync: its runs, and the folder files it imported.

Both live under ``<data_dir>/imports/syncs/<sync>/``: ``runs/<run_id>.json`` (one record per
run, written when it starts and again when it ends) and ``seen.json`` (the folder files already
imported). A run's id is its fire time in UTC (``20261127T0200Z``): runs sort by name, and a
run redone after a crash overwrites the record the crashed one left as ``running``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from connectors.syncs.folder import SourceFile

RunStatus = Literal["running", "finished", "failed", "nothing_new"]
KEEP_RUNS = 1000
"""Run records kept per sync; older ones are deleted as new ones are written."""
_RUNS = "runs"
_SEEN = "seen.json"


def run_id_for(fire_ms: int) -> str:
    """The id of the run for the fire time ``fire_ms``: that minute in UTC."""
    return datetime.fromtimestamp(fire_ms / 1000, UTC).strftime("%Y%m%dT%H%MZ")


@dataclass(slots=True, frozen=True)
class RunFile:
    """One file a run imported (or tried to): its import id leads to ``GET /v1/imports/{id}``."""

    name: str
    import_id: str
    status: Literal["finished", "failed"]
    rows_read: int = 0
    imported: int = 0
    unchanged: int = 0
    invalid: int = 0
    events: int = 0


@dataclass(slots=True, frozen=True)
class SyncRun:
    """The outcome of one run of a scheduled sync (``finished_at_ms`` None while running).

    ``nothing_new``: the run appended no event and found no invalid row (no new file in the
    folder, or a download whose rows were all unchanged). ``error_code``/``error_message`` say
    why a ``failed`` run failed.
    """

    sync_id: str
    run_id: str
    scheduled_at_ms: int
    started_at_ms: int
    status: RunStatus
    finished_at_ms: int | None = None
    rows_read: int = 0
    imported: int = 0
    unchanged: int = 0
    invalid: int = 0
    events: int = 0
    error_code: str | None = None
    error_message: str | None = None
    files: tuple[RunFile, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> SyncRun:
        files = tuple(RunFile(**item) for item in body.get("files", ()))
        return cls(**{**body, "files": files})


class SyncRecords:
    """The run records and the seen files of one sync in one data folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runs = folder / _RUNS

    @classmethod
    def of(cls, data_dir: Path, sync_id: str) -> SyncRecords:
        return cls(data_dir / "imports" / "syncs" / sync_id)

    # --- runs ---------------------------------------------------------------------------------

    def write(self, run: SyncRun) -> None:
        self.runs.mkdir(parents=True, exist_ok=True)
        _write_atomically(
            self.runs / f"{run.run_id}.json", orjson.dumps(run.to_json(), option=orjson.OPT_INDENT_2)
        )
        names = self._names()
        for old in names[: max(0, len(names) - KEEP_RUNS)]:
            (self.runs / old).unlink(missing_ok=True)

    def recent(self, limit: int) -> list[SyncRun]:
        """The newest ``limit`` runs, newest first."""
        return [self._read(name) for name in reversed(self._names()[-limit:])]

    def last_fire_ms(self) -> int | None:
        """The fire time of the newest run that ended (a ``running`` one was cut by a crash)."""
        for name in reversed(self._names()):
            run = self._read(name)
            if run.status != "running":
                return run.scheduled_at_ms
        return None

    def _names(self) -> list[str]:
        if not self.runs.is_dir():
            return []
        return sorted(p.name for p in self.runs.glob("*.json"))

    def _read(self, name: str) -> SyncRun:
        return SyncRun.from_json(orjson.loads((self.runs / name).read_bytes()))

    # --- seen files ---------------------------------------------------------------------------

    def seen(self) -> set[SourceFile]:
        path = self.folder / _SEEN
        if not path.is_file():
            return set()
        return {SourceFile(*item) for item in orjson.loads(path.read_bytes())}

    def remember(self, file: SourceFile) -> None:
        """Add ``file`` to the seen files (call once its import finished)."""
        seen = sorted(self.seen() | {file})
        self.folder.mkdir(parents=True, exist_ok=True)
        body = [[f.name, f.size, f.mtime_ns] for f in seen]
        _write_atomically(self.folder / _SEEN, orjson.dumps(body))


def _write_atomically(path: Path, content: bytes) -> None:
    """Write then rename: a crash leaves the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)
