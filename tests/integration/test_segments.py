"""Segments on the real broker: definitions through the API, memberships changing with events."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.topics import TopicNames
from schemas.codec import decode
from tests.support.kafka import KafkaFixture
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory, WorkerProcess

pytestmark = pytest.mark.kafka


def segment_changes(kafka: KafkaFixture, namespace: str, customer: str) -> list[dict[str, Any]]:
    records = kafka.read_all(TopicNames(namespace).segment_changes)
    changes = []
    for key, value, _, _ in records:
        assert value is not None
        name, fields = decode(value)
        assert name == "SegmentChange"
        if key == customer.encode():
            changes.append(fields)
    return changes


def profile(worker: WorkerProcess, customer: str, events: int) -> dict[str, Any] | None:
    answer = worker.api.get(f"/v1/customers/{customer}")
    if answer.status == 200 and answer.body["events_applied"] >= events:
        body: dict[str, Any] = answer.body
        return body
    return None


def test_a_customer_crossing_a_balance_threshold_enters_and_leaves_the_segment(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str
) -> None:
    worker = workers.start()
    saved = worker.api.request(
        "PUT", "/v1/segments/rich", {"name": "Rich customers", "rule": "balance >= 10000"}
    )
    assert saved.status == 201, saved.body
    assert saved.body["version"] == 1 and saved.body["rule"] == "balance >= 10000"

    posted = worker.api.post("/v1/customers", {"customer_id": "ana", "attributes": {"balance": 500}})
    assert posted.status == 202
    wait_for(lambda: profile(worker, "ana", 1), message="ana's first update")
    posted = worker.api.post("/v1/customers", {"customer_id": "ana", "attributes": {"balance": 12_000}})
    entering_event = posted.body["event_ids"][0]

    changes = wait_for(
        lambda: segment_changes(kafka, namespace, "ana") or None, message="a SegmentChange for ana"
    )
    assert [(c["segment_id"], c["change"], c["segment_version"]) for c in changes] == [("rich", "ENTERED", 1)]
    assert changes[0]["caused_by_event_id"] == entering_event and changes[0]["customer_id"] == "ana"
    state = wait_for(lambda: profile(worker, "ana", 2), message="ana's second update")
    assert list(state["segments"]) == ["rich"] and state["segments"]["rich"].endswith("Z")

    worker.api.post("/v1/customers", {"customer_id": "ana", "attributes": {"balance": 20}})
    changes = wait_for(
        lambda: (c := segment_changes(kafka, namespace, "ana")) and len(c) == 2 and c,
        message="ana's exit",
    )
    assert changes[1]["change"] == "EXITED" and changes[1]["segment_id"] == "rich"
    state = wait_for(lambda: profile(worker, "ana", 3), message="ana's third update")
    assert state["segments"] == {}
    metrics = worker.api.get("/metrics", key=None).body
    assert 'refract_segment_changes_total{change="entered",segment="rich"} 1.0' in metrics


def test_segments_are_saved_listed_versioned_and_deleted_through_the_api(workers: WorkerFactory) -> None:
    worker = workers.start()
    api = worker.api
    refused = api.request("PUT", "/v1/segments/bad", {"rule": "balance >= and"})
    assert refused.status == 400 and refused.body["error"]["code"] == "rule_syntax"
    assert refused.body["error"]["message"].startswith("line 1, column 12:")

    assert api.request("PUT", "/v1/segments/a", {"rule": 'in_segment("b")'}).status == 201
    loop = api.request("PUT", "/v1/segments/b", {"rule": 'in_segment("a")'})
    assert loop.status == 400 and loop.body["error"]["code"] == "segment_cycle"

    second = api.request("PUT", "/v1/segments/a", {"rule_json": {"attr": "vip"}, "description": "VIPs"})
    assert second.status == 200 and second.body["version"] == 2 and second.body["rule"] == "vip"
    assert api.get("/v1/segments/a").body["description"] == "VIPs"
    assert [s["id"] for s in api.get("/v1/segments").body["segments"]] == ["a"]
    assert api.get("/v1/segments/a", key=None).status == 401

    deleted = api.request("DELETE", "/v1/segments/a")
    assert deleted.status == 200 and deleted.body["version"] == 3
    assert api.get("/v1/segments/a").status == 404
    assert api.get("/v1/segments").body["segments"] == []
    again = api.request("PUT", "/v1/segments/a", {"rule": "true"})
    assert again.status == 201 and again.body["version"] == 4


def test_refract_apply_saves_the_segments_of_a_file_and_workers_see_them(
    workers: WorkerFactory, tmp_path: Path
) -> None:
    worker = workers.start()
    path = tmp_path / "segments.yaml"
    path.write_text(
        "segments:\n"
        "  - {id: rich, name: Rich, rule: 'balance >= 10000'}\n"
        '  - {id: rich_uy, name: Rich in Uruguay, rule: \'in_segment("rich") and country == "UY"\'}\n'
    )

    def apply() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "ops.cli", "apply", str(path)],
            env=workers.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert apply().splitlines() == [
        "segment rich: created (version 1)",
        "segment rich_uy: created (version 1)",
    ]
    listed = wait_for(
        lambda: (s := worker.api.get("/v1/segments").body["segments"]) and len(s) == 2 and s,
        message="the applied segments on the worker",
    )
    assert [(s["id"], s["version"], s["name"]) for s in listed] == [
        ("rich", 1, "Rich"),
        ("rich_uy", 1, "Rich in Uruguay"),
    ]
    assert apply().splitlines() == [
        "segment rich: unchanged (version 1)",
        "segment rich_uy: unchanged (version 1)",
    ]


def test_a_new_segment_is_evaluated_for_existing_customers_on_both_workers(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str
) -> None:
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
    customers = {f"old-{i}": 1_000 * i for i in range(40)}
    answer = first.api.post(
        "/v1/customers",
        {"customers": [{"customer_id": c, "attributes": {"balance": b}} for c, b in customers.items()]},
    )
    assert answer.status == 202
    wait_for(
        lambda: all(profile(first, c, 1) for c in customers), timeout_s=60, message="40 customers stored"
    )

    assert first.api.request("PUT", "/v1/segments/rich", {"rule": "balance >= 20000"}).status == 201
    rich = {c for c, balance in customers.items() if balance >= 20_000}

    def entered() -> set[str] | None:
        changes = kafka.read_all(TopicNames(namespace).segment_changes)
        seen = {key.decode() for key, _, _, _ in changes if key is not None}
        return seen if seen == rich else None

    wait_for(entered, timeout_s=60, message="every rich customer entered, on both workers")
    for _, value, _, _ in kafka.read_all(TopicNames(namespace).segment_changes):
        _, fields = decode(value or b"")
        assert fields["change"] == "ENTERED" and fields["caused_by_event_id"] == "backfill:rich:1"
    assert all(list(profile(second, c, 1)["segments"]) == ["rich"] for c in rich)  # type: ignore[index]
    assert all(profile(second, c, 1)["segments"] == {} for c in set(customers) - rich)  # type: ignore[index]


def expiring_window() -> tuple[str, str, int]:
    """A rule on logins, a login time, and when it leaves the window: 15 to 75 seconds from now.

    A login at the end of the previous hour counts in its hourly bucket until the bucket's end
    (the start of this hour) plus the window: the window is picked so that this is soon.
    """
    now = dt.datetime.now(dt.UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    minutes = int((now - hour).total_seconds() // 60) + 1
    if (hour + dt.timedelta(minutes=minutes) - now).total_seconds() < 15:
        minutes += 1
    rule = f'count(event="login", within="{minutes}m") >= 1'
    login_at = (hour - dt.timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    return rule, login_at, int((hour + dt.timedelta(minutes=minutes)).timestamp() * 1000)


def test_a_window_that_expires_makes_the_customer_leave_when_the_tick_fires(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str
) -> None:
    worker = workers.start()
    rule, login_at, expires_ms = expiring_window()
    assert worker.api.request("PUT", "/v1/segments/recent", {"rule": rule}).status == 201
    posted = worker.api.post("/v1/events", {"customer_id": "bo", "name": "login", "occurred_at": login_at})
    assert posted.status == 202

    def kinds() -> list[str]:
        return [c["change"] for c in segment_changes(kafka, namespace, "bo")]

    wait_for(lambda: kinds() == ["ENTERED"], timeout_s=30, message="bo entered")
    wait_for(lambda: kinds() == ["ENTERED", "EXITED"], timeout_s=120, message="bo left when the window ended")
    exited = segment_changes(kafka, namespace, "bo")[1]
    assert exited["caused_by_event_id"].startswith("tick:bo:")
    due_ms = int(exited["caused_by_event_id"].rsplit(":", 1)[1])
    assert expires_ms - 1_000 <= due_ms <= expires_ms  # a timer may be early, never late
    state = wait_for(lambda: profile(worker, "bo", 2), message="bo's tick applied")
    assert state["segments"] == {}


def test_a_restarted_worker_rebuilds_its_timers_from_the_states(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str
) -> None:
    worker = workers.start()
    rule, login_at, _ = expiring_window()
    assert worker.api.request("PUT", "/v1/segments/recent", {"rule": rule}).status == 201
    worker.api.post("/v1/events", {"customer_id": "cy", "name": "login", "occurred_at": login_at})

    def kinds() -> list[str]:
        return [c["change"] for c in segment_changes(kafka, namespace, "cy")]

    wait_for(lambda: kinds() == ["ENTERED"], timeout_s=30, message="cy entered")
    worker.stop()
    worker.start()
    worker.wait_ready()
    wait_for(lambda: kinds() == ["ENTERED", "EXITED"], timeout_s=120, message="cy left after the restart")


def gauge(worker: WorkerProcess, segment: str) -> float | None:
    prefix = f'refract_segment_members{{segment="{segment}"}} '
    for line in worker.api.get("/metrics", key=None).body.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return None


def test_member_counts_add_up_over_both_workers(workers: WorkerFactory) -> None:
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
        {"customers": [{"customer_id": c, "attributes": {"balance": b}} for c, b in customers.items()]},
    )
    assert answer.status == 202
    rich = sum(1 for balance in customers.values() if balance >= 20_000)

    def counted(worker: WorkerProcess, expected: int) -> dict[str, Any] | None:
        body: dict[str, Any] = worker.api.get("/v1/segments/rich").body
        return body if body["members"] == expected else None

    body = wait_for(lambda: counted(second, rich), timeout_s=60, message=f"{rich} members counted")
    assert sorted(body["members_by_partition"]) == ["0", "1", "2", "3"]
    assert "members_missing_partitions" not in body
    wait_for(
        lambda: (
            (gauge(first, "rich") or 0) + (gauge(second, "rich") or 0) == rich
            and gauge(first, "rich") is not None
            and gauge(second, "rich") is not None
        ),
        timeout_s=30,
        message="each worker's gauge covers its own partitions",
    )

    first.api.post("/v1/customers", {"customer_id": "c-39", "attributes": {"balance": 0}})
    first.api.post("/v1/customers", {"customer_id": "c-39", "attributes": {"balance": 0}})  # no change
    wait_for(lambda: counted(first, rich - 1), timeout_s=60, message="the exit counted once")


def test_a_static_list_upload_enters_and_exits_customers_and_in_segment_reads_it(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str, tmp_path: Path
) -> None:
    worker = workers.start()
    api = worker.api
    assert api.request("PUT", "/v1/segments/vips", {"kind": "static", "name": "VIPs"}).status == 201
    reader = api.request("PUT", "/v1/segments/rich-vips", {"rule": 'in_segment("vips") and balance > 10'})
    assert reader.status == 201
    for customer in ("a", "b", "c"):
        api.post("/v1/customers", {"customer_id": customer, "attributes": {"balance": 100}})
    wait_for(lambda: all(profile(worker, c, 1) for c in "abc"), message="three customers stored")

    uploaded = api.request(
        "PUT", "/v1/segments/vips/members", raw=b"customer_id\na\nb\n", content_type="text/csv"
    )
    assert uploaded.status == 200, uploaded.body
    assert (uploaded.body["added"], uploaded.body["removed"]) == (2, 0)

    def changes() -> set[tuple[str, str, str]]:
        return {
            (c, change["segment_id"], change["change"])
            for c in "abc"
            for change in segment_changes(kafka, namespace, c)
        }

    entered = {(c, s, "ENTERED") for c in "ab" for s in ("vips", "rich-vips")}
    wait_for(lambda: changes() == entered, timeout_s=60, message="a and b entered both segments")
    assert wait_for(lambda: api.get("/v1/segments/vips").body["members"] == 2 or None, message="two counted")
    assert api.get("/v1/segments/vips/members").body["members"] == ["a", "b"]
    assert "$static:vips" not in api.get("/v1/customers/a").body["attributes"]

    # Apply a file whose list replaces the upload: b leaves, c joins.
    (tmp_path / "vips.csv").write_text("customer_id\na\nc\n")
    (tmp_path / "segments.yaml").write_text(
        "segments:\n  - {id: vips, kind: static, name: VIPs, members_file: vips.csv}\n"
    )
    applied = subprocess.run(
        [sys.executable, "-m", "ops.cli", "apply", str(tmp_path / "segments.yaml"), "--api", api.url],
        env={**workers.env(), "REFRACT_API_KEY": api.key or ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert applied.returncode == 0, applied.stderr
    assert (
        applied.stdout.strip()
        == "segment vips: unchanged (version 1); list of 2 customers: 1 added, 1 removed"
    )
    wait_for(
        lambda: (
            changes()
            == entered
            | {
                ("b", "vips", "EXITED"),
                ("b", "rich-vips", "EXITED"),
                ("c", "vips", "ENTERED"),
                ("c", "rich-vips", "ENTERED"),
            }
        ),
        timeout_s=60,
        message="b left and c joined",
    )
    assert api.get("/v1/segments/vips/members").body["members"] == ["a", "c"]
    refused = api.request(
        "PUT", "/v1/segments/rich-vips/members", raw=b"customer_id\na\n", content_type="text/csv"
    )
    assert refused.status == 409 and refused.body["error"]["code"] == "segment_not_static"
