"""The segment rule language: text and JSON forms, one compiled evaluator, timing and explanations.

    rule = rule_from_text('balance >= 10000 and country in ["UY", "AR"]')
    evaluate(rule, EvaluationContext.for_customer(attributes, now_ms))

The language is described in docs/segments.md. Parsing never runs code.
"""

from __future__ import annotations

from typing import Any

from engine.segments.compiler import Rule, RuleInputs, compile_rule, evaluate
from engine.segments.context import TIMEZONE_ATTRIBUTE, EvaluationContext, customer_timezone
from engine.segments.cycles import check_no_cycles, evaluation_order
from engine.segments.errors import RuleSyntaxError, SegmentCycleError
from engine.segments.explain import Explanation, ValueSeen, explain
from engine.segments.json_form import condition_json, parse_json
from engine.segments.nodes import Condition
from engine.segments.parser import parse_text
from engine.segments.printer import condition_text
from engine.segments.timing import next_change_ms


def rule_from_text(source: str) -> Rule:
    """Parse and compile a text rule. Raises RuleSyntaxError with line and column."""
    return compile_rule(parse_text(source))


def rule_from_json(doc: Any) -> Rule:
    """Parse and compile a JSON rule (already decoded). Raises RuleSyntaxError with a path."""
    return compile_rule(parse_json(doc))


def to_text(rule: Rule | Condition) -> str:
    """The canonical text form; ``rule_from_text`` reads it back to an equal rule."""
    return condition_text(rule.condition if isinstance(rule, Rule) else rule)


def to_json(rule: Rule | Condition) -> Any:
    """The JSON form (JSON-compatible values); ``rule_from_json`` reads it back to an equal rule."""
    return condition_json(rule.condition if isinstance(rule, Rule) else rule)


__all__ = [
    "TIMEZONE_ATTRIBUTE",
    "Condition",
    "EvaluationContext",
    "Explanation",
    "Rule",
    "RuleInputs",
    "RuleSyntaxError",
    "SegmentCycleError",
    "ValueSeen",
    "check_no_cycles",
    "compile_rule",
    "customer_timezone",
    "evaluate",
    "evaluation_order",
    "explain",
    "next_change_ms",
    "parse_json",
    "parse_text",
    "rule_from_json",
    "rule_from_text",
    "to_json",
    "to_text",
]
