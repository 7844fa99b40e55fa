"""Scheduled syncs on the real broker: a watched folder and an HTTP source, run by a worker."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from engine.syncs import sync_partition
from tests.integration.test_campaigns import Clock
from tests.integration.test_worker import metric
from tests.support.file_server import FileServer
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory, WorkerProcess

pytestmark = pytest.mark.kafka

MINUTE_MS = 60_000
T0 = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE_MS


def write_sync(data_dir: Path, sync_id: str, source: str, cron: str = "* * * * *") -> None:
    (data_dir / "syncs").mkdir(parents=True, exist_ok=True)
    (data_dir / "syncs" / f"{sync_id}.yaml").write_text(
        f"id: {sync_id}\nkind: attributes\nkey: customer_id\ncolumns: [city]\n"
        f'schedule: {{cron: "{cron}", timezone: Europe/Madrid}}\nsource: {source}\n'
    )


def runs(worker: WorkerProcess, sync_id: str, count: int) -> list[dict[str, Any]]:
    """The sync's runs, newest first, once there are ``count`` and none is running."""

    def ended() -> list[dict[str, Any]] | None:
        answer = worker.api.get(f"/v1/syncs/{sync_id}/runs")
        assert answer.status == 200, answer.body
        found: list[dict[str, Any]] = answer.body["runs"]
        if len(found) >= count and all(run["status"] != "running" for run in found):
            return found
        return None

    return wait_for(ended, timeout_s=60, message=f"{count} ended runs of {sync_id}")


def city(worker: WorkerProcess, customer: str) -> str | None:
    answer = worker.api.get(f"/v1/customers/{customer}")
    return answer.body["attributes"].get("city") if answer.status == 200 else None


def test_a_scheduled_folder_sync_picks_up_a_new_file_once(workers: WorkerFactory, tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    write_sync(tmp_path / "data", "branches", f"{{folder: '{incoming}'}}")
    clock = Clock(tmp_path / "clock", T0)
    worker = workers.start(REFRACT_CLOCK_FILE=str(clock.path), REFRACT_SYNC_CHECK_INTERVAL_S="0.3")
    [first] = runs(worker, "branches", 1)  # never ran: runs at once, for T0
    assert (first["status"], first["scheduled_at_ms"]) == ("nothing_new", T0)

    (incoming / "day1.csv").write_text("customer_id,city\nc1,Madrid\nc2,Lyon\nc3,Porto\n")
    written_ns = time.time_ns() - 60 * 1_000_000_000  # as if written a minute ago: settled
    os.utime(incoming / "day1.csv", ns=(written_ns, written_ns))
    clock.advance(MINUTE_MS)
    new, _ = runs(worker, "branches", 2)
    assert (new["status"], new["scheduled_at_ms"], new["rows_read"], new["imported"], new["events"]) == (
        "finished",
        T0 + MINUTE_MS,
        3,
        3,
        3,
    )
    assert [file["name"] for file in new["files"]] == ["day1.csv"]
    wait_for(lambda: city(worker, "c3") == "Porto", timeout_s=60, message="c3 imported")
    assert (city(worker, "c1"), city(worker, "c2")) == ("Madrid", "Lyon")
    processed = metric(worker, "refract_events_processed_total")

    clock.advance(MINUTE_MS)
    again, _, _ = runs(worker, "branches", 3)
    assert (again["status"], again["events"], again["files"]) == ("nothing_new", 0, [])
    assert metric(worker, "refract_events_processed_total") == processed
    assert metric(worker, 'refract_sync_runs_total{status="nothing_new",sync="branches"}') == 2
    assert metric(worker, 'refract_sync_rows_total{outcome="imported",sync="branches"}') == 3
    import_status = worker.api.get(f"/v1/imports/{new['files'][0]['import_id']}")
    assert (import_status.status, import_status.body["imported"]) == (200, 3)


def test_an_http_source_with_basic_auth_is_fetched_and_a_wrong_password_gives_a_clear_failed_run(
    workers: WorkerFactory, tmp_path: Path
) -> None:
    with FileServer(username="refract", password="s3cret") as server:
        server.put("customers.csv", b"customer_id,city\nh1,Bilbao\nh2,Sevilla\n")
        url = server.url("customers.csv")
        for sync_id, variable in (("remote", "FILES_PASSWORD"), ("remote-wrong", "OLD_PASSWORD")):
            auth = f"{{type: basic, username: refract, password_env: {variable}}}"
            write_sync(tmp_path / "data", sync_id, f"{{url: '{url}', auth: {auth}}}", cron="0 2 * * *")
        worker = workers.start(
            FILES_PASSWORD="s3cret", OLD_PASSWORD="not-the-password", REFRACT_SYNC_CHECK_INTERVAL_S="0.3"
        )
        [fetched] = runs(worker, "remote", 1)
        [refused] = runs(worker, "remote-wrong", 1)
    assert (fetched["status"], fetched["imported"], fetched["error_code"]) == ("finished", 2, None)
    wait_for(lambda: city(worker, "h2") == "Sevilla", timeout_s=60, message="h2 imported")
    assert city(worker, "h1") == "Bilbao"
    assert (refused["status"], refused["error_code"], refused["files"]) == (
        "failed",
        "source_unauthorized",
        [],
    )
    assert refused["error_message"].startswith("the source answered 401 Unauthorized: check OLD_PASSWORD")
    assert "not-the-password" not in worker.log_path.read_text(errors="replace")
    assert metric(worker, 'refract_sync_runs_total{status="failed",sync="remote-wrong"}') == 1


def test_with_two_workers_exactly_one_runs_a_sync_and_either_answers_its_runs(
    workers: WorkerFactory, tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    write_sync(tmp_path / "data", "branches", f"{{folder: '{incoming}'}}")
    clock = Clock(tmp_path / "clock", T0)
    first = workers.start("w1", REFRACT_CLOCK_FILE=str(clock.path), REFRACT_SYNC_CHECK_INTERVAL_S="0.3")
    second = workers.start("w2", REFRACT_CLOCK_FILE=str(clock.path), REFRACT_SYNC_CHECK_INTERVAL_S="0.3")
    partition = sync_partition("branches", 4)

    def owner() -> WorkerProcess | None:
        owners = [
            w for w in (first, second) if partition in w.api.get("/readyz", key=None).body["partitions"]
        ]
        both_assigned = sum(len(w.api.get("/readyz", key=None).body["partitions"]) for w in (first, second))
        return owners[0] if len(owners) == 1 and both_assigned == 4 else None

    running = wait_for(owner, timeout_s=90, message="the partitions spread over both workers")
    other = second if running is first else first
    (incoming / "day1.csv").write_text("customer_id,city\nc1,Madrid\n")
    written_ns = time.time_ns() - 60 * 1_000_000_000
    os.utime(incoming / "day1.csv", ns=(written_ns, written_ns))
    clock.advance(MINUTE_MS)
    newest = runs(running, "branches", 2)[0]
    assert (newest["scheduled_at_ms"], newest["status"], newest["imported"]) == (
        T0 + MINUTE_MS,
        "finished",
        1,
    )
    assert runs(other, "branches", 2)[0] == newest  # forwarded to the worker running the sync

    def all_runs() -> float:
        return sum(metric(w, "refract_sync_runs_total") for w in (first, second))

    assert all_runs() == len(runs(running, "branches", 2))
    assert metric(other, 'refract_sync_runs_total{status="finished"') == 0
