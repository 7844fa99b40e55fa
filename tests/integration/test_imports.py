"""CSV imports on the real broker, folded by a real worker: profiles, errors, re-imports, keys."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from connectors.csv import load_sync
from engine.settings import Settings
from engine.topics import TopicNames
from ops.imports import ImportResult, import_file
from tests.integration.test_worker import metric
from tests.support.kafka import KafkaFixture
from tests.support.waiting import wait_for
from tests.support.workers import READER, WorkerFactory, WorkerProcess

pytestmark = pytest.mark.kafka

CUSTOMERS = """
id: customers
kind: attributes
key: customer_id
columns:
  - {column: first_name, transforms: [trim]}
  - last_name
  - {column: email, transforms: [trim, lower]}
  - {column: birth_date, type: date, format: "%d/%m/%Y"}
  - {column: balance, type: decimal}
  - {column: accounts, type: integer, default: 0}
  - {column: premium, type: boolean}
  - {column: segments, type: list}
  - {column: last_login, type: timestamp, timezone: Europe/Madrid}
  - {attribute: full_name, expression: 'first_name + " " + last_name'}
"""
HEADER = "customer_id,first_name,last_name,email,birth_date,balance,accounts,premium,segments,last_login"
CITIES = """
id: cities
kind: attributes
key: {column: mail, field: email}
columns:
  - city
