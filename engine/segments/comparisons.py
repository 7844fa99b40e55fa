"""What a comparison means at evaluation time. Never raises: a missing value or a value of the
wrong type makes a comparison false (``!=`` and ``not in`` included).

A date compared with a moment (timestamp) is compared with the moment's local calendar day in the
customer's time zone. Numbers compare by value (1 == 1.0); true/false only equal true/false.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable
from typing import Any, TypeAlias

from engine.segments.calendar import aware, local_date
from engine.segments.context import EvaluationContext
from engine.segments.patterns import matches

Test: TypeAlias = Callable[[Any, EvaluationContext], bool]

_KINDS: dict[type, str] = {
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    dt.datetime: "timestamp",
    dt.date: "date",
    tuple: "list",
}

ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def kind(value: object) -> str | None:
    """The value's kind ("number", "string", ...), or None when missing or unknown."""
    found = _KINDS.get(type(value))
    if found is not None or value is None:
        return found
    for cls, name in _KINDS.items():
        if isinstance(value, cls):
            return "timestamp" if isinstance(value, dt.datetime) else name
    return None


def _aligned(left: Any, right: Any, context: EvaluationContext) -> tuple[str, Any, Any] | None:
    """Both values in one comparable kind, or None when they cannot be compared."""
    left_kind, right_kind = kind(left), kind(right)
    if left_kind is None or right_kind is None:
        return None
    if left_kind == right_kind:
        if left_kind == "timestamp":
            return left_kind, aware(left), aware(right)
        return left_kind, left, right
    if left_kind == "date" and right_kind == "timestamp":
        return "date", left, local_date(right, context.zone)
    if left_kind == "timestamp" and right_kind == "date":
        return "date", local_date(left, context.zone), right
    return None


def _equal(left: Any, right: Any, context: EvaluationContext) -> bool:
    aligned = _aligned(left, right, context)
    return aligned is not None and aligned[1] == aligned[2]


def compare(op: str, left: Any, right: Any, context: EvaluationContext) -> bool:
    """``left op right`` for any two values (``~`` excluded: it needs a compiled pattern)."""
    if left is None or right is None:
        return False
    if op == "in" or op == "not in":
        if type(right) is not tuple or type(left) is tuple:
            return False
        found = any(_equal(left, item, context) for item in right)
        if op == "in":
            return found
        # "not in" on a list of another type is a type mismatch: false, like any mismatch.
        return not found and (not right or any(_aligned(left, item, context) is not None for item in right))
    aligned = _aligned(left, right, context)
    if aligned is None:
        return False
    value_kind, left, right = aligned
    if op not in ("==", "!=") and value_kind in ("boolean", "list"):
        return False
    return ORDER[op](left, right)


def literal_test(op: str, literal: Any, pattern: re.Pattern[str] | None = None) -> Test:
    """A fast test of ``value op literal`` for a literal known when the rule is compiled."""
    if op == "~":
        assert pattern is not None
        compiled = pattern
        return lambda value, context: type(value) is str and matches(compiled, value)
    literal_kind = kind(literal)
    if op in ORDER and literal_kind in ("number", "string", "boolean"):
        order = ORDER[op]
        if literal_kind == "number":
            return lambda value, context: (
                (type(value) is int or type(value) is float) and order(value, literal)
            )
        expected = str if literal_kind == "string" else bool
        if literal_kind == "boolean" and op not in ("==", "!="):
            return lambda value, context: False
        return lambda value, context: type(value) is expected and order(value, literal)
    if op in ("in", "not in") and type(literal) is tuple and literal:
        kinds = {kind(item) for item in literal}
        if kinds == {"string"} or kinds == {"number"}:
            members = frozenset(literal)
            accepted: tuple[type, ...] = (str,) if kinds == {"string"} else (int, float)
            if op == "in":
                return lambda value, context: type(value) in accepted and value in members
            return lambda value, context: type(value) in accepted and value not in members
    return lambda value, context: compare(op, value, literal, context)
