"""Exporting a segment's members as CSV on the real broker: the API from one and two workers, and the CLI."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streams.partitions import partition_for
from tests.support.waiting import wait_for
from tests.support.workers import ADMIN, READER, WorkerFactory, WorkerProcess

pytestmark = pytest.mark.kafka

COLUMNS = "attributes=first_name,city,tags,born&contacts=email,phone"
MEMBERS: dict[str, dict[str, Any]] = {
    "m-ana": {"first_name": 'Ana, "la" grande', "city": "Montevideo", "tags": ["gold", "travel"]},
    "m-bo": {"first_name": "Bo", "born": {"date": "1990-05-03"}, "tags": []},
    "m-cy": {"first_name": "Cy"},
    "m-di": {"city": "Salto", "tags": ["new"]},
    "m-ed": {"first_name": "Ed\nSecond line"},
}


def members_counted(worker: WorkerProcess, segment: str, expected: int) -> bool:
    answer = worker.api.get(f"/v1/segments/{segment}")
    return answer.status == 200 and answer.body["members"] == expected


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_the_csv_has_exactly_the_members_with_their_attributes_and_contacts(
    workers: WorkerFactory, tmp_path: Path
) -> None:
    worker = workers.start()
    api = worker.api
    assert api.request("PUT", "/v1/segments/vips", {"rule": "vip == true"}).status == 201
    customers: list[dict[str, Any]] = [
        {"customer_id": c, "attributes": {"vip": True, **a}, "contacts": {"email": f"{c}@example.com"}}
        for c, a in MEMBERS.items()
    ]
    customers += [{"customer_id": f"n-{i}", "attributes": {"vip": False}} for i in range(8)]
    assert api.post("/v1/customers", {"customers": customers}).status == 202
    assert len({partition_for(c, 4) for c in MEMBERS}) > 1  # members in several partitions
    wait_for(lambda: members_counted(worker, "vips", len(MEMBERS)), message="5 members counted")

    answer = api.get(f"/v1/segments/vips/members.csv?{COLUMNS}")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="vips-members.csv"'
    header, *members = rows(answer.body)
    assert header == ["customer_id", "first_name", "city", "tags", "born", "email", "phone"]
    assert sorted(members) == [
        ["m-ana", 'Ana, "la" grande', "Montevideo", "gold;travel", "", "m-ana@example.com", ""],
        ["m-bo", "Bo", "", "", "1990-05-03", "m-bo@example.com", ""],
        ["m-cy", "Cy", "", "", "", "m-cy@example.com", ""],
        ["m-di", "", "Salto", "new", "", "m-di@example.com", ""],
        ["m-ed", "Ed\nSecond line", "", "", "", "m-ed@example.com", ""],
    ]
    header, *members = rows(api.get("/v1/segments/vips/members.csv").body)
    assert header == ["customer_id"] and sorted(members) == [[c] for c in sorted(MEMBERS)]

    # The CLI, against the running worker, writes the same file.
    target = tmp_path / "vips.csv"
    columns = ["--attributes", "first_name,tags", "--contacts", "email"]
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", "export", "--segment", "vips", *columns, "--output", str(target)],
        env=workers.env(REFRACT_API_URL=api.url, REFRACT_API_KEY=ADMIN.secret),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"5 members of segment vips written to {target}\n"
    header, *members = rows(target.read_text(encoding="utf-8"))
    assert header == ["customer_id", "first_name", "tags", "email"]
    assert sorted(m[0] for m in members) == sorted(MEMBERS)


def test_an_unknown_segment_is_404_and_a_bad_column_400(workers: WorkerFactory) -> None:
    worker = workers.start()
    api = worker.api
    missing = api.get("/v1/segments/nope/members.csv")
    assert missing.status == 404 and missing.body["error"]["code"] == "segment_not_found"
    assert api.request("PUT", "/v1/segments/vips", {"rule": "vip == true"}).status == 201
    bad = api.get("/v1/segments/vips/members.csv?attributes=first_name,first%20name")
    assert bad.status == 400 and bad.body["error"]["field"] == "attributes"
    assert bad.body["error"]["message"].startswith("attributes: 'first name' is not an attribute name")
    bad = api.get("/v1/segments/vips/members.csv?contacts=fax")
    assert bad.status == 400 and "choose from email, phone" in bad.body["error"]["message"]
    assert api.get("/v1/segments/vips/members.csv", key=READER.secret).status == 403

    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", "export", "--segment", "nope"],
        env=workers.env(REFRACT_API_URL=api.url, REFRACT_API_KEY=ADMIN.secret),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "refract: error: no segment with id 'nope'\n"


def test_with_two_workers_either_one_exports_every_member_exactly_once(workers: WorkerFactory) -> None:
    first = workers.start("w1")
    second = workers.start("w2")
    wait_for(
        lambda: (
            len(first.api.get("/readyz", key=None).body.get("partitions", [])) == 2
            and len(second.api.get("/readyz", key=None).body.get("partitions", [])) == 2
        ),
        timeout_s=90,
        message="the partitions split between the two workers",
    )
    assert first.api.request("PUT", "/v1/segments/rich", {"rule": "balance >= 20000"}).status == 201
    customers = {f"c-{i}": 1_000 * i for i in range(40)}
    answer = first.api.post(
        "/v1/customers",
        {
            "customers": [
                {"customer_id": c, "attributes": {"balance": b, "first_name": f"N{b}"}}
                for c, b in customers.items()
            ]
        },
    )
    assert answer.status == 202
    rich = sorted(c for c, balance in customers.items() if balance >= 20_000)
    wait_for(lambda: members_counted(second, "rich", len(rich)), timeout_s=60, message="members counted")

    for worker in (first, second):
        exported = worker.api.get("/v1/segments/rich/members.csv?attributes=balance,first_name")
        assert exported.status == 200, exported.body
        header, *members = rows(exported.body)
        assert header == ["customer_id", "balance", "first_name"]
        assert sorted(m[0] for m in members) == rich  # each exactly once
        assert all(m[1] == str(customers[m[0]]) and m[2] == f"N{m[1]}" for m in members)
