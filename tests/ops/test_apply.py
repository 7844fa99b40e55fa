"""``refract apply``: a YAML file of segments, checked as a whole, versioned against the topic."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from engine.errors import ValidationError
from engine.segments import SegmentCycleError
from ops.apply import load_apply_file, plan_versions
from schemas.codec import decode
from streams.definitions import DefinitionRecord

FILE = b"""
segments:
  - id: rich
    name: Rich customers
    rule: balance >= 10000
  - id: rich_uy
    name: Rich in Uruguay
    rule: |
      in_segment("rich")
      and country == "UY"
  - id: clickers
    rule_json: {"ever": {"interaction": "click"}}
"""


def existing(
    segment_id: str, version: int, body: dict[str, object], deleted: bool = False
) -> DefinitionRecord:
    return DefinitionRecord("segment", segment_id, version, orjson.dumps(body).decode(), deleted, 1)


def test_a_file_of_segments_is_read_and_checked() -> None:
    planned = load_apply_file(FILE)
    assert [p.segment_id for p in planned] == ["rich", "rich_uy", "clickers"]
    assert planned[1].rule.inputs.segments == frozenset({"rich"})
    assert planned[0].body == {"name": "Rich customers", "rule": "balance >= 10000"}


def test_a_bad_rule_names_the_entry_and_the_place() -> None:
    with pytest.raises(ValidationError) as caught:
        load_apply_file(b"segments:\n  - id: a\n    rule: 'true'\n  - id: b\n    rule: balance >= and\n")
    assert caught.value.message.startswith("segments[1] (b): line 1, column 12:")


@pytest.mark.parametrize(
    "text",
    [
        b"- a",
        b"segments: 5",
        b"segments:\n  - id: a\n    rule: 'true'\n  - id: a\n    rule: 'true'",
        b"other: 1",
    ],
)
def test_malformed_files_are_refused(text: bytes) -> None:
    with pytest.raises(ValidationError):
        load_apply_file(text)


def test_new_and_changed_segments_get_the_next_version_and_unchanged_ones_are_skipped() -> None:
    planned = load_apply_file(FILE)
    current = {
        "segment:rich": existing("rich", 4, {"name": "Rich customers", "rule": "balance >= 10000"}),
        "segment:rich_uy": existing("rich_uy", 2, {"rule": "false"}),
        "segment:clickers": existing("clickers", 7, {"rule": "true"}, deleted=True),
    }
    outcomes, records = plan_versions(planned, current, 99, "ns.definitions")
    assert [(o.definition_id, o.version, o.outcome) for o in outcomes] == [
        ("rich", 4, "unchanged"),
        ("rich_uy", 3, "updated"),
        ("clickers", 8, "created"),
    ]
    assert [r.key for r in records] == [b"segment:rich_uy", b"segment:clickers"]
    assert all(r.topic == "ns.definitions" for r in records)
    name, fields = decode(records[0].value or b"")
    assert name == "Definition" and fields["version"] == 3 and fields["kind"] == "segment"


def test_a_loop_with_a_saved_segment_is_refused() -> None:
    planned = load_apply_file(b'segments:\n  - id: a\n    rule: in_segment("b")\n')
    with pytest.raises(SegmentCycleError):
        plan_versions(planned, {"segment:b": existing("b", 1, {"rule": 'in_segment("a")'})}, 1, "t")


def test_a_static_segment_reads_its_members_file_beside_the_yaml(tmp_path: Path) -> None:
    folder = tmp_path
    (folder / "vip.csv").write_text("customer_id\nc-1\nc-2\n")
    planned = load_apply_file(b"segments:\n  - {id: vip-list, kind: static, members_file: vip.csv}\n", folder)
    assert planned[0].members == ("c-1", "c-2") and planned[0].body == {"kind": "static"}


def test_a_members_file_on_a_rule_segment_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"segments\[0\] \(rich\): members_file: only a static segment"):
        load_apply_file(b"segments:\n  - {id: rich, rule: vip, members_file: x.csv}\n")


def test_placements_in_an_apply_file_are_checked_and_planned() -> None:
    from ops.apply import load_definitions, plan_campaign_versions

    text = "placements:\n  - {id: home-hero, kind: popup, open_delay_ms: 500, default: {title: Hi}}\n"
    [planned] = load_definitions(text, "placements")
    assert (planned.kind, planned.campaign_id, planned.body["kind"]) == ("placement", "home-hero", "popup")
    outcomes, records = plan_campaign_versions([planned], {}, 0, "ns.definitions")
    assert [(o.kind, o.definition_id, o.outcome) for o in outcomes] == [("placement", "home-hero", "created")]
    assert records[0].key == b"placement:home-hero"
    with pytest.raises(
        ValidationError, match=r"placements\[0\] \(side\): kind: expected single, multiple or popup"
    ):
        load_definitions("placements:\n  - {id: side, kind: banner}\n", "placements")


SYNCS = """
syncs:
  - id: customers
    kind: attributes
    key: customer_id
    columns: [first_name, {column: balance, type: decimal}]
  - id: branches
    kind: attributes
    key: customer_id
    columns: [city]
    schedule: {cron: "0 2 * * *", timezone: Europe/Madrid}
    source: {folder: /srv/incoming}
