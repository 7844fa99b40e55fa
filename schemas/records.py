"""Typed shapes of the Avro dicts that ``encode``/``decode`` take and give for non-event records.

Timestamps (``*_at``) are int epoch milliseconds. Keys marked ``NotRequired`` have a schema
default and may be left out when encoding; decoding always gives every key.
"""

# No `from __future__ import annotations` here: TypedDict must see NotRequired when the class is
# made, or every key counts as required at runtime.
from typing import Literal, NotRequired, TypeAlias, TypedDict

DefinitionKind: TypeAlias = Literal["segment", "campaign", "placement", "sync", "api_key"]
DEFINITION_KINDS: tuple[DefinitionKind, ...] = (
    "segment",
    "campaign",
    "placement",
    "sync",
    "api_key",
)

SegmentChangeKind: TypeAlias = Literal["ENTERED", "EXITED"]


class DefinitionRecord(TypedDict):
    kind: DefinitionKind
    id: str
    version: int
    body: str
    deleted: NotRequired[bool]
    updated_at: int


class DeliveryRecord(TypedDict):
    delivery_id: str
    customer_id: str
    campaign_id: str
    campaign_version: int
    run_id: str
    step_id: str
    channel: str
    address: str
    content: NotRequired[dict[str, str]]
    created_at: int
    expires_at: NotRequired[int | None]


class SegmentChangeRecord(TypedDict):
    customer_id: str
    segment_id: str
    segment_version: int
    change: SegmentChangeKind
    caused_by_event_id: str
    occurred_at: int


class DecisionStepRecord(TypedDict):
    decision_id: str
    kind: str
    campaign_id: NotRequired[str | None]
    outcome: str
    reason: str
    details: NotRequired[dict[str, str]]


class DecisionRecord(TypedDict):
    decision_id: str
    customer_id: str
    kind: str
    campaign_id: NotRequired[str | None]
    outcome: str
    reason: str
    details: NotRequired[dict[str, str]]
    occurred_at: int
    then: NotRequired[list[DecisionStepRecord]]


class DeadLetterRecord(TypedDict):
    original_topic: str
    partition: int
    offset: int
    key: NotRequired[bytes | None]
    value: NotRequired[bytes | None]
    error_code: str
    error_message: str
    failed_at: int
