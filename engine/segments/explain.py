"""Why a customer is in or out of a segment, clause by clause (``refract segment test``).

``explain`` returns a tree that mirrors the rule: one ``Explanation`` per condition, with its
result, the values its operands read (``ValueSeen``) and, for ``and`` / ``or`` / ``not``, the
explanations of its parts. Every result is the compiled evaluator's own, so an explanation can
never disagree with the membership. Pure: the context carries the time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from engine.segments.compiler import Rule
from engine.segments.context import EvaluationContext
from engine.segments.nodes import And, Compare, Condition, IsNull, Not, Or, Truth
from engine.segments.nodes import Literal as LiteralNode
from engine.segments.operands import getter
from engine.segments.printer import condition_text, operand_text

ClauseKind = Literal["and", "or", "not", "comparison", "null check", "truth"]


@dataclass(slots=True, frozen=True)
class ValueSeen:
    """An operand of a clause (its text, such as ``balance``) and the value it read (None: missing)."""

    operand: str
    value: Any


@dataclass(slots=True, frozen=True)
class Explanation:
    """One clause of a rule: its text, its result, what it read and, for and/or/not, its parts."""

    clause: str
    kind: ClauseKind
    result: bool
    seen: tuple[ValueSeen, ...] = ()
    parts: tuple[Explanation, ...] = ()

    def walk(self, depth: int = 0) -> Iterator[tuple[int, Explanation]]:
        """(depth, explanation) of this clause and every clause under it, outermost first."""
        yield depth, self
        for part in self.parts:
            yield from part.walk(depth + 1)


def explain(rule: Rule, context: EvaluationContext) -> Explanation:
    """The explanation of ``rule`` for the customer in ``context``; its ``result`` is the membership."""
    return _explain(rule, rule.condition, context)


def _explain(rule: Rule, node: Condition, context: EvaluationContext) -> Explanation:
    result = rule.evaluator(node)(context)
    text = condition_text(node)
    if isinstance(node, And | Or):
        kind: ClauseKind = "and" if isinstance(node, And) else "or"
        parts = tuple(_explain(rule, item, context) for item in node.items)
        return Explanation(text, kind, result, parts=parts)
    if isinstance(node, Not):
        return Explanation(text, "not", result, parts=(_explain(rule, node.item, context),))
    if isinstance(node, Compare):
        sides = [side for side in (node.left, node.right) if not isinstance(side, LiteralNode)]
        seen = tuple(ValueSeen(operand_text(side), getter(side)(context)) for side in sides)
        return Explanation(text, "comparison", result, seen)
    operand = node.operand
    kind = "null check" if isinstance(node, IsNull) else "truth"
    assert isinstance(node, IsNull | Truth)
    seen = (
        ()
        if isinstance(operand, LiteralNode)
        else (ValueSeen(operand_text(operand), getter(operand)(context)),)
    )
    return Explanation(text, kind, result, seen)