"""


def test_syncs_in_an_apply_file_are_validated_and_stored_in_their_canonical_form() -> None:
    from connectors.csv import from_body, parse_sync
    from ops.apply import load_syncs

    planned = load_syncs(SYNCS)
    assert [(p.kind, p.campaign_id) for p in planned] == [("sync", "customers"), ("sync", "branches")]
    assert planned[1].body["schedule"] == {"cron": "0 2 * * *", "timezone": "Europe/Madrid"}
    assert planned[0].body["delimiter"] == ","  # defaults are spelled out
    assert from_body(planned[1].body) == parse_sync(yaml.safe_load(SYNCS)["syncs"][1])
    assert load_apply_file(SYNCS) == []  # the file's top level accepts syncs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "syncs:\n  - {id: a, kind: attributes, key: customer_id, columns: [city]}\n"
            "  - {id: b, kind: attributes, key: customer_id, columns: [{column: x, type: money}]}\n",
            r"syncs\[1\] \(b\): columns\[0\]\.type: ",
        ),
        ("syncs:\n  - {kind: attributes, key: customer_id}\n", r"syncs\[0\]: id: "),
        ("syncs:\n  - 5\n", r"syncs\[0\]: expected a mapping"),
        ("syncs: {id: a}\n", r"syncs: expected a list"),
        (
            "syncs:\n  - {id: a, kind: removals, key: customer_id}\n  - {id: a, kind: removals, key: id}\n",
            r"syncs\[1\]: id: 'a' appears twice",
        ),
        (
            "syncs:\n  - id: a\n    kind: attributes\n    key: customer_id\n    columns: [city]\n"
            "    source: {url: 'https://files.example/a.csv', auth: {type: bearer, token: abc}}\n",
            r"syncs\[0\] \(a\): source\.auth\.token: secrets are never written in a sync",
        ),
    ],
)
def test_a_bad_sync_names_the_entry_and_the_field(text: str, message: str) -> None:
    from ops.apply import load_syncs

    with pytest.raises(ValidationError, match=message):
        load_syncs(text)


def test_a_sync_saved_again_unchanged_keeps_its_version_and_a_changed_one_gets_the_next() -> None:
    from ops.apply import load_syncs, plan_campaign_versions

    customers, branches = load_syncs(SYNCS)
    saved = {
        "sync:customers": DefinitionRecord(
            "sync", "customers", 4, orjson.dumps(customers.body).decode(), False, 1
        ),
        "sync:branches": DefinitionRecord(
            "sync", "branches", 2, orjson.dumps({"id": "x"}).decode(), False, 1
        ),
    }
    outcomes, records = plan_campaign_versions([customers, branches], saved, 0, "ns.definitions")
    assert [(o.kind, o.definition_id, o.outcome, o.version) for o in outcomes] == [
        ("sync", "customers", "unchanged", 4),
        ("sync", "branches", "updated", 3),
    ]
    [record] = records
    assert record.key == b"sync:branches"
    name, fields = decode(record.value)
    assert (name, fields["kind"], fields["version"]) == ("Definition", "sync", 3)
    assert orjson.loads(fields["body"]) == branches.body