"""


def customers_csv(rows: int, seed: int = 3) -> tuple[str, dict[str, dict[str, Any]]]:
    """A file of ``rows`` customers and the attributes each profile should end with."""
    rng = random.Random(seed)
    lines = [HEADER]
    expected: dict[str, dict[str, Any]] = {}
    for i in range(rows):
        first, last = rng.choice(["Ana", "Luis", "Sofía"]), rng.choice(["Gil", "Muñoz"])
        day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1950, 2005)
        balance = round(rng.uniform(0, 5000), 2)
        accounts = rng.choice(["", "1", "4"])
        premium = rng.choice(["yes", "no"])
        segments = rng.choice(["", "gold", "gold|web"])
        lines.append(
            f"c{i:05d}, {first} ,{last},C{i}@Example.com,{day}/{month}/{year},{balance},{accounts},"
            f"{premium},{segments},2024-01-15 10:30:00"
        )
        attributes: dict[str, Any] = {
            "first_name": first,
            "last_name": last,
            "email": f"c{i}@example.com",
            "birth_date": {"date": f"{year:04d}-{month:02d}-{day:02d}"},
            "balance": balance,
            "accounts": int(accounts or 0),
            "premium": premium == "yes",
            "last_login": {"timestamp": "2024-01-15T09:30:00Z"},
            "full_name": f"{first} {last}",
        }
        if segments:
            attributes["segments"] = segments.split("|")
        expected[f"c{i:05d}"] = attributes
    return "\n".join(lines) + "\n", expected


def settings_for(namespace: str, tmp_path: Path) -> Settings:
    return Settings(namespace=namespace, partitions=4, data_dir=tmp_path / "importer")


def run(
    kafka: KafkaFixture, namespace: str, tmp_path: Path, name: str, content: bytes, sync: str
) -> ImportResult:
    path = tmp_path / name
    path.write_bytes(content)
    return import_file(path, load_sync(sync), settings_for(namespace, tmp_path), bootstrap=kafka.bootstrap)


def profile(worker: WorkerProcess, customer: str) -> dict[str, Any]:
    answer = worker.api.get(f"/v1/customers/{customer}")
    assert answer.status == 200, answer.body
    body: dict[str, Any] = answer.body
    return body


def wait_processed(worker: WorkerProcess, events: int) -> None:
    wait_for(
        lambda: metric(worker, "refract_events_processed_total") >= events,
        timeout_s=120,
        message=f"{events:,} events processed",
    )


def test_an_import_of_thousands_of_typed_rows_ends_with_the_expected_profiles(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str, tmp_path: Path
) -> None:
    worker = workers.start()
    text, expected = customers_csv(3000)
    result = run(kafka, namespace, tmp_path, "customers.csv", text.encode(), CUSTOMERS)
    assert (result.status, result.rows_read, result.imported, result.invalid) == ("finished", 3000, 3000, 0)
    assert result.events == 3000
    wait_processed(worker, 3000)
    for customer in [*random.Random(5).sample(sorted(expected), 60), "c00000", "c02999"]:
        assert profile(worker, customer)["attributes"] == expected[customer], customer


def test_a_file_with_bad_rows_imports_the_good_ones_and_reports_each_bad_line_and_column(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str, tmp_path: Path
) -> None:
    worker = workers.start()
    text, expected = customers_csv(20)
    lines = text.splitlines()
    lines[3] = lines[3].replace(",2024-01-15 10:30:00", ",yesterday")  # line 4: last_login
    lines[7] = lines[7].replace(",yes,", ",maybe,").replace(",no,", ",maybe,")  # line 8: premium
    lines[12] = "c00011,too,few"  # line 13: the row as a whole
    result = run(kafka, namespace, tmp_path, "bad.csv", ("\n".join(lines) + "\n").encode(), CUSTOMERS)
    assert (result.rows_read, result.imported, result.invalid) == (20, 17, 3)
    report = result.error_report.read_text().splitlines()
    assert [row.split(",")[:2] for row in report[1:]] == [["4", "last_login"], ["8", "premium"], ["13", ""]]
    assert "'maybe'" in report[2] and "expected 10 fields, found 3" in report[3]
    wait_processed(worker, 17)
    assert profile(worker, "c00000")["attributes"] == expected["c00000"]
    for bad in ("c00002", "c00006", "c00011"):
        assert worker.api.get(f"/v1/customers/{bad}").status == 404


def test_reimporting_the_same_file_appends_no_events(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str, tmp_path: Path
) -> None:
    worker = workers.start()
    text, _ = customers_csv(2000)
    first = run(kafka, namespace, tmp_path, "customers.csv", text.encode(), CUSTOMERS)
    assert first.events == 2000
    topic = TopicNames(namespace).events
    assert len(kafka.read_all(topic)) == 2000
    second = run(kafka, namespace, tmp_path, "customers.csv", text.encode(), CUSTOMERS)
    assert (second.rows_read, second.imported, second.unchanged, second.events) == (2000, 0, 2000, 0)
    assert len(kafka.read_all(topic)) == 2000
    changed = text.replace("c00007, ", "c00007, Zoe", 1)
    third = run(kafka, namespace, tmp_path, "customers.csv", changed.encode(), CUSTOMERS)
    assert (third.imported, third.unchanged) == (1, 1999)
    assert len(kafka.read_all(topic)) == 2001
    wait_processed(worker, 2001)
    assert profile(worker, "c00007")["attributes"]["first_name"].startswith("Zoe")


def test_an_email_keyed_sync_updates_the_customers_those_emails_belong_to(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str, tmp_path: Path
) -> None:
    worker = workers.start()
    contacts = "id: contacts\nkind: contacts\nkey: client\ncolumns:\n  - {column: mail, attribute: email}\n"
    emails = b"client,mail\nk1,ana@example.com\nk2,bo@example.com\n"
    run(kafka, namespace, tmp_path, "contacts.csv", emails, contacts)
    result = run(
        kafka,
        namespace,
        tmp_path,
        "cities.csv",
        b"mail,city\nBO@example.com,Salto\nana@example.com,Rivera\nnone@example.com,Lima\n",
        CITIES,
    )
    assert (result.imported, result.invalid) == (2, 1)
    assert result.error_report.read_text().splitlines()[1] == (
        "4,mail,none@example.com,no customer has email none@example.com"
    )
    wait_processed(worker, 4)
    assert profile(worker, "k1")["attributes"] == {"city": "Rivera"}
    assert profile(worker, "k2")["attributes"] == {"city": "Salto"}
    assert profile(worker, "k1")["contacts"]["email"] == "ana@example.com"


def test_latin_1_and_bom_files_import_their_accented_text_correctly(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str, tmp_path: Path
) -> None:
    worker = workers.start()
    sync = "id: names\nkind: attributes\nkey: customer_id\ncolumns: [city]\n"
    latin_text = "customer_id,city\nl1,Paysandú\n".encode("latin-1")
    latin = run(kafka, namespace, tmp_path, "latin.csv", latin_text, sync + "encoding: latin-1\n")
    bom_text = b"\xef\xbb\xbf" + "customer_id,city\nb1,Peñarol\n".encode()
    bom = run(kafka, namespace, tmp_path, "bom.csv", bom_text, sync)
    assert (latin.imported, bom.imported) == (1, 1)
    wait_processed(worker, 2)
    assert profile(worker, "l1")["attributes"] == {"city": "Paysandú"}
    assert profile(worker, "b1")["attributes"] == {"city": "Peñarol"}


def multipart(filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "refract-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def finished(worker: WorkerProcess, import_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        answer = worker.api.get(f"/v1/imports/{import_id}")
        assert answer.status == 200, answer.body
        return answer.body if answer.body["status"] != "running" else None

    result: dict[str, Any] = wait_for(done, timeout_s=60, message=f"import {import_id} ended")
    return result


def test_a_csv_posted_to_the_api_is_imported_in_the_background_with_its_error_report(
    workers: WorkerFactory, tmp_path: Path
) -> None:
    syncs = tmp_path / "data" / "syncs"
    syncs.mkdir(parents=True)
    (syncs / "customers.yaml").write_text(CUSTOMERS)
    worker = workers.start()
    text, expected = customers_csv(500)
    lines = text.splitlines()
    lines[10] = lines[10].replace(",2024-01-15 10:30:00", ",never")
    answer = worker.api.post(
        "/v1/imports/customers", raw=("\n".join(lines) + "\n").encode(), content_type="text/csv"
    )
    assert answer.status == 202, answer.body
    result = finished(worker, answer.body["import_id"])
    assert result["status"] == "finished"
    assert (result["rows_read"], result["imported"], result["invalid"]) == (500, 499, 1)
    report = worker.api.get(f"/v1/imports/{answer.body['import_id']}/errors.csv")
    assert report.status == 200
    assert report.body.splitlines()[1].startswith("11,last_login,never,")
    wait_processed(worker, 499)
    assert profile(worker, "c00042")["attributes"] == expected["c00042"]

    body, content_type = multipart("again.csv", text.encode())
    again = worker.api.post("/v1/imports/customers", raw=body, content_type=content_type)
    assert again.status == 202, again.body
    result = finished(worker, again.body["import_id"])
    assert (result["status"], result["imported"], result["unchanged"]) == ("finished", 1, 499)


def test_the_imports_api_refuses_unknown_syncs_missing_scopes_and_reports_refused_files(
    workers: WorkerFactory, tmp_path: Path
) -> None:
    syncs = tmp_path / "data" / "syncs"
    syncs.mkdir(parents=True)
    (syncs / "customers.yaml").write_text(CUSTOMERS)
    worker = workers.start()
    unknown = worker.api.post("/v1/imports/nothing", raw=b"a\n1\n", content_type="text/csv")
    assert (unknown.status, unknown.body["error"]["code"]) == (404, "sync_not_found")
    forbidden = worker.api.post(
        "/v1/imports/customers", raw=b"a\n1\n", content_type="text/csv", key=READER.secret
    )
    assert (forbidden.status, forbidden.body["error"]["code"]) == (403, "insufficient_scope")
    refused = worker.api.post("/v1/imports/customers", raw=b"id;name\n1;2\n", content_type="text/csv")
    assert refused.status == 202
    result = finished(worker, refused.body["import_id"])
    assert (result["status"], result["code"]) == ("failed", "wrong_header")
    assert "the header lacks 'customer_id'" in result["message"]
    assert worker.api.get("/v1/imports/19990101-000000-000000").status == 404
