"""Evaluating new segments over stored customers: the planned common case agrees with ``update``."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import Payload
from engine.segments.membership import NOTHING_CHANGED, SegmentIndex, evaluate_all, update
from engine.segments.reevaluation import Reevaluation
from engine.state import CustomerState, evolve, membership_view, to_document
from tests.engine.segments.test_membership import DAY_MS, RULES, START_MS, gaps_ms, make_index, payloads, step

# Segments added to RULES after the customers were folded, one of each kind.
NEW_RULES = {
    "big": "balance >= 150",  # reads an attribute only: the planned case
    "loan_rate": 'offer("loan").rate >= 10',  # a campaign's data: the planned case
    "recently_active": 'count(event="login", within="3d") >= 1',  # time: always ``update``
    "rich_big": 'in_segment("rich") and in_segment("big")',  # other segments: always ``update``
}


def make_customer(**fields: object) -> CustomerState:
    return CustomerState("c1", **fields)  # type: ignore[arg-type]


def reevaluate(index: SegmentIndex, state: CustomerState, segments: list[str], now_ms: int) -> CustomerState:
    """The stored ``state`` after evaluating ``segments`` for it as a backfill does."""
    view = membership_view(orjson.loads(orjson.dumps(to_document(state))))
    result = Reevaluation.plan(index, segments).update(view, now_ms)
    as_state = view.as_state()
    reference = update(index, as_state, as_state, NOTHING_CHANGED, now_ms, reevaluate=segments)
    if result is not None:
        assert result == reference
        assert result.segments is view.segments or result.changes
        assert result.segment_due_ms is view.segment_due_ms
    return evolve(state, {"segments": reference.segments, "segment_due_ms": reference.segment_due_ms})


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(payloads, gaps_ms), min_size=1, max_size=15),
    st.sets(st.sampled_from(sorted(NEW_RULES)), min_size=1),
    gaps_ms,
)
def test_a_backfill_leaves_the_memberships_of_an_evaluation_from_scratch(
    events: list[tuple[Payload, int]], added: set[str], later_ms: int
) -> None:
    index = make_index(RULES)
    state: CustomerState | None = None
    now_ms = START_MS
    for offset, (payload, gap_ms) in enumerate(events):
        now_ms += gap_ms
        state, _ = step(index, state, payload, offset, now_ms)
    if state is None:
        return
    now_ms += later_ms
    extended = make_index({**RULES, **{s: NEW_RULES[s] for s in added}})
    after = reevaluate(extended, state, sorted(added), now_ms)
    assert set(after.segments) == set(evaluate_all(extended, after, now_ms))


def test_an_attribute_segment_is_entered_without_update() -> None:
    index = make_index({"rich": "balance >= 100", "big": "balance >= 150"})
    state = make_customer(attributes={"balance": 200}, segments={"rich": 1})
    result = Reevaluation.plan(index, ["big"]).update(state, START_MS)
    assert result is not None
    assert dict(result.segments) == {"rich": 1, "big": START_MS}
    assert [(c.segment_id, c.kind, c.version) for c in result.changes] == [("big", "ENTERED", 1)]


def test_a_customer_the_segment_does_not_change_keeps_the_same_mappings() -> None:
    index = make_index({"big": "balance >= 150"})
    state = make_customer(attributes={"balance": 1}, segment_due_ms={})
    result = Reevaluation.plan(index, ["big"]).update(state, START_MS)
    assert result is not None and not result.changes
    assert result.segments is state.segments and result.segment_due_ms is state.segment_due_ms


def test_a_customer_with_something_due_is_left_to_update() -> None:
    index = make_index({"big": "balance >= 150", "active": 'count(event="login", within="1d") >= 1'})
    state = make_customer(attributes={"balance": 200}, segment_due_ms={"active": START_MS - 1})
    assert Reevaluation.plan(index, ["big"]).update(state, START_MS) is None
    later = make_customer(attributes={"balance": 200}, segment_due_ms={"active": START_MS + DAY_MS})
    assert Reevaluation.plan(index, ["big"]).update(later, START_MS) is not None


def test_a_membership_of_a_deleted_segment_is_left_to_update() -> None:
    index = make_index({"big": "balance >= 150"})
    state = make_customer(attributes={"balance": 200}, segments={"gone": 1})
    assert Reevaluation.plan(index, ["big"]).update(state, START_MS) is None


def test_a_segment_read_by_another_or_depending_on_time_is_left_to_update() -> None:
    index = make_index({"big": "balance >= 150", "big_too": 'in_segment("big")'})
    state = make_customer(attributes={"balance": 200})
    assert Reevaluation.plan(index, ["big"]).update(state, START_MS) is None  # big_too reads it
    timed = make_index({"recent": "days_since(last_seen) <= 3"})
    assert Reevaluation.plan(timed, ["recent"]).update(state, START_MS) is None


def test_a_segment_that_no_longer_depends_on_time_is_left_to_update_to_drop_its_due_time() -> None:
    index = make_index({"big": "balance >= 150"}, version=2)
    state = make_customer(attributes={"balance": 200}, segment_due_ms={"big": START_MS + DAY_MS})
    assert Reevaluation.plan(index, ["big"]).update(state, START_MS) is None
