"""Factories for campaign tests: campaigns from bodies, customers, events, and a replay helper."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from engine.campaigns.catalog import CampaignCatalog
from engine.campaigns.definition import campaign_from_body
from engine.campaigns.execution import Reaction, react
from engine.events import (
    BusinessEvent,
    ConsentUpdate,
    ContactUpdate,
    CustomerUpdate,
    Envelope,
    Interaction,
    Tick,
)
from engine.fold import fold
from engine.segments.membership import SegmentChange
from engine.state import CustomerState

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
T0 = int(dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)  # a Monday, noon UTC

_ids = itertools.count(1)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: str = "UTC") -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def make_campaign(campaign_id: str = "welcome", version: int = 1, **body):
    base = {
        "name": campaign_id,
        "triggers": [{"event": "signed_up"}],
        "content": {
            "hello": {
                "channel": "email",
                "subject": "Hi {{ customer.first_name | default: 'there' }}",
                "text": "Welcome",
            }
        },
        "flow": [{"id": "send-hello", "send": "hello"}],
    }
    base.update(body)
    return campaign_from_body(campaign_id, version, base)


def catalog(*campaigns, channel_caps=()):
    return CampaignCatalog.build(campaigns, channel_caps)


def envelope(customer_id: str, payload, at_ms: int, event_id: str | None = None) -> Envelope:
    return Envelope(
        event_id=event_id or f"e{next(_ids)}",
        customer_id=customer_id,
        occurred_at_ms=at_ms,
        received_at_ms=at_ms,
        source="test",
        payload=payload,
    )


class Customer:
    """Feeds events through fold and react, as the processor does, and keeps what came out."""

    def __init__(
        self,
        customer_id: str = "c-1",
        email: str | None = "ana@example.com",
        phone: str | None = "+59899123456",
        **attributes,
    ):
        self.customer_id = customer_id
        self.state: CustomerState | None = None
        self.offset = 0
        self.deliveries = []
        self.decisions = []
        self.funnel = []
        self.reactions: list[Reaction] = []
        self.preset = []
        if attributes:
            self.preset.append(CustomerUpdate(set=attributes))
        if email or phone:
            self.preset.append(ContactUpdate(email=email, phone=phone))

    def setup(self, cat: CampaignCatalog, at_ms: int = T0 - DAY_MS) -> Customer:
        for payload in self.preset:
            self.feed(payload, cat, at_ms)
        return self

    def feed(
        self,
        payload,
        cat: CampaignCatalog,
        at_ms: int,
        *,
        event_id: str | None = None,
        segment_changes: Iterable[SegmentChange] = (),
        segments: dict | None = None,
    ) -> Reaction:
        env = envelope(self.customer_id, payload, at_ms, event_id)
        before = self.state
        self.offset += 1
        after = fold(before, env, self.offset)
        assert after is not None
        if segments is not None:
            from engine.state import evolve

            after = evolve(after, {"segments": segments})
        reaction = react(before, after, env, tuple(segment_changes), cat)
        self.state = reaction.state
        self.deliveries += reaction.deliveries
        self.decisions += reaction.decisions
        self.funnel += reaction.funnel
        self.reactions.append(reaction)
        return reaction

    def event(self, name: str, cat, at_ms: int, event_id: str | None = None, **data) -> Reaction:
        return self.feed(BusinessEvent(name=name, data=data), cat, at_ms, event_id=event_id)

    def tick(self, cat, at_ms: int) -> Reaction:
        return self.feed(
            Tick(due_at_ms=at_ms, reason="due"), cat, at_ms, event_id=f"tick:{self.customer_id}:{at_ms}"
        )

    def interaction(self, kind: str, cat, at_ms: int, campaign_id: str | None = None) -> Reaction:
        return self.feed(
            Interaction(kind=kind, interaction_id=f"i{next(_ids)}", campaign_id=campaign_id), cat, at_ms
        )

    def opt_out(self, cat, at_ms: int, **scope) -> Reaction:
        return self.feed(ConsentUpdate(opted_in=False, **scope), cat, at_ms)

    def reasons(self, campaign_id: str | None = None) -> list[str]:
        return [d.reason for d in self.decisions if campaign_id is None or d.campaign_id == campaign_id]

    def run_until(self, cat, until_ms: int) -> None:
        """Tick whenever the state is due, up to ``until_ms`` (what the timers would do)."""
        while self.state is not None and self.state.due_ms is not None and self.state.due_ms <= until_ms:
            self.tick(cat, self.state.due_ms)
