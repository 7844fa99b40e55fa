"""Waiting for a condition with a deadline: the only way tests wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None],
    *,
    timeout_s: float = 60.0,
    interval_s: float = 0.1,
    message: str = "condition",
) -> T:
    """Call ``condition`` until it returns something truthy; fail with ``message`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            last = condition()
            last_error = None
        except AssertionError:  # the condition says waiting is pointless (e.g. a process died)
            raise
        except Exception as exc:  # the service may not be up yet: keep trying until the deadline
            last_error = exc
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(
        f"timed out after {timeout_s:.0f} s waiting for {message};"
        f" last result {last!r}, last error {last_error!r}"
    )


async def wait_for_async(
    condition: Callable[[], T | None],
    *,
    timeout_s: float = 10.0,
    interval_s: float = 0.005,
    message: str = "condition",
) -> T:
    """``wait_for`` inside an event loop: the loop runs on while the condition is false."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.1f} s waiting for {message}")
