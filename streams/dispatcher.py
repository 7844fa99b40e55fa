"""The channel dispatchers: deliveries from ``refract.deliveries`` to the providers, once, with results.

One consumer of the deliveries topic per worker (a ``BatchTopic``, like the customer processor)
hands each delivery to its channel's lane: a queue served by as many long-lived senders as the
channel's concurrency (no task per delivery). Per delivery:

1. skip it if its id is in the ledger of finished ids (a replay after a crash or a rebalance);
2. if it is expired, record ``failed`` (reason ``expired``) without calling anyone;
3. wait for a slot of the channel's concurrency limit and of the provider's rate limit, call the
   provider; a transient failure is retried after an exponential backoff with jitter (at least
   the provider's Retry-After) while other deliveries go on; a permanent one ends at once;
4. append a ``DeliveryResult`` (and, for a push token the service no longer knows, a
   ``ContactUpdate`` removing it) to ``refract.events``, plus a dead letter when retries ran out,
   and wait for Kafka's acks;
5. only then record the id in the ledger (changelog acked, then RocksDB), and ack the delivery so
   faust may commit its offset. Steps 4 and 5 run for a batch of finished deliveries at once.

The guarantee this order gives: a delivery is handed to the provider at most twice, and twice
only when the worker dies after the provider accepted it and before its ledger record reached
Kafka (steps 3-5): the next owner of the partition finds no record and sends again, with the same
Message-ID / apns-id. Results carry a deterministic event id (``<delivery id>:result``), so even
when the worker died between the result's ack and the ledger's, the profile counts one result.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from connectors.channels import InvalidPushToken, Provider, ProviderError, Providers, build_providers
from connectors.channels.build import rate_of
from connectors.channels.errors import ChannelError
from engine.channel_settings import ChannelSettings
from engine.deliveries import Delivery
from engine.errors import DecodeError, RefractError
from engine.events import (
    CHANNELS,
    PUSH_PLATFORMS,
    Channel,
    ContactUpdate,
    DeliveryResult,
    DeliveryStatus,
    PushToken,
)
from engine.settings import Settings
from engine.topics import TopicNames
from schemas.codec import decode, encode_dead_letter, encode_event
from streams import metrics
from streams.batch_topic import BatchTopic, EventBuffer, batch_topic
from streams.producer import OutRecord, ProduceFailed, Producer
from streams.rate_limit import RateLimiter
from streams.sent_ledger import SENT_TABLE, Finished, SentLedger

log = structlog.get_logger(__name__)
Sent = TypeVar("Sent")

SEND_ATTEMPTS = 6  # Kafka writes of results and ledger records
# Batches of finished deliveries start at most this often (or when this many wait). Each batch
# costs two produce requests, and the results a fetch and a batch of the customer processor on
# the worker that folds them: at a few hundred deliveries per second, batches taken as soon as
# one delivery ends held a handful each, and these per-batch costs outweighed the dispatcher's
# per-delivery work. Finishing a delivery 50 ms later delays its ack and result, not its send.
FINISH_EVERY_S = 0.05
FINISH_AT_ONCE = 1000


class DeliveryBuffer(EventBuffer):
    """The deliveries' queue: never blocks faust's conductor (which also feeds the processor).

    Past ``maxsize`` it asks faust to stop fetching the partition (the conductor's pressure
    callbacks), and lets it fetch again once half is drained.
    """

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self._paused: dict[Callable[[], None], None] = {}

    def full(self) -> bool:
        return False

    def put_nowait_enhanced(self, value: Any, **callbacks: Any) -> None:
        super().put_nowait_enhanced(value)
        drop = callbacks.get("on_pressure_drop")
        if len(self) >= self.maxsize and drop is not None and drop not in self._paused:
            self._paused[drop] = None
            callbacks["on_pressure_high"]()

    async def take(self, max_events: int, within_s: float) -> list[Any]:
        events = await super().take(max_events, within_s)
        if self._paused and len(self) <= self.maxsize // 2:
            resumes, self._paused = list(self._paused), {}
            for resume in resumes:
                resume()
        return events


@dataclass(slots=True, frozen=True)
class Outcome:
    """How a delivery ended, and what to write about it."""

    status: DeliveryStatus
    provider: str
    provider_message_id: str | None = None
    reason: str | None = None
    removed_token: PushToken | None = None
    dead_letter: RefractError | None = None
    expired: bool = False


class _Job:
    """A delivery on its way through a lane: the record to ack, its provider, the attempts made."""

    __slots__ = ("attempt", "delivery", "event", "provider", "timer")

    def __init__(self, event: Any, delivery: Delivery, provider: Provider) -> None:
        self.event = event
        self.delivery = delivery
        self.provider = provider
        self.attempt = 0
        self.timer: asyncio.TimerHandle | None = None  # while it waits to be tried again


class _Finishing:
    """A finished record's results to write, then its ledger entry (none for an undecodable
    record), then the records to ack: itself and the copies of its id that came meanwhile."""

    __slots__ = ("channel", "delivery_id", "event", "key", "partition", "records", "value")

    def __init__(
        self,
        event: Any,
        records: list[OutRecord],
        partition: int,
        delivery: Delivery | None = None,
        value: bytes | None = None,
    ) -> None:
        self.event = event
        self.records = records
        self.partition = partition
        self.channel = delivery.channel if delivery is not None else None
        self.delivery_id = delivery.delivery_id if delivery is not None else None
        self.key = self.delivery_id.encode() if self.delivery_id is not None else None
        self.value = value


class _Series:
    """The metric series of one (channel, provider), looked up once instead of per delivery."""

    __slots__ = ("latency", "retried", "sent")

    def __init__(self, channel: Channel, provider: str) -> None:
        self.sent = metrics.DELIVERIES_SENT.labels(channel, provider)
        self.retried = metrics.DELIVERIES_RETRIED.labels(channel, provider)
        self.latency = metrics.PROVIDER_LATENCY.labels(provider)


class Dispatcher:
    """Takes deliveries in order and hands each to its channel's lane: ``concurrency(channel)``
    senders that live as long as the dispatcher, each making one provider call at a time. A
    delivery to retry leaves its lane for the backoff and queues again; a finished one joins the
    next batch of results and ledger entries (``_finish_forever``), which acks it."""

    def __init__(
        self,
        providers: Providers,
        ledger: SentLedger,
        producer: Producer,
        *,
        topics: TopicNames,
        settings: ChannelSettings,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        random_unit: Callable[[], float] = random.random,
    ) -> None:
        self._providers = providers
        self._ledger = ledger
        self._producer = producer
        self._topics = topics
        self._settings = settings
        self._clock_ms = clock_ms
        self._random = random_unit
        self._lanes: dict[Channel, asyncio.Queue[_Job]] = {channel: asyncio.Queue() for channel in CHANNELS}
        self._limits = {provider.name: RateLimiter(rate_of(settings, provider)) for provider in providers}
        self._series: dict[tuple[Channel, str], _Series] = {}
        self._skipped = {channel: metrics.DELIVERIES_SKIPPED.labels(channel) for channel in CHANNELS}
        self._pending = 0  # records taken and not finished (sending, waiting to retry, finishing)
        self._room = asyncio.Event()
        self._room.set()
        # Ids being sent, with the records of the same id that came meanwhile (acked with the first).
        self._in_flight: dict[str, list[Any]] = {}
        self._retrying: set[_Job] = set()
        self._finishing: list[_Finishing] = []
        self._finish_wanted = asyncio.Event()

    async def run(self, topic: BatchTopic) -> None:
        """Forever: take deliveries and start each (at most ``max_pending`` unfinished at once)."""
        workers = [asyncio.ensure_future(self._finish_forever())]
        for channel in CHANNELS:
            for _ in range(self._settings.concurrency(channel)):
                workers.append(asyncio.ensure_future(self._send_forever(channel)))
        max_pending = self._settings.max_pending
        try:
            while True:
                for event in await topic.buffer.take(500, 0.0):
                    while self._pending >= max_pending:
                        self._room.clear()
                        await self._room.wait()
                    self._start(event)
                metrics.DELIVERIES_PENDING.set(self._pending)
        finally:
            for job in self._retrying:
                if job.timer is not None:
                    job.timer.cancel()
            for worker in workers:
                worker.cancel()

    def _start(self, event: Any) -> None:
        """Steps 1-2 of the module doc for one record; a delivery to send goes to its lane."""
        message = event.message
        try:
            delivery = self._decode(message.value)
        except RefractError as error:
            self._pending += 1
            self._finish_later(
                _Finishing(event, [self._dead_letter_record(message, error)], message.partition)
            )
            return
        waiting = self._in_flight.get(delivery.delivery_id)
        if waiting is not None:  # the same id twice in a row (a replayed outbox): ack with the first
            self._pending += 1
            waiting.append(event)
            return
        if self._ledger.read(message.partition, delivery.delivery_id) is not None:
            self._skipped[delivery.channel].inc()
            event.ack()
            return
        self._pending += 1
        self._in_flight[delivery.delivery_id] = []
        try:
            if delivery.is_expired(self._clock_ms()):
                self._finish(event, delivery, self._expired(delivery, "none"))
                return
            try:
                provider = self._providers.for_delivery(delivery)
            except ChannelError as error:
                metrics.DELIVERIES_FAILED.labels(delivery.channel, "failed").inc()
                outcome = Outcome("failed", "none", reason=error.message, dead_letter=error)
                self._finish(event, delivery, outcome)
                return
            self._lanes[delivery.channel].put_nowait(_Job(event, delivery, provider))
        except Exception as exc:  # a bug must not stop the dispatcher: the record stays unacked
            self._crashed(delivery, exc)

    async def _send_forever(self, channel: Channel) -> None:
        """One sender of a lane: a provider call at a time (step 3 of the module doc)."""
        lane = self._lanes[channel]
        while True:
            job = await lane.get()
            job.attempt += 1
            try:
                ended = await self._attempt(job.delivery, job.provider, job.attempt)
                if isinstance(ended, Outcome):
                    self._finish(job.event, job.delivery, ended)
                else:  # off the lane while it waits, so that the other deliveries go on
                    job.timer = asyncio.get_running_loop().call_later(ended, self._retry, job)
                    self._retrying.add(job)
            except Exception as exc:  # a bug must not stop the lane: the record stays unacked
                self._crashed(job.delivery, exc)

    def _retry(self, job: _Job) -> None:
        self._retrying.discard(job)
        job.timer = None
        try:
            if job.delivery.is_expired(self._clock_ms()):
                self._finish(job.event, job.delivery, self._expired(job.delivery, job.provider.name))
            else:
                self._lanes[job.delivery.channel].put_nowait(job)
        except Exception as exc:
            self._crashed(job.delivery, exc)

    def _crashed(self, delivery: Delivery, exc: Exception) -> None:
        log.error("dispatch.crashed", delivery_id=delivery.delivery_id, error=repr(exc))
        self._forget(delivery.delivery_id, 1)

    async def deliver(self, delivery: Delivery) -> Outcome:
        """Send one delivery on its own, retrying what may work later; return how it ended."""
        if delivery.is_expired(self._clock_ms()):
            return self._expired(delivery, "none")
        try:
            provider = self._providers.for_delivery(delivery)
        except ChannelError as error:
            metrics.DELIVERIES_FAILED.labels(delivery.channel, "failed").inc()
            return Outcome("failed", "none", reason=error.message, dead_letter=error)
        attempt = 0
        while True:
            attempt += 1
            ended = await self._attempt(delivery, provider, attempt)
            if isinstance(ended, Outcome):
                return ended
            await asyncio.sleep(ended)
            if delivery.is_expired(self._clock_ms()):
                return self._expired(delivery, provider.name)

    async def _attempt(self, delivery: Delivery, provider: Provider, attempt: int) -> Outcome | float:
        """One provider call: how the delivery ended, or the seconds to wait before the next try."""
        series = self._series.get((delivery.channel, provider.name))
        if series is None:
            series = self._series[(delivery.channel, provider.name)] = _Series(
                delivery.channel, provider.name
            )
        await self._limits[provider.name].acquire()
        started = time.perf_counter()
        try:
            receipt = await provider.send(delivery)
        except ProviderError as error:
            series.latency.observe(time.perf_counter() - started)
            failure = error
        except Exception as exc:  # a provider bug must not stall the partition: retry, then dead-letter
            log.exception("dispatch.provider_crashed", provider=provider.name)
            failure = ProviderError(f"unexpected {exc!r}", retriable=True, provider_code="unexpected")
        else:
            series.latency.observe(time.perf_counter() - started)
            series.sent.inc()
            return Outcome("sent", provider.name, receipt.provider_message_id)
        if isinstance(failure, InvalidPushToken):
            return self._failed(delivery, provider, failure, removed_token=_token_of(delivery, provider))
        if not failure.retriable:
            dead = failure if failure.status == "failed" else None
            return self._failed(delivery, provider, failure, dead_letter=dead)
        delay_s = self._settings.retry.delay_s(attempt, failure.retry_after_s, self._random())
        if delay_s is None:
            exhausted = ProviderError(
                f"gave up after {attempt} attempts: {failure.reason}",
                retriable=False,
                provider_code=failure.provider_code,
            )
            exhausted.code = "delivery_retries_exhausted"
            return self._failed(delivery, provider, exhausted, dead_letter=exhausted)
        series.retried.inc()
        log.info(
            "dispatch.retry",
            delivery_id=delivery.delivery_id,
            provider=provider.name,
            attempt=attempt,
            delay_s=round(delay_s, 3),
            reason=failure.provider_code or failure.code,
        )
        return delay_s

    def _expired(self, delivery: Delivery, provider: str) -> Outcome:
        metrics.DELIVERIES_FAILED.labels(delivery.channel, "expired").inc()
        return Outcome("failed", provider, reason="expired before it could be sent", expired=True)

    def _failed(
        self,
        delivery: Delivery,
        provider: Provider,
        error: ProviderError,
        *,
        removed_token: PushToken | None = None,
        dead_letter: RefractError | None = None,
    ) -> Outcome:
        metrics.DELIVERIES_FAILED.labels(delivery.channel, error.status).inc()
        log.info(
            "dispatch.failed",
            delivery_id=delivery.delivery_id,
            provider=provider.name,
            status=error.status,
            code=error.provider_code or error.code,
        )
        return Outcome(
            error.status,
            provider.name,
            reason=error.reason[:500],
            removed_token=removed_token,
            dead_letter=dead_letter,
        )

    # --- writing results -----------------------------------------------------------------------

    def _records(self, message: Any, delivery: Delivery, outcome: Outcome) -> list[OutRecord]:
        now_ms = self._clock_ms()
        key = delivery.customer_id.encode("utf-8")
        source = f"dispatcher:{outcome.provider}"
        result = DeliveryResult(
            delivery_id=delivery.delivery_id,
            status=outcome.status,
            channel=delivery.channel,
            campaign_id=delivery.campaign_id,
            provider_message_id=outcome.provider_message_id,
            reason=outcome.reason,
        )
        # Partitioned by the customer id like every event (murmur2), whoever wrote the delivery.
        events = self._topics.events
        result_id = f"{delivery.delivery_id}:result"
        records = [
            OutRecord(
                events, key, encode_event(result_id, delivery.customer_id, now_ms, now_ms, source, result)
            )
        ]
        if outcome.removed_token is not None:
            update = ContactUpdate(remove_push_tokens=(outcome.removed_token,))
            removed_id = f"{delivery.delivery_id}:token-removed"
            value = encode_event(removed_id, delivery.customer_id, now_ms, now_ms, source, update)
            records.append(OutRecord(events, key, value))
        if outcome.dead_letter is not None:
            records.append(self._dead_letter_record(message, outcome.dead_letter))
        return records

    def _dead_letter_record(self, message: Any, error: RefractError) -> OutRecord:
        metrics.DEAD_LETTERS.labels(error.code).inc()
        value = encode_dead_letter(
            original_topic=self._topics.deliveries,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            error_code=error.code,
            error_message=error.message,
            failed_at_ms=self._clock_ms(),
        )
        return OutRecord(self._topics.dead_letters, message.key, value)

    def _finish(self, event: Any, delivery: Delivery, outcome: Outcome) -> None:
        """Queue the outcome's records and ledger entry for the next batch (steps 4-5)."""
        message = event.message
        status = "expired" if outcome.expired else outcome.status
        value = Finished(status, outcome.provider_message_id, self._clock_ms()).to_bytes()
        records = self._records(message, delivery, outcome)
        self._finish_later(_Finishing(event, records, message.partition, delivery, value))

    def _finish_later(self, item: _Finishing) -> None:
        self._finishing.append(item)
        self._finish_wanted.set()

    def _forget(self, delivery_id: str | None, count: int) -> int:
        """Drop an id from the ones in flight; the number of records it stood for (``count`` and
        the copies that came meanwhile) stop counting as pending."""
        copies = self._in_flight.pop(delivery_id, None) if delivery_id is not None else None
        released = count + (len(copies) if copies else 0)
        self._pending -= released
        self._room.set()
        return released

    async def _finish_forever(self) -> None:
        """Finish deliveries a batch at a time: their results acked, then their ledger entries,
        then the deliveries themselves.

        One produce round trip for the results and one for the ledger's changelog per batch, and
        one RocksDB write per partition; deliveries that end while a batch is in flight, or within
        ``FINISH_EVERY_S`` of its start, form the next one.
        """
        changelog = self._ledger.changelog_topic
        loop = asyncio.get_running_loop()
        started_s = loop.time() - FINISH_EVERY_S
        while True:
            await self._finish_wanted.wait()
            wait_s = started_s + FINISH_EVERY_S - loop.time()
            if wait_s > 0 and len(self._finishing) < FINISH_AT_ONCE:
                await asyncio.sleep(wait_s)
            started_s = loop.time()
            self._finish_wanted.clear()
            batch, self._finishing = self._finishing, []
            if not batch:
                continue
            try:
                results = [record for item in batch for record in item.records]
                await self._with_retries(self._producer.send_counted, results)  # no offsets needed
                entries = [
                    OutRecord(changelog, item.key, item.value, item.partition)
                    for item in batch
                    if item.key is not None
                ]
                delivered = await self._with_retries(self._producer.send_batch, entries)
                last: dict[int, int] = {}
                for report in delivered:
                    last[report.partition] = max(report.offset, last.get(report.partition, -1))
                by_partition: dict[int, dict[bytes, bytes]] = {}
                for item in batch:
                    if item.key is not None and item.value is not None:
                        by_partition.setdefault(item.partition, {})[item.key] = item.value
                for partition, values in by_partition.items():
                    self._ledger.write(partition, values, last[partition])
            except Exception as exc:  # the deliveries stay unacked: a replay redoes them
                log.error("dispatch.finish_failed", deliveries=len(batch), error=repr(exc))
                for item in batch:
                    self._forget(item.delivery_id, 1)
                metrics.DELIVERIES_PENDING.set(self._pending)
                continue
            for item in batch:
                item.event.ack()
                copies = self._in_flight.get(item.delivery_id) if item.delivery_id is not None else None
                for copy in copies or ():
                    if item.channel is not None:
                        self._skipped[item.channel].inc()
                    copy.ack()
                self._forget(item.delivery_id, 1)
            metrics.DELIVERIES_PENDING.set(self._pending)

    async def _with_retries(
        self, send: Callable[[list[OutRecord]], Awaitable[Sent]], records: list[OutRecord]
    ) -> Sent:
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await send(records)
            except ProduceFailed as exc:
                if not exc.retriable or attempt == SEND_ATTEMPTS:
                    raise
                log.warning("dispatch.write_retry", attempt=attempt, error=exc.message)
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        raise AssertionError("unreachable")

    @staticmethod
    def _decode(value: bytes | None) -> Delivery:
        if value is None:
            raise DecodeError("the delivery record has no value")
        name, record = decode(value)
        if not name.endswith("Delivery"):
            raise DecodeError(f"expected a Delivery record, got {name}")
        return Delivery.from_record(record)


