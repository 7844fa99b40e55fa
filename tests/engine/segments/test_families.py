"""Segments of one shape over one input are judged together, with the answers of each rule alone."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.segments import EvaluationContext, compile_rule, rule_from_text
from engine.segments.families import DaysFamily, WindowFamily, families
from engine.segments.nodes import Condition
from engine.segments.timing import evaluate_timed
from tests.engine.segments.factories import NOW, make_context
from tests.engine.segments.strategies import time_dependent_clauses, timed_contexts

DAY = dt.timedelta(days=1)


def test_windows_of_one_name_and_field_form_one_family() -> None:
    rules = {
        "tx-1d": rule_from_text('count(event="tx", within="1d") >= 1'),
        "tx-7d": rule_from_text('3 <= count(event="tx", within="7d")'),
        "tx-sum-30d": rule_from_text('sum(event="tx", field="amount", within="30d") > 100'),
        "tx-sum-7d": rule_from_text('sum(event="tx", field="amount", within="7d") > 10'),
        "tx-ever": rule_from_text('count(event="tx") >= 1'),  # no window: time cannot change it
        "login-30d": rule_from_text("days_since(last_login) > 30"),
        "login-7d": rule_from_text("days_since(last_login) >= 7"),
        "adult": rule_from_text("age >= 18"),  # alone over its input: no family
        "both": rule_from_text('count(event="tx", within="1d") >= 1 and balance > 5'),
    }
    found = families(rules)
    assert set(found) == {"tx-1d", "tx-7d", "tx-sum-30d", "tx-sum-7d", "login-30d", "login-7d"}
    assert found["tx-1d"] is found["tx-7d"] and isinstance(found["tx-1d"], WindowFamily)
    assert found["tx-sum-30d"] is found["tx-sum-7d"] and found["tx-sum-7d"] is not found["tx-1d"]
    assert found["login-30d"] is found["login-7d"] and isinstance(found["login-7d"], DaysFamily)


def test_a_family_answers_for_each_member_what_its_rule_alone_gives() -> None:
    texts = [f'count(event="tx", within="{d}d") >= {n}' for d, n in ((1, 1), (3, 2), (7, 3), (30, 1))]
    texts += [f'sum(event="tx", field="amount", within="{d}d") > 50' for d in (2, 10)]
    texts += [f"days_since(last_login) > {d}" for d in (0, 2, 30)]
    rules = {text: rule_from_text(text) for text in texts}
    context = make_context(
        {"last_login": (NOW - 3 * DAY).date()},
        events=[
            ("tx", NOW - 5 * DAY, {"amount": 40}),
            ("tx", NOW - 2 * DAY, {"amount": 20}),
            ("tx", NOW - DAY / 4, {"amount": 15}),
        ],
    )
    found = families(rules)
    for text, rule in rules.items():
        assert found[text].judge(context)[text] == evaluate_timed(rule, context), text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(time_dependent_clauses, min_size=2, max_size=8), timed_contexts())
def test_every_family_member_is_judged_as_its_rule_alone_judges_it(
    clauses: list[Condition], customer: EvaluationContext
) -> None:
    rules = {f"s{i}": compile_rule(clause) for i, clause in enumerate(clauses)}
    for segment_id, family in families(rules).items():
        assert family.judge(customer)[segment_id] == evaluate_timed(rules[segment_id], customer)
