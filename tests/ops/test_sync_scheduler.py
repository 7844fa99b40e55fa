"""The sync scheduler with a recording import runner: when it runs, what it imports, what it records."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.imports import Progress
from connectors.csv import FileRefused, Sync
from connectors.syncs import SyncDefinition, SyncRecords, SyncRun, sync_body, sync_from_body
from engine.syncs import sync_partition
from ops.imports.scheduler import SyncScheduler
from streams import metrics
from tests.support.file_server import FileServer

MINUTE_MS = 60_000
START_MS = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE_MS  # on a whole minute
OLD_NS = (START_MS - 3600_000) * 1_000_000


class RecordingRunner:
    """Counts each file's rows as imported (or raises for a file named ``bad*``)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def __call__(
        self, upload: Path, sync: Sync, *, import_id: str, folder: Path, progress: Progress
    ) -> Mapping[str, Any]:
        self.calls.append((upload.read_text().splitlines()[1], import_id))
        if upload.name.startswith("bad"):
            raise FileRefused("the header lacks customer_id")
        rows = len(upload.read_text().splitlines()) - 1
        return {"rows_read": rows, "imported": rows, "unchanged": 0, "invalid": 0, "events": rows}


class Clock:
    def __init__(self) -> None:
        self.now_ms = START_MS

    def __call__(self) -> int:
        return self.now_ms


def sync_yaml(data_dir: Path, sync_id: str, source: str) -> None:
    (data_dir / "syncs").mkdir(parents=True, exist_ok=True)
    (data_dir / "syncs" / f"{sync_id}.yaml").write_text(
        f"id: {sync_id}\nkind: attributes\nkey: customer_id\ncolumns: [city]\n"
        f'schedule: {{cron: "* * * * *"}}\nsource: {source}\n'
    )


def drop(folder: Path, name: str, first_row: str, mtime_ns: int = OLD_NS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"customer_id,city\n{first_row}\n")
    os.utime(folder / name, ns=(mtime_ns, mtime_ns))


def scheduler(data_dir: Path, runner: RecordingRunner, clock: Clock, **extra: Any) -> SyncScheduler:
    return SyncScheduler(
        data_dir=data_dir,
        partitions=4,
        runner=runner,
        clock_ms=clock,
        file_clock_ns=lambda: START_MS * 1_000_000,
        **extra,
    )


ALL = {0, 1, 2, 3}


@pytest.fixture
def folder_sync(tmp_path: Path) -> Path:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    sync_yaml(tmp_path / "data", "customers", f"{{folder: {incoming}}}")
    return incoming


async def test_a_new_file_is_imported_once_and_the_next_run_has_nothing_new(
    tmp_path: Path, folder_sync: Path
) -> None:
    runner, clock = RecordingRunner(), Clock()
    scheduling = scheduler(tmp_path / "data", runner, clock)
    drop(folder_sync, "day1.csv", "c1,Madrid")
    [first] = await scheduling.run_due(ALL)
    assert (first.status, first.rows_read, first.imported, [f.name for f in first.files]) == (
        "finished",
        1,
        1,
        ["day1.csv"],
    )
    assert await scheduling.run_due(ALL) == []  # no fire time since
    clock.now_ms += MINUTE_MS
    [second] = await scheduling.run_due(ALL)
    assert (second.status, second.files, second.events) == ("nothing_new", (), 0)
    assert len(runner.calls) == 1
    records = SyncRecords.of(tmp_path / "data", "customers")
    assert [run.run_id for run in records.recent(10)] == [second.run_id, first.run_id]
    assert records.recent(10)[1] == first


async def test_files_are_imported_oldest_first_and_one_still_being_written_waits(
    tmp_path: Path, folder_sync: Path
) -> None:
    runner, clock = RecordingRunner(), Clock()
    drop(folder_sync, "b.csv", "c2,Lyon", OLD_NS)
    drop(folder_sync, "a.csv", "c3,Porto", OLD_NS + 1000)
    drop(folder_sync, "c.csv", "c4,Rome", START_MS * 1_000_000 - 1_000_000_000)  # 1 s ago
    await scheduler(tmp_path / "data", runner, clock).run_due(ALL)
    assert [row for row, _ in runner.calls] == ["c2,Lyon", "c3,Porto"]


async def test_only_the_worker_owning_the_syncs_partition_runs_it(tmp_path: Path, folder_sync: Path) -> None:
    runner, clock = RecordingRunner(), Clock()
    drop(folder_sync, "day1.csv", "c1,Madrid")
    owner = sync_partition("customers", 4)
    assert await scheduler(tmp_path / "data", runner, clock).run_due(ALL - {owner}) == []
    assert len(await scheduler(tmp_path / "data", runner, clock).run_due({owner})) == 1


async def test_a_failing_file_fails_the_run_stops_it_and_is_tried_again_next_time(
    tmp_path: Path, folder_sync: Path
) -> None:
    runner, clock = RecordingRunner(), Clock()
    scheduling = scheduler(tmp_path / "data", runner, clock)
    drop(folder_sync, "bad.csv", "c1,Madrid", OLD_NS)
    drop(folder_sync, "later.csv", "c2,Lyon", OLD_NS + 1000)
    failures = metrics.SYNC_RUNS.labels("customers", "failed")._value.get()
    [run] = await scheduling.run_due(ALL)
    assert (run.status, run.error_code, run.error_message) == (
        "failed",
        "file_refused",
        "the header lacks customer_id",
    )
    assert [(f.name, f.status) for f in run.files] == [("bad.csv", "failed")]
    assert metrics.SYNC_RUNS.labels("customers", "failed")._value.get() == failures + 1
    clock.now_ms += MINUTE_MS
    await scheduling.run_due(ALL)
    assert [row for row, _ in runner.calls] == ["c1,Madrid", "c1,Madrid"]


