"""When a rule's result may change with no new event, so a timer can re-evaluate it just then.

Only windows (``count``/``sum`` with ``within``), ``days_since``, ``age`` and ``is_birthday`` change
with time. For a comparison with one such side, the moment returned is the first one at which the
comparison's result actually flips; for ``and`` / ``or`` it is the earliest moment any part may
flip, or None when a part that no time can change already decides the result.

Each rule's timing is compiled once (kept in ``Rule.timing``) into small functions of a context,
like its evaluator: parts that time cannot change cost nothing, and the common comparisons of a
window or a day count with a number (``count(...) >= 3``, ``days_since(last_login) > 30``) have
their own direct paths. Anything else walks the operand's future values.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from engine import behaviour
from engine.segments.calendar import age_on, birthday_in, midnight_ms, next_birthday
from engine.segments.comparisons import ORDER, compare
from engine.segments.compiler import Evaluator, Rule
from engine.segments.context import EvaluationContext
from engine.segments.nodes import (
    Age,
    And,
    Compare,
    Condition,
    Count,
    DaysSince,
    IsBirthday,
    Literal,
    Not,
    Operand,
    Or,
    Sum,
    Truth,
)
from engine.segments.operands import birthday_days, getter, window_ms

DAY_MS = 86_400_000
_ORDERINGS = frozenset(("<", "<=", ">", ">="))

Timer = Callable[[EvaluationContext], "int | None"]
"""The next moment a condition may change by time alone, for a context (None: never)."""

Judge = Callable[[EvaluationContext], "tuple[bool, int | None]"]
"""A condition's result for a context and its next change by time alone."""

# ``Rule.timing`` keys are ids of condition nodes; the whole rule's timer and judge are kept
# under these.
_RULE_TIMER = -1
_RULE_JUDGE = -2


def next_change_ms(rule: Rule, context: EvaluationContext) -> int | None:
    """The next moment after ``context.now_ms`` at which ``rule`` may change by time alone.

    None when only a new event can change it. The moment may be early (the result is then the
    same and the timer asks again) but never late.
    """
    if not rule.time_dependent:
        return None
    timer = rule.timing.get(_RULE_TIMER)
    if timer is None:
        timer = rule.timing[_RULE_TIMER] = _timer(rule, rule.condition) or _never
    moment = timer(context)
    if moment is None:
        return None
    now_ms = context.now_ms
    return moment if moment > now_ms else now_ms + 1


def evaluate_timed(rule: Rule, context: EvaluationContext) -> tuple[bool, int | None]:
    """``evaluate(rule, context)`` and ``next_change_ms(rule, context)`` together.

    One pass for a window or a day count compared with a number: the value the timing walks is
    the one the comparison tests.
    """
    judge = rule.timing.get(_RULE_JUDGE)
    if judge is None:
        judge = rule.timing[_RULE_JUDGE] = _judge(rule)
    member, moment = judge(context)
    if moment is None:
        return member, None
    now_ms = context.now_ms
    return member, moment if moment > now_ms else now_ms + 1


def _never(context: EvaluationContext) -> None:
    return None


def _judge(rule: Rule) -> Judge:
    condition = rule.condition
    if isinstance(condition, Compare):
        fused = _fused(rule, condition)
        if fused is not None:
            return fused
    holds = rule.evaluator(condition)
    timer = _timer(rule, condition) if rule.time_dependent else None
    if timer is None:
        return lambda context: (holds(context), None)
    return lambda context: (holds(context), timer(context))


def _timer(rule: Rule, node: Condition) -> Timer | None:
    """The timer of ``node``, or None when no time can change it."""
    if isinstance(node, And | Or):
        return _combined(rule, node)
    if isinstance(node, Not):
        return _timer(rule, node.item)
    if isinstance(node, Truth):
        if isinstance(node.operand, IsBirthday):
            birthday = node.operand
            return lambda context: _birthday_flip(birthday, context)
        return None
    if isinstance(node, Compare):
        return _comparison(rule, node)
    return None


