"""The per-provider rate limit: one send per interval, in order, with no catch-up bursts."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from streams.rate_limit import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_sends_are_spaced_one_interval_apart() -> None:
    time = FakeTime()
    limiter = RateLimiter(50, clock=time.clock, sleep=time.sleep)
    granted = []
    for _ in range(101):
        await limiter.acquire()
        granted.append(time.now)
    assert granted[0] == 100.0
    assert granted[-1] - granted[0] == pytest.approx(2.0)  # 100 intervals of 20 ms
    assert sum(1 for at in granted if at < granted[0] + 0.999) == 50


async def test_a_stall_does_not_release_a_burst_to_catch_up() -> None:
    time = FakeTime()
    limiter = RateLimiter(10, clock=time.clock, sleep=time.sleep)
    await limiter.acquire()
    time.now += 5.0  # nothing sent for five seconds
    granted = []
    for _ in range(3):
        await limiter.acquire()
        granted.append(time.now)
    assert granted == pytest.approx([105.0, 105.1, 105.2])


async def test_concurrent_waiters_are_served_one_per_interval() -> None:
    limiter = RateLimiter(200)
    loop = asyncio.get_running_loop()
    granted: list[float] = []

    async def send() -> None:
        await limiter.acquire()
        granted.append(loop.time())

    await asyncio.gather(*(send() for _ in range(20)))
    gaps = [b - a for a, b in itertools.pairwise(granted)]
    assert min(gaps) >= 0.005 * 0.9


async def test_no_rate_means_no_wait() -> None:
    time = FakeTime()
    limiter = RateLimiter(0, clock=time.clock, sleep=time.sleep)
    for _ in range(1000):
        await limiter.acquire()
    assert time.now == 100.0
