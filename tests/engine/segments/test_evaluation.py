"""What rules mean: a table of rules, customers and the expected result, in both forms."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from engine.segments import evaluate, rule_from_json, rule_from_text, to_json
from tests.engine.segments.factories import NOW, make_context, utc

D = dt.date
DAY = dt.timedelta(days=1)


def case(rule: str, expected: bool, name: str, **context: Any) -> Any:
    return pytest.param(rule, context, expected, id=name)


CASES = [
    # --- comparisons on attributes ---
    case("balance >= 10000", True, "number at the threshold is in", attributes={"balance": 10000}),
    case("balance >= 10000", False, "number below is out", attributes={"balance": 9999.99}),
    case("balance >= 10000", False, "missing attribute is out", attributes={}),
    case(
        "balance >= 10000", False, "text where a number is expected is out", attributes={"balance": "20000"}
    ),
    case("balance >= 1", False, "true is not a number", attributes={"balance": True}),
    case("balance == 5", True, "integers equal floats of the same value", attributes={"balance": 5.0}),
    case("balance != 5", False, "not-equal on a missing attribute is false", attributes={}),
    case("balance != 5", False, "not-equal on a mismatched type is false", attributes={"balance": "5"}),
    case("balance != 5", True, "not-equal on a different number is true", attributes={"balance": 6}),
    case("not (balance == 5)", True, "not of a missing comparison is true", attributes={}),
    case("balance > -100.5", True, "negative literals", attributes={"balance": -100}),
    case('name < "b"', True, "texts order alphabetically", attributes={"name": "abc"}),
    case('name == "Ana"', False, "texts are case sensitive", attributes={"name": "ana"}),
    case("active == true", True, "booleans equal booleans", attributes={"active": True}),
    case("active == true", False, "1 is not true", attributes={"active": 1}),
    case("balance >= limit", True, "attribute against attribute", attributes={"balance": 10, "limit": 9.5}),
    case("balance >= limit", False, "attribute against a missing attribute", attributes={"balance": 10}),
    case('tags == ["a", "b"]', True, "lists equal lists", attributes={"tags": ("a", "b")}),
    # --- lists ---
    case('country in ["UY", "AR"]', True, "value in a literal list", attributes={"country": "AR"}),
    case('country in ["UY", "AR"]', False, "value not in a literal list", attributes={"country": "BR"}),
    case('country not in ["UY", "AR"]', True, "not in a literal list", attributes={"country": "BR"}),
    case('country not in ["UY", "AR"]', False, "not in on a missing attribute is false", attributes={}),
    case(
        'country not in ["UY", "AR"]',
        False,
        "not in on a mismatched type is false",
        attributes={"country": 5},
    ),
    case("score in [1, 2.5]", True, "numbers in a number list", attributes={"score": 2.5}),
    case("score in [1, 2]", False, "true is not 1 in a list", attributes={"score": True}),
    case(
        '"credit_card" in products',
        True,
        "text in a list attribute",
        attributes={"products": ("loan", "credit_card")},
    ),
    case(
        '"credit_card" not in products',
        True,
        "text not in an empty list attribute",
        attributes={"products": ()},
    ),
    case(
        '"credit_card" in products',
        False,
        "a text attribute is not a list",
        attributes={"products": "credit_card"},
    ),
    case('"credit_card" not in products', False, "not in on a missing list is false", attributes={}),
    case(
        'balance >= 10000 and country in ["UY", "AR"] and not ("credit_card" in products)',
        True,
        "three clauses together",
        attributes={"balance": 20000, "country": "UY", "products": ("debit",)},
    ),
    # --- patterns ---
    case('city ~ "^Monte"', True, "pattern found at the start", attributes={"city": "Montevideo"}),
    case('city ~ "^Monte"', False, "patterns are case sensitive", attributes={"city": "montevideo"}),
    case('city ~ "(?i)^monte"', True, "inline flag for case", attributes={"city": "MONTEVIDEO"}),
    case('city ~ "video"', True, "pattern found anywhere", attributes={"city": "Montevideo"}),
    case('city ~ "^M"', False, "pattern on a number is false", attributes={"city": 5}),
    case('city ~ "M"', False, "values over the length limit never match", attributes={"city": "M" * 300}),
    # --- null checks ---
    case("email is null", True, "missing attribute is null", attributes={}),
    case("email is null", False, "present attribute is not null", attributes={"email": "a@b.uy"}),
    case("email is not null", True, "present attribute", attributes={"email": ""}),
    # --- truth of attributes ---
    case("vip", True, "a true attribute as a condition", attributes={"vip": True}),
    case("vip", False, "a text attribute is not true", attributes={"vip": "yes"}),
    case("not vip", True, "not of a missing attribute", attributes={}),
    case("true", True, "the constant true", attributes={}),
    case("false or vip", True, "or with a false constant", attributes={"vip": True}),
    # --- dates and time zones ---
    case(
        'signup_date >= date("2024-01-01")',
        True,
        "date on the day",
        attributes={"signup_date": D(2024, 1, 1)},
    ),
    case(
        'signup_date >= date("2024-01-01")',
        False,
        "date the day before",
        attributes={"signup_date": D(2023, 12, 31)},
    ),
    case(
        'signup_at >= date("2024-01-01")',
        True,
        "moment compared with a date in UTC",
        attributes={"signup_at": utc(2024, 1, 1, 2)},
    ),
    case(
        'signup_at >= date("2024-01-01")',
        False,
        "moment compared with a date in the customer's zone (still 31 Dec in Montevideo)",
        attributes={"signup_at": utc(2024, 1, 1, 2)},
        timezone="America/Montevideo",
    ),
    case(
        'last_login < timestamp("2024-06-01T00:00:00Z")',
        True,
        "moments compare as moments",
        attributes={"last_login": dt.datetime(2024, 6, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=3)))},
    ),
    case(
        'signup_date == "2024-01-01"',
        False,
        "a date is not a text",
        attributes={"signup_date": D(2024, 1, 1)},
    ),
    case("age >= 18", True, "eighteenth birthday today", attributes={"birth_date": D(2006, 6, 10)}),
    case("age >= 18", False, "eighteenth birthday tomorrow", attributes={"birth_date": D(2006, 6, 11)}),
    case(
        "age >= 18",
        False,
        "birthday not yet reached in the customer's zone",
        attributes={"birth_date": D(2006, 6, 10)},
        now=utc(2024, 6, 10, 1),
        timezone="America/Montevideo",
    ),
    case(
        "age >= 18",
        True,
        "birthday reached in UTC at the same moment",
        attributes={"birth_date": D(2006, 6, 10)},
        now=utc(2024, 6, 10, 1),
    ),
    case("age(born_on) < 30", True, "age of another date attribute", attributes={"born_on": D(2000, 1, 1)}),
    case("age >= 0", False, "age without a birth date", attributes={}),
    case(
        "age >= 19",
        True,
        "leap-day birthday falls on 28 February in common years",
        attributes={"birth_date": D(2004, 2, 29)},
        now=utc(2023, 2, 28, 12),
    ),
    case(
        "age >= 19",
        False,
        "leap-day child is not older the day before",
        attributes={"birth_date": D(2004, 2, 29)},
        now=utc(2023, 2, 27, 12),
    ),
    case(
        "is_birthday(birth_date)",
        True,
        "leap-day birthday on 28 February of a common year",
        attributes={"birth_date": D(2004, 2, 29)},
        now=utc(2023, 2, 28, 12),
    ),
    case(
        "is_birthday(birth_date)",
        False,
        "leap-day birthday is 29 February in leap years",
        attributes={"birth_date": D(2004, 2, 29)},
        now=utc(2024, 2, 28, 12),
    ),
    case(
        "is_birthday(birth_date)",
        True,
        "leap-day birthday on 29 February of a leap year",
        attributes={"birth_date": D(2004, 2, 29)},
        now=utc(2024, 2, 29, 12),
    ),
    case(
        'is_birthday(birth_date, within="3d")',
        True,
        "birthday in three days",
        attributes={"birth_date": D(1990, 6, 13)},
    ),
    case(
        'is_birthday(birth_date, within="3d")',
        False,
        "birthday in four days",
        attributes={"birth_date": D(1990, 6, 14)},
    ),
    case(
        'is_birthday(birth_date, within="3d")',
        False,
        "birthday yesterday",
        attributes={"birth_date": D(1990, 6, 9)},
    ),
    case(
        'is_birthday(birth_date, within="3d")',
        True,
        "birthday early next year",
        attributes={"birth_date": D(1990, 1, 2)},
        now=utc(2024, 12, 30, 12),
    ),
    case(
        "is_birthday(birth_date)",
        True,
        "birthday given as a moment, in the customer's zone",
        attributes={"birth_date": utc(1990, 6, 11, 1)},
        timezone="America/Montevideo",
    ),
    case(
        "days_since(last_login) > 30",
        True,
        "31 days since a date",
        attributes={"last_login": (NOW - 31 * DAY).date()},
    ),
    case(
        "days_since(last_login) > 30",
        False,
        "30 days since a date",
        attributes={"last_login": (NOW - 30 * DAY).date()},
    ),
    case(
        "days_since(last_login) > 30",
        False,
        "30 calendar days in UTC",
        attributes={"last_login": utc(2024, 5, 11, 1)},
    ),
    case(
        "days_since(last_login) > 30",
        True,
        "31 calendar days in the customer's zone",
        attributes={"last_login": utc(2024, 5, 11, 1)},
        timezone="America/Montevideo",
    ),
    case("days_since(last_login) > 30", False, "days since a missing date", attributes={}),
    case("days_since(last_login) is null", True, "days since a missing date is null", attributes={}),
    case("days_since(last_login) > 30", False, "days since a text", attributes={"last_login": "2024-01-01"}),
    case(
        "days_since(last_login) > 0",
        True,
        "unknown zone falls back to UTC",
        attributes={"last_login": utc(2024, 6, 9, 23)},
        timezone="Mars/Olympus",
    ),
    # --- behaviour ---
    case(
        'count(event="card_transaction", within="7d") >= 3',
        True,
        "three events in the window",
        events=[("card_transaction", NOW - n * DAY, {}) for n in (1, 2, 3)],
    ),
    case(
        'count(event="card_transaction", within="7d") >= 3',
        False,
        "one event is too old",
        events=[("card_transaction", NOW - n * DAY, {}) for n in (1, 2, 9)],
    ),
    case('count(event="card_transaction", within="7d") >= 1', False, "empty history", events=[]),
    case(
        'count(event="card_transaction", within="7d") == 0',
        True,
        "empty window counts zero",
        events=[("card_transaction", NOW - 30 * DAY, {})],
    ),
    case(
        'count(event="card_transaction") >= 3',
        True,
        "count without a window is all time",
        events=[("card_transaction", NOW - n * 100 * DAY, {}) for n in (1, 2, 3)],
    ),
    case(
        'sum(event="card_transaction", field="amount", within="30d") > 1000',
        True,
        "sum over the window",
        events=[("card_transaction", NOW - n * DAY, {"amount": 600}) for n in (1, 20)],
    ),
    case(
        'sum(event="card_transaction", field="amount", within="30d") > 1000',
        False,
        "sum leaves out older events",
        events=[("card_transaction", NOW - n * DAY, {"amount": 600}) for n in (1, 40)],
    ),
    case(
        'sum(event="card_transaction", field="amount", within="30d") == 0',
        True,
        "sum of a field never seen is zero",
        events=[("card_transaction", NOW - DAY, {"merchant": "shop"})],
    ),
    case(
        'last(event="login").channel == "app"',
        True,
        "field of the latest occurrence",
        events=[("login", NOW - 2 * DAY, {"channel": "web"}), ("login", NOW - DAY, {"channel": "app"})],
    ),
    case('last(event="login").channel == "app"', False, "no such event", events=[]),
    case(
        'last(event="login").channel is null',
        True,
        "missing field of the latest occurrence",
        events=[("login", NOW - DAY, {"device": "ios"})],
    ),
    case(
        'last(event="login").channel > 5',
        False,
        "text field compared with a number",
        events=[("login", NOW - DAY, {"channel": "app"})],
    ),
    case(
        'ever(interaction="click", campaign="card-upsell")',
        True,
        "clicked that campaign",
        events=[("interaction:click", NOW - DAY, {}), ("interaction:click:card-upsell", NOW - DAY, {})],
    ),
    case(
        'ever(interaction="click", campaign="card-upsell")',
        False,
        "clicked another campaign",
        events=[("interaction:click", NOW - DAY, {}), ("interaction:click:other", NOW - DAY, {})],
    ),
    case(
        'ever(interaction="click")',
        True,
        "clicked anything",
        events=[("interaction:click", NOW - 300 * DAY, {})],
    ),
    case('not ever(event="purchase")', True, "never purchased", events=[]),
    # --- segments and per-campaign data ---
    case('in_segment("vip")', True, "member of the segment", segments=["vip"]),
    case('in_segment("vip")', False, "not a member", segments=["gold"]),
    case('offer("loan-q4").rate < 12', True, "per-campaign value", offers={"loan-q4": {"rate": 11.5}}),
    case('offer("loan-q4").rate < 12', False, "no data for that campaign", offers={"loan-q3": {"rate": 5}}),
    case('offer("loan-q4").rate is null', True, "missing per-campaign value is null", offers={}),
    case(
        'offer("loan-q4").rate < 12',
        False,
        "per-campaign text compared with a number",
        offers={"loan-q4": {"rate": "low"}},
    ),
]


@pytest.mark.parametrize(("rule", "context", "expected"), CASES)
def test_rule_gives_the_expected_result_in_text_and_json_form(
    rule: str, context: dict[str, Any], expected: bool
) -> None:
    customer = make_context(**context)
    from_text = rule_from_text(rule)
    from_json = rule_from_json(to_json(from_text))
    assert evaluate(from_text, customer) is expected
    assert evaluate(from_json, customer) is expected


def test_keywords_are_read_in_any_case() -> None:
    rule = rule_from_text('Country IN ["UY"] AND NOT Vip Is Null')
    customer = make_context({"Country": "UY", "Vip": True})
    assert evaluate(rule, customer)


def test_comments_and_several_lines_are_allowed() -> None:
    rule = rule_from_text(
        """
        # Good customers in the south
        balance >= 10000          # enough money
        and country in ["UY", "AR"]
        """
    )
    assert evaluate(rule, make_context({"balance": 10000, "country": "UY"}))


def test_attr_reads_attributes_whose_names_are_not_plain() -> None:
    rule = rule_from_text('attr("first name") == "Ana" and attr("age") == 40 and age < 40')
    customer = make_context({"first name": "Ana", "age": 40, "birth_date": D(1990, 1, 1)})
    assert evaluate(rule, customer)


def test_evaluation_never_raises_for_odd_values() -> None:
    rule = rule_from_text(
        'a > 1 or a < "x" or a in [1, 2] or a ~ "x" or days_since(a) > 1 or age(a) > 1 '
        'or is_birthday(a) or a == date("2024-01-01") or a > timestamp("2024-01-01T00:00:00Z")'
    )
    odd_values: list[Any] = [
        None,
        float("nan"),
        (),
        ("x",),
        dt.datetime(2024, 1, 1),
        D(2024, 1, 1),
        object(),
        b"x",
    ]
    for value in odd_values:
        attributes = {} if value is None else {"a": value}
        evaluate(rule, make_context(attributes))


@pytest.mark.parametrize("name", ["", "America", "../etc/passwd", "Mars/Olympus", "x" * 5000, 7])
def test_a_time_zone_that_is_not_one_falls_back_to_the_default(name: Any) -> None:
    customer = make_context({"timezone": name, "seen": dt.date(2024, 6, 9)})
    assert customer.timezone == "UTC"
    assert evaluate(rule_from_text("days_since(seen) == 1"), customer)
