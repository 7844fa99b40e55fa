"""Writes a rule's syntax tree back as text, in the canonical spelling the parser reads back."""

from __future__ import annotations

import datetime as dt
import json

from engine.segments.lexer import is_plain_name
from engine.segments.nodes import (
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
    IsNull,
    Last,
    Literal,
    LiteralValue,
    Not,
    Offer,
    Operand,
    Or,
    Sum,
)

_OR, _AND, _NOT, _ATOM = range(4)


def condition_text(condition: Condition) -> str:
    """The text form of ``condition``."""
    return _condition(condition, _OR)


def _condition(node: Condition, context: int) -> str:
    if isinstance(node, Or | And):
        level = _OR if isinstance(node, Or) else _AND
        joiner = " or " if level == _OR else " and "
        # A nested And inside And (or Or inside Or) keeps its parentheses so it reads back the same.
        text = joiner.join(_condition(item, level + 1) for item in node.items)
        return f"({text})" if context > level else text
    if isinstance(node, Not):
        inner = node.item
        if isinstance(inner, Compare | IsNull):
            return f"not ({_condition(inner, _OR)})"
        text = f"not {_condition(inner, _NOT)}"
        return f"({text})" if context > _NOT else text
    if isinstance(node, Compare):
        return f"{operand_text(node.left)} {node.op} {operand_text(node.right)}"
    if isinstance(node, IsNull):
        return f"{operand_text(node.operand)} is {'not ' if node.negated else ''}null"
    return operand_text(node.operand)


def text_literal(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def literal_text(value: LiteralValue) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(literal_text(item) for item in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return text_literal(value)
    if isinstance(value, dt.datetime):
        return f"timestamp({text_literal(value.isoformat())})"
    if isinstance(value, dt.date):
        return f"date({text_literal(value.isoformat())})"
    return repr(value)


def _name(name: str) -> str:
    return name if is_plain_name(name) and name != "age" else f"attr({text_literal(name)})"


def _field(name: str) -> str:
    return name if is_plain_name(name) else text_literal(name)


def _source(source: EventRef) -> list[str]:
    if source.event is not None:
        return [f"event={text_literal(source.event)}"]
    parts = [f"interaction={text_literal(source.interaction or '')}"]
    if source.campaign is not None:
        parts.append(f"campaign={text_literal(source.campaign)}")
    return parts


def operand_text(node: Operand) -> str:
    if isinstance(node, Literal):
        return literal_text(node.value)
    if isinstance(node, Attribute):
        return _name(node.name)
    if isinstance(node, Age):
        return "age" if node.attribute == "birth_date" else f"age({_name(node.attribute)})"
    if isinstance(node, DaysSince):
        return f"days_since({_name(node.attribute)})"
    if isinstance(node, Count | Sum):
        parts = _source(node.source)
        if isinstance(node, Sum):
            parts.append(f"field={text_literal(node.field)}")
        if node.within is not None:
            parts.append(f"within={text_literal(node.within)}")
        function = "count" if isinstance(node, Count) else "sum"
        return f"{function}({', '.join(parts)})"
    if isinstance(node, Last):
        return f"last({', '.join(_source(node.source))}).{_field(node.field)}"
    if isinstance(node, Offer):
        return f"offer({text_literal(node.campaign)}).{_field(node.field)}"
    if isinstance(node, Ever):
        return f"ever({', '.join(_source(node.source))})"
    if isinstance(node, InSegment):
        return f"in_segment({text_literal(node.segment)})"
    if isinstance(node, EventField):
        return f"event.{_field(node.field)}"
    within = "" if node.within is None else f", within={text_literal(node.within)}"
    return f"is_birthday({_name(node.attribute)}{within})"
