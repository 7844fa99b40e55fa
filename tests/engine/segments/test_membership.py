"""Real-time membership: only the segments an event touched are evaluated, with the same result."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import BusinessEvent, CustomerErased, CustomerUpdate, Envelope, Interaction, Payload, Tick
from engine.fold import fold
from engine.segments import SegmentCycleError, rule_from_text
from engine.segments.membership import (
    ChangedInputs,
    CompiledSegment,
    SegmentIndex,
    evaluate_all,
    exits_on_erasure,
    inputs_changed_by,
    update,
)
from engine.state import CustomerState, evolve

DAY_MS = 86_400_000
START_MS = 1_718_020_800_000  # Monday 10 June 2024, 12:00 UTC


def make_index(rules: dict[str, str], version: int = 1) -> SegmentIndex:
    return SegmentIndex.build(
        CompiledSegment(segment_id, version, rule_from_text(text)) for segment_id, text in rules.items()
    )


def make_envelope(payload: Payload, offset: int, at_ms: int) -> Envelope:
    return Envelope(f"e{offset}", "c1", at_ms, at_ms, "test", payload)


def step(
    index: SegmentIndex, state: CustomerState | None, payload: Payload, offset: int, at_ms: int
) -> tuple[CustomerState | None, list[tuple[str, str]]]:
    """Fold one event and update memberships as the processor does."""
    after = fold(state, make_envelope(payload, offset, at_ms), offset)
    if after is None:
        return None, [(c.segment_id, c.kind) for c in exits_on_erasure(index, state, at_ms)]
    if after is state:
        return state, []
    result = update(index, state, after, inputs_changed_by(payload), at_ms)
    after = evolve(after, {"segments": result.segments, "segment_due_ms": result.segment_due_ms})
    return after, [(c.segment_id, c.kind) for c in result.changes]


def test_crossing_a_balance_threshold_enters_and_falling_below_exits() -> None:
    index = make_index({"rich": "balance >= 10000"})
    state, changes = step(index, None, CustomerUpdate(set={"balance": 500}), 0, START_MS)
    assert changes == [] and state is not None and state.segments == {}
    state, changes = step(index, state, CustomerUpdate(set={"balance": 12_000}), 1, START_MS + 10)
    assert changes == [("rich", "ENTERED")]
    assert state is not None and state.segments == {"rich": START_MS + 10}
    state, changes = step(index, state, CustomerUpdate(set={"balance": 12_500}), 2, START_MS + 20)
    assert changes == [] and state is not None and state.segments == {"rich": START_MS + 10}
    state, changes = step(index, state, CustomerUpdate(unset=("balance",)), 3, START_MS + 30)
    assert changes == [("rich", "EXITED")] and state is not None and state.segments == {}


def test_a_new_customer_is_evaluated_against_every_segment() -> None:
    index = make_index({"everyone": "true", "unknown_city": "city is null", "rich": "balance > 5"})
    _, changes = step(index, None, BusinessEvent("login"), 0, START_MS)
    assert sorted(changes) == [("everyone", "ENTERED"), ("unknown_city", "ENTERED")]


def test_only_segments_reading_what_the_event_changed_are_evaluated() -> None:
    index = make_index(
        {
            "rich": "balance >= 10000",
            "uy": 'country == "UY"',
            "active": 'count(event="login", within="7d") >= 1',
            "offer": 'offer("loan").rate < 12',
        }
    )
    state = CustomerState("c1", attributes={"balance": 1})
    after = evolve(state, {"attributes": {"balance": 20_000}})
    result = update(index, state, after, ChangedInputs(attributes=("balance",)), START_MS)
    assert result.evaluated == 1 and [c.segment_id for c in result.changes] == ["rich"]
    assert update(index, state, state, ChangedInputs(attributes=("name",)), START_MS).evaluated == 0
    assert index.affected(ChangedInputs(events=("login",))) == ["active"]
    assert index.affected(ChangedInputs(campaigns=("loan",))) == ["offer"]


def test_segments_reading_a_changed_segment_are_evaluated_after_it() -> None:
    index = make_index(
        {
            "a_vip_uy": 'in_segment("vip") and country == "UY"',
            "vip": "balance >= 10000",
            "z_not_vip": 'not in_segment("vip")',
            "b_top": 'in_segment("a_vip_uy")',
        }
    )
    assert index.affected(ChangedInputs(attributes=("balance",))) == ["vip", "a_vip_uy", "b_top", "z_not_vip"]
    state, _ = step(index, None, CustomerUpdate(set={"country": "UY", "balance": 1}), 0, START_MS)
    assert state is not None and set(state.segments) == {"z_not_vip"}
    state, changes = step(index, state, CustomerUpdate(set={"balance": 20_000}), 1, START_MS + 1)
    assert sorted(changes) == [
        ("a_vip_uy", "ENTERED"),
        ("b_top", "ENTERED"),
        ("vip", "ENTERED"),
        ("z_not_vip", "EXITED"),
    ]


def test_an_index_with_a_loop_is_refused() -> None:
    with pytest.raises(SegmentCycleError):
        make_index({"a": 'in_segment("b")', "b": 'in_segment("a")'})


def test_a_window_registers_when_it_expires_and_the_next_event_after_it_exits() -> None:
    index = make_index({"active": 'count(event="login", within="7d") >= 1'})
    state, changes = step(index, None, BusinessEvent("login"), 0, START_MS)
    assert changes == [("active", "ENTERED")]
    assert state is not None
    due = state.segments_due_ms
    assert due is not None and START_MS + 7 * DAY_MS <= due <= START_MS + 9 * DAY_MS
    state, changes = step(index, state, Tick(due_at_ms=due, reason="segments"), 1, due)
    assert changes == [("active", "EXITED")]
    assert state is not None and state.segments_due_ms is None


def test_a_deleted_segment_is_forgotten_silently() -> None:
    index = make_index({"rich": "balance >= 10", "uy": 'country == "UY"'})
    state, _ = step(index, None, CustomerUpdate(set={"balance": 20, "country": "UY"}), 0, START_MS)
    assert state is not None and set(state.segments) == {"rich", "uy"}
    smaller = make_index({"uy": 'country == "UY"'})
    state, changes = step(smaller, state, BusinessEvent("login"), 1, START_MS + 1)
    assert changes == [] and state is not None and set(state.segments) == {"uy"}
    state, changes = step(SegmentIndex(), state, BusinessEvent("login"), 2, START_MS + 2)
    assert changes == [] and state is not None and state.segments == {}


def test_with_no_segments_the_memberships_are_the_same_objects() -> None:
    state = CustomerState("c1")
    result = update(SegmentIndex(), state, state, ChangedInputs(attributes=("a",)), START_MS)
    assert result.segments is state.segments and result.segment_due_ms is state.segment_due_ms


def test_erasure_exits_every_segment() -> None:
    index = make_index({"rich": "balance >= 10"})
    state, _ = step(index, None, CustomerUpdate(set={"balance": 20}), 0, START_MS)
    state, changes = step(index, state, CustomerErased(), 1, START_MS + 1)
    assert state is None and changes == [("rich", "EXITED")]


def test_inputs_changed_by_events() -> None:
    both = ChangedInputs(attributes=("a", "b"))
    assert inputs_changed_by(CustomerUpdate(set={"a": 1}, unset=("b",))) == both
    assert inputs_changed_by(CustomerUpdate(set={"r": 1}, campaign_id="x")) == ChangedInputs(campaigns=("x",))
    assert inputs_changed_by(BusinessEvent("tx")) == ChangedInputs(events=("tx",))
    assert inputs_changed_by(Interaction(kind="click", interaction_id="i", campaign_id="c")) == ChangedInputs(
        events=("interaction:click", "interaction:click:c")
    )
    assert not inputs_changed_by(Tick(due_at_ms=1, reason="x"))


# --- incremental evaluation equals evaluation from scratch ------------------------------------

RULES = {
    "rich": "balance >= 100",
    "uy": 'country == "UY"',
    "rich_uy": 'in_segment("rich") and in_segment("uy")',
    "not_rich": 'not in_segment("rich")',
    "active": 'count(event="login", within="2d") >= 2',
    "spender": 'sum(event="tx", field="amount", within="7d") > 50',
    "clicked": 'ever(interaction="click", campaign="promo")',
    "offer": 'offer("loan").rate < 12',
    "recent": "days_since(last_seen) <= 3",
    "birthday": 'is_birthday(birth_date, within="3d")',
    "adult": "age >= 18",
    "lonely": 'city is null and not in_segment("active")',
    "deep": 'in_segment("rich_uy") or in_segment("spender")',
}

payloads = st.one_of(
    st.builds(
        CustomerUpdate,
        set=st.dictionaries(
            st.sampled_from(["balance", "country", "city", "last_seen", "birth_date", "timezone"]),
            st.one_of(
                st.integers(0, 200),
                st.sampled_from(["UY", "AR", "Salto", "America/Montevideo", "Asia/Tokyo"]),
                st.dates(dt.date(2000, 1, 1), dt.date(2024, 7, 1)),
            ),
            max_size=3,
        ),
        unset=st.lists(st.sampled_from(["balance", "country", "city"]), max_size=1).map(tuple),
    ),
    st.builds(
        CustomerUpdate,
        set=st.fixed_dictionaries({"rate": st.integers(5, 20)}),
        campaign_id=st.just("loan"),
    ),
    st.builds(BusinessEvent, name=st.just("login")),
    st.builds(BusinessEvent, name=st.just("tx"), data=st.fixed_dictionaries({"amount": st.integers(0, 40)})),
    st.builds(
        Interaction,
        kind=st.just("click"),
        interaction_id=st.uuids().map(str),
        campaign_id=st.sampled_from(["promo", "other"]),
    ),
    st.builds(Tick, due_at_ms=st.just(0), reason=st.just("segments")),
    st.just(CustomerErased()),
)
# Gaps between events: seconds to weeks, so windows expire and days pass.
gaps_ms = st.sampled_from([0, 1_000, 3_600_000, 20 * 3_600_000, DAY_MS, 3 * DAY_MS, 8 * DAY_MS])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(payloads, gaps_ms), min_size=1, max_size=25))
def test_incremental_evaluation_equals_evaluating_every_segment_from_scratch(
    events: list[tuple[Payload, int]],
) -> None:
    index = make_index(RULES)
    state: CustomerState | None = None
    now_ms = START_MS
    for offset, (payload, gap_ms) in enumerate(events):
        now_ms += gap_ms
        state, _ = step(index, state, payload, offset, now_ms)
        if state is None:
            continue
        assert set(state.segments) == set(evaluate_all(index, state, now_ms)), (offset, payload)


def test_a_window_over_events_the_customer_never_had_registers_no_timer() -> None:
    index = make_index(
        {
            "active": 'count(event="login", within="7d") >= 1',
            "quiet": 'count(event="login", within="7d") == 0 and days_since(last_seen) > 3',
        }
    )
    assert index.windows_only == frozenset({"active"})
    state, _ = step(index, None, BusinessEvent("other"), 0, START_MS)
    assert state is not None and "active" not in state.segment_due_ms
