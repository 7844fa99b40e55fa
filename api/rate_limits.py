"""Rate limits per API key: one token bucket per key id, in this worker process.

A key may make ``burst`` requests at once and ``rate_per_s`` requests per second on average.
Buckets live in the process: with N workers behind a load balancer a key gets up to N times the
rate (and a request forwarded to the worker owning a customer spends a token on both workers).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """``tokens`` refill at ``rate_per_s`` up to ``capacity``; ``updated_s`` is the last refill."""

    rate_per_s: float
    capacity: float
    tokens: float
    updated_s: float

    def take(self, now_s: float) -> float:
        """Spend one token; returns 0 if there was one, else the seconds until there is."""
        elapsed = max(0.0, now_s - self.updated_s)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        self.updated_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


def retry_after_s(wait_s: float) -> int:
    """The Retry-After header's whole seconds: rounded up, at least 1."""
    return max(1, math.ceil(wait_s))


class RateLimiter:
    """One bucket per key id, created full on the key's first request; the clock is injected."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key_id: str, rate_per_s: float, burst: int) -> float:
        """0 if the request may go ahead, else the seconds to wait; ``rate_per_s`` 0 is unlimited."""
        if rate_per_s <= 0:
            return 0.0
        now_s = self._clock()
        bucket = self._buckets.get(key_id)
        if bucket is None or bucket.rate_per_s != rate_per_s or bucket.capacity != burst:
            bucket = self._buckets[key_id] = TokenBucket(rate_per_s, float(burst), float(burst), now_s)
        return bucket.take(now_s)
