"""Segments of one shape over the same input, judged together in one pass over that input.

Most segments of a real set compare one window of one event name with a number
(``count(event="card_transaction", within="7d") >= 3``, ``sum(..., field="amount", within="30d")
> 1000``) or one day count with a number (``days_since(last_login) > 30``, ``age(birth_date) >=
18``). An event that touches the name (or the attribute) re-evaluates every one of them, and
judging them one by one walks the same buckets (or works out the same local day) once per
segment. A family holds the segments that read one such input; ``judge`` walks it once and decides
each member's result and next change by time from that walk with a comparison of numbers.

The answers are exactly ``timing.evaluate_timed``'s for each member's rule (a property test checks
it); where the fast path does not apply (a bucket with a negative sum) a family asks
``evaluate_timed`` itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeAlias

from engine.segments.calendar import age_on
from engine.segments.compiler import Rule
from engine.segments.context import EvaluationContext
from engine.segments.nodes import Age, Compare, Count, DaysSince, Literal, Sum
from engine.segments.operands import window_ms
from engine.segments.timing import evaluate_timed, step_midnight_ms

Judged: TypeAlias = Mapping[str, tuple[bool, "int | None"]]
"""segment id -> (member, next change by time alone, as ``evaluate_timed`` gives it)."""

# A comparison ``value <op> number`` with the varying value on the left, as a code.
_GE, _GT, _LE, _LT = 0, 1, 2, 3
_CODES = {">=": _GE, ">": _GT, "<=": _LE, "<": _LT}
# ``number <op> value`` is ``value <mirrored op> number``.
_MIRRORED = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}


def _holds(code: int, value: float, number: float) -> bool:
    if code == _GE:
        return value >= number
    if code == _GT:
        return value > number
    if code == _LE:
        return value <= number
    return value < number


@dataclass(slots=True, frozen=True)
class _WindowMember:
    segment_id: str
    rule: Rule
    within_ms: int
    code: int
    number: float
    empty_holds: bool


@dataclass(slots=True, frozen=True)
class WindowFamily:
    """Segments comparing a window of one behaviour name (and sum field) with a number."""

    key: str
    field: str | None
    members: tuple[_WindowMember, ...]
    widest_ms: int
    # The answers for a customer with no occurrence of the name (the same for every such one).
    absent: Judged

    def judge(self, context: EvaluationContext) -> Judged:
        entry = context.behaviour.events.get(self.key)
        if entry is None:
            return self.absent
        now_ms = context.now_ms
        oldest = now_ms - self.widest_ms
        field_name = self.field
        # (last moment of the bucket, its value), newest first, as far back as the widest window.
        walk: list[tuple[int, float]] = []
        for bucket in reversed(entry.buckets):
            last = bucket.start_ms + bucket.width_ms - 1
            if last <= oldest:
                break
            value = bucket.count if field_name is None else bucket.sums.get(field_name, 0)
            if value < 0:  # a sum can then rise as time passes: the general walk, rule by rule
                return {m.segment_id: evaluate_timed(m.rule, context) for m in self.members}
            walk.append((last, value))
        judged: dict[str, tuple[bool, int | None]] = {}
        for member in self.members:
            within, code, number = member.within_ms, member.code, member.number
            boundary = now_ms - within
            total: float = 0
            for last, value in walk:
                if last <= boundary:
                    break
                total += value
            holds = _holds(code, total, number)
            if holds == member.empty_holds:
                judged[member.segment_id] = (holds, None)
                continue
            # It flips when the oldest of the newest buckets that alone still decide it leaves.
            kept: float = 0
            moment = now_ms + 1
            for last, value in walk:
                kept += value
                if _holds(code, kept, number) == holds:
                    moment = last + within
                    break
            judged[member.segment_id] = (holds, moment if moment > now_ms else now_ms + 1)
        return judged


@dataclass(slots=True, frozen=True)
class _DaysMember:
    segment_id: str
    code: int
    number: float
    # The day counts around ``number``, ascending: only they can change the comparison.
    steps: tuple[int, ...]


@dataclass(slots=True, frozen=True)
class DaysFamily:
    """Segments comparing ``days_since(attribute)`` (or ``age(attribute)``) with a number."""

    attribute: str
    days: bool  # days_since; else age in whole years
    members: tuple[_DaysMember, ...]
    # The answers for a customer without the date: every comparison false, and it stays so.
    absent: Judged

    def judge(self, context: EvaluationContext) -> Judged:
        base = context.day_of_attribute(self.attribute)
        if base is None:
            return self.absent
        today = context.today
        days = self.days
        current = (today - base).days if days else age_on(base, today)
        now_ms = context.now_ms
        judged: dict[str, tuple[bool, int | None]] = {}
        for member in self.members:
            code, number = member.code, member.number
            holds = _holds(code, current, number)
            moment: int | None = None
            for value in member.steps:
                if value <= current or _holds(code, value, number) == holds:
                    continue
                moment = step_midnight_ms(base, value, days, context.zone)
                break
            if moment is not None and moment <= now_ms:
                moment = now_ms + 1
            judged[member.segment_id] = (holds, moment)
        return judged


Family: TypeAlias = WindowFamily | DaysFamily


def families(rules: Mapping[str, Rule]) -> dict[str, Family]:
    """segment id -> its family, for the segments whose rule has a family of two or more."""
    windows: dict[tuple[str, str | None], list[_WindowMember]] = {}
    dates: dict[tuple[str, bool], list[_DaysMember]] = {}
    for segment_id, rule in rules.items():
        shape = _shape(rule.condition)
        if shape is None:
            continue
        varying, code, number = shape
        if isinstance(varying, Count | Sum):
            within = window_ms(varying.within)
            if within is None:
                continue
            field_name = varying.field if isinstance(varying, Sum) else None
            member = _WindowMember(segment_id, rule, within, code, number, _holds(code, 0, number))
            windows.setdefault((varying.source.key, field_name), []).append(member)
        else:
            low, high = math.floor(number), math.ceil(number)
            steps = tuple(sorted({low, low + 1, high, high + 1}))
            days = isinstance(varying, DaysSince)
            member_days = _DaysMember(segment_id, code, number, steps)
            dates.setdefault((varying.attribute, days), []).append(member_days)
    found: dict[str, Family] = {}
    for (key, field_name), window_members in windows.items():
        if len(window_members) > 1:
            widest = max(m.within_ms for m in window_members)
            absent = MappingProxyType({m.segment_id: (m.empty_holds, None) for m in window_members})
            _join(found, WindowFamily(key, field_name, tuple(window_members), widest, absent))
    for (attribute, days), day_members in dates.items():
        if len(day_members) > 1:
            nothing = MappingProxyType({m.segment_id: (False, None) for m in day_members})
            _join(found, DaysFamily(attribute, days, tuple(day_members), nothing))
    return found


def _join(found: dict[str, Family], family: Family) -> None:
    for member in family.members:
        found[member.segment_id] = family


def _shape(condition: object) -> tuple[Count | Sum | DaysSince | Age, int, float] | None:
    """(the varying side, its comparison code, the number) of ``varying <op> number`` rules."""
    if not isinstance(condition, Compare) or condition.op not in _CODES:
        return None
    left, right = condition.left, condition.right
    if isinstance(right, Literal) and isinstance(left, Count | Sum | DaysSince | Age):
        varying, op, literal = left, condition.op, right
    elif isinstance(left, Literal) and isinstance(right, Count | Sum | DaysSince | Age):
        varying, op, literal = right, _MIRRORED[condition.op], left
    else:
        return None
    value = literal.value
    if not (type(value) is int or type(value) is float) or not math.isfinite(value):
        return None
    return varying, _CODES[op], value
