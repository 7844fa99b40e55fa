"""The fetcher's hand-over: a callback that finishes at once wins without tasks; one that waits
still races the flow being suspended, as in mode."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from streams.consumer import HandsOverAtOnce, RefractConsumer, RefractTransport


class Racer(HandsOverAtOnce):
    """A bare mode Service with the hand-over, standing for faust's consumer."""


async def finishes_at_once(value: Any) -> Any:
    return value


async def waits_for(future: asyncio.Future[Any]) -> Any:
    return await future


def tasks_made_during(loop: asyncio.AbstractEventLoop, made: list[Any]) -> None:
    create_task = loop.create_task

    def counting(coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro)
        return create_task(coro, **kwargs)

    loop.create_task = counting  # type: ignore[method-assign]


async def test_a_callback_that_finishes_at_once_wins_alone_and_no_task_is_made() -> None:
    racer = Racer()
    suspended = asyncio.Event()
    made: list[Any] = []
    tasks_made_during(asyncio.get_running_loop(), made)
    callback, suspension = finishes_at_once("handed over"), suspended.wait()

    results = await racer.wait_first(callback, suspension)

    assert results.done == [callback] and results.results == ["handed over"]
    assert not results.stopped
    assert made == []
    assert inspect.getcoroutinestate(suspension) == inspect.CORO_CLOSED  # never left unawaited


async def test_a_callback_that_waits_goes_on_where_it_stopped_and_its_result_is_returned() -> None:
    racer = Racer()
    loop = asyncio.get_running_loop()
    room = loop.create_future()
    loop.call_later(0.01, room.set_result, "room in the buffer")

    results = await racer.wait_first(waits_for(room), asyncio.Event().wait())

    assert results.results == ["room in the buffer"]
    assert not results.stopped


async def test_a_waiting_callback_gives_way_when_the_flow_is_suspended() -> None:
    racer = Racer()
    suspended = asyncio.Event()
    cleaned_up = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()  # a buffer that never gets room
        finally:
            cleaned_up.set()

    asyncio.get_running_loop().call_later(0.01, suspended.set)
    suspension = suspended.wait()

    results = await racer.wait_first(stuck(), suspension)

    assert results.done == [suspension]
    await asyncio.wait_for(cleaned_up.wait(), 1.0)  # the callback was cancelled, as mode does


async def test_an_error_before_waiting_is_raised_and_the_race_is_called_off() -> None:
    racer = Racer()

    async def fails() -> None:
        raise ValueError("undecodable")

    suspension = asyncio.Event().wait()
    with pytest.raises(ValueError, match="undecodable"):
        await racer.wait_first(fails(), suspension)
    assert inspect.getcoroutinestate(suspension) == inspect.CORO_CLOSED


async def test_an_error_after_waiting_is_raised() -> None:
    racer = Racer()

    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise ValueError("failed after a wait")

    with pytest.raises(ValueError, match="failed after a wait"):
        await racer.wait_first(fails_later(), asyncio.Event().wait())


async def test_a_stopped_service_answers_as_mode_does() -> None:
    racer = Racer()
    racer._stopped.set()

    results = await racer.wait_first(finishes_at_once("late"), asyncio.Event().wait())

    assert results.stopped and results.done == []


def test_the_worker_transport_makes_refract_consumers() -> None:
    assert RefractTransport.Consumer is RefractConsumer
    assert issubclass(RefractConsumer, HandsOverAtOnce)