def _token_of(delivery: Delivery, provider: Provider) -> PushToken:
    platform = delivery.content.get("platform") or ("ios" if provider.name == "apns" else "android")
    if platform not in PUSH_PLATFORMS:
        platform = "android"
    return PushToken(platform, delivery.address)  # type: ignore[arg-type]


def install_dispatcher(
    app: Any, settings: Settings, producer: Producer, topics: TopicNames, table_options: dict[str, Any]
) -> None:
    """Add the dispatchers to a worker's faust app when a channel is configured.

    With no channel configured the worker does not consume ``refract.deliveries``: deliveries
    wait in Kafka (their offsets uncommitted) until a worker with providers runs.
    """
    channels = settings.channels
    if not channels.enabled_channels():
        log.info("dispatch.waiting", reason="no channel provider is configured; deliveries wait in Kafka")
        return
    ledger = SentLedger(
        app.Table(
            SENT_TABLE,
            partitions=settings.partitions,
            key_type=bytes,
            value_type=bytes,
            options=table_options,
        )
    )
    topic = batch_topic(
        app,
        topics.deliveries,
        partitions=settings.partitions,
        maxsize=2 * channels.max_pending,
        buffer=DeliveryBuffer,
    )

    @app.task  # type: ignore[untyped-decorator]
    async def dispatch_deliveries() -> None:
        providers = build_providers(channels)
        log.info(
            "dispatch.started",
            channels=",".join(channels.enabled_channels()),
            providers=",".join(provider.name for provider in providers),
        )
        try:
            await Dispatcher(providers, ledger, producer, topics=topics, settings=channels).run(topic)
        finally:
            await providers.close()
