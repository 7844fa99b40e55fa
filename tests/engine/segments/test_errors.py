"""Rules that cannot be read fail with a message a marketer understands, pointing at the place."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import ValidationError
from engine.segments import RuleSyntaxError, compile_rule, rule_from_json, rule_from_text
from engine.segments.nodes import Attribute, Compare, Count, EventRef, Literal


def error(rule: str, line: int, column: int, fragment: str, name: str) -> Any:
    return pytest.param(rule, line, column, fragment, id=name)


TEXT_ERRORS = [
    error(
        "balance >= ",
        1,
        12,
        "expected a value after '>=' (a number, a text in quotes, true/false or null",
        "missing value after an operator",
    ),
    error("balance >=\n  and x", 2, 3, "expected a value after '>='", "line and column on line 2"),
    error(
        'cnt(event="x") > 1',
        1,
        1,
        "unknown function 'cnt' — did you mean 'count'?",
        "unknown function with a suggestion",
    ),
    error(
        "frobnicate(x)",
        1,
        1,
        "unknown function 'frobnicate'. The functions are: count",
        "unknown function without a suggestion",
    ),
    error(
        'count(event="x", windw="7d") > 1',
        1,
        18,
        "count(...) has no argument 'windw' — did you mean 'within'?",
        "wrong argument name",
    ),
    error('count(event="x", within="7days") > 1', 1, 1, '"7days" is not a duration', "bad duration"),
    error(
        'count(event="x", within="500d") > 1',
        1,
        1,
        'within= can be at most "400d"',
        "window longer than the history",
    ),
    error(
        'count(event="x", within="7d") >= "x"',
        1,
        31,
        'is a number and cannot be compared with "x", which is a text',
        "count compared with a text",
    ),
    error('city ~ "(a+)+"', 1, 8, "a repeated group contains a repetition", "catastrophic pattern"),
    error('city ~ "(unclosed"', 1, 8, "this is not a valid pattern", "invalid pattern"),
    error("city ~ other_city", 1, 8, "after '~' comes a pattern in quotes", "pattern not literal"),
    error("balance = 5", 1, 9, "write == to compare", "single equals"),
    error("balance == null", 1, 9, "to check for a missing value write balance is null", "equals null"),
    error("balance > null", 1, 9, "null cannot be compared with >", "ordering with null"),
    error("(balance > 5", 1, 13, "expected ')' to close the '(' at line 1, column 1", "unclosed parenthesis"),
    error("balance > 5)", 1, 12, "this ')' has no matching '('", "extra parenthesis"),
    error('country in "UY"', 1, 9, "after 'in' comes a list", "in with a text"),
    error('name == "abc', 1, 9, 'this text has no closing quote (")', "unterminated text"),
    error("balance > 5 balance", 1, 13, "join conditions with and / or", "two conditions unjoined"),
    error("balance 5", 1, 9, "expected an operator (==, !=", "missing operator"),
    error(
        'count(event="x")',
        1,
        1,
        "is a number, not a condition: compare it with something",
        "number used as a condition",
    ),
    error('count(within="7d") > 1', 1, 1, 'count(...) needs event="..."', "no event named"),
    error(
        'ever(event="x", campaign="y")',
        1,
        17,
        "campaign= goes with interaction=",
        "campaign with a business event",
    ),
    error('ever(interaction="clack")', 1, 1, "'clack' is not an interaction", "unknown interaction kind"),
    error('is_birthday(birth_date, within="12h")', 1, 1, "whole number of days", "birthday window in hours"),
    error('signup < date("2024-13-01")', 1, 15, '"2024-13-01" is not a day', "bad date"),
    error('t < timestamp("2024-01-01T10:00:00")', 1, 15, "has no time zone", "moment without a zone"),
    error("x && y", 1, 3, "write and instead of &&", "C-style and"),
    error("x <> y", 1, 3, "write != for 'not equal'", "SQL-style not equal"),
    error("1 < x < 3", 1, 7, "compare one thing at a time", "chained comparison"),
    error("", 1, 1, "the rule is empty", "empty rule"),
    error(
        "balance > 7d",
        1,
        11,
        "'7d' is not a number; a duration such as \"7d\" goes in quotes",
        "unquoted duration",
    ),
    error(
        "in_segment(vip)", 1, 12, 'put the value in quotes: in_segment("vip")', "segment id without quotes"
    ),
    error('last(event="login") == "app"', 1, 21, "last(...) needs a field after it", "last without a field"),
    error(
        'days_since("last_login") > 3',
        1,
        12,
        "write the attribute name without quotes",
        "attribute name in quotes",
    ),
    error('count(event="x", event="y") > 1', 1, 18, "event= is given twice", "duplicate argument"),
    error("age.years > 3", 1, 4, "has no fields", "field of an attribute"),
    error('country in ["UY", null]', 1, 19, "null cannot be in a list", "null in a list"),
    error('country in ["UY", 1]', 1, 12, "a list holds values of one type", "mixed list"),
    error('balance in ["UY"]', 1, 1, "", "text list against an attribute is fine"),
    error("active > true", 1, 8, "true/false and cannot be compared with >", "ordering booleans"),
    error("name ~ 5", 1, 8, "after '~' comes a pattern in quotes", "pattern is a number"),
    error('count(event="x") ~ "a"', 1, 18, "~ matches text; count", "pattern on a number"),
    error("not", 1, 4, "expected a condition", "not without a condition"),
    error("a == 1 and", 1, 11, "expected a condition", "and without a condition"),
    error("a == $", 1, 6, "unexpected character '$'", "strange character"),
    error("()", 1, 2, "expected a condition inside ( )", "empty parentheses"),
    error("x == " + "(" * 70, 1, 6, "expected a value after '=='", "parenthesis after operator"),
    error("(" * 70 + "x" + ")" * 70, 1, 65, "nests more than 64 levels", "too deep"),
    error('"x" * 3', 1, 5, "unexpected character '*'", "arithmetic is not part of the language"),
]


@pytest.mark.parametrize(("rule", "line", "column", "fragment"), TEXT_ERRORS)
def test_text_errors_say_where_and_what(rule: str, line: int, column: int, fragment: str) -> None:
    if not fragment:
        rule_from_text(rule)
        return
    with pytest.raises(RuleSyntaxError) as caught:
        rule_from_text(rule)
    problem = caught.value
    assert fragment in problem.reason
    assert (problem.line, problem.column) == (line, column), problem.message
    assert problem.message.startswith(f"line {line}, column {column}: ")


def test_rule_syntax_errors_are_validation_errors_with_a_stable_code() -> None:
    with pytest.raises(ValidationError) as caught:
        rule_from_text("balance >=")
    assert caught.value.code == "rule_syntax"
    assert not caught.value.retriable


def test_the_message_for_a_missing_value_reads_as_in_the_guide() -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        rule_from_text("balance >= and x == 1")
    assert caught.value.message == (
        "line 1, column 12: expected a value after '>=' (a number, a text in quotes, "
        "true/false or null, or an attribute), but found 'and'"
    )


JSON_ERRORS = [
    pytest.param(
        {"and": [{"attr": "x", "op": "=>", "value": 1}]},
        "and[0].op",
        "unknown operator '=>'",
        id="unknown operator",
    ),
    pytest.param(
        {"count": {"event": "x", "within": "7x"}, "op": ">", "value": 1},
        "count",
        '"7x" is not a duration',
        id="bad duration",
    ),
    pytest.param(
        {"attr": "x", "op": ">", "vale": 1},
        None,
        'a comparison needs "value"',
        id="comparison without a value",
    ),
    pytest.param({"atr": "x", "op": "is null"}, None, "did you mean 'attr'?", id="misspelt operand"),
    pytest.param({"or": []}, "or", '"or" takes a list of at least one condition', id="empty or"),
    pytest.param({"not": {"attr": "x"}, "and": []}, None, '"and" stands alone', id="logic key with company"),
    pytest.param(
        {"count": {"event": "x", "within": "7d"}, "op": ">=", "value": "x"},
        "op",
        "cannot be compared",
        id="type mismatch",
    ),
    pytest.param(
        {"attr": "x", "op": "==", "value": {"date": "2024-02-30"}},
        "value.date",
        "is not a day",
        id="bad date",
    ),
    pytest.param(
        {"attr": "x", "op": "==", "value": [[1]]}, "value[0]", "expected a literal", id="nested list"
    ),
    pytest.param(
        {"sum": {"event": "x"}, "op": ">", "value": 1}, "sum", '"sum" needs "field"', id="sum without field"
    ),
    pytest.param(
        {"last": {"event": "x"}, "op": "is null"}, None, '"last" needs "field"', id="last without field"
    ),
    pytest.param("balance > 1", None, "expected a condition", id="text given as JSON"),
    pytest.param(
        {"count": {"event": "x", "windw": "7d"}, "op": ">", "value": 1},
        "count.windw",
        "did you mean 'within'?",
        id="wrong argument name",
    ),
]


@pytest.mark.parametrize(("doc", "path", "fragment"), JSON_ERRORS)
def test_json_errors_name_the_path_of_the_problem(doc: Any, path: str | None, fragment: str) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        rule_from_json(doc)
    assert fragment in caught.value.reason, caught.value.message
    assert caught.value.path == path
    assert caught.value.field == path


def test_trees_built_in_code_are_checked_too() -> None:
    tree = Compare(Count(EventRef(event="x"), "7d"), ">=", Literal("x"))
    with pytest.raises(RuleSyntaxError, match="cannot be compared"):
        compile_rule(tree)
    with pytest.raises(RuleSyntaxError, match="attribute name cannot be empty"):
        compile_rule(Compare(Attribute(""), "==", Literal(1)))


def test_parsing_never_runs_code() -> None:
    for attempt in ('__import__("os").system("true")', "exec('x')", 'eval("1") == 1'):
        with pytest.raises(RuleSyntaxError, match="unknown function"):
            rule_from_text(attempt)


def test_very_long_rules_are_refused() -> None:
    with pytest.raises(RuleSyntaxError, match="the limit is"):
        rule_from_text("a == 1 or " * 5000 + "a == 2")
