"""Syncs stored as definitions, on the real broker: applied or PUT, then imported with and scheduled."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.syncs import sync_body
from tests.integration.test_campaigns import Clock
from tests.integration.test_imports import finished, profile, wait_processed
from tests.integration.test_syncs import MINUTE_MS, T0, city, runs
from tests.support.waiting import wait_for
from tests.support.workers import READER, WorkerFactory

pytestmark = pytest.mark.kafka

SYNCS = """
syncs:
  - id: customers
    kind: attributes
    key: customer_id
    columns:
      - {column: first_name, transforms: [trim]}
      - {column: balance, type: decimal}
"""
SYNC = {"kind": "attributes", "key": "customer_id", "columns": ["city"]}


def refract(workers: WorkerFactory, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *args],
        env=workers.env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_applied_sync_is_what_the_imports_api_and_the_cli_import_with(
    workers: WorkerFactory, tmp_path: Path
) -> None:
    # A file of the same id, as before syncs were definitions: the stored sync wins over it.
    (tmp_path / "data" / "syncs").mkdir(parents=True)
    (tmp_path / "data" / "syncs" / "customers.yaml").write_text(
        "id: customers\nkind: attributes\nkey: customer_id\ncolumns: [nickname]\n"
    )
    worker = workers.start()
    path = tmp_path / "syncs.yaml"
    path.write_text(SYNCS)
    applied = refract(workers, "apply", str(path))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == ["sync customers: created (version 1)"]
    again = refract(workers, "apply", str(path))
    assert again.stdout.splitlines() == ["sync customers: unchanged (version 1)"]
    wait_for(lambda: worker.api.get("/v1/syncs/customers").status == 200, message="the worker has the sync")

    answer = worker.api.post(
        "/v1/imports/customers",
        raw=b"customer_id,first_name,balance\nc1, Ana ,10.5\nc2,Luis,x\n",
        content_type="text/csv",
    )
    assert answer.status == 202, answer.body
    result = finished(worker, answer.body["import_id"])
    assert (result["status"], result["imported"], result["invalid"]) == ("finished", 1, 1)
    wait_processed(worker, 1)
    assert profile(worker, "c1")["attributes"] == {"first_name": "Ana", "balance": 10.5}

    csv = tmp_path / "more.csv"
    csv.write_text("customer_id,first_name,balance\nc3,Sofía,7\n")
    imported = refract(
        workers, "import", str(csv), "--sync", "customers", REFRACT_DATA_DIR=str(tmp_path / "cli")
    )
    assert imported.returncode == 0, imported.stderr
    wait_for(lambda: worker.api.get("/v1/customers/c3").status == 200, timeout_s=60, message="c3 imported")
    assert profile(worker, "c3")["attributes"] == {"first_name": "Sofía", "balance": 7}
    unknown = refract(
        workers, "import", str(csv), "--sync", "nothing", REFRACT_DATA_DIR=str(tmp_path / "cli")
    )
    assert (unknown.returncode, unknown.stderr.count("\n")) == (1, 1)
    assert unknown.stderr.startswith("refract: error: --sync nothing: no such file, and no sync 'nothing'")


def test_a_sync_is_saved_read_listed_and_deleted_through_the_api(workers: WorkerFactory) -> None:
    api = workers.start().api
    created = api.request("PUT", "/v1/syncs/branches", SYNC)
    assert created.status == 201, created.body
    assert (created.body["id"], created.body["version"]) == ("branches", 1)
    assert created.body["definition"] == sync_body({**SYNC, "id": "branches"})  # canonical
    same = api.request("PUT", "/v1/syncs/branches", {**SYNC, "id": "branches", "delimiter": ","})
    assert (same.status, same.body["version"]) == (200, 1)  # the same sync: no new version
    changed = api.request("PUT", "/v1/syncs/branches", {**SYNC, "columns": ["city", "zip"]})
    assert (changed.status, changed.body["version"]) == (200, 2)
    assert api.get("/v1/syncs/branches").body == changed.body
    assert [s["id"] for s in api.get("/v1/syncs").body["syncs"]] == ["branches"]

    wrong = api.request("PUT", "/v1/syncs/branches", {**SYNC, "columns": [{"column": "x", "type": "money"}]})
    assert (wrong.status, wrong.body["error"]["code"], wrong.body["error"]["field"]) == (
        400,
        "invalid_sync",
        "columns[0].type",
    )
    other_id = api.request("PUT", "/v1/syncs/branches", {**SYNC, "id": "shops"})
    assert (other_id.status, other_id.body["error"]["field"]) == (400, "id")
    reader = api.request("PUT", "/v1/syncs/branches", SYNC, key=READER.secret)
    assert (reader.status, reader.body["error"]["code"]) == (403, "insufficient_scope")

    deleted = api.request("DELETE", "/v1/syncs/branches")
    assert deleted.status == 200 and deleted.body == {"id": "branches", "version": 3, "deleted": True}
    missing = api.get("/v1/syncs/branches")
    assert (missing.status, missing.body["error"]["code"]) == (404, "sync_not_found")
    assert "PUT /v1/syncs/branches" in missing.body["error"]["message"]
    assert api.get("/v1/syncs").body == {"syncs": []}
    upload = api.post("/v1/imports/branches", raw=b"customer_id,city\nc1,Madrid\n", content_type="text/csv")
    assert (upload.status, upload.body["error"]["code"]) == (404, "sync_not_found")
    assert api.request("DELETE", "/v1/syncs/branches").status == 404
    again = api.request("PUT", "/v1/syncs/branches", SYNC)
    assert (again.status, again.body["version"]) == (201, 4)


def test_a_scheduled_folder_sync_saved_as_a_definition_runs(workers: WorkerFactory, tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    clock = Clock(tmp_path / "clock", T0)
    worker = workers.start(REFRACT_CLOCK_FILE=str(clock.path), REFRACT_SYNC_CHECK_INTERVAL_S="0.3")
    scheduled: dict[str, Any] = {
        **SYNC,
        "schedule": {"cron": "* * * * *", "timezone": "Europe/Madrid"},
        "source": {"folder": str(incoming)},
    }
    assert worker.api.request("PUT", "/v1/syncs/branches", scheduled).status == 201
    [first] = runs(worker, "branches", 1)
    assert (first["status"], first["scheduled_at_ms"]) == ("nothing_new", T0)

    (incoming / "day1.csv").write_text("customer_id,city\nc1,Madrid\nc2,Lyon\n")
    written_ns = time.time_ns() - 60 * 1_000_000_000  # as if written a minute ago: settled
    os.utime(incoming / "day1.csv", ns=(written_ns, written_ns))
    clock.advance(MINUTE_MS)
    new, _ = runs(worker, "branches", 2)
    assert (new["status"], new["imported"], [f["name"] for f in new["files"]]) == (
        "finished",
        2,
        ["day1.csv"],
    )
    wait_for(lambda: city(worker, "c2") == "Lyon", timeout_s=60, message="c2 imported")
