"""Compiles a checked syntax tree into a Rule: closures that evaluate it, and what it reads."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.segments.checker import check
from engine.segments.comparisons import compare, literal_test
from engine.segments.context import TIMEZONE_ATTRIBUTE, EvaluationContext
from engine.segments.nodes import (
    Age,
    And,
    Attribute,
    Compare,
    Condition,
    Count,
    DaysSince,
    EventField,
    Ever,
    InSegment,
    IsBirthday,
    IsNull,
    Last,
    Literal,
    Not,
    Offer,
    Operand,
    Or,
    Sum,
    Truth,
    operands,
)
from engine.segments.operands import getter
from engine.segments.patterns import compile_pattern
from engine.segments.printer import condition_text

Evaluator = Callable[[EvaluationContext], bool]


@dataclass(slots=True, frozen=True)
class RuleInputs:
    """What a rule reads, so that only rules an event touched are evaluated again.

    ``events`` are behaviour history names ("card_transaction", "interaction:click",
    "interaction:click:card-upsell"); ``campaigns`` are the campaigns whose per-campaign data is
    read through ``offer(...)``. Rules that work with dates also read the ``timezone`` attribute.
    """

    attributes: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    campaigns: frozenset[str] = frozenset()
    # Fields of the event being evaluated (campaign trigger conditions; segments refuse them).
    event_fields: frozenset[str] = frozenset()


@dataclass(slots=True, frozen=True, eq=False)
class Rule:
    """A compiled rule. Equal when their conditions are equal (whichever form they came from)."""

    condition: Condition
    inputs: RuleInputs
    time_dependent: bool
    # One evaluator per condition node (by id), for next_change_ms and explain.
    parts: dict[int, Evaluator] = field(repr=False)
    # The evaluator of the whole condition (``parts`` of its root).
    check: Evaluator = field(repr=False)
    # The rule's timing, compiled by next_change_ms the first time it is asked: see ``timing``.
    timing: dict[int, Any] = field(default_factory=dict, repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and self.condition == other.condition

    def __hash__(self) -> int:
        return hash(self.condition)

    @property
    def text(self) -> str:
        return condition_text(self.condition)

    def evaluator(self, node: Condition) -> Evaluator:
        return self.parts[id(node)]


def compile_rule(condition: Condition) -> Rule:
    """Check ``condition`` and compile it. Raises RuleSyntaxError when it does not make sense."""
    check(condition)
    parts: dict[int, Evaluator] = {}
    _compile(condition, parts)
    return Rule(condition, _inputs(condition), is_time_dependent(condition), parts, parts[id(condition)])


def evaluate(rule: Rule, context: EvaluationContext) -> bool:
    """Whether the customer in ``context`` matches ``rule``. Never raises for any profile."""
    return rule.check(context)


def _compile(node: Condition, parts: dict[int, Evaluator]) -> Evaluator:
    evaluator = _build(node, parts)
    parts[id(node)] = evaluator
    return evaluator


def _build(node: Condition, parts: dict[int, Evaluator]) -> Evaluator:
    if isinstance(node, And | Or):
        items = tuple(_compile(item, parts) for item in node.items)
        if len(items) == 1:
            return items[0]
        if isinstance(node, And):
            if len(items) == 2:
                first, second = items
                return lambda context: first(context) and second(context)
            if len(items) == 3:
                first, second, third = items
                return lambda context: first(context) and second(context) and third(context)
            return lambda context: all(item(context) for item in items)
        if len(items) == 2:
            first, second = items
            return lambda context: first(context) or second(context)
        return lambda context: any(item(context) for item in items)
    if isinstance(node, Not):
        inner = _compile(node.item, parts)
        return lambda context: not inner(context)
    if isinstance(node, Truth):
        if isinstance(node.operand, Literal):
            constant = node.operand.value is True
            return lambda context: constant
        get = getter(node.operand)
        return lambda context: get(context) is True
    if isinstance(node, IsNull):
        get = getter(node.operand)
        if node.negated:
            return lambda context: get(context) is not None
        return lambda context: get(context) is None
    return _comparison(node)


def _comparison(node: Compare) -> Evaluator:
    left, op, right = node.left, node.op, node.right
    if isinstance(right, Literal):
        pattern: re.Pattern[str] | None = None
        if op == "~":
            assert isinstance(right.value, str)
            pattern = compile_pattern(right.value)
        test = literal_test(op, right.value, pattern)
        if isinstance(left, Attribute):
            name = left.name
            return lambda context: test(context.attributes.get(name), context)
        get = getter(left)
        return lambda context: test(get(context), context)
    if (
        op == "in"
        and isinstance(left, Literal)
        and isinstance(left.value, str)
        and isinstance(right, Attribute)
    ):
        # A text in a list attribute, the common case: lists of attributes hold texts only.
        text, name = left.value, right.name
        return lambda context: _holds(context.attributes.get(name), text)
    get_left, get_right = getter(left), getter(right)
    return lambda context: compare(op, get_left(context), get_right(context), context)


def _holds(container: object, text: str) -> bool:
    return type(container) is tuple and text in container


def is_time_dependent(condition: Condition) -> bool:
    """Whether the rule's result can change with time alone, without any new event."""
    return any(_operand_is_time_dependent(operand) for operand in operands(condition))


def _operand_is_time_dependent(operand: Operand) -> bool:
    if isinstance(operand, Count | Sum):
        return operand.within is not None
    return isinstance(operand, Age | DaysSince | IsBirthday)


def _inputs(condition: Condition) -> RuleInputs:
    attributes: set[str] = set()
    events: set[str] = set()
    segments: set[str] = set()
    campaigns: set[str] = set()
    event_fields: set[str] = set()
    for operand in operands(condition):
        if isinstance(operand, Attribute):
            attributes.add(operand.name)
        elif isinstance(operand, Age | DaysSince | IsBirthday):
            attributes.update((operand.attribute, TIMEZONE_ATTRIBUTE))
        elif isinstance(operand, Count | Sum | Last | Ever):
            events.add(operand.source.key)
        elif isinstance(operand, Offer):
            campaigns.add(operand.campaign)
        elif isinstance(operand, InSegment):
            segments.add(operand.segment)
        elif isinstance(operand, EventField):
            event_fields.add(operand.field)
        elif isinstance(operand, Literal) and _has_day_or_moment(operand):
            # Dates and moments compare in the customer's time zone.
            attributes.add(TIMEZONE_ATTRIBUTE)
    return RuleInputs(
        frozenset(attributes),
        frozenset(events),
        frozenset(segments),
        frozenset(campaigns),
        frozenset(event_fields),
    )


def _has_day_or_moment(literal: Literal) -> bool:
    values = literal.value if isinstance(literal.value, tuple) else (literal.value,)
    return any(isinstance(value, dt.date) for value in values)
