"""Turns operands into getters: small functions from an evaluation context to a value (or None)."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from engine import behaviour
from engine.segments.calendar import age_on, next_birthday
from engine.segments.context import EvaluationContext
from engine.segments.durations import duration_ms
from engine.segments.nodes import (
    Age,
    Attribute,
    Count,
    DaysSince,
    EventField,
    Ever,
    InSegment,
    IsBirthday,
    Last,
    Literal,
    Offer,
    Operand,
    Sum,
)

Getter = Callable[[EvaluationContext], Any]

_NOTHING: MappingProxyType[str, Any] = MappingProxyType({})
DAY_MS = 86_400_000


def window_ms(within: str | None) -> int | None:
    return None if within is None else duration_ms(within)


def birthday_days(within: str | None) -> int:
    return 0 if within is None else duration_ms(within) // DAY_MS


def getter(node: Operand) -> Getter:
    """A function giving the value of ``node`` for a context; None when there is no value."""
    if isinstance(node, Literal):
        value = node.value
        return lambda context: value
    if isinstance(node, Attribute):
        name = node.name
        return lambda context: context.attributes.get(name)
    if isinstance(node, Age):
        return _age(node.attribute)
    if isinstance(node, DaysSince):
        return _days_since(node.attribute)
    if isinstance(node, IsBirthday):
        return _is_birthday(node.attribute, birthday_days(node.within))
    if isinstance(node, Count):
        key, within = node.source.key, window_ms(node.within)
        return lambda context: behaviour.count(context.behaviour, key, within, context.now_ms)
    if isinstance(node, Sum):
        key, field_name, within = node.source.key, node.field, window_ms(node.within)
        return lambda context: behaviour.sum_(context.behaviour, key, field_name, within, context.now_ms)
    if isinstance(node, Last):
        return _last(node.source.key, node.field)
    if isinstance(node, Offer):
        campaign, field_name = node.campaign, node.field
        return lambda context: context.campaign_attributes.get(campaign, _NOTHING).get(field_name)
    if isinstance(node, Ever):
        key = node.source.key
        return lambda context: key in context.behaviour.events
    if isinstance(node, EventField):
        event_field = node.field
        return lambda context: context.event_data.get(event_field)
    assert isinstance(node, InSegment)
    segment = node.segment
    return lambda context: segment in context.segments


def _age(attribute: str) -> Getter:
    def age(context: EvaluationContext) -> int | None:
        born = context.day_of_attribute(attribute)
        return None if born is None else age_on(born, context.today)

    return age


def _days_since(attribute: str) -> Getter:
    def days_since(context: EvaluationContext) -> int | None:
        day = context.day_of_attribute(attribute)
        return None if day is None else (context.today - day).days

    return days_since


def _is_birthday(attribute: str, within_days: int) -> Getter:
    def is_birthday(context: EvaluationContext) -> bool | None:
        born = context.day_of_attribute(attribute)
        if born is None:
            return None
        today = context.today
        return (next_birthday(born, today) - today).days <= within_days

    return is_birthday


def _last(key: str, field_name: str) -> Getter:
    def last_field(context: EvaluationContext) -> Any:
        entry = context.behaviour.events.get(key)
        return None if entry is None else entry.last_data.get(field_name)

    return last_field