def _combined(rule: Rule, node: And | Or) -> Timer | None:
    # A part that stays false (in an and) or true (in an or) decides the whole.
    deciding = isinstance(node, Or)
    steady: list[Evaluator] = []
    timed: list[tuple[Timer, Evaluator]] = []
    for item in node.items:
        timer = _timer(rule, item)
        if timer is None:
            steady.append(rule.evaluator(item))
        else:
            timed.append((timer, rule.evaluator(item)))
    if not timed:
        return None
    fixed = tuple(steady)
    parts = tuple(timed)

    def combined(context: EvaluationContext) -> int | None:
        for holds in fixed:
            if holds(context) == deciding:
                return None
        earliest: int | None = None
        for timer, holds in parts:
            moment = timer(context)
            if moment is None:
                if holds(context) == deciding:
                    return None
            elif earliest is None or moment < earliest:
                earliest = moment
        return earliest

    return combined


def _comparison(rule: Rule, node: Compare) -> Timer | None:
    fused = _fused(rule, node)
    if fused is not None:
        return lambda context: fused(context)[1]
    plan = _ComparisonPlan.of(node)
    if plan.varying is None:
        if plan.left_varies:  # both sides vary

            def either(context: EvaluationContext) -> int | None:
                moments = [
                    m for m in (_step(node.left, context), _step(node.right, context)) if m is not None
                ]
                return min(moments, default=None)

            return either
        return None
    return lambda context: _comparison_flip(rule, node, plan, context)


def _fused(rule: Rule, node: Compare) -> Judge | None:
    """For a window or a day count compared with a number: its result and next change at once."""
    plan = _ComparisonPlan.of(node)
    if plan.varying is None or node.op not in _ORDERINGS:
        return None
    other = node.right if plan.left_varies else node.left
    value = other.value if isinstance(other, Literal) else None
    if not (type(value) is int or type(value) is float) or not math.isfinite(value):
        return None
    number: float = value
    order = ORDER[node.op]
    if plan.left_varies:

        def holds(value: float) -> bool:
            return order(value, number)
    else:

        def holds(value: float) -> bool:
            return order(number, value)

    if plan.window_key is not None:
        return _window_against(rule, node, plan, holds)
    if isinstance(plan.varying, Age | DaysSince):
        return _days_against(plan.varying, number, holds)
    return None


def _window_against(
    rule: Rule, node: Compare, plan: _ComparisonPlan, holds: Callable[[float], bool]
) -> Judge:
    """``count/sum(..., within=W) <op> number``: flips when the newest buckets stop deciding.

    As time passes occurrences only leave the window, so a count only falls (a sum too, unless a
    bucket is negative: then the general walk). A monotone test of a falling value changes at most
    once, and only if it differs for an empty window: when the oldest of the newest buckets that
    alone still make it hold leaves the window (``behaviour.window_flip``, inlined). The window's
    value, walked for that, is also the comparison's result.
    """
    empty_holds = holds(0)
    key, within = plan.window_key, plan.window_ms
    field_name = plan.window_field
    assert key is not None and within is not None
    evaluator = rule.evaluator(node)

    def window(context: EvaluationContext) -> tuple[bool, int | None]:
        entry = context.behaviour.events.get(key)
        if entry is None:
            return empty_holds, None
        boundary = context.now_ms - within
        counted: list[tuple[int, float]] = []  # (end of bucket, value), newest first
        total: float = 0
        for bucket in reversed(entry.buckets):
            end = bucket.start_ms + bucket.width_ms
            if end - 1 <= boundary:
                break
            value = bucket.count if field_name is None else bucket.sums.get(field_name, 0)
            if value < 0:
                return evaluator(context), _comparison_flip(rule, node, plan, context)
            counted.append((end, value))
            total += value
        now = holds(total)
        if now == empty_holds:
            return now, None
        kept: float = 0
        for end, value in counted:
            kept += value
            if holds(kept) == now:
                return now, end - 1 + within
        raise AssertionError("unreachable: all the buckets make the current value")

    return window


