"""The text and JSON forms are two spellings of one language: both read back to the same rule."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.segments import (
    EvaluationContext,
    compile_rule,
    evaluate,
    parse_json,
    parse_text,
    rule_from_json,
    rule_from_text,
    to_json,
    to_text,
)
from engine.segments.nodes import Condition
from tests.engine.segments.strategies import conditions, contexts

# --- properties --------------------------------------------------------------------------------


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, st.lists(contexts(), min_size=1, max_size=3))
def test_text_and_json_forms_read_back_to_the_same_rule_and_results(
    condition: Condition, customers: list[EvaluationContext]
) -> None:
    rule = compile_rule(condition)
    text = to_text(rule)
    document = json.loads(json.dumps(to_json(rule)))
    from_text, from_json = rule_from_text(text), rule_from_json(document)
    assert from_text.condition == condition, text
    assert from_json.condition == condition, document
    for customer in customers:
        expected = evaluate(rule, customer)
        assert evaluate(from_text, customer) is expected
        assert evaluate(from_json, customer) is expected


@settings(max_examples=200, deadline=None)
@given(conditions)
def test_printing_is_stable(condition: Condition) -> None:
    text = to_text(condition)
    assert to_text(parse_text(text)) == text
    assert to_json(parse_json(to_json(condition))) == to_json(condition)


# --- examples ----------------------------------------------------------------------------------


def test_the_json_form_of_a_simple_comparison_is_flat() -> None:
    assert to_json(rule_from_text("balance >= 10000")) == {
        "attr": "balance",
        "op": ">=",
        "value": 10000,
    }


def test_every_construct_of_the_guide_has_a_json_spelling() -> None:
    examples: dict[str, Any] = {
        'balance >= 10000 and country in ["UY", "AR"] and not ("credit_card" in products)': {
            "and": [
                {"attr": "balance", "op": ">=", "value": 10000},
                {"attr": "country", "op": "in", "value": ["UY", "AR"]},
                {"not": {"value": "credit_card", "op": "in", "right": {"attr": "products"}}},
            ]
        },
        'city ~ "^Monte"': {"attr": "city", "op": "~", "value": "^Monte"},
        "email is null": {"attr": "email", "op": "is null"},
        "age >= 18": {"age": "birth_date", "op": ">=", "value": 18},
        "days_since(last_login) > 30": {"days_since": "last_login", "op": ">", "value": 30},
        'is_birthday(birth_date, within="3d")': {"is_birthday": {"attr": "birth_date", "within": "3d"}},
        'signup_date >= date("2024-01-01")': {
            "attr": "signup_date",
            "op": ">=",
            "value": {"date": "2024-01-01"},
        },
        'count(event="card_transaction", within="7d") >= 3': {
            "count": {"event": "card_transaction", "within": "7d"},
            "op": ">=",
            "value": 3,
        },
        'sum(event="card_transaction", field="amount", within="30d") > 1000': {
            "sum": {"event": "card_transaction", "field": "amount", "within": "30d"},
            "op": ">",
            "value": 1000,
        },
        'last(event="login").channel == "app"': {
            "last": {"event": "login"},
            "field": "channel",
            "op": "==",
            "value": "app",
        },
        'ever(interaction="click", campaign="card-upsell")': {
            "ever": {"interaction": "click", "campaign": "card-upsell"}
        },
        'in_segment("vip")': {"in_segment": "vip"},
        'offer("loan-q4").rate < 12': {"offer": "loan-q4", "field": "rate", "op": "<", "value": 12},
        "balance >= limit": {"attr": "balance", "op": ">=", "right": {"attr": "limit"}},
        "true": True,
    }
    for text, document in examples.items():
        assert to_json(rule_from_text(text)) == document, text
        assert rule_from_json(document) == rule_from_text(text), text
        assert to_text(rule_from_json(document)) == text


def test_a_one_item_and_in_json_is_just_that_item() -> None:
    assert rule_from_json({"and": [{"attr": "a", "op": "==", "value": 1}]}) == rule_from_text("a == 1")


def test_nested_groups_keep_their_parentheses() -> None:
    text = "(a == 1 or b == 2) and (c == 3 and d == 4) and not (e == 5 or f == 6)"
    assert to_text(rule_from_text(text)) == text


def test_true_and_one_are_different_literals() -> None:
    assert rule_from_text("a == 1") != rule_from_text("a == true")
    assert rule_from_text("a == 1") != rule_from_text("a == 1.0")
