"""Explanations say, clause by clause, why a customer is in or out of a segment."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings

from engine.segments import (
    Condition,
    EvaluationContext,
    Explanation,
    ValueSeen,
    compile_rule,
    evaluate,
    explain,
    rule_from_text,
)
from tests.engine.segments.factories import NOW, make_context
from tests.engine.segments.strategies import conditions, contexts


def test_explain_gives_a_tree_with_each_clause_the_values_it_read_and_its_result() -> None:
    rule = rule_from_text('balance >= 10000 and country in ["UY", "AR"] and not ("credit_card" in products)')
    customer = make_context({"balance": 5000, "country": "UY", "products": ("credit_card",)})
    assert explain(rule, customer) == Explanation(
        'balance >= 10000 and country in ["UY", "AR"] and not ("credit_card" in products)',
        "and",
        False,
        parts=(
            Explanation("balance >= 10000", "comparison", False, (ValueSeen("balance", 5000),)),
            Explanation('country in ["UY", "AR"]', "comparison", True, (ValueSeen("country", "UY"),)),
            Explanation(
                'not ("credit_card" in products)',
                "not",
                False,
                parts=(
                    Explanation(
                        '"credit_card" in products',
                        "comparison",
                        True,
                        (ValueSeen("products", ("credit_card",)),),
                    ),
                ),
            ),
        ),
    )


def test_explain_shows_behaviour_values_and_missing_attributes() -> None:
    rule = rule_from_text('count(event="tx", within="7d") >= 3 or email is null or vip')
    customer = make_context(events=[("tx", NOW - dt.timedelta(days=1), {})])
    explained = explain(rule, customer)
    assert explained.kind == "or" and explained.result is True
    assert [(part.kind, part.seen, part.result) for part in explained.parts] == [
        ("comparison", (ValueSeen('count(event="tx", within="7d")', 1),), False),
        ("null check", (ValueSeen("email", None),), True),
        ("truth", (ValueSeen("vip", None),), False),
    ]


def test_explain_shows_both_sides_when_neither_is_written_out() -> None:
    rule = rule_from_text("balance >= limit")
    explained = explain(rule, make_context({"balance": 3, "limit": 5}))
    assert explained.seen == (ValueSeen("balance", 3), ValueSeen("limit", 5))


def test_walk_lists_every_clause_outermost_first_with_its_depth() -> None:
    rule = rule_from_text("a == 1 or not (b == 2 and c == 3)")
    walked = [(depth, item.clause) for depth, item in explain(rule, make_context({})).walk()]
    assert walked == [
        (0, "a == 1 or not (b == 2 and c == 3)"),
        (1, "a == 1"),
        (1, "not (b == 2 and c == 3)"),
        (2, "b == 2 and c == 3"),
        (3, "b == 2"),
        (3, "c == 3"),
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, contexts())
def test_every_clause_of_an_explanation_agrees_with_the_evaluator(
    condition: Condition, customer: EvaluationContext
) -> None:
    rule = compile_rule(condition)
    explained = explain(rule, customer)
    assert explained.result is evaluate(rule, customer)
    for _, item in explained.walk():
        if item.kind == "and":
            assert item.result is all(part.result for part in item.parts)
        elif item.kind == "or":
            assert item.result is any(part.result for part in item.parts)
        elif item.kind == "not":
            assert item.result is not item.parts[0].result
