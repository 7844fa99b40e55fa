"""The channel dispatchers: deliveries from ``refract.deliveries`` to the providers, once, with results.

One consumer of the deliveries topic per worker (a ``BatchTopic``, like the customer processor)
hands each delivery to its channel's lane. Per delivery:

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    Envelope,
    PushToken,
)
from engine.settings import Settings
from engine.topics import TopicNames
from schemas.codec import decode, encode_dead_letter, encode_envelope
from streams import metrics
from streams.batch_topic import BatchTopic, EventBuffer, batch_topic
from streams.producer import OutRecord, ProduceFailed, Producer
from streams.rate_limit import RateLimiter
from streams.sent_ledger import SENT_TABLE, Finished, SentLedger

log = structlog.get_logger(__name__)

SEND_ATTEMPTS = 6  # Kafka writes of results and ledger records


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


class _Finishing:
    """A delivery's records to write, then its ledger entry; ``done`` resolves when both are in Kafka."""

    __slots__ = ("done", "key", "partition", "records", "value")

    def __init__(
        self, records: list[OutRecord], partition: int, key: bytes, value: bytes, done: asyncio.Future[None]
    ) -> None:
        self.records = records
        self.partition = partition
        self.key = key
        self.value = value
        self.done = done


class Dispatcher:
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
        self._lanes: dict[Channel, asyncio.Semaphore] = {
            channel: asyncio.Semaphore(settings.concurrency(channel)) for channel in CHANNELS
        }
        self._limits = {provider.name: RateLimiter(rate_of(settings, provider)) for provider in providers}
        self._pending = asyncio.Semaphore(settings.max_pending)
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._finishing: list[_Finishing] = []
        self._finish_wanted = asyncio.Event()

    async def run(self, topic: BatchTopic) -> None:
        """Forever: take deliveries and start each (at most ``max_pending`` unfinished at once)."""
        finisher = asyncio.ensure_future(self._finish_forever())
        try:
            while True:
                for event in await topic.buffer.take(500, 0.0):
                    await self._pending.acquire()
                    task = asyncio.ensure_future(self._dispatch(event))
                    self._tasks.add(task)
                    task.add_done_callback(self._finished)
                    metrics.DELIVERIES_PENDING.set(len(self._tasks))
        finally:
            finisher.cancel()
            for task in list(self._tasks):
                task.cancel()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._pending.release()
        metrics.DELIVERIES_PENDING.set(len(self._tasks))
        if not task.cancelled() and task.exception() is not None:
            log.error("dispatch.crashed", error=repr(task.exception()))

    async def _dispatch(self, event: Any) -> None:
        message = event.message
        try:
            delivery = self._decode(message.value)
        except RefractError as error:
            await self._write([self._dead_letter_record(message, error)])
            event.ack()
            return
        earlier = self._in_flight.get(delivery.delivery_id)
        if earlier is not None:  # the same id twice in a row (a replayed outbox): wait for the first
            await asyncio.shield(earlier)
            metrics.DELIVERIES_SKIPPED.labels(delivery.channel).inc()
            event.ack()
            return
        current = asyncio.current_task()
        assert current is not None
        self._in_flight[delivery.delivery_id] = current
        try:
            if self._ledger.read(message.partition, delivery.delivery_id) is not None:
                metrics.DELIVERIES_SKIPPED.labels(delivery.channel).inc()
                event.ack()
                return
            outcome = await self.deliver(delivery)
            await self._finish(message, delivery, outcome)
            event.ack()
        finally:
            del self._in_flight[delivery.delivery_id]

    async def deliver(self, delivery: Delivery) -> Outcome:
        """Send one delivery, retrying what may work later; return how it ended."""
        if delivery.is_expired(self._clock_ms()):
            return self._expired(delivery, "none")
        try:
            provider = self._providers.for_delivery(delivery)
        except ChannelError as error:
            metrics.DELIVERIES_FAILED.labels(delivery.channel, "failed").inc()
            return Outcome("failed", "none", reason=error.message, dead_letter=error)
        lane = self._lanes[delivery.channel]
        limit = self._limits[provider.name]
        policy = self._settings.retry
        attempt = 0
        while True:
            attempt += 1
            async with lane:
                await limit.acquire()
                started = time.perf_counter()
                try:
                    receipt = await provider.send(delivery)
                except ProviderError as error:
                    metrics.PROVIDER_LATENCY.labels(provider.name).observe(time.perf_counter() - started)
                    failure = error
                except (
                    Exception
                ) as exc:  # a provider bug must not stall the partition: retry, then dead-letter
                    log.exception("dispatch.provider_crashed", provider=provider.name)
                    failure = ProviderError(f"unexpected {exc!r}", retriable=True, provider_code="unexpected")
                else:
                    metrics.PROVIDER_LATENCY.labels(provider.name).observe(time.perf_counter() - started)
                    metrics.DELIVERIES_SENT.labels(delivery.channel, provider.name).inc()
                    return Outcome("sent", provider.name, receipt.provider_message_id)
            if isinstance(failure, InvalidPushToken):
                return self._failed(delivery, provider, failure, removed_token=_token_of(delivery, provider))
            if not failure.retriable:
                dead = failure if failure.status == "failed" else None
                return self._failed(delivery, provider, failure, dead_letter=dead)
            delay_s = policy.delay_s(attempt, failure.retry_after_s, self._random())
            if delay_s is None:
                exhausted = ProviderError(
                    f"gave up after {attempt} attempts: {failure.reason}",
                    retriable=False,
                    provider_code=failure.provider_code,
                )
                exhausted.code = "delivery_retries_exhausted"
                return self._failed(delivery, provider, exhausted, dead_letter=exhausted)
            metrics.DELIVERIES_RETRIED.labels(delivery.channel, provider.name).inc()
            log.info(
                "dispatch.retry",
                delivery_id=delivery.delivery_id,
                provider=provider.name,
                attempt=attempt,
                delay_s=round(delay_s, 3),
                reason=failure.provider_code or failure.code,
            )
            await asyncio.sleep(delay_s)
            if delivery.is_expired(self._clock_ms()):
                return self._expired(delivery, provider.name)

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
        envelopes = [
            Envelope(f"{delivery.delivery_id}:result", delivery.customer_id, now_ms, now_ms, source, result)
        ]
        if outcome.removed_token is not None:
            update = ContactUpdate(remove_push_tokens=(outcome.removed_token,))
            envelopes.append(
                Envelope(
                    f"{delivery.delivery_id}:token-removed",
                    delivery.customer_id,
                    now_ms,
                    now_ms,
                    source,
                    update,
                )
            )
        # Partitioned by the customer id like every event (murmur2), whoever wrote the delivery.
        records = [OutRecord(self._topics.events, key, encode_envelope(e)) for e in envelopes]
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

    async def _write(self, records: list[OutRecord]) -> None:
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                await self._producer.send_batch(records)
                return
            except ProduceFailed as exc:
                if not exc.retriable or attempt == SEND_ATTEMPTS:
                    raise
                log.warning("dispatch.write_retry", attempt=attempt, error=exc.message)
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))

    async def _finish(self, message: Any, delivery: Delivery, outcome: Outcome) -> None:
        """Write the outcome's records, then the ledger entry; returns once both are in Kafka."""
        status = "expired" if outcome.expired else outcome.status
        value = Finished(status, outcome.provider_message_id, self._clock_ms()).to_bytes()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        records = self._records(message, delivery, outcome)
        self._finishing.append(
            _Finishing(records, message.partition, delivery.delivery_id.encode(), value, done)
        )
        self._finish_wanted.set()
        await done

    async def _finish_forever(self) -> None:
        """Finish deliveries a batch at a time: their results acked, then their ledger entries.

        One produce round trip for the results and one for the ledger's changelog per batch, and
        one RocksDB write per partition; deliveries that end while a batch is in flight form the
        next one.
        """
        changelog = self._ledger.changelog_topic
        while True:
            await self._finish_wanted.wait()
            self._finish_wanted.clear()
            batch, self._finishing = self._finishing, []
            if not batch:
                continue
            try:
                await self._producer_send_with_retries([record for item in batch for record in item.records])
                entries = [OutRecord(changelog, item.key, item.value, item.partition) for item in batch]
                delivered = await self._producer_send_with_retries(entries)
                last: dict[int, int] = {}
                for report in delivered:
                    last[report.partition] = max(report.offset, last.get(report.partition, -1))
                by_partition: dict[int, dict[bytes, bytes]] = {}
                for item in batch:
                    by_partition.setdefault(item.partition, {})[item.key] = item.value
                for partition, values in by_partition.items():
                    self._ledger.write(partition, values, last[partition])
            except Exception as exc:  # the deliveries stay unacked: a replay redoes them
                log.error("dispatch.finish_failed", deliveries=len(batch), error=repr(exc))
                for item in batch:
                    item.done.set_exception(exc)
                continue
            for item in batch:
                item.done.set_result(None)

    async def _producer_send_with_retries(self, records: list[OutRecord]) -> list[Any]:
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await self._producer.send_batch(records)
            except ProduceFailed as exc:
                if not exc.retriable or attempt == SEND_ATTEMPTS:
                    raise
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
