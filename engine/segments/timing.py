"""When a rule's result may change with no new event, so a timer can re-evaluate it just then.

Only windows (``count``/``sum`` with ``within``), ``days_since``, ``age`` and ``is_birthday`` change
with time. For a comparison with one such side, the moment returned is the first one at which the
comparison's result actually flips; for ``and`` / ``or`` it is the earliest moment any part may
flip, or None when a part that no time can change already decides the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from engine import behaviour
from engine.segments.calendar import birthday_in, day_of, midnight_ms, next_birthday
from engine.segments.comparisons import ORDER, compare
from engine.segments.compiler import Rule
from engine.segments.context import EvaluationContext
from engine.segments.nodes import (
    Age,
    And,
    Compare,
    Condition,
    Count,
    DaysSince,
    IsBirthday,
    Not,
    Operand,
    Or,
    Sum,
    Truth,
)
from engine.segments.operands import birthday_days, getter, window_ms

DAY_MS = 86_400_000
_ORDERINGS = frozenset(("<", "<=", ">", ">="))


def next_change_ms(rule: Rule, context: EvaluationContext) -> int | None:
    """The next moment after ``context.now_ms`` at which ``rule`` may change by time alone.

    None when only a new event can change it. The moment may be early (the result is then the
    same and the timer asks again) but never late.
    """
    if not rule.time_dependent:
        return None
    moment = _Timing(rule, context).next(rule.condition)
    return None if moment is None else max(moment, context.now_ms + 1)


class _Timing:
    def __init__(self, rule: Rule, context: EvaluationContext) -> None:
        self.rule = rule
        self.context = context

    def holds(self, node: Condition) -> bool:
        return self.rule.evaluator(node)(self.context)

    def next(self, node: Condition) -> int | None:
        if isinstance(node, And | Or):
            # A part that stays false (in an and) or true (in an or) decides the whole.
            deciding = isinstance(node, Or)
            moments: list[int] = []
            for item in node.items:
                moment = self.next(item)
                if moment is None:
                    if self.holds(item) == deciding:
                        return None
                else:
                    moments.append(moment)
            return min(moments, default=None)
        if isinstance(node, Not):
            return self.next(node.item)
        if isinstance(node, Truth):
            if isinstance(node.operand, IsBirthday):
                return self.birthday_flip(node.operand)
            return None
        if isinstance(node, Compare):
            return self.comparison_flip(node)
        return None

    def birthday_flip(self, node: IsBirthday) -> int | None:
        context = self.context
        born = day_of(context.attributes.get(node.attribute), context.zone)
        if born is None:
            return None
        today = context.today
        days = birthday_days(node.within)
        try:
            coming = next_birthday(born, today)
            if (coming - today).days <= days:
                return midnight_ms(coming.fromordinal(coming.toordinal() + 1), context.zone)
            return midnight_ms(coming.fromordinal(coming.toordinal() - days), context.zone)
        except (ValueError, OverflowError):
            return None  # beyond the calendar (year 9999): never

    def comparison_flip(self, node: Compare) -> int | None:
        plan: _ComparisonPlan | None = self.rule.timing.get(id(node))
        if plan is None:
            plan = self.rule.timing[id(node)] = _ComparisonPlan.of(node)
        if plan.varying is None:
            if plan.left_varies:  # both sides vary
                moments = [m for m in (self.step(node.left), self.step(node.right)) if m is not None]
                return min(moments, default=None)
            return None
        context = self.context
        other = plan.other(context)
        if plan.window_key is not None and type(other) in (int, float):
            order, left_varies = plan.order, plan.left_varies
            assert order is not None and plan.window_ms is not None

            def ordered(value: float) -> bool:
                return order(value, other) if left_varies else order(other, value)

            flip = behaviour.window_flip(
                context.behaviour, plan.window_key, plan.window_field, plan.window_ms, context.now_ms, ordered
            )
            if flip is not NotImplemented:
                return flip  # type: ignore[no-any-return]
        now = self.holds(node)
        left_varies = plan.left_varies

        def flips(value: Any) -> bool:
            if left_varies:
                return compare(node.op, value, other, context) != now
            return compare(node.op, other, value, context) != now

        for moment, value in self.future_values(plan.varying, other):
            if flips(value):
                return moment
        return None

    def future_values(self, node: Operand, other: Any) -> Iterable[tuple[int, Any]]:
        """(moment, value from then on) at which ``node`` takes the values that may matter."""
        context = self.context
        if isinstance(node, IsBirthday):
            flip = self.birthday_flip(node)
            current = getter(node)(context)
            return [] if flip is None else [(flip, not current)]
        if isinstance(node, Count | Sum):
            within = window_ms(node.within)
            assert within is not None
            field_name = node.field if isinstance(node, Sum) else None
            return behaviour.window_changes(
                context.behaviour, node.source.key, field_name, within, context.now_ms
            )
        assert isinstance(node, Age | DaysSince)
        base = day_of(context.attributes.get(node.attribute), context.zone)
        if base is None:
            return []
        current = getter(node)(context)
        # The value steps up by one (each day, or each birthday); only steps around the other
        # side's numbers can change a comparison, so only those are looked at.
        candidates = sorted(
            {value for number in _numbers(other) for value in _around(number) if value > current}
        )
        moments = []
        for value in candidates:
            try:
                if isinstance(node, DaysSince):
                    day = base.fromordinal(base.toordinal() + value)
                else:
                    day = birthday_in(base, base.year + value)
                moments.append((midnight_ms(day, context.zone), value))
            except (ValueError, OverflowError):
                break  # beyond the calendar (year 9999): never
        return moments

    def step(self, node: Operand) -> int | None:
        """The next moment the value of a time-varying operand changes at all."""
        context = self.context
        if isinstance(node, Count | Sum | IsBirthday):
            changes = list(self.future_values(node, None))
            return changes[0][0] if changes else None
        try:
            if isinstance(node, DaysSince):
                today = context.today
                return midnight_ms(today.fromordinal(today.toordinal() + 1), context.zone)
            if isinstance(node, Age):
                born = day_of(context.attributes.get(node.attribute), context.zone)
                if born is None:
                    return None
                tomorrow = context.today.fromordinal(context.today.toordinal() + 1)
                return midnight_ms(next_birthday(born, tomorrow), context.zone)
        except (ValueError, OverflowError):
            return None  # beyond the calendar (year 9999): never
        return None


@dataclass(slots=True, frozen=True)
class _ComparisonPlan:
    """What a comparison's timing needs, worked out once per rule (``Rule.timing``).

    ``varying`` is the side that changes with time when exactly one does (None otherwise, with
    ``left_varies`` telling whether both do); ``window_*`` are set for a window compared by an
    ordering, whose flip comes from its newest buckets.
    """

    left_varies: bool
    varying: Operand | None
    other: Any  # Getter of the side that does not vary
    order: Callable[[Any, Any], bool] | None = None
    window_key: str | None = None
    window_field: str | None = None
    window_ms: int | None = None

    @classmethod
    def of(cls, node: Compare) -> _ComparisonPlan:
        left_varies, right_varies = _varies(node.left), _varies(node.right)
        if left_varies == right_varies:
            return cls(left_varies, None, None)
        varying = node.left if left_varies else node.right
        other = getter(node.right if left_varies else node.left)
        if isinstance(varying, Count | Sum) and node.op in _ORDERINGS:
            return cls(
                left_varies,
                varying,
                other,
                ORDER[node.op],
                varying.source.key,
                varying.field if isinstance(varying, Sum) else None,
                window_ms(varying.within),
            )
        return cls(left_varies, varying, other)


def _varies(operand: Operand) -> bool:
    if isinstance(operand, Count | Sum):
        return operand.within is not None
    return isinstance(operand, Age | DaysSince | IsBirthday)


def _numbers(value: Any) -> list[float]:
    values = value if isinstance(value, tuple) else (value,)
    return [v for v in values if type(v) in (int, float) and math.isfinite(v)]


def _around(number: float) -> tuple[int, ...]:
    low, high = math.floor(number), math.ceil(number)
    return (low, low + 1, high, high + 1)
