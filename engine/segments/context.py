"""What a rule is evaluated against: one customer's profile, behaviour and memberships, and now."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from engine.behaviour import EMPTY_HISTORY, BehaviourHistory
from engine.records import quick_init
from engine.segments.calendar import date_at, day_of, is_known_zone, zone
from engine.values import AttributeValue

# The profile attribute that holds a customer's IANA time zone.
TIMEZONE_ATTRIBUTE = "timezone"

_NO_EVENT: Mapping[str, object] = MappingProxyType({})
_NO_CAMPAIGNS: Mapping[str, Mapping[str, AttributeValue]] = MappingProxyType({})


@quick_init
@dataclass(slots=True, frozen=True)
class EvaluationContext:
    """One customer at one moment. ``timezone`` is an IANA name (UTC when unknown).

    Build it with ``for_customer`` to take the time zone from the customer's ``timezone``
    attribute. The local "today" is computed once per context (and moment).
    """

    attributes: Mapping[str, AttributeValue]
    now_ms: int
    campaign_attributes: Mapping[str, Mapping[str, AttributeValue]] = field(
        default_factory=lambda: _NO_CAMPAIGNS
    )
    behaviour: BehaviourHistory = EMPTY_HISTORY
    segments: frozenset[str] = frozenset()
    timezone: str = "UTC"
    # The data of the event a campaign trigger condition is evaluated for (``event.<field>``).
    event_data: Mapping[str, object] = field(default_factory=lambda: _NO_EVENT)
    # Cache of (now_ms, timezone, local day): safe under dataclasses.replace.
    _today: list[tuple[int, str, dt.date]] = field(
        default_factory=list, init=False, compare=False, repr=False
    )
    # Local days of date and timestamp attributes, by name: several rules read the same one.
    _days: dict[str, dt.date | None] = field(default_factory=dict, init=False, compare=False, repr=False)

    @classmethod
    def for_customer(
        cls,
        attributes: Mapping[str, AttributeValue],
        now_ms: int,
        *,
        campaign_attributes: Mapping[str, Mapping[str, AttributeValue]] = _NO_CAMPAIGNS,
        behaviour: BehaviourHistory = EMPTY_HISTORY,
        segments: frozenset[str] = frozenset(),
        default_timezone: str = "UTC",
    ) -> EvaluationContext:
        """A context whose time zone is the customer's own, or ``default_timezone``."""
        return cls(
            attributes=attributes,
            now_ms=now_ms,
            campaign_attributes=campaign_attributes,
            behaviour=behaviour,
            segments=segments,
            timezone=customer_timezone(attributes, default_timezone),
        )

    @property
    def zone(self) -> dt.tzinfo:
        return zone(self.timezone)

    @property
    def today(self) -> dt.date:
        """The customer's local calendar day at ``now_ms``."""
        cache = self._today
        if cache and cache[0][0] == self.now_ms and cache[0][1] == self.timezone:
            return cache[0][2]
        day = date_at(self.now_ms, self.zone)
        cache[:] = [(self.now_ms, self.timezone, day)]
        return day

    def day_of_attribute(self, name: str) -> dt.date | None:
        """The local calendar day of the date or timestamp attribute ``name`` (None for others)."""
        days = self._days
        if name in days:
            return days[name]
        day = days[name] = day_of(self.attributes.get(name), self.zone)
        return day


def customer_timezone(attributes: Mapping[str, AttributeValue], default: str) -> str:
    """The customer's ``timezone`` attribute when it names a known zone, else ``default``."""
    value = attributes.get(TIMEZONE_ATTRIBUTE)
    if isinstance(value, str) and is_known_zone(value):
        return value
    return default
