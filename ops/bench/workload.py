"""The synthetic event stream the ingest benchmark folds: mixed types, many customers."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator

from engine.events import (
    BusinessEvent,
    ConsentUpdate,
    CustomerUpdate,
    Envelope,
    Interaction,
    Payload,
)

CITIES = ("Montevideo", "Salto", "Paysandú", "Rivera", "Maldonado", "Buenos Aires", "Rosario")
BASE_MS = 1_760_000_000_000


def ending_now(events: int) -> int:
    """The ``base_ms`` whose ``events`` events (one per millisecond) end at the present moment."""
    return int(time.time() * 1000) - events


def _payload(rng: random.Random, i: int) -> Payload:
    roll = rng.random()
    if roll < 0.55:
        return BusinessEvent(
            "card_transaction",
            {
                "amount": round(rng.uniform(1, 900), 2),
                "merchant": f"m{rng.randrange(500)}",
                "channel": rng.choice(("pos", "web", "app")),
                "approved": rng.random() < 0.97,
            },
        )
    if roll < 0.80:
        return CustomerUpdate(
            set={
                "balance": round(rng.uniform(0, 50_000), 2),
                "city": rng.choice(CITIES),
                "segment_score": rng.randrange(1000),
                "last_login": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                "products": ("card", "loan")[: rng.randrange(3)],
            },
        )
    if roll < 0.95:
        return Interaction(
            kind=rng.choice(("impression", "click", "dismiss")),
            interaction_id=f"i{i}",
            campaign_id=f"camp-{rng.randrange(30)}",
            placement_id="home-hero",
        )
    return ConsentUpdate(opted_in=rng.random() < 0.8, channel=rng.choice(("email", "sms", "push")))


def envelopes(events: int, customers: int, seed: int = 7, base_ms: int = BASE_MS) -> Iterator[Envelope]:
    """``events`` events one millisecond apart from ``base_ms``; the same content for a seed.

    Benchmarks of time-based rules pass a ``base_ms`` just before the run (``ending_now``): events
    from a year ago would make every window and wait due at once, and the worker would spend the
    run on catch-up ticks instead of on the events.
    """
    rng = random.Random(seed)
    for i in range(events):
        customer = f"cust-{rng.randrange(customers):07d}"
        at = base_ms + i
        yield Envelope(f"bench-{seed}-{i}", customer, at, at, "bench", _payload(rng, i))
