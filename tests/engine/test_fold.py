"""The fold: one event changes one customer's state, purely and idempotently."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from engine import behaviour
from engine.behaviour import EMPTY_HISTORY, record_event
from engine.events import (
    BusinessEvent,
    ConsentUpdate,
    ContactUpdate,
    CustomerErased,
    CustomerUpdate,
    DeliveryResult,
    Envelope,
    Interaction,
    Payload,
    PushToken,
)
from engine.fold import PUSH_TOKENS_KEPT, fold
from engine.state import CustomerState, from_document, to_document


def make_envelope(
    payload: Payload, *, event_id: str = "e1", customer_id: str = "c1", at_ms: int = 1_000
) -> Envelope:
    return Envelope(event_id, customer_id, at_ms, at_ms, "test", payload)


def fold_all(payloads: list[Payload]) -> CustomerState | None:
    state = None
    for offset, payload in enumerate(payloads):
        state = fold(state, make_envelope(payload, event_id=f"e{offset}", at_ms=1000 + offset), offset)
    return state


def test_first_event_creates_a_profile_with_its_attributes() -> None:
    state = fold_all([CustomerUpdate(set={"city": "Montevideo", "balance": 100})])
    assert state is not None
    assert state.customer_id == "c1"
    assert state.attributes == {"city": "Montevideo", "balance": 100}
    assert state.first_seen_ms == 1000 and state.events_applied == 1


def test_unset_removes_an_attribute_and_later_values_win() -> None:
    state = fold_all(
        [
            CustomerUpdate(set={"city": "Montevideo", "tier": "gold"}),
            CustomerUpdate(set={"city": "Salto"}, unset=("tier",)),
        ]
    )
    assert state is not None and state.attributes == {"city": "Salto"}


def test_campaign_scoped_data_stays_out_of_the_profile_attributes() -> None:
    state = fold_all([CustomerUpdate(set={"rate": 11.5}, campaign_id="loan-q4")])
    assert state is not None
    assert state.attributes == {}
    assert state.campaign_attributes == {"loan-q4": {"rate": 11.5}}


def test_replaying_an_applied_offset_changes_nothing() -> None:
    state = fold(None, make_envelope(BusinessEvent("login")), 7)
    again = fold(state, make_envelope(BusinessEvent("login"), event_id="other"), 7)
    assert again is state
    older = fold(state, make_envelope(BusinessEvent("login"), event_id="older"), 3)
    assert older is state


def test_the_same_event_id_posted_twice_counts_once() -> None:
    first = fold(None, make_envelope(BusinessEvent("card_transaction"), event_id="tx-1"), 0)
    second = fold(first, make_envelope(BusinessEvent("card_transaction"), event_id="tx-1"), 1)
    assert second is not None and second.event_counts == {"card_transaction": 1}
    assert second.applied_offset == 1


def test_erasure_removes_the_state_and_a_later_event_starts_a_fresh_profile() -> None:
    state = fold_all([CustomerUpdate(set={"city": "Salto"}), CustomerErased(reason="gdpr")])
    assert state is None
    fresh = fold(state, make_envelope(BusinessEvent("login"), event_id="later", at_ms=9000), 10)
    assert fresh is not None and fresh.attributes == {} and fresh.first_seen_ms == 9000


def test_contacts_push_tokens_are_deduplicated_and_bounded() -> None:
    tokens = tuple(PushToken("ios", f"t{i}") for i in range(PUSH_TOKENS_KEPT + 3))
    state = fold_all(
        [
            ContactUpdate(email="a@b.uy", add_push_tokens=tokens),
            ContactUpdate(
                add_push_tokens=(PushToken("ios", "t5"),), remove_push_tokens=(PushToken("ios", "t12"),)
            ),
            ContactUpdate(email=""),
        ]
    )
    assert state is not None
    kept = state.contacts.push_tokens["ios"]
    assert len(kept) <= PUSH_TOKENS_KEPT and kept[-1] == "t5" and "t12" not in kept
    assert state.contacts.email is None


def test_consent_is_recorded_per_scope() -> None:
    state = fold_all(
        [
            ConsentUpdate(opted_in=False, channel="sms"),
            ConsentUpdate(opted_in=False, campaign_id="card-upsell"),
            ConsentUpdate(opted_in=True),
        ]
    )
    assert state is not None
    assert state.consent == {"channel:sms": False, "campaign:card-upsell": False, "all": True}


def test_interactions_and_deliveries_are_counted_overall_and_per_campaign() -> None:
    state = fold_all(
        [
            Interaction(kind="click", interaction_id="i1", campaign_id="promo"),
            Interaction(kind="click", interaction_id="i2"),
            DeliveryResult(delivery_id="d1", status="sent", channel="email"),
        ]
    )
    assert state is not None
    assert state.interaction_counts == {"click": 2, "click:promo": 1}
    assert state.delivery_counts == {"sent:email": 1}


attribute_values = st.one_of(
    st.text(max_size=20),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(),
    st.datetimes(timezones=st.just(dt.UTC)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
    ),
    st.lists(st.text(max_size=5), max_size=4).map(tuple),
)
payloads = st.one_of(
    st.builds(CustomerUpdate, set=st.dictionaries(st.sampled_from("abcdef"), attribute_values, max_size=4)),
    st.builds(BusinessEvent, name=st.sampled_from(["login", "card_transaction"])),
    st.builds(ConsentUpdate, opted_in=st.booleans(), channel=st.sampled_from(["email", "sms", None])),
    st.just(CustomerErased()),
)


@given(st.lists(payloads, max_size=12))
def test_the_document_form_round_trips_any_state(sequence: list[Payload]) -> None:
    state = fold_all(sequence)
    if state is not None:
        assert from_document(to_document(state)) == state


@given(st.lists(payloads, min_size=1, max_size=12), st.integers(0, 11))
def test_replaying_a_prefix_after_a_crash_gives_the_same_state(
    sequence: list[Payload], crash_at: int
) -> None:
    crash_at = min(crash_at, len(sequence) - 1)
    envelopes = [make_envelope(p, event_id=f"e{i}", at_ms=1000 + i) for i, p in enumerate(sequence)]
    once = None
    for offset, envelope in enumerate(envelopes):
        once = fold(once, envelope, offset)
    replayed = None
    for offset, envelope in enumerate(envelopes):
        replayed = fold(replayed, envelope, offset)
        if offset == crash_at:  # the offsets after the last commit are delivered again
            for again_offset in range(crash_at // 2, crash_at + 1):
                replayed = fold(replayed, envelopes[again_offset], again_offset)
    assert replayed == once


def test_evolve_keeps_every_field_it_is_not_told_to_change() -> None:
    from dataclasses import fields

    from engine.state import Contacts, evolve

    state = CustomerState(
        customer_id="c9",
        attributes={"a": 1},
        campaign_attributes={"x": {"r": 1.0}},
        contacts=Contacts(email="a@b.uy"),
        consent={"all": True},
        event_counts={"e": 1},
        interaction_counts={"click": 1},
        delivery_counts={"sent:email": 1},
        recent_ids=("i",),
        first_seen_ms=5,
        last_event_ms=6,
        events_applied=7,
        applied_offset=8,
        behaviour=record_event(EMPTY_HISTORY, BusinessEvent("login"), 5),
        segments={"vip": 5},
        segment_due_ms={"recent": 9},
    )
    assert evolve(state, {}) == state
    for field in fields(CustomerState):
        if field.name != "customer_id":
            changed = evolve(state, {field.name: "sentinel"})
            assert getattr(changed, field.name) == "sentinel", field.name


def test_business_events_and_interactions_are_recorded_in_the_behaviour_history() -> None:
    state = fold_all(
        [
            BusinessEvent("card_transaction", {"amount": 10.0}),
            BusinessEvent("card_transaction", {"amount": 5.5}),
            Interaction(kind="click", interaction_id="i1", campaign_id="card-upsell"),
            CustomerUpdate(set={"city": "Salto"}),
        ]
    )
    assert state is not None
    history = state.behaviour
    assert behaviour.count(history, "card_transaction", None, 2_000) == 2
    assert behaviour.sum_(history, "card_transaction", "amount", 7 * behaviour.DAY_MS, 2_000) == 15.5
    assert behaviour.ever(history, "interaction:click:card-upsell")
    assert set(history.events) == {"card_transaction", "interaction:click", "interaction:click:card-upsell"}


def test_behaviour_is_recorded_at_the_received_time_when_the_event_claims_a_later_one() -> None:
    envelope = Envelope("e1", "c1", 50_000, 1_000, "test", BusinessEvent("login"))
    state = fold(None, envelope, 0)
    assert state is not None
    assert state.behaviour.events["login"].last_ms == 1_000


def test_a_replayed_event_is_not_recorded_twice_in_the_behaviour_history() -> None:
    state = fold(None, make_envelope(BusinessEvent("login"), event_id="x"), 0)
    again = fold(state, make_envelope(BusinessEvent("login"), event_id="x"), 1)
    assert again is not None and behaviour.count(again.behaviour, "login", None, 2_000) == 1


def test_a_document_without_behaviour_or_segments_reads_as_empty_ones() -> None:
    state = fold_all([CustomerUpdate(set={"city": "Salto"})])
    assert state is not None
    doc = to_document(state)
    assert "behaviour" not in doc and "segments" not in doc
    old = {k: v for k, v in doc.items() if k not in ("behaviour", "segments", "segment_due_ms")}
    read = from_document(old)
    assert read.behaviour == EMPTY_HISTORY and read.segments == {} and read.segment_due_ms == {}
    assert read.segments_due_ms is None


def test_segments_and_their_due_times_round_trip_through_the_document() -> None:
    from engine.state import evolve

    state = fold_all([BusinessEvent("login")])
    assert state is not None
    state = evolve(state, {"segments": {"vip": 1_000}, "segment_due_ms": {"a": 9_000, "b": 7_000}})
    assert from_document(to_document(state)) == state
    assert state.segments_due_ms == 7_000
