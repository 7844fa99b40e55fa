"""Factories for segment rule tests: customers at a moment, with behaviour and memberships."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from engine import behaviour
from engine.behaviour import EMPTY_HISTORY, BehaviourHistory
from engine.segments import EvaluationContext
from engine.values import AttributeValue

# Monday 10 June 2024, 12:00 UTC (09:00 in Montevideo).
NOW = dt.datetime(2024, 6, 10, 12, 0, tzinfo=dt.UTC)
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def make_history(events: Iterable[tuple[str, dt.datetime, Mapping[str, object]]]) -> BehaviourHistory:
    history = EMPTY_HISTORY
    for name, moment, data in events:
        history = behaviour.record(history, name, data, ms(moment))  # type: ignore[arg-type]
    return history


def make_context(
    attributes: Mapping[str, AttributeValue] | None = None,
    *,
    now: dt.datetime = NOW,
    timezone: str | None = None,
    events: Iterable[tuple[str, dt.datetime, Mapping[str, object]]] = (),
    segments: Iterable[str] = (),
    offers: Mapping[str, Mapping[str, AttributeValue]] | None = None,
) -> EvaluationContext:
    attributes = dict(attributes or {})
    if timezone is not None:
        attributes["timezone"] = timezone
    return EvaluationContext.for_customer(
        attributes,
        ms(now),
        campaign_attributes=offers or {},
        behaviour=make_history(events),
        segments=frozenset(segments),
    )
