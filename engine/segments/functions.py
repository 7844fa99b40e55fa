"""The functions a rule may call: their names and arguments, shared by both forms and the printer."""

from __future__ import annotations

import difflib

# Functions whose arguments name one of the customer's own events.
EVENT_FUNCTIONS = {
    "count": ("event", "interaction", "campaign", "within"),
    "sum": ("event", "interaction", "campaign", "field", "within"),
    "last": ("event", "interaction", "campaign"),
    "ever": ("event", "interaction", "campaign"),
}

FUNCTION_USAGE = {
    "count": 'count(event="card_transaction", within="7d")',
    "sum": 'sum(event="card_transaction", field="amount", within="30d")',
    "last": 'last(event="login").channel',
    "ever": 'ever(interaction="click", campaign="card-upsell")',
    "in_segment": 'in_segment("vip")',
    "offer": 'offer("loan-q4").rate',
    "days_since": "days_since(last_login)",
    "age": "age(birth_date)",
    "is_birthday": 'is_birthday(birth_date, within="3d")',
    "date": 'date("2024-01-31")',
    "timestamp": 'timestamp("2024-01-31T09:30:00Z")',
    "attr": 'attr("first name")',
    "event": "event.amount",
}

FUNCTION_NAMES = tuple(FUNCTION_USAGE)


def suggestion(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """ " — did you mean 'x'?" when ``word`` looks like a typo of one of ``choices``, else ""."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f" — did you mean '{close[0]}'?" if close else ""