def _days_against(varying: Age | DaysSince, number: float, holds: Callable[[float], bool]) -> Judge:
    """``days_since(a)`` or ``age(a)`` compared with a number: it steps up by one a day (a year).

    Only the steps around the number can change the comparison: the first of them, after today's
    value, that gives another result is the moment (its local midnight).
    """
    steps = sorted(set(_around(number)))
    attribute = varying.attribute
    days = isinstance(varying, DaysSince)

    def days_against(context: EvaluationContext) -> tuple[bool, int | None]:
        base = context.day_of_attribute(attribute)
        if base is None:
            return False, None  # no value: every comparison is false, and stays so
        today = context.today
        current = (today - base).days if days else age_on(base, today)
        now = holds(current)
        for value in steps:
            if value <= current or holds(value) == now:
                continue
            return now, step_midnight_ms(base, value, days, context.zone)
        return now, None

    return days_against


def step_midnight_ms(base: dt.date, value: int, days: bool, tz: dt.tzinfo) -> int | None:
    """When ``days_since`` (``days``) or ``age`` of the date ``base`` becomes ``value``: the local
    midnight starting that day (birthday), or None beyond the calendar (year 9999): never."""
    try:
        day = base.fromordinal(base.toordinal() + value) if days else birthday_in(base, base.year + value)
        return midnight_ms(day, tz)
    except (ValueError, OverflowError):
        return None


def _birthday_flip(node: IsBirthday, context: EvaluationContext) -> int | None:
    born = context.day_of_attribute(node.attribute)
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


def _comparison_flip(
    rule: Rule, node: Compare, plan: _ComparisonPlan, context: EvaluationContext
) -> int | None:
    """The general case: walk the varying side's future values until the comparison flips."""
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
    now = rule.evaluator(node)(context)
    left_varies = plan.left_varies
    assert plan.varying is not None

    def flips(value: Any) -> bool:
        if left_varies:
            return compare(node.op, value, other, context) != now
        return compare(node.op, other, value, context) != now

    for moment, value in _future_values(plan.varying, other, context):
        if flips(value):
            return moment
    return None


def _future_values(node: Operand, other: Any, context: EvaluationContext) -> Iterable[tuple[int, Any]]:
    """(moment, value from then on) at which ``node`` takes the values that may matter."""
    if isinstance(node, IsBirthday):
        flip = _birthday_flip(node, context)
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
    base = context.day_of_attribute(node.attribute)
    if base is None:
        return []
    current = getter(node)(context)
    # The value steps up by one (each day, or each birthday); only steps around the other
    # side's numbers can change a comparison, so only those are looked at.
    candidates = sorted({value for number in _numbers(other) for value in _around(number) if value > current})
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


def _step(node: Operand, context: EvaluationContext) -> int | None:
    """The next moment the value of a time-varying operand changes at all."""
    if isinstance(node, Count | Sum | IsBirthday):
        changes = list(_future_values(node, None, context))
        return changes[0][0] if changes else None
    try:
        if isinstance(node, DaysSince):
            today = context.today
            return midnight_ms(today.fromordinal(today.toordinal() + 1), context.zone)
        if isinstance(node, Age):
            born = context.day_of_attribute(node.attribute)
            if born is None:
                return None
            tomorrow = context.today.fromordinal(context.today.toordinal() + 1)
            return midnight_ms(next_birthday(born, tomorrow), context.zone)
    except (ValueError, OverflowError):
        return None  # beyond the calendar (year 9999): never
    return None


@dataclass(slots=True, frozen=True)
class _ComparisonPlan:
    """What a comparison's timing needs, worked out when the rule's timing is compiled.

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
