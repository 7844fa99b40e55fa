"""Why a customer is in or out of a segment, clause by clause (``refract segment test``)."""

from __future__ import annotations

from typing import Any, NamedTuple

from engine.segments.compiler import Rule
from engine.segments.context import EvaluationContext
from engine.segments.nodes import And, Compare, Condition, Literal, Not, Or
from engine.segments.operands import getter
from engine.segments.printer import condition_text


class ClauseExplanation(NamedTuple):
    """One clause: its text, the value it saw (None for and/or/not), its result, its nesting."""

    clause: str
    seen: Any
    result: bool
    depth: int


def explain(rule: Rule, context: EvaluationContext) -> list[ClauseExplanation]:
    """Every clause of ``rule``, outermost first, with what it saw and what it gave."""
    explained: list[ClauseExplanation] = []
    _walk(rule, rule.condition, context, 0, explained)
    return explained


def _walk(
    rule: Rule,
    node: Condition,
    context: EvaluationContext,
    depth: int,
    into: list[ClauseExplanation],
) -> None:
    result = rule.evaluator(node)(context)
    into.append(ClauseExplanation(condition_text(node), _seen(node, context), result, depth))
    if isinstance(node, And | Or):
        for item in node.items:
            _walk(rule, item, context, depth + 1, into)
    elif isinstance(node, Not):
        _walk(rule, node.item, context, depth + 1, into)


def _seen(node: Condition, context: EvaluationContext) -> Any:
    """The value(s) a clause read: of its one non-literal side, or both sides as a pair."""
    if isinstance(node, And | Or | Not):
        return None
    if isinstance(node, Compare):
        sides = [side for side in (node.left, node.right) if not isinstance(side, Literal)]
        values = [getter(side)(context) for side in sides]
        if len(values) == 2:
            return tuple(values)
        return values[0] if values else None
    operand = node.operand
    return getter(operand)(context)
