"""Checks a syntax tree before it is compiled: types that can never match, bad durations, bad names.

Both forms (and trees built in code) go through here, so a rule means the same whichever way it
arrived. Errors point at the node's place in the source.
"""

from __future__ import annotations

import datetime as dt
import math

from engine.behaviour import DAY_MS, MAX_WINDOW_MS
from engine.segments.durations import duration_ms
from engine.segments.errors import RuleSyntaxError
from engine.segments.nodes import (
    INTERACTION_KINDS,
    ORDERING_OPERATORS,
    Age,
    And,
    Attribute,
    Compare,
    Condition,
    Count,
    DaysSince,
    EventField,
    EventRef,
    Ever,
    InSegment,
    IsBirthday,
    IsNull,
    Last,
    Literal,
    LiteralValue,
    Not,
    Offer,
    Operand,
    Or,
    Sum,
    Truth,
    Where,
)
from engine.segments.parser import MAX_DEPTH, MAX_LIST_ITEMS
from engine.segments.patterns import compile_pattern
from engine.segments.printer import operand_text

# Static types of operands; "any" is an attribute or event field, known only when evaluated.
_TYPE_WORDS = {
    "number": "a number",
    "string": "a text",
    "boolean": "true/false",
    "date": "a date",
    "timestamp": "a moment (timestamp)",
    "list": "a list",
    "null": "null",
    "any": "a value",
}
_PLURAL_WORDS = {
    "number": "numbers",
    "string": "texts",
    "boolean": "true/false values",
    "date": "dates",
    "timestamp": "moments",
}
MAX_BIRTHDAY_WITHIN_DAYS = 90


def _fail(where: Where | None, reason: str) -> RuleSyntaxError:
    if where is None:
        return RuleSyntaxError(reason)
    return RuleSyntaxError(reason, where.line, where.column, where.path)