async def test_a_run_cut_by_a_crash_is_redone_under_the_same_run_and_import_ids(
    tmp_path: Path, folder_sync: Path
) -> None:
    runner, clock = RecordingRunner(), Clock()
    drop(folder_sync, "day1.csv", "c1,Madrid")
    records = SyncRecords.of(tmp_path / "data", "customers")
    [done] = await scheduler(tmp_path / "data", runner, clock).run_due(ALL)
    # As if the worker died while importing: the record says running, the file is not seen.
    records.write(SyncRun("customers", done.run_id, done.scheduled_at_ms, done.started_at_ms, "running"))
    (records.folder / "seen.json").unlink()
    [redo] = await scheduler(tmp_path / "data", runner, clock).run_due(ALL)
    assert (redo.run_id, redo.status) == (done.run_id, "finished")
    assert runner.calls[0][1] == runner.calls[1][1]
    assert [run.status for run in records.recent(10)] == ["finished"]


async def test_a_url_source_with_a_wrong_password_gives_a_failed_run_saying_401(tmp_path: Path) -> None:
    runner, clock = RecordingRunner(), Clock()
    with FileServer(username="refract", password="s3cret") as server:
        server.put("customers.csv", b"customer_id,city\nc1,Madrid\n")
        auth = "{type: basic, username: refract, password_env: FILES_PASSWORD}"
        source = f"{{url: '{server.url('customers.csv')}', auth: {auth}}}"
        sync_yaml(tmp_path / "data", "remote", source)
        environ = {"FILES_PASSWORD": "s3cret"}
        scheduling = scheduler(tmp_path / "data", runner, clock, environ=environ)
        [ok] = await scheduling.run_due(ALL)
        environ["FILES_PASSWORD"] = "nope"
        clock.now_ms += MINUTE_MS
        [refused] = await scheduling.run_due(ALL)
    assert (ok.status, ok.imported, ok.files[0].import_id) == ("finished", 1, f"remote-{ok.run_id}")
    assert refused.status == "failed"
    assert refused.error_code == "source_unauthorized"
    assert refused.error_message is not None
    assert refused.error_message.startswith("the source answered 401 Unauthorized: check FILES_PASSWORD")
    assert not list((tmp_path / "data" / "imports" / "syncs" / "remote").glob("download-*"))


async def test_syncs_without_a_schedule_or_that_do_not_load_are_left_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "syncs").mkdir(parents=True)
    (data_dir / "syncs" / "manual.yaml").write_text(
        "id: manual\nkind: attributes\nkey: customer_id\ncolumns: [city]\n"
    )
    (data_dir / "syncs" / "broken.yaml").write_text("id: broken\nkind: nope\n")
    assert await scheduler(data_dir, RecordingRunner(), Clock()).run_due(ALL) == []


async def test_an_unexpected_failure_is_a_failed_run_with_internal_error_and_the_file_is_not_seen(
    tmp_path: Path, folder_sync: Path
) -> None:
    class BrokenRunner(RecordingRunner):
        async def __call__(
            self, upload: Path, sync: Sync, *, import_id: str, folder: Path, progress: Progress
        ) -> Mapping[str, Any]:
            raise RuntimeError("the producer went away")

    drop(folder_sync, "day1.csv", "c1,Madrid")
    [run] = await scheduler(tmp_path / "data", BrokenRunner(), Clock()).run_due(ALL)
    assert (run.status, run.error_code, run.error_message) == (
        "failed",
        "internal_error",
        "RuntimeError: the producer went away",
    )
    assert SyncRecords.of(tmp_path / "data", "customers").seen() == set()


def stored(sync_id: str, source: str, version: int = 1) -> SyncDefinition:
    body = yaml.safe_load(
        f"id: {sync_id}\nkind: attributes\nkey: customer_id\ncolumns: [city]\n"
        f'schedule: {{cron: "* * * * *"}}\nsource: {source}\n'
    )
    return sync_from_body(sync_id, version, sync_body(body), 0)


async def test_a_sync_stored_as_a_definition_runs_like_a_file_and_wins_over_a_file_of_its_id(
    tmp_path: Path,
) -> None:
    from_file, from_definition = tmp_path / "old", tmp_path / "new"
    sync_yaml(tmp_path / "data", "customers", f"{{folder: {from_file}}}")
    drop(from_file, "day1.csv", "c1,Madrid")
    drop(from_definition, "day1.csv", "c2,Lyon")
    drop(tmp_path / "other", "x.csv", "c3,Porto")
    definitions = {
        "customers": stored("customers", f"{{folder: {from_definition}}}"),
        "other": stored("other", f"{{folder: {tmp_path / 'other'}}}"),
    }
    runner, clock = RecordingRunner(), Clock()
    scheduling = scheduler(tmp_path / "data", runner, clock, stored_syncs=lambda: definitions)
    runs = await scheduling.run_due(ALL)
    assert sorted((run.sync_id, run.status) for run in runs) == [
        ("customers", "finished"),
        ("other", "finished"),
    ]
    assert sorted(row for row, _ in runner.calls) == ["c2,Lyon", "c3,Porto"]

    definitions.clear()  # deleted: the file of the same id is used again
    clock.now_ms += MINUTE_MS
    [again] = await scheduling.run_due(ALL)
    assert (again.sync_id, again.status) == ("customers", "finished")
    assert runner.calls[-1][0] == "c1,Madrid"
