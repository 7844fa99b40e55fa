"""A per-provider rate limit shared by every delivery a worker sends: one send per interval.

Waiters are served one at a time, in order, and each is let go at least ``1 / rate`` seconds
after the previous one *was actually let go*. So a stalled event loop (a busy machine, a long
garbage collection) never releases a burst to catch up: any one-second window holds at most
``rate + 1`` sends, which is what providers that count per second expect.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate_per_s = rate_per_s
        self._interval_s = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self._last_s: float | None = None
        self._turn = asyncio.Lock()  # FIFO: waiters go in the order they came
        self._clock = clock
        self._sleep = sleep

    async def acquire(self) -> None:
        if not self._interval_s:
            return
        async with self._turn:
            if self._last_s is not None:
                wait_s = self._last_s + self._interval_s - self._clock()
                if wait_s > 0:
                    await self._sleep(wait_s)
            self._last_s = self._clock()
