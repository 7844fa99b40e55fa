"""Best-effort records are gathered for a few milliseconds and handed to the producer together."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from streams.best_effort import BestEffortSender
from streams.producer import OutRecord


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """``wait_for`` for code on the event loop: the timer under test must be able to run."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the records"
        await asyncio.sleep(0.005)


def _record(n: int) -> OutRecord:
    return OutRecord("refract.audit", f"c{n}".encode(), f"decision {n}".encode())


class _Calls:
    def __init__(self) -> None:
        self.batches: list[list[OutRecord]] = []

    def send_nowait(self, records: Sequence[OutRecord]) -> None:
        self.batches.append(list(records))


def test_records_sent_within_the_window_reach_the_producer_in_one_call() -> None:
    calls = _Calls()

    async def send() -> None:
        sender = BestEffortSender(calls.send_nowait, within_s=0.05)
        sender.send([_record(1)])
        sender.send([_record(2), _record(3)])
        assert calls.batches == []  # nothing produced before the window ends
        await _until(lambda: bool(calls.batches))

    asyncio.run(send())
    assert calls.batches == [[_record(1), _record(2), _record(3)]]


def test_flush_hands_over_the_queued_records_at_once_and_cancels_the_timer() -> None:
    calls = _Calls()

    async def send() -> None:
        sender = BestEffortSender(calls.send_nowait, within_s=0.01)
        sender.send([_record(1)])
        sender.flush()
        assert calls.batches == [[_record(1)]]
        sender.send([_record(2)])
        await _until(lambda: len(calls.batches) == 2)

    asyncio.run(send())
    assert calls.batches == [[_record(1)], [_record(2)]]


def test_nothing_to_send_produces_nothing() -> None:
    calls = _Calls()

    async def send() -> None:
        sender = BestEffortSender(calls.send_nowait, within_s=0.01)
        sender.send([])
        sender.flush()

    asyncio.run(send())
    assert calls.batches == []