def value_type(value: LiteralValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    return "list"


def static_type(operand: Operand) -> str:
    """The type an operand always has, or "any" when only evaluation can tell."""
    if isinstance(operand, Literal):
        return value_type(operand.value)
    if isinstance(operand, Count | Sum | Age | DaysSince):
        return "number"
    if isinstance(operand, Ever | InSegment | IsBirthday):
        return "boolean"
    return "any"


def _compatible(left: str, right: str) -> bool:
    return left == right or "any" in (left, right) or {left, right} == {"date", "timestamp"}


def check(condition: Condition) -> None:
    """Raise RuleSyntaxError if ``condition`` cannot be compiled into a sensible rule."""
    _condition(condition, None, 0)


def _condition(node: Condition, parent: Where | None, depth: int) -> None:
    where = node.where or parent
    if depth > MAX_DEPTH:
        raise _fail(where, f"this rule nests more than {MAX_DEPTH} levels deep; simplify it")
    if isinstance(node, And | Or):
        if not node.items:
            word = "and" if isinstance(node, And) else "or"
            raise _fail(where, f"'{word}' needs at least one condition")
        for item in node.items:
            _condition(item, where, depth + 1)
    elif isinstance(node, Not):
        _condition(node.item, where, depth + 1)
    elif isinstance(node, IsNull):
        _operand(node.operand, where)
    elif isinstance(node, Truth):
        _operand(node.operand, where)
        kind = static_type(node.operand)
        if kind not in ("boolean", "any"):
            text = operand_text(node.operand)
            raise _fail(
                node.operand.where or where,
                f"{text} is {_TYPE_WORDS[kind]}, not a condition: compare it with something, "
                f"such as {text} {'>= 1' if kind == 'number' else '== ...'}",
            )
    else:
        _compare(node, where)


def _compare(node: Compare, where: Where | None) -> None:
    _operand(node.left, where)
    _operand(node.right, where)
    left, right = static_type(node.left), static_type(node.right)
    op = node.op
    if op in ("in", "not in"):
        if right not in ("list", "any"):
            hint = " (to find text inside text, use ~)" if right == "string" else ""
            raise _fail(
                where,
                f'after \'{op}\' comes a list, such as ["UY", "AR"], or an attribute holding '
                f"one; {operand_text(node.right)} is {_TYPE_WORDS[right]}{hint}",
            )
        if left in ("list", "null"):
            raise _fail(
                where, f"before '{op}' comes one value; {operand_text(node.left)} is {_TYPE_WORDS[left]}"
            )
        if isinstance(node.right, Literal) and isinstance(node.right.value, tuple):
            items = {value_type(item) for item in node.right.value}
            for item in items:
                if not _compatible(left, item):
                    raise _fail(
                        where,
                        f"{operand_text(node.left)} is {_TYPE_WORDS[left]} and the list holds "
                        f"{_PLURAL_WORDS[item]}; they can never be equal",
                    )
        return
    if op == "~":
        if not (isinstance(node.right, Literal) and isinstance(node.right.value, str)):
            raise _fail(
                node.right.where or where,
                "after '~' comes a pattern in quotes, such as \"^Monte\"",
            )
        if left not in ("string", "any"):
            raise _fail(where, f"~ matches text; {operand_text(node.left)} is {_TYPE_WORDS[left]}")
        try:
            compile_pattern(node.right.value)
        except ValueError as exc:
            raise _fail(node.right.where or where, str(exc)) from None
        return
    if op not in ORDERING_OPERATORS and op not in ("==", "!="):
        raise _fail(where, f"unknown operator '{op}'; use ==, !=, <, <=, >, >=, in, not in or ~")
    if "null" in (left, right):
        subject = operand_text(node.right if left == "null" else node.left)
        if op == "==":
            raise _fail(where, f"to check for a missing value write {subject} is null")
        if op == "!=":
            raise _fail(where, f"to check for a present value write {subject} is not null")
        raise _fail(where, f"null cannot be compared with {op}; write {subject} is null instead")
    if op in ORDERING_OPERATORS:
        for kind, side in ((left, node.left), (right, node.right)):
            if kind in ("boolean", "list"):
                raise _fail(
                    where,
                    f"{operand_text(side)} is {_TYPE_WORDS[kind]} and cannot be compared with {op}",
                )
    if not _compatible(left, right):
        raise _fail(
            where,
            f"{operand_text(node.left)} is {_TYPE_WORDS[left]} and cannot be compared with "
            f"{operand_text(node.right)}, which is {_TYPE_WORDS[right]}",
        )


def _named(where: Where | None, what: str, value: str) -> None:
    if not value:
        raise _fail(where, f"{what} cannot be empty")


def _window(where: Where | None, within: str | None) -> None:
    if within is None:
        return
    try:
        window = duration_ms(within)
    except ValueError as exc:
        raise _fail(where, str(exc)) from None
    if window <= 0:
        raise _fail(where, 'within= must be longer than 0, such as within="7d"')
    if window > MAX_WINDOW_MS:
        raise _fail(
            where,
            f'within= can be at most "{MAX_WINDOW_MS // DAY_MS}d": Refract keeps '
            f"{MAX_WINDOW_MS // DAY_MS} days of behaviour history",
        )


def _source(where: Where | None, source: EventRef) -> None:
    if source.event is None and source.interaction is None:
        raise _fail(where, 'name the events with event="..." or interaction="..."')
    if source.event is not None and source.interaction is not None:
        raise _fail(where, "give either event= or interaction=, not both")
    if source.event is not None:
        _named(where, "event=", source.event)
        if source.campaign is not None:
            raise _fail(where, "campaign= goes with interaction=, not with event=")
        return
    if source.interaction not in INTERACTION_KINDS:
        raise _fail(
            where,
            f"'{source.interaction}' is not an interaction; use one of {', '.join(INTERACTION_KINDS)}",
        )
    if source.campaign is not None:
        _named(where, "campaign=", source.campaign)


def _operand(node: Operand, parent: Where | None) -> None:
    where = node.where or parent
    if isinstance(node, Literal):
        _literal(node.value, where)
    elif isinstance(node, Attribute):
        _named(where, "an attribute name", node.name)
    elif isinstance(node, Age | DaysSince):
        _named(where, "an attribute name", node.attribute)
    elif isinstance(node, IsBirthday):
        _named(where, "an attribute name", node.attribute)
        if node.within is not None:
            try:
                window = duration_ms(node.within)
            except ValueError as exc:
                raise _fail(where, str(exc)) from None
            if window % DAY_MS or window // DAY_MS > MAX_BIRTHDAY_WITHIN_DAYS:
                raise _fail(
                    where,
                    "is_birthday's within= is a whole number of days up to "
                    f'{MAX_BIRTHDAY_WITHIN_DAYS}, such as within="3d"',
                )
    elif isinstance(node, Count):
        _source(where, node.source)
        _window(where, node.within)
    elif isinstance(node, Sum):
        _source(where, node.source)
        _named(where, "field=", node.field)
        _window(where, node.within)
    elif isinstance(node, Last):
        _source(where, node.source)
        _named(where, "the field after last(...)", node.field)
    elif isinstance(node, Ever):
        _source(where, node.source)
    elif isinstance(node, EventField):
        _named(where, "the field after event.", node.field)
    elif isinstance(node, Offer):
        _named(where, "the campaign of offer(...)", node.campaign)
        _named(where, "the field after offer(...)", node.field)
    else:
        _named(where, "the segment of in_segment(...)", node.segment)


def _literal(value: LiteralValue, where: Where | None) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(where, "numbers must be finite")
    if not isinstance(value, tuple):
        return
    if len(value) > MAX_LIST_ITEMS:
        raise _fail(where, f"a list may hold at most {MAX_LIST_ITEMS} values")
    kinds = set()
    for item in value:
        if item is None:
            raise _fail(where, "null cannot be in a list; add a separate condition: or x is null")
        if isinstance(item, tuple):
            raise _fail(where, "a list cannot hold lists")
        _literal(item, where)
        kinds.add(value_type(item))
    temporal = {"date", "timestamp"}
    if len(kinds - temporal) + (1 if kinds & temporal else 0) > 1:
        raise _fail(where, 'a list holds values of one type, such as ["UY", "AR"] or [1, 2]')
