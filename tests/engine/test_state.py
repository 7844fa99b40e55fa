"""The state's document form: the cheap membership view of a document, and memberships patched in."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from engine.behaviour import EMPTY_HISTORY, record
from engine.campaigns.runs import CampaignRun, SendRecord
from engine.errors import DecodeError
from engine.state import (
    Contacts,
    CustomerState,
    evolve,
    from_document,
    membership_view,
    to_document,
    with_memberships,
)

NOW_MS = 1_718_020_800_000
DAY_MS = 86_400_000


def make_customer(**fields: Any) -> CustomerState:
    """A customer with every part of the state filled in (any of them replaced by ``fields``)."""
    history = record(record(EMPTY_HISTORY, "tx", {"amount": 10}, NOW_MS), "tx", {"amount": 5}, NOW_MS + 1)
    values: dict[str, Any] = {
        "attributes": {
            "balance": 12_000.5,
            "city": "Salto",
            "born": dt.date(1990, 2, 28),
            "last_login": dt.datetime(2024, 6, 1, 8, 30, tzinfo=dt.UTC),
            "products": ("card", "loan"),
            "vip": True,
        },
        "campaign_attributes": {"loan": {"rate": 11.5, "until": dt.date(2024, 7, 1)}},
        "contacts": Contacts(email="a@example.com", phone="+59899000000", push_tokens={"ios": ("t1",)}),
        "consent": {"all": True},
        "event_counts": {"tx": 2},
        "recent_ids": ("e1", "e2"),
        "behaviour": history,
        "segments": {"rich": NOW_MS},
        "segment_due_ms": {"active": NOW_MS + DAY_MS},
        "campaigns": {
            "welcome": CampaignRun(
                run_id="r1", version=1, started_ms=NOW_MS, step="wait", due_ms=NOW_MS + 3600
            )
        },
        "sends": (SendRecord(NOW_MS, "email", "welcome"),),
    }
    values.update(fields)
    return CustomerState("c1", **values)


def stored(state: CustomerState) -> dict[str, Any]:
    """The document as the store gives it back: JSON bytes read again."""
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(to_document(state)))
    return loaded


def test_a_membership_view_reads_what_rules_read_as_the_full_state_does() -> None:
    state = make_customer()
    view = membership_view(stored(state))
    assert view.customer_id == state.customer_id
    assert dict(view.attributes) == state.attributes
    assert view.attributes.get("born") == dt.date(1990, 2, 28)
    assert view.attributes.get("missing", "default") == "default"
    assert "products" in view.attributes and len(view.attributes) == len(state.attributes)
    assert {c: dict(values) for c, values in view.campaign_attributes.items()} == state.campaign_attributes
    assert view.behaviour.events["tx"] == state.behaviour.events["tx"]
    assert view.segments == state.segments
    assert view.segment_due_ms == state.segment_due_ms
    assert view.campaigns == state.campaigns
    assert view.due_ms == state.due_ms == NOW_MS + 3600


def test_a_membership_view_as_a_state_leaves_out_what_no_rule_reads() -> None:
    state = make_customer()
    view = membership_view(stored(state)).as_state()
    assert view.contacts == Contacts() and not view.consent and not view.event_counts
    assert view.recent_ids == () and view.sends == ()
    assert view.segments == state.segments and view.due_ms == state.due_ms
    assert dict(view.attributes) == state.attributes


def test_a_membership_view_with_new_memberships_keeps_the_rest() -> None:
    view = membership_view(stored(make_customer(campaigns={})))
    changed = view.with_memberships({"new": NOW_MS}, {"new": NOW_MS + 5})
    assert changed.segments == {"new": NOW_MS} and changed.due_ms == NOW_MS + 5
    assert changed.attributes is view.attributes and view.segments == {"rich": NOW_MS}


def test_a_membership_view_of_a_customer_with_nothing_optional_is_empty_there() -> None:
    state = CustomerState("c2", attributes={"balance": 1})
    view = membership_view(stored(state))
    assert not view.segments and not view.segment_due_ms and not view.campaigns
    assert not view.behaviour.events and view.due_ms is None


@pytest.mark.parametrize(
    "doc",
    [{"id": "c1"}, {"id": "c1", "attributes": [], "campaign_attributes": {}}, []],
    ids=["no attributes", "attributes not an object", "not an object"],
)
def test_a_malformed_document_cannot_be_viewed(doc: Any) -> None:
    with pytest.raises(DecodeError):
        membership_view(doc)


@pytest.mark.parametrize(
    ("before", "segments", "due"),
    [
        ({"rich": 1}, {"rich": 1, "new": NOW_MS}, {"active": 5}),  # an entry
        ({}, {"new": NOW_MS}, {}),  # the first membership: the field appears
        ({"rich": 1}, {}, {}),  # the last exit: the fields disappear
        ({}, {}, {"new": NOW_MS + DAY_MS}),  # a due time only
    ],
)
@pytest.mark.parametrize("with_campaigns", [True, False])
def test_memberships_patched_into_a_document_are_the_document_of_the_state_with_them(
    before: dict[str, int], segments: dict[str, int], due: dict[str, int], with_campaigns: bool
) -> None:
    extra: dict[str, Any] = {} if with_campaigns else {"campaigns": {}, "sends": ()}
    state = make_customer(segments=before, segment_due_ms={}, **extra)
    patched = with_memberships(stored(state), segments, due)
    expected = evolve(state, {"segments": segments, "segment_due_ms": due})
    assert orjson.dumps(patched) == orjson.dumps(to_document(expected))
    assert from_document(patched) == expected


def test_patching_memberships_leaves_the_document_read_unchanged() -> None:
    doc = stored(make_customer())
    before = orjson.dumps(doc)
    with_memberships(doc, {}, {})
    assert orjson.dumps(doc) == before
