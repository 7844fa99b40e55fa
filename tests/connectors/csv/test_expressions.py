from __future__ import annotations

import pytest

from connectors.csv.expressions import (
    Binary,
    Constant,
    ExpressionError,
    Reference,
    compile_expression,
    infer_type,
    parse_expression,
)
from connectors.csv.values import CellError

TYPES = {"first_name": "string", "last_name": "string", "balance": "decimal", "count": "integer"}
SLOTS = {"first_name": 0, "last_name": 1, "balance": 2, "count": 3}


def evaluate(source: str, *values: object) -> object:
    expression = parse_expression(source)
    infer_type(expression, TYPES)
    return compile_expression(expression, SLOTS)(list(values))  # type: ignore[arg-type]


def refusal(source: str) -> str:
    with pytest.raises(ExpressionError) as caught:
        infer_type(parse_expression(source), TYPES)
    return str(caught.value)


def test_strings_are_joined_with_plus() -> None:
    assert evaluate('first_name + " " + last_name', "Ana", "Gil", 0.0, 0) == "Ana Gil"


def test_arithmetic_follows_the_usual_precedence() -> None:
    assert evaluate("count + balance * 100", "", "", 1.5, 2) == 152.0
    assert evaluate("(count + 1) * 2 - -1", "", "", 0.0, 3) == 9


def test_integer_arithmetic_stays_integer_and_division_gives_a_decimal() -> None:
    assert infer_type(parse_expression("count * 2 - 1"), TYPES) == "integer"
    assert infer_type(parse_expression("count / 2"), TYPES) == "decimal"
    assert evaluate("count / 2", "", "", 0.0, 3) == 1.5


def test_an_expression_is_parsed_into_a_tree_and_keeps_its_source() -> None:
    expression = parse_expression("balance * 100")

    assert expression.root == Binary("*", Reference("balance"), Constant(100))
    assert expression.source == "balance * 100"
    assert expression.references == ("balance",)


def test_a_missing_input_makes_the_result_missing() -> None:
    assert evaluate('first_name + " " + last_name', "Ana", None, 0.0, 0) is None


def test_a_division_by_zero_is_a_cell_error() -> None:
    with pytest.raises(CellError, match="division by zero"):
        evaluate("balance / count", "", "", 1.0, 0)


@pytest.mark.parametrize(
    "source",
    [
        "upper(first_name)",
        "__import__('os')",
        "first_name.upper",
        "first_name.__class__",
        "balance ** 2",
        "first_name[0]",
        "count if count else 1",
        "lambda: 1",
        "`id`",
    ],
)
def test_an_expression_cannot_call_index_or_reach_attributes(source: str) -> None:
    with pytest.raises(ExpressionError):
        infer_type(parse_expression(source), TYPES)


def test_a_call_is_refused_with_its_position() -> None:
    assert "'upper(' at position 4: expressions cannot call functions" in refusal("1 + upper(x)")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("first_name + 1", "cannot add a string and an integer"),
        ("first_name * 2", "'*' needs two numbers"),
        ("-first_name", "unary '-' needs a number"),
        ("nobody + 1", "'nobody' is not a column"),
        ("count +", "ends too early"),
        ("(count + 1", "expected ')'"),
        ("count 1", "unexpected '1' at position 6"),
        ("'open", "not closed"),
    ],
)
def test_a_bad_expression_is_refused_saying_why(source: str, message: str) -> None:
    assert message in refusal(source)


def test_a_date_column_cannot_be_used_in_an_expression() -> None:
    with pytest.raises(ExpressionError, match="date column"):
        infer_type(parse_expression("born + 1"), {"born": "date"})
