"""The faust app of a Refract worker: topics, the customer table, the processor agent.

``build_worker`` returns the faust app plus what the HTTP surface needs (the store, the producer,
readiness). The web server is faust's own aiohttp server; ``api`` adds its routes through the
``on_web_init`` callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
import structlog
from faust.types import TP

from engine.campaigns.links import TrackedLinks
from engine.settings import Settings
from engine.signing import Signer
from engine.topics import TopicNames
from engine.tracking import TrackingLinks
from schemas.codec import encode_envelope
from streams import metrics
from streams.batch_topic import batch_topic, pump
from streams.clock import Clock, clock_for
from streams.consumer import RefractTransport
from streams.contact_directory import ContactDirectory
from streams.customer_store import CUSTOMERS_TABLE, CustomerStore
from streams.definitions import DefinitionsReader
from streams.dispatcher import install_dispatcher
from streams.processor import CustomerProcessor
from streams.producer import OutRecord, Producer
from streams.timers import tick_envelope

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Worker:
    """A faust app wired for Refract, and the handles the HTTP surface uses."""

    app: faust.App
    settings: Settings
    bootstrap: str
    topics: TopicNames
    store: CustomerStore
    producer: Producer
    definitions: DefinitionsReader
    processor: CustomerProcessor
    contacts: ContactDirectory
    clock_ms: Clock
    # The consumer's assignment between rebalances (``assignment``): None until asked again.
    _assigned: tuple[frozenset[TP], frozenset[int]] | None = None

    def is_ready(self) -> tuple[bool, str]:
        """Ready once definitions are read, partitions are assigned and the tables are recovered."""
        app = self.app
        if not self.definitions.loaded.is_set():
            return False, "reading definitions"
        if app.rebalancing:
            return False, "rebalancing"
        recovery = app.tables.recovery  # type: ignore[attr-defined]
        if recovery.in_recovery or not recovery.completed.is_set():
            return False, "recovering tables"
        if not self._assignment()[0]:
            return False, "waiting for partitions"
        return True, "ready"

    def events_partitions(self) -> set[int]:
        return set(self._assignment()[1])

    def forget_assignment(self) -> None:
        """Partitions move (faust's rebalance signals): read the assignment afresh next time."""
        self._assigned = None

    def _assignment(self) -> tuple[frozenset[TP], frozenset[int]]:
        """The consumer's partitions, and those of the events topic.

        Asked twice per decision and once per batch; faust builds a new set of new TPs per call,
        so the answer is kept from one rebalance to the next (never kept while rebalancing).
        """
        if self._assigned is not None:
            return self._assigned
        assigned = frozenset(self.app.consumer.assignment())
        found = (assigned, frozenset(tp.partition for tp in assigned if tp.topic == self.topics.events))
        if not self.app.rebalancing:
            self._assigned = found
        return found


def rocksdb_options(settings: Settings) -> dict[str, Any]:
    rocks = settings.rocksdb
    return {
        "driver": "rocksdict",
        "block_cache_size": rocks.block_cache_bytes,
        "write_buffer_size": rocks.write_buffer_bytes,
        "max_write_buffer_number": rocks.max_write_buffers,
        "max_open_files": rocks.max_open_files,
    }


def build_worker(
    settings: Settings,
    bootstrap: str,
    *,
    on_web_init: Callable[[Worker, Any], object] | None = None,
) -> Worker:
    topics = TopicNames(settings.namespace)
    data_dir = settings.data_dir / "workers" / settings.worker_name

    class RefractApp(faust.App):
        def _new_transport(self) -> RefractTransport:
            return RefractTransport(self.conf.broker_consumer, self)

        def on_webserver_init(self, web: Any) -> None:
            if on_web_init is not None:
                on_web_init(worker, web)

        async def on_stop(self) -> None:
            await super().on_stop()
            definitions.stop()
            contacts.stop()

    app = RefractApp(
        settings.group_id,
        broker=f"kafka://{bootstrap}",
        store="rocksdb://",
        datadir=str(data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        table_standby_replicas=settings.standby_replicas,
        web_enabled=True,
        web_bind=settings.web_bind or settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        canonical_url=settings.web_url,
        web_application_options={"client_max_size": settings.max_body_bytes},
        # faust's own pages would expose table contents without authentication: Refract's API
        # is the only HTTP surface.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        producer_acks=-1,
        producer_linger=0.02,
        producer_max_batch_size=1024 * 1024,
        broker_commit_interval=1.0,
        broker_max_poll_records=2000,
        stream_buffer_maxsize=8192,
        consumer_auto_offset_reset="earliest",
        # faust's own table writes never happen (see customer_store); keep its flush cheap.
        table_cleanup_interval=3600,
        autodiscover=False,
    )
    table = app.Table(
        CUSTOMERS_TABLE,
        partitions=settings.partitions,
        key_type=bytes,  # bytes -> faust's "raw" codec: the changelog holds our own bytes
        value_type=bytes,
        options=rocksdb_options(settings),
    )
    events_topic = batch_topic(
        app, topics.events, partitions=settings.partitions, maxsize=4 * settings.batch_max_events
    )
    producer = Producer(bootstrap, client_id=f"{settings.group_id}-{settings.worker_name}", linger_ms=5)
    store = CustomerStore(table)
    definitions = DefinitionsReader(bootstrap, topics.definitions, channel_caps=settings.channel_caps)
    clock_ms = clock_for(settings.clock_file)
    processor = CustomerProcessor(
        store,
        producer,
        events_topic=topics.events,
        dead_letters_topic=topics.dead_letters,
        segment_changes_topic=topics.segment_changes,
        deliveries_topic=topics.deliveries,
        contacts_topic=topics.contacts,
        links=TrackedLinks(TrackingLinks(Signer(settings.signing_secrets), settings.links_url)),
        audit_topic=topics.audit,
        segment_index=lambda: definitions.index,
        campaign_catalog=lambda: definitions.catalog,
        # No evaluation of existing customers while partitions move or tables recover.
        assigned_partitions=lambda: worker.events_partitions() if worker.is_ready()[0] else set(),
        wake=lambda: events_topic.buffer.wake(),
        default_timezone=settings.default_timezone,
        clock_ms=clock_ms,
    )
    contacts = ContactDirectory(bootstrap, topics.contacts)
    worker = Worker(
        app, settings, bootstrap, topics, store, producer, definitions, processor, contacts, clock_ms
    )

    @app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
    async def partitions_revoked(*_: Any, **__: Any) -> None:
        worker.forget_assignment()

    @app.on_partitions_assigned.connect  # type: ignore[untyped-decorator]
    async def partitions_assigned(*_: Any, **__: Any) -> None:
        worker.forget_assignment()

    @app.task  # type: ignore[untyped-decorator]
    async def follow_contacts() -> None:
        contacts.start()

    install_dispatcher(app, settings, producer, topics, rocksdb_options(settings))

    @app.task  # type: ignore[untyped-decorator]
    async def customer_processor() -> None:
        definitions.start()
        # No event is processed before the segments are known, or its changes would be missed.
        while not definitions.loaded.is_set():
            await asyncio.sleep(0.05)
        metrics.SEGMENTS_DEFINED.set(len(definitions.segments))
        await pump(
            events_topic,
            processor.prepare,
            processor.send,
            processor.finish,
            max_events=settings.batch_max_events,
            within_s=settings.batch_within_s,
        )

    @app.timer(interval=0.1)  # type: ignore[untyped-decorator]
    async def start_backfill() -> None:
        # A new segment (or partition) with no events flowing: run a batch anyway. Checked often:
        # the check is cheap, and waiting for it would add to every backfill's time.
        if definitions.loaded.is_set() and not app.rebalancing and processor.backfill_wanted():
            events_topic.buffer.wake()

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def tick_due_customers() -> None:
        if not definitions.loaded.is_set() or not worker.is_ready()[0]:
            return
        now_ms = clock_ms()
        due = processor.timers.pop_due(now_ms, worker.events_partitions())
        if not due:
            return
        records = [
            OutRecord(topics.events, key, encode_envelope(tick_envelope(key.decode(), due_ms, now_ms)))
            for _, key, due_ms in due
        ]
        try:
            await producer.send_batch(records)
        except Exception:
            log.exception("segments.tick_failed", customers=len(due))
            for partition, key, due_ms in due:
                processor.timers.schedule(partition, key, due_ms)
            return
        metrics.SEGMENT_TICKS.inc(len(records))

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def report_segment_members() -> None:
        if definitions.loaded.is_set() and worker.is_ready()[0]:
            processor.segment_counts.publish(worker.events_partitions(), definitions.segments)

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        metrics.SEGMENTS_DEFINED.set(len(definitions.segments))
        metrics.CAMPAIGNS_DEFINED.set(len(definitions.campaigns))
        consumer = app.consumer
        assigned = [tp for tp in consumer.assignment() if tp.topic == topics.events]
        metrics.ASSIGNED_PARTITIONS.set(len(assigned))
        for tp in assigned:
            highwater = consumer.highwater(tp)
            position = _position(consumer, tp)
            if highwater is not None and position is not None:
                metrics.CONSUMER_LAG.labels(str(tp.partition)).set(max(0, highwater - position))

    return worker


def _position(consumer: Any, tp: TP) -> int | None:
    # faust tracks the last offset it handed to the stream; committed offsets lag behind it.
    read = getattr(consumer, "_read_offset", {}).get(tp)
    return None if read is None else int(read) + 1
