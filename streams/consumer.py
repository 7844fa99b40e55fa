"""faust's Kafka consumer, handing each fetched record over without four tasks per record.

faust's fetcher hands every record to the topic's callback through ``Service.wait_first``: the
callback races the flow being suspended (a rebalance), and mode makes a task of each (the
callback, ``suspend_flow.wait()``, and the service's ``stopped`` and ``crashed`` events), waits for
the first, then cancels the other three. That is most of faust's per-record cost. Refract's
callbacks (``streams.batch_topic``) finish at once, without waiting, unless their buffer is full.

``RefractConsumer.wait_first`` runs the first awaitable itself until it first waits: one that
finishes then is the winner, with no task made and nothing to cancel. One that waits goes on, from
where it stopped, as a task in mode's race, so a full buffer still gives way to a rebalance or a
stop exactly as before.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Coroutine, Generator
from typing import Any

from faust.transport.drivers import aiokafka as aiokafka_driver
from mode.services import Service, WaitArgT, WaitResults
from mode.utils.times import Seconds


@types.coroutine
def _go_on(coroutine: Coroutine[Any, Any, Any], awaiting: Any) -> Generator[Any, Any, Any]:
    """Drive ``coroutine`` on, from where it yielded ``awaiting`` to the task that ran it, as the
    task running this generator would have (what ``await coroutine`` does)."""
    while True:
        try:
            sent = yield awaiting
        except BaseException as exc:  # thrown in by the task (a cancellation): pass it on
            try:
                awaiting = coroutine.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                awaiting = coroutine.send(sent)
            except StopIteration as done:
                return done.value


async def _resumed(coroutine: Coroutine[Any, Any, Any], awaiting: Any) -> Any:
    return await _go_on(coroutine, awaiting)


class HandsOverAtOnce(Service):
    """``wait_first`` as mode's, but a first awaitable that finishes without waiting wins alone,
    with no task made (the ``done`` of a result is then that coroutine, alone)."""

    async def wait_first(self, *coros: WaitArgT, timeout: Seconds | None = None) -> WaitResults:
        first = coros[0] if coros else None
        if (
            not isinstance(first, Coroutine)
            or inspect.getcoroutinestate(first) != inspect.CORO_CREATED
            or self._stopped.is_set()
            or self._crashed.is_set()
        ):
            return await super().wait_first(*coros, timeout=timeout)  # type: ignore[arg-type]  # mode's default is None
        try:
            awaiting = first.send(None)
        except BaseException as exc:
            for other in coros[1:]:
                if isinstance(other, Coroutine):
                    other.close()  # never started: closing it keeps "never awaited" quiet
            if isinstance(exc, StopIteration):
                return WaitResults([first], [exc.value], False)
            raise
        resumed = _resumed(first, awaiting)
        return await super().wait_first(resumed, *coros[1:], timeout=timeout)  # type: ignore[arg-type]


class RefractConsumer(HandsOverAtOnce, aiokafka_driver.Consumer):  # type: ignore[misc]
    """faust's aiokafka consumer, handing records over without tasks (see the module doc)."""


class RefractTransport(aiokafka_driver.Transport):  # type: ignore[misc]
    """The aiokafka transport with ``RefractConsumer``."""

    Consumer = RefractConsumer
