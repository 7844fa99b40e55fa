"""Hypothesis strategies for segment rules and the customers they are evaluated against."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from engine.segments import EvaluationContext
from engine.segments.nodes import (
    INTERACTION_KINDS,
    Age,
    And,
    Attribute,
    Compare,
    Condition,
    Count,
    DaysSince,
    EventRef,
    Ever,
    InSegment,
    IsBirthday,
    IsNull,
    Last,
    Literal,
    Not,
    Offer,
    Operand,
    Or,
    Sum,
    Truth,
)
from tests.engine.segments.factories import NOW, make_history, ms

# --- random rules ------------------------------------------------------------------------------

# A small pool so that generated rules and generated customers meet; some names need attr("...").
ATTRIBUTE_NAMES = ["balance", "country", "tags", "born", "seen", "vip", "first name", "and", "age"]
EVENT_NAMES = ["tx", "login"]
CAMPAIGNS = ["loan-q4", "spring"]
SEGMENTS = ["vip", "gold"]
FIELDS = ["amount", "channel", "in", "two words"]
ZONES = ["UTC", "America/Montevideo", "Asia/Kathmandu", "Pacific/Kiritimati", "Europe/Madrid"]
PATTERNS = ["^Monte", "video$", "(?i)uy", r"\d{3}", "a|b", "^$"]

texts = st.text(max_size=12)
names = st.text(min_size=1, max_size=8)
numbers = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)
dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31))
moments = st.datetimes(
    min_value=dt.datetime(1970, 1, 2),
    max_value=dt.datetime(2100, 1, 1),
    timezones=st.sampled_from(
        [dt.UTC, dt.timezone(dt.timedelta(hours=-3)), dt.timezone(dt.timedelta(hours=5, minutes=45))]
    ),
)
durations = st.builds(
    lambda amount, unit: f"{amount}{unit}",
    st.integers(min_value=1, max_value=57),
    st.sampled_from(["m", "h", "d", "w"]),
)
# Small numbers and days near now, so that thresholds and birthdays are often crossed soon.
small_numbers = st.integers(min_value=-3, max_value=400)
recent_dates = st.integers(min_value=-400 * 40, max_value=30).map(
    lambda days: (NOW + dt.timedelta(days=days)).date()
)
recent_moments = st.integers(min_value=-400 * 24 * 60, max_value=60 * 24).map(
    lambda minutes: NOW + dt.timedelta(minutes=minutes)
)
scalars_by_type = {
    "number": numbers,
    "string": texts,
    "date": dates,
    "timestamp": moments,
}


@st.composite
def event_refs(draw: st.DrawFn) -> EventRef:
    if draw(st.booleans()):
        return EventRef(event=draw(st.sampled_from(EVENT_NAMES) | names))
    campaign = draw(st.none() | st.sampled_from(CAMPAIGNS) | names)
    return EventRef(interaction=draw(st.sampled_from(INTERACTION_KINDS)), campaign=campaign)


attributes = st.builds(Attribute, st.sampled_from(ATTRIBUTE_NAMES) | names)
any_operands: st.SearchStrategy[Operand] = st.one_of(
    attributes,
    st.builds(Last, event_refs(), st.sampled_from(FIELDS) | names),
    st.builds(Offer, st.sampled_from(CAMPAIGNS) | names, st.sampled_from(FIELDS) | names),
)
number_operands: st.SearchStrategy[Operand] = st.one_of(
    st.builds(Count, event_refs(), st.none() | durations),
    st.builds(Sum, event_refs(), st.sampled_from(FIELDS), st.none() | durations),
    st.builds(DaysSince, st.sampled_from(ATTRIBUTE_NAMES)),
    st.builds(Age, st.sampled_from(ATTRIBUTE_NAMES)),
)
boolean_operands: st.SearchStrategy[Operand] = st.one_of(
    st.builds(Ever, event_refs()),
    st.builds(InSegment, st.sampled_from(SEGMENTS) | names),
    st.builds(
        IsBirthday,
        st.sampled_from(ATTRIBUTE_NAMES),
        st.none() | st.integers(min_value=0, max_value=90).map(lambda days: f"{days}d"),
    ),
)


@st.composite
def comparisons(draw: st.DrawFn) -> Condition:
    shape = draw(st.sampled_from(["literal", "number", "list", "member", "pattern", "operands"]))
    if shape == "literal":
        kind = draw(st.sampled_from(list(scalars_by_type)))
        op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        left, right = draw(any_operands), Literal(draw(scalars_by_type[kind]))
        if draw(st.booleans()):
            left, right = right, left
        return Compare(left, op, right)
    if shape == "number":
        op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        return Compare(draw(number_operands), op, Literal(draw(small_numbers | numbers)))
    if shape == "list":
        kind = draw(st.sampled_from(["number", "string"]))
        items = draw(st.lists(scalars_by_type[kind], max_size=4))
        op = draw(st.sampled_from(["in", "not in"]))
        left = draw(any_operands | number_operands if kind == "number" else any_operands)
        return Compare(left, op, Literal(tuple(items)))
    if shape == "member":
        op = draw(st.sampled_from(["in", "not in"]))
        return Compare(Literal(draw(texts)), op, draw(attributes))
    if shape == "pattern":
        return Compare(draw(any_operands), "~", Literal(draw(st.sampled_from(PATTERNS))))
    op = draw(st.sampled_from(["==", "!=", "<", ">="]))
    return Compare(draw(any_operands | number_operands), op, draw(any_operands | number_operands))


leaf_conditions: st.SearchStrategy[Condition] = st.one_of(
    comparisons(),
    st.builds(IsNull, any_operands | number_operands | boolean_operands, st.booleans()),
    st.builds(Truth, boolean_operands | any_operands | st.builds(Literal, st.booleans())),
)
conditions: st.SearchStrategy[Condition] = st.recursive(
    leaf_conditions,
    lambda inner: st.one_of(
        st.builds(And, st.lists(inner, min_size=2, max_size=4).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=2, max_size=4).map(tuple)),
        st.builds(Not, inner),
    ),
    max_leaves=12,
)

# --- random customers --------------------------------------------------------------------------

attribute_values = st.one_of(
    numbers,
    texts,
    st.booleans(),
    dates,
    moments,
    st.lists(texts, max_size=3).map(tuple),
    recent_dates,
    recent_moments,
    st.sampled_from(["Montevideo", "uy", "123", "a"]),
)


@st.composite
def contexts(draw: st.DrawFn) -> EvaluationContext:
    now = NOW + dt.timedelta(minutes=draw(st.integers(min_value=-(10**6), max_value=10**6)))
    events = draw(
        st.lists(
            st.tuples(
                st.sampled_from([*EVENT_NAMES, "interaction:click", "interaction:click:loan-q4"]),
                st.integers(min_value=0, max_value=60 * 24 * 100).map(
                    lambda minutes: now - dt.timedelta(minutes=minutes)
                ),
                st.fixed_dictionaries(
                    {}, optional={"amount": numbers, "channel": texts, "in": attribute_values}
                ),
            ),
            max_size=6,
        )
    )
    return EvaluationContext(
        attributes=draw(st.dictionaries(st.sampled_from(ATTRIBUTE_NAMES), attribute_values)),
        now_ms=ms(now),
        campaign_attributes=draw(
            st.dictionaries(
                st.sampled_from(CAMPAIGNS),
                st.dictionaries(st.sampled_from(FIELDS), attribute_values, max_size=2),
                max_size=2,
            )
        ),
        behaviour=make_history(events),
        segments=frozenset(draw(st.lists(st.sampled_from(SEGMENTS), max_size=2))),
        timezone=draw(st.sampled_from(ZONES)),
    )


# Single clauses that time alone can change, with thresholds near the values customers have.
_time_varying_operands = st.one_of(
    st.builds(Count, st.builds(EventRef, event=st.sampled_from(EVENT_NAMES)), durations),
    st.builds(
        Sum,
        st.builds(EventRef, event=st.sampled_from(EVENT_NAMES)),
        st.just("amount"),
        durations,
    ),
    st.builds(DaysSince, st.sampled_from(["born", "seen"])),
    st.builds(Age, st.sampled_from(["born", "seen"])),
)
_comparison_ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
_numbers = st.builds(Literal, st.integers(min_value=-10, max_value=60))

time_dependent_clauses: st.SearchStrategy[Condition] = st.one_of(
    st.builds(Compare, _time_varying_operands, _comparison_ops, _numbers),
    st.builds(Compare, _numbers, _comparison_ops, _time_varying_operands),  # the number first
    st.builds(
        Truth,
        st.builds(
            IsBirthday,
            st.sampled_from(["born", "seen"]),
            st.none() | st.integers(min_value=0, max_value=90).map(lambda days: f"{days}d"),
        ),
    ),
)


_amounts = st.integers(min_value=0, max_value=20) | st.integers(min_value=-20, max_value=-1)


@st.composite
def timed_contexts(draw: st.DrawFn) -> EvaluationContext:
    """Customers whose dates and events are near now, in various time zones."""
    now = NOW + dt.timedelta(minutes=draw(st.integers(min_value=-(10**6), max_value=10**6)))
    born = draw(st.dates(min_value=dt.date(1940, 1, 1), max_value=dt.date(2024, 1, 1)))
    seen = draw(
        st.integers(min_value=0, max_value=90 * 24 * 60).map(
            lambda minutes: now - dt.timedelta(minutes=minutes)
        )
    )
    events = draw(
        st.lists(
            st.tuples(
                st.sampled_from(EVENT_NAMES),
                st.integers(min_value=0, max_value=60 * 24 * 60).map(
                    lambda minutes: now - dt.timedelta(minutes=minutes)
                ),
                # Mostly non-negative amounts (a sum that only falls); refunds make it rise.
                st.fixed_dictionaries({"amount": _amounts}),
            ),
            max_size=12,
        )
    )
    return EvaluationContext(
        attributes={"born": born, "seen": seen},
        now_ms=ms(now),
        behaviour=make_history(events),
        timezone=draw(st.sampled_from(ZONES)),
    )
