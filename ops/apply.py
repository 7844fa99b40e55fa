"""``refract apply FILE.yaml``: save the segments and campaigns a YAML file describes as Definitions.

    segments:
      - id: rich
        name: Rich customers
        description: optional
        rule: balance >= 10000          # or rule_json: {...}
      - id: vip-list
        kind: static                    # members: a list of customer ids
        members_file: vip.csv           # CSV with a customer_id column, beside this file

    campaigns:
      - id: card-upsell                 # the campaign format: docs/campaigns.md
        name: Card upsell
        triggers: [{event: card_transaction}]
        ...

    syncs:
      - id: customers                   # the sync format: docs/imports.md
        kind: attributes
        key: customer_id
        columns: [first_name, {column: balance, type: decimal}]

Everything in the file is checked first (rules, templates, flows, sync mappings, and no
``in_segment`` loop with the segments already saved); nothing is written unless all are valid.
A definition whose body did not change keeps its version; the others get the next version. A
static segment's ``members_file`` is then uploaded through a running worker's API
(``PUT /v1/segments/{id}/members``), which appends the additions and removals as events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import yaml

from api.static_segments import read_member_ids
from connectors.syncs.definition import SYNC_KIND, sync_body
from engine.campaigns.definition import CAMPAIGN_KIND, campaign_from_body, check_campaign_id
from engine.campaigns.placements import PLACEMENT_KIND, check_placement_id, placement_from_body
from engine.errors import RefractError, ValidationError
from engine.segments import Rule, check_no_cycles
from engine.segments.definition import (
    SEGMENT_KIND,
    check_segment_id,
    definition_key,
    segment_body,
    segment_from_body,
)
from streams.definitions import DefinitionRecord, compile_segment, definition_record


@dataclass(slots=True, frozen=True)
class PlannedSegment:
    segment_id: str
    body: dict[str, Any]
    rule: Rule
    members: tuple[str, ...] | None = None  # a static segment's list, read from its members_file


@dataclass(slots=True, frozen=True)
class PlannedCampaign:
    """A campaign (or a placement or a sync: ``kind``) of an apply file, checked."""

    campaign_id: str
    body: dict[str, Any]
    kind: str = "campaign"


@dataclass(slots=True, frozen=True)
class Applied:
    definition_id: str
    version: int
    outcome: str  # created, updated, unchanged
    kind: str = SEGMENT_KIND
    list_outcome: Mapping[str, Any] | None = None  # a static segment's upload: members, added, removed


def load_apply_file(text: bytes | str, folder: Path | None = None) -> list[PlannedSegment]:
    """The segments of an apply file, each checked. Raises ValidationError naming the entry.

    ``members_file`` paths are relative to ``folder`` (the file's own folder).
    """
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"the file is not valid YAML: {exc}") from None
    if not isinstance(doc, Mapping) or set(doc) - {"segments", "campaigns", "placements", "syncs"}:
        raise ValidationError(
            "the file must be a mapping with 'segments', 'campaigns', 'placements' and/or 'syncs' lists"
        )
    entries = doc.get("segments") or []
    if not isinstance(entries, list):
        raise ValidationError("segments: expected a list of {id, name, rule}")
    planned: list[PlannedSegment] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries):
        where = f"segments[{position}]"
        if not isinstance(entry, Mapping):
            raise ValidationError(f"{where}: expected a mapping with id, name and rule")
        try:
            segment_id = check_segment_id(entry.get("id"), "id")
            if segment_id in seen:
                raise ValidationError(f"id: {segment_id!r} appears twice in the file", "id")
            seen.add(segment_id)
            body = segment_body(_json_safe({k: v for k, v in entry.items() if k != "members_file"}))
            segment = segment_from_body(segment_id, 0, body)
            members = _members(entry.get("members_file"), segment.is_static, folder or Path("."))
        except RefractError as exc:
            label = f"{where} ({entry.get('id')})" if isinstance(entry.get("id"), str) else where
            raise ValidationError(f"{label}: {exc.message}") from None
        planned.append(PlannedSegment(segment_id, body, segment.rule, members))
    return planned


_KINDS: dict[str, tuple[str, Callable[[object, str], str], Callable[..., object]]] = {
    # list name in the file -> (definition kind, id check, body check)
    "campaigns": (CAMPAIGN_KIND, check_campaign_id, campaign_from_body),
    "placements": (PLACEMENT_KIND, check_placement_id, placement_from_body),
}


def load_definitions(text: bytes | str, list_name: str) -> list[PlannedCampaign]:
    """The campaigns (or placements) of an apply file, each checked; errors name the entry and field."""
    kind, check_id, check_body = _KINDS[list_name]
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"the file is not valid YAML: {exc}") from None
    entries = doc.get(list_name) or [] if isinstance(doc, Mapping) else []
    if not isinstance(entries, list):
        raise ValidationError(f"{list_name}: expected a list of {list_name}, each with an id")
    planned: list[PlannedCampaign] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries):
        where = f"{list_name}[{position}]"
        if not isinstance(entry, Mapping):
            raise ValidationError(f"{where}: expected a mapping with an id (see docs/campaigns.md)")
        try:
            definition_id = check_id(entry.get("id"), "id")
            if definition_id in seen:
                raise ValidationError(f"id: {definition_id!r} appears twice in the file", "id")
            seen.add(definition_id)
            drop = ("id", "kind") if kind == CAMPAIGN_KIND else ("id",)
            body = {k: v for k, v in _json_safe(entry).items() if k not in drop}
            check_body(definition_id, 0, body)
        except RefractError as exc:
            label = f"{where} ({entry.get('id')})" if isinstance(entry.get("id"), str) else where
            raise ValidationError(f"{label}: {exc.message}") from None
        planned.append(PlannedCampaign(definition_id, body, kind))
    return planned


def load_campaigns(text: bytes | str) -> list[PlannedCampaign]:
    return load_definitions(text, "campaigns")


def load_syncs(text: bytes | str) -> list[PlannedCampaign]:
    """The syncs of an apply file, each validated like a sync file; errors name the entry and field.

    A sync's body is its canonical form, so rewording a sync without changing it keeps its version.
    """
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"the file is not valid YAML: {exc}") from None
    entries = doc.get("syncs") or [] if isinstance(doc, Mapping) else []
    if not isinstance(entries, list):
        raise ValidationError("syncs: expected a list of syncs, each with an id (see docs/imports.md)")
    planned: list[PlannedCampaign] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries):
        where = f"syncs[{position}]"
        if not isinstance(entry, Mapping):
            raise ValidationError(f"{where}: expected a mapping with id, kind and key (see docs/imports.md)")
        try:
            body = sync_body(entry)
        except RefractError as exc:
            label = f"{where} ({entry.get('id')})" if isinstance(entry.get("id"), str) else where
            raise ValidationError(f"{label}: {exc.message}", getattr(exc, "field", None)) from None
        if body["id"] in seen:
            raise ValidationError(f"{where}: id: {body['id']!r} appears twice in the file", "id")
        seen.add(body["id"])
        planned.append(PlannedCampaign(body["id"], body, SYNC_KIND))
    return planned


def plan_campaign_versions(
    planned: list[PlannedCampaign], existing: Mapping[str, DefinitionRecord], now_ms: int, topic: str
) -> tuple[list[Applied], list[Any]]:
    """What to write for campaigns, placements and syncs: a new version for each whose body changed."""
    outcomes: list[Applied] = []
    records = []
    for item in planned:
        latest = existing.get(f"{item.kind}:{item.campaign_id}")
        if latest is not None and not latest.deleted and orjson.loads(latest.body) == item.body:
            outcomes.append(Applied(item.campaign_id, latest.version, "unchanged", item.kind))
            continue
        version = (latest.version if latest is not None else 0) + 1
        created = latest is None or latest.deleted
        outcomes.append(Applied(item.campaign_id, version, "created" if created else "updated", item.kind))
        records.append(
            definition_record(
                topic, item.kind, item.campaign_id, version, item.body, deleted=False, now_ms=now_ms
            )
        )
    return outcomes, records


def _members(members_file: Any, is_static: bool, folder: Path) -> tuple[str, ...] | None:
    if members_file is None:
        return None
    if not is_static:
        raise ValidationError("members_file: only a static segment (kind: static) has a list of members")
    if not isinstance(members_file, str):
        raise ValidationError("members_file: expected the path of a CSV file with a customer_id column")
    path = folder / members_file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"members_file: cannot read {path}: {exc.strerror}") from None
    return tuple(read_member_ids(data))


def _json_safe(entry: Mapping[str, Any]) -> dict[str, Any]:
    # YAML reads bare dates as dates; the JSON form spells them {"date": ...} anyway.
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(dict(entry), default=str))
    return loaded


def plan_versions(
    planned: list[PlannedSegment], existing: Mapping[str, DefinitionRecord], now_ms: int, topic: str
) -> tuple[list[Applied], list[Any]]:
    """What to write: the outcome per segment and the records. Raises SegmentCycleError."""
    rules: dict[str, Rule] = {}
    for record in existing.values():
        if record.kind == SEGMENT_KIND and not record.deleted:
            try:
                rules[record.definition_id] = compile_segment(record).rule
            except RefractError:
                continue
    for segment in planned:
        rules[segment.segment_id] = segment.rule
    check_no_cycles(rules)
    outcomes: list[Applied] = []
    records = []
    for segment in planned:
        latest = existing.get(definition_key(segment.segment_id))
        if latest is not None and not latest.deleted and orjson.loads(latest.body) == segment.body:
            outcomes.append(Applied(segment.segment_id, latest.version, "unchanged"))
            continue
        version = (latest.version if latest is not None else 0) + 1
        created = latest is None or latest.deleted
        outcomes.append(Applied(segment.segment_id, version, "created" if created else "updated"))
        records.append(
            definition_record(
                topic, SEGMENT_KIND, segment.segment_id, version, segment.body, deleted=False, now_ms=now_ms
            )
        )
    return outcomes, records


def apply_file(
    text: bytes,
    bootstrap: str,
    topic: str,
    *,
    dry_run: bool = False,
    folder: Path | None = None,
    upload: Callable[[str, tuple[str, ...]], Mapping[str, Any]] | None = None,
) -> list[Applied]:
    """Check the file and save its segments on ``topic``; returns what happened to each.

    ``upload(segment_id, members)`` sends a static segment's list (through the API) once the
    definitions are saved; its answer is the ``list`` of that segment's outcome.
    """
    from streams.definitions import read_definitions

    planned = load_apply_file(text, folder)
    campaigns = load_campaigns(text) + load_definitions(text, "placements") + load_syncs(text)
    existing = read_definitions(bootstrap, topic)
    now_ms = int(time.time() * 1000)
    outcomes, records = plan_versions(planned, existing, now_ms, topic)
    campaign_outcomes, campaign_records = plan_campaign_versions(campaigns, existing, now_ms, topic)
    records += campaign_records
    lists = {segment.segment_id: segment.members for segment in planned if segment.members is not None}
    if dry_run:
        return [
            replace(a, list_outcome={"members": len(lists[a.definition_id])})
            if a.definition_id in lists
            else a
            for a in outcomes
        ] + campaign_outcomes
    if records:
        _send(bootstrap, records)
    if not lists:
        return outcomes + campaign_outcomes
    if upload is None:
        raise ValidationError(
            "the file has members_file lists: they are uploaded through a running worker's API"
        )
    return [
        replace(a, list_outcome=upload(a.definition_id, lists[a.definition_id]))
        if a.definition_id in lists
        else a
        for a in outcomes
    ] + campaign_outcomes


def _send(bootstrap: str, records: list[Any]) -> None:
    import asyncio

    from streams.producer import Producer

    async def send() -> None:
        producer = Producer(bootstrap, client_id="refract-apply")
        try:
            await producer.send_batch(records)
        finally:
            producer.close()

    asyncio.run(send())


def upload_members(
    api: Any, segment_id: str, members: tuple[str, ...], timeout_s: float = 30.0
) -> Mapping[str, Any]:
    """Send a static segment's list to ``PUT /v1/segments/{id}/members`` of ``api`` (an ApiEndpoint).

    Retried while the worker has not read the segment's definition yet (404).
    """
    from ops.api_client import ApiRequestFailed

    body = ("customer_id\n" + "".join(f"{_csv_cell(m)}\n" for m in members)).encode()
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer: Mapping[str, Any] = api.request(
                "PUT", f"/v1/segments/{segment_id}/members", body=body, content_type="text/csv"
            )
            return answer
        except ApiRequestFailed as exc:
            if exc.status not in (404, 503) or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _csv_cell(value: str) -> str:
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value
