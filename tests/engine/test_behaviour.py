"""Behaviour history: bounded buckets that count a customer's own events over time windows."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.behaviour import (
    BUCKETS_KEPT,
    DAY_MS,
    EMPTY_HISTORY,
    FIELDS_SUMMED,
    HOUR_MS,
    LAST_TEXT_KEPT,
    MAX_WINDOW_MS,
    NAMES_KEPT,
    WEEK_MS,
    BehaviourHistory,
    count,
    ever,
    from_document,
    last,
    record,
    record_event,
    sum_,
    to_document,
    window_changes,
)
from engine.errors import DecodeError
from engine.events import BusinessEvent, CustomerUpdate, Interaction, ReferralClick

NOW = int(dt.datetime(2024, 6, 10, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)
NO_DATA: Mapping[str, Any] = {}


def record_all(events: Sequence[tuple[str, int, Mapping[str, Any]]]) -> BehaviourHistory:
    history = EMPTY_HISTORY
    for name, at_ms, data in events:
        history = record(history, name, data, at_ms)
    return history


def test_empty_history_counts_nothing_and_never_saw_anything() -> None:
    assert count(EMPTY_HISTORY, "login", 7 * DAY_MS, NOW) == 0
    assert sum_(EMPTY_HISTORY, "login", "amount", 7 * DAY_MS, NOW) == 0
    assert last(EMPTY_HISTORY, "login") is None
    assert not ever(EMPTY_HISTORY, "login")
    assert window_changes(EMPTY_HISTORY, "login", None, DAY_MS, NOW) == []


def test_record_returns_a_new_history_and_leaves_the_old_one_unchanged() -> None:
    before = record(EMPTY_HISTORY, "login", {}, NOW - HOUR_MS)
    after = record(before, "login", {}, NOW)
    assert count(before, "login", None, NOW) == 1
    assert count(after, "login", None, NOW) == 2


def test_count_within_a_window_leaves_out_older_events() -> None:
    history = record_all(
        [("tx", NOW - 10 * DAY_MS, {}), ("tx", NOW - 3 * DAY_MS, {}), ("tx", NOW - HOUR_MS, {})]
    )
    assert count(history, "tx", 7 * DAY_MS, NOW) == 2
    assert count(history, "tx", 2 * HOUR_MS, NOW) == 1
    assert count(history, "tx", None, NOW) == 3


def test_hourly_windows_are_exact_to_the_hour_for_recent_events() -> None:
    # Events at 09:30 and 10:30; at 12:00 a 2-hour window starts at 10:00.
    history = record_all([("tx", NOW - 150 * 60_000, {}), ("tx", NOW - 90 * 60_000, {})])
    assert count(history, "tx", 2 * HOUR_MS, NOW) == 1
    # The 09:00 bucket counts while any of it is after now - 2h: 09:30 still counts at 11:45,
    # one hour of precision, and stops counting at 11:59:59.999.
    assert count(history, "tx", 2 * HOUR_MS, NOW - 15 * 60_000) == 2
    assert count(history, "tx", 2 * HOUR_MS, NOW - 2) == 2
    assert count(history, "tx", 2 * HOUR_MS, NOW - 1) == 1


def test_sum_adds_a_numeric_field_over_the_window() -> None:
    history = record_all(
        [
            ("tx", NOW - 40 * DAY_MS, {"amount": 1000}),
            ("tx", NOW - 5 * DAY_MS, {"amount": 250.5, "merchant": "shop"}),
            ("tx", NOW - 1 * DAY_MS, {"amount": 100}),
        ]
    )
    assert sum_(history, "tx", "amount", 30 * DAY_MS, NOW) == 350.5
    assert sum_(history, "tx", "amount", None, NOW) == 1350.5
    assert sum_(history, "tx", "merchant", 30 * DAY_MS, NOW) == 0


def test_booleans_and_texts_are_not_summed() -> None:
    history = record_all([("tx", NOW, {"flag": True, "code": "7", "amount": 3})])
    assert dict(history.events["tx"].total_sums) == {"amount": 3}


def test_only_the_first_sixteen_numeric_fields_of_a_name_are_summed() -> None:
    first = {f"f{index:02}": 1 for index in range(FIELDS_SUMMED + 4)}
    history = record_all([("tx", NOW - HOUR_MS, first), ("tx", NOW, {"f00": 1, "late": 5})])
    sums = history.events["tx"].total_sums
    assert len(sums) == FIELDS_SUMMED
    assert sums["f00"] == 2
    assert "late" not in sums


def test_last_keeps_the_data_of_the_latest_occurrence_by_time() -> None:
    history = record_all(
        [
            ("login", NOW - HOUR_MS, {"channel": "app"}),
            ("login", NOW - 2 * HOUR_MS, {"channel": "web"}),  # arrives late, happened earlier
        ]
    )
    occurrence = last(history, "login")
    assert occurrence is not None
    assert occurrence.occurred_at_ms == NOW - HOUR_MS
    assert occurrence.data == {"channel": "app"}


def test_last_data_texts_are_cut_to_a_bounded_length() -> None:
    history = record_all([("login", NOW, {"note": "x" * 1000})])
    occurrence = last(history, "login")
    assert occurrence is not None
    assert occurrence.data["note"] == "x" * LAST_TEXT_KEPT


def test_first_and_last_seen_times_are_kept() -> None:
    history = record_all([("login", NOW - DAY_MS, {}), ("login", NOW - 3 * DAY_MS, {})])
    entry = history.events["login"]
    assert (entry.first_ms, entry.last_ms) == (NOW - 3 * DAY_MS, NOW - DAY_MS)


def test_ever_remembers_events_older_than_any_window() -> None:
    history = record_all([("signup", NOW - 3 * 365 * DAY_MS, {}), ("login", NOW, {})])
    assert ever(history, "signup")
    assert count(history, "signup", MAX_WINDOW_MS, NOW) == 0
    assert count(history, "signup", None, NOW) == 1


def test_business_events_and_interactions_are_recorded_under_their_names() -> None:
    history = record_event(EMPTY_HISTORY, BusinessEvent("card_transaction", {"amount": 5}), NOW)
    history = record_event(
        history, Interaction("click", "i1", campaign_id="card-upsell", channel="email"), NOW
    )
    history = record_event(history, ReferralClick("code", "spring", source="ig"), NOW)
    history = record_event(history, CustomerUpdate(set={"a": 1}), NOW)
    assert set(history.events) == {
        "card_transaction",
        "interaction:click",
        "interaction:click:card-upsell",
        "interaction:referral_click",
        "interaction:referral_click:spring",
    }
    occurrence = last(history, "interaction:click")
    assert occurrence is not None
    assert occurrence.data["channel"] == "email"


def test_old_hourly_buckets_are_merged_into_days_and_weeks() -> None:
    events = [("tx", NOW - hours * HOUR_MS, NO_DATA) for hours in range(0, 24 * 120, 5)]
    history = record_all(events)
    widths = {bucket.width_ms for bucket in history.events["tx"].buckets}
    assert widths == {HOUR_MS, DAY_MS, WEEK_MS}
    assert len(history.events["tx"].buckets) <= 72 + 63 + 58
    assert count(history, "tx", None, NOW) == len(events)


def test_buckets_older_than_the_longest_window_are_dropped() -> None:
    history = record_all([("tx", NOW - 500 * DAY_MS, {}), ("tx", NOW, {})])
    assert len(history.events["tx"].buckets) == 1
    assert history.events["tx"].total == 2


def test_under_bucket_pressure_a_long_silent_name_loses_its_buckets_but_not_its_totals() -> None:
    busy = [(f"e{name}", NOW - h * HOUR_MS, NO_DATA) for name in range(70) for h in range(72)]
    history = record_all([("old", NOW - 450 * DAY_MS, NO_DATA), *busy])
    assert history.events["old"].buckets == ()
    assert ever(history, "old")
    assert count(history, "old", None, NOW) == 1


def test_the_number_of_names_is_bounded_and_the_least_recent_are_forgotten() -> None:
    history = record_all([(f"e{index}", NOW + index, {}) for index in range(NAMES_KEPT + 5)])
    assert len(history.events) == NAMES_KEPT
    assert not ever(history, "e0")
    assert ever(history, f"e{NAMES_KEPT + 4}")


def test_the_total_number_of_buckets_is_bounded() -> None:
    events = [(f"e{name}", NOW - hours * HOUR_MS, NO_DATA) for name in range(40) for hours in range(0, 72, 1)]
    history = record_all(events)
    assert sum(len(entry.buckets) for entry in history.events.values()) <= BUCKETS_KEPT


def test_window_changes_say_when_the_count_drops_and_to_what() -> None:
    history = record_all([("tx", NOW - 3 * HOUR_MS, {}), ("tx", NOW - HOUR_MS, {})])
    changes = window_changes(history, "tx", None, 6 * HOUR_MS, NOW)
    assert [value for _, value in changes] == [1, 0]
    for moment, value in changes:
        assert count(history, "tx", 6 * HOUR_MS, moment) == value
        assert count(history, "tx", 6 * HOUR_MS, moment - 1) == value + 1


def test_document_round_trip_gives_back_the_same_history() -> None:
    history = record_all(
        [("tx", NOW - days * DAY_MS, {"amount": days, "shop": "x"}) for days in range(0, 90, 3)]
    )
    document = json.loads(json.dumps(to_document(history)))
    assert from_document(document) == history


def test_a_malformed_document_is_a_decode_error() -> None:
    # Names are decoded when first read: a malformed one fails then, naming itself.
    history = from_document({"v": 1, "events": {"tx": {"first": 1}}})
    with pytest.raises(DecodeError, match="'tx'"):
        count(history, "tx", None, 0)
    with pytest.raises(DecodeError):
        from_document({"v": 99, "events": {}})
    with pytest.raises(DecodeError):
        from_document({"v": 2, "events": [["tx"]]})


# --- properties --------------------------------------------------------------------------------

_events = st.lists(
    st.tuples(
        st.sampled_from(["tx", "login"]),
        st.integers(min_value=0, max_value=420 * DAY_MS),
        st.integers(min_value=0, max_value=1000),
    ),
    min_size=1,
    max_size=60,
)
_windows = st.one_of(
    st.sampled_from([HOUR_MS, 12 * HOUR_MS, 2 * DAY_MS, 7 * DAY_MS, 30 * DAY_MS, 90 * DAY_MS]),
    st.integers(min_value=1, max_value=MAX_WINDOW_MS),
)


def _precision(time_ms: int, newest_ms: int) -> int:
    """The documented bucket width for an event at ``time_ms`` when the newest is ``newest_ms``."""
    day = newest_ms // DAY_MS * DAY_MS
    if time_ms >= day - 2 * DAY_MS:
        return HOUR_MS
    monday = (day - 4 * DAY_MS) // WEEK_MS * WEEK_MS + 4 * DAY_MS
    if time_ms >= monday - 8 * WEEK_MS:
        return DAY_MS
    return WEEK_MS


@settings(max_examples=200, deadline=None)
@given(_events, _windows, st.integers(min_value=0, max_value=60 * DAY_MS))
def test_counting_incrementally_matches_counting_the_raw_events_within_the_precision(
    raw: list[tuple[str, int, int]], window_ms: int, later_ms: int
) -> None:
    start = NOW - 420 * DAY_MS
    events = [(name, start + offset, {"amount": amount}) for name, offset, amount in raw]
    history = record_all(events)
    for name in ("tx", "login"):
        times = [(at, data["amount"]) for event, at, data in events if event == name]
        if not times:
            continue
        newest = max(at for at, _ in times)
        now = newest + later_ms
        boundary = now - window_ms
        surely_in = [(at, amount) for at, amount in times if at > boundary]
        maybe_in = [(at, amount) for at, amount in times if at > boundary - _precision(at, newest)]
        counted = count(history, name, window_ms, now)
        summed = sum_(history, name, "amount", window_ms, now)
        assert len(surely_in) <= counted <= len(maybe_in)
        assert sum(a for _, a in surely_in) <= summed <= sum(a for _, a in maybe_in)
        assert count(history, name, None, now) == len(times)


@settings(max_examples=100, deadline=None)
@given(_events, st.randoms(use_true_random=False))
def test_the_order_events_are_recorded_in_does_not_change_the_buckets(
    raw: list[tuple[str, int, int]], shuffler: random.Random
) -> None:
    start = NOW - 420 * DAY_MS
    events = [(name, start + offset, {"amount": amount}) for name, offset, amount in raw]
    shuffled = list(events)
    shuffler.shuffle(shuffled)
    in_order, out_of_order = record_all(events), record_all(shuffled)
    for name, entry in in_order.events.items():
        other = out_of_order.events[name]
        assert entry.buckets == other.buckets
        assert (entry.first_ms, entry.last_ms, entry.total) == (
            other.first_ms,
            other.last_ms,
            other.total,
        )


@settings(max_examples=100, deadline=None)
@given(_events, _windows, st.integers(min_value=0, max_value=10 * DAY_MS))
def test_window_changes_match_counting_at_each_moment(
    raw: list[tuple[str, int, int]], window_ms: int, later_ms: int
) -> None:
    start = NOW - 420 * DAY_MS
    history = record_all([(name, start + offset, {}) for name, offset, _ in raw])
    newest = history.events[raw[0][0]].last_ms
    now = newest + later_ms
    previous: float = count(history, raw[0][0], window_ms, now)
    for moment, value in window_changes(history, raw[0][0], None, window_ms, now):
        assert moment > now
        assert count(history, raw[0][0], window_ms, moment - 1) == previous
        assert count(history, raw[0][0], window_ms, moment) == value
        previous = value
    assert previous == 0


def test_a_version_1_document_is_still_read() -> None:
    document = {
        "v": 1,
        "events": {
            "tx": {
                "first": 10,
                "last": 20,
                "count": 2,
                "sums": {"amount": 3.0},
                "data": {"shop": "x"},
                "buckets": [[0, HOUR_MS, 2, {"amount": 3.0}]],
            }
        },
    }
    history = from_document(document)
    assert history.events["tx"].total == 2 and history.events["tx"].buckets[0].sums == {"amount": 3.0}
    assert from_document(json.loads(json.dumps(to_document(history)))) == history


@settings(max_examples=150, deadline=None)
@given(_events, _events, st.integers(min_value=1, max_value=150))
def test_a_history_read_back_from_its_document_records_and_writes_like_the_original(
    first: list[tuple[str, int, int]], then: list[tuple[str, int, int]], names: int
) -> None:
    # Up to 150 labels: the later events touch names read back, decoded or never read.
    start = NOW - 420 * DAY_MS
    labelled = [
        (f"{name}-{i % names}", start + offset, {"amount": amount})
        for i, (name, offset, amount) in enumerate(first)
    ]
    original = record_all(labelled)
    read_back = from_document(to_document(original))
    assert read_back == original
    for i, (name, offset, amount) in enumerate(then):
        label = f"{name}-{(i * 7) % names}"
        at = start + offset
        original = record(original, label, {"amount": amount}, at)
        read_back = record(read_back, label, {"amount": amount}, at)
    assert read_back == original
    assert to_document(read_back) == to_document(original)
    assert count(read_back, "tx-0", 7 * DAY_MS, NOW) == count(original, "tx-0", 7 * DAY_MS, NOW)


def test_a_history_read_back_from_its_document_forgets_the_same_names_when_full() -> None:
    start = NOW - 10 * DAY_MS
    full = record_all([(f"name-{i}", start + i * HOUR_MS, {"amount": i}) for i in range(NAMES_KEPT)])
    read_back = from_document(to_document(full))
    one_more = (f"name-{NAMES_KEPT}", NOW, {"amount": 1})
    expected = record(full, one_more[0], one_more[2], one_more[1])
    got = record(read_back, one_more[0], one_more[2], one_more[1])
    assert len(got.events) == NAMES_KEPT
    assert "name-0" not in got.events
    assert got == expected
    assert to_document(got) == to_document(expected)
