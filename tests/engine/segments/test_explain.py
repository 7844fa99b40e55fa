"""Explanations say, clause by clause, why a customer is in or out of a segment."""

from __future__ import annotations

import datetime as dt

from engine.segments import ClauseExplanation, explain, rule_from_text
from tests.engine.segments.factories import NOW, make_context


def test_explain_lists_each_clause_with_the_value_it_saw_and_its_result() -> None:
    rule = rule_from_text(
        'balance >= 10000 and country in ["UY", "AR"] and not ("credit_card" in products)'
    )
    customer = make_context({"balance": 5000, "country": "UY", "products": ("credit_card",)})
    assert explain(rule, customer) == [
        ClauseExplanation(
            'balance >= 10000 and country in ["UY", "AR"] and not ("credit_card" in products)',
            None, False, 0,
        ),
        ClauseExplanation("balance >= 10000", 5000, False, 1),
        ClauseExplanation('country in ["UY", "AR"]', "UY", True, 1),
        ClauseExplanation('not ("credit_card" in products)', None, False, 1),
        ClauseExplanation('"credit_card" in products', ("credit_card",), True, 2),
    ]


def test_explain_shows_behaviour_values_and_missing_attributes() -> None:
    rule = rule_from_text('count(event="tx", within="7d") >= 3 or email is null or vip')
    customer = make_context(events=[("tx", NOW - dt.timedelta(days=1), {})])
    seen = [(item.seen, item.result) for item in explain(rule, customer)[1:]]
    assert seen == [(1, False), (None, True), (None, False)]


def test_explain_shows_both_sides_when_neither_is_written_out() -> None:
    rule = rule_from_text("balance >= limit")
    assert explain(rule, make_context({"balance": 3, "limit": 5}))[0].seen == (3, 5)
