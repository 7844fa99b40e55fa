"""Rules that change with time say when they next may change, so a timer fires then."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.segments import (
    EvaluationContext,
    compile_rule,
    evaluate,
    next_change_ms,
    rule_from_text,
    to_text,
)
from engine.segments.calendar import midnight_ms, zone
from engine.segments.nodes import Condition
from engine.segments.timing import evaluate_timed
from tests.engine.segments.factories import DAY_MS, HOUR_MS, NOW, make_context, make_history, ms, utc
from tests.engine.segments.strategies import (
    conditions,
    contexts,
    time_dependent_clauses,
    timed_contexts,
)

DAY = dt.timedelta(days=1)


def at(context: EvaluationContext, moment_ms: int) -> EvaluationContext:
    return replace(context, now_ms=moment_ms)


def flips_exactly_at(rule_text: str, context: EvaluationContext) -> int:
    """The next change moment, after checking the result is steady before it and flips at it."""
    rule = rule_from_text(rule_text)
    moment = next_change_ms(rule, context)
    assert moment is not None
    assert moment > context.now_ms
    before = evaluate(rule, context)
    assert evaluate(rule, at(context, moment - 1)) is before
    assert evaluate(rule, at(context, moment)) is not before
    return moment


def test_rules_that_only_events_can_change_have_no_next_change() -> None:
    for text in ("balance > 5", 'ever(event="x")', 'count(event="x") > 2', 'in_segment("a")'):
        rule = rule_from_text(text)
        assert not rule.time_dependent
        assert next_change_ms(rule, make_context({"balance": 1})) is None


def test_windowed_count_leaves_when_the_oldest_counted_bucket_expires() -> None:
    context = make_context(
        events=[("tx", NOW - 6 * DAY, {}), ("tx", NOW - 2 * DAY, {}), ("tx", NOW - dt.timedelta(hours=1), {})]
    )
    moment = flips_exactly_at('count(event="tx", within="7d") >= 3', context)
    # The oldest event's daily bucket ends at 00:00 on 5 June; it counts for 7 days after that.
    assert moment == ms(utc(2024, 6, 12, 0)) - 1


def test_windowed_count_enters_no_later_than_it_would_by_time() -> None:
    context = make_context(events=[("tx", NOW - n * DAY, {}) for n in (1, 2, 3, 4)])
    # "at most 2 in 3 days" becomes true once enough buckets have expired.
    moment = flips_exactly_at('count(event="tx", within="3d") <= 2', context)
    assert evaluate(rule_from_text('count(event="tx", within="3d") <= 2'), at(context, moment))


def test_windowed_sum_says_when_it_drops_below_the_threshold() -> None:
    context = make_context(
        events=[("tx", NOW - 20 * DAY, {"amount": 800}), ("tx", NOW - DAY, {"amount": 300})]
    )
    flips_exactly_at('sum(event="tx", field="amount", within="30d") > 1000', context)


def test_an_empty_window_never_changes_by_time() -> None:
    rule = rule_from_text('count(event="tx", within="7d") == 0')
    assert next_change_ms(rule, make_context()) is None


def test_days_since_crosses_its_threshold_at_local_midnight() -> None:
    context = make_context({"last_login": dt.date(2024, 5, 20)}, timezone="America/Montevideo")
    moment = flips_exactly_at("days_since(last_login) > 30", context)
    # 31 days after 20 May is 20 June, 00:00 in Montevideo (03:00 UTC).
    assert moment == ms(utc(2024, 6, 20, 3))


def test_days_since_already_past_its_threshold_never_changes() -> None:
    context = make_context({"last_login": dt.date(2024, 1, 1)})
    assert next_change_ms(rule_from_text("days_since(last_login) > 30"), context) is None


def test_days_since_equal_to_a_number_is_true_for_one_day() -> None:
    context = make_context({"last_login": dt.date(2024, 6, 1)})
    start = flips_exactly_at("days_since(last_login) == 10", context)
    assert start == ms(utc(2024, 6, 11))
    assert flips_exactly_at("days_since(last_login) == 10", at(context, start)) == ms(utc(2024, 6, 12))


def test_age_crossing_is_the_birthday_in_the_customers_zone() -> None:
    context = make_context({"birth_date": dt.date(2006, 7, 1)}, timezone="Asia/Tokyo")
    moment = flips_exactly_at("age >= 18", context)
    assert moment == ms(utc(2024, 6, 30, 15))


def test_leap_day_children_come_of_age_on_28_february_in_common_years() -> None:
    context = make_context({"birth_date": dt.date(2005, 2, 28)}, now=utc(2022, 6, 1))
    leap = make_context({"birth_date": dt.date(2004, 2, 29)}, now=utc(2021, 6, 1))
    assert flips_exactly_at("age >= 18", context) == ms(utc(2023, 2, 28))
    assert flips_exactly_at("age >= 18", leap) == ms(utc(2022, 2, 28))


def test_birthday_window_opens_and_closes_at_local_midnights() -> None:
    context = make_context({"birth_date": dt.date(1990, 6, 20)}, timezone="Europe/Madrid")
    rule = 'is_birthday(birth_date, within="3d")'
    opens = flips_exactly_at(rule, context)
    assert opens == ms(utc(2024, 6, 16, 22))  # 17 June, 00:00 in Madrid (summer time)
    closes = flips_exactly_at(rule, at(context, opens))
    assert closes == ms(utc(2024, 6, 20, 22))  # 21 June, 00:00 in Madrid


def test_a_birthday_compared_with_false_changes_when_the_window_opens() -> None:
    context = make_context({"birth_date": dt.date(1990, 6, 20)})
    assert flips_exactly_at('is_birthday(birth_date, within="3d") == false', context) == ms(utc(2024, 6, 17))


def test_an_and_with_a_part_that_stays_false_never_changes() -> None:
    context = make_context({"country": "BR", "last_login": dt.date(2024, 6, 1)})
    rule = rule_from_text('country == "UY" and days_since(last_login) > 30')
    assert next_change_ms(rule, context) is None


def test_an_or_with_a_part_that_stays_true_never_changes() -> None:
    context = make_context({"vip": True, "last_login": dt.date(2024, 6, 1)})
    rule = rule_from_text("vip or days_since(last_login) > 30")
    assert next_change_ms(rule, context) is None


def test_combined_rules_report_the_earliest_change_of_their_parts() -> None:
    context = make_context(
        {"country": "UY", "last_login": dt.date(2024, 6, 1), "birth_date": dt.date(2006, 6, 15)}
    )
    rule = rule_from_text('country == "UY" and (days_since(last_login) > 30 or age >= 18)')
    assert next_change_ms(rule, context) == ms(utc(2024, 6, 15))


def test_two_time_varying_sides_report_the_next_step_of_either() -> None:
    context = make_context({"a": dt.date(2024, 6, 1), "b": dt.date(2024, 5, 1)})
    rule = rule_from_text("days_since(a) < days_since(b)")
    assert next_change_ms(rule, context) == ms(utc(2024, 6, 11))


def test_midnight_is_the_first_moment_of_a_day_even_when_clocks_skip_it() -> None:
    # Santiago de Chile moved clocks from 00:00 to 01:00 on 8 September 2024.
    santiago = zone("America/Santiago")
    start = midnight_ms(dt.date(2024, 9, 8), santiago)
    local = dt.datetime.fromtimestamp(start / 1000, santiago)
    before = dt.datetime.fromtimestamp((start - 1) / 1000, santiago)
    assert local.date() == dt.date(2024, 9, 8)
    assert before.date() == dt.date(2024, 9, 7)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=40 * 24), min_size=1, max_size=8),
    st.sampled_from(["1h", "12h", "2d", "7d", "30d"]),
    st.integers(min_value=0, max_value=6),
    st.sampled_from([">=", "<", "=="]),
)
def test_window_rules_are_steady_until_their_next_change(
    hours_ago: list[int], window: str, threshold: int, op: str
) -> None:
    history = make_history([("tx", NOW - dt.timedelta(hours=h), {}) for h in hours_ago])
    context = EvaluationContext({}, ms(NOW), behaviour=history)
    rule = rule_from_text(f'count(event="tx", within="{window}") {op} {threshold}')
    result = evaluate(rule, context)
    moment = next_change_ms(rule, context)
    horizon = ms(NOW) + 45 * DAY_MS
    probes = range(ms(NOW), moment if moment is not None else horizon, HOUR_MS)
    assert all(evaluate(rule, at(context, probe)) is result for probe in probes)
    if moment is not None:
        assert evaluate(rule, at(context, moment)) is not result


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, contexts(), st.lists(st.floats(min_value=0, max_value=1), max_size=6))
def test_any_rule_keeps_its_result_until_its_next_change(
    condition: Condition, customer: EvaluationContext, fractions: list[float]
) -> None:
    rule = compile_rule(condition)
    result = evaluate(rule, customer)
    moment = next_change_ms(rule, customer)
    if moment is None:
        end = customer.now_ms + 500 * DAY_MS
    else:
        assert moment > customer.now_ms
        end = moment
    probes = [customer.now_ms + int((end - customer.now_ms) * f) for f in fractions]
    probes.append(end - 1)
    for probe in probes:
        if probe < end:
            assert evaluate(rule, at(customer, probe)) is result, (to_text(rule), probe)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(time_dependent_clauses, timed_contexts(), st.lists(st.floats(0, 1), max_size=6))
def test_a_time_dependent_clause_flips_exactly_at_its_next_change(
    clause: Condition, customer: EvaluationContext, fractions: list[float]
) -> None:
    rule = compile_rule(clause)
    result = evaluate(rule, customer)
    moment = next_change_ms(rule, customer)
    end = customer.now_ms + 800 * DAY_MS if moment is None else moment
    for probe in [customer.now_ms + int((end - customer.now_ms) * f) for f in fractions]:
        if probe < end:
            assert evaluate(rule, at(customer, probe)) is result, (to_text(rule), probe)
    if moment is not None:
        assert evaluate(rule, at(customer, moment - 1)) is result
        assert evaluate(rule, at(customer, moment)) is not result, to_text(rule)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(time_dependent_clauses, conditions), st.one_of(timed_contexts(), contexts()))
def test_a_rule_judged_in_one_pass_agrees_with_its_evaluation_and_timing(
    condition: Condition, customer: EvaluationContext
) -> None:
    rule = compile_rule(condition)
    assert evaluate_timed(rule, customer) == (evaluate(rule, customer), next_change_ms(rule, customer))
