"""How the dispatcher runs deliveries through its lanes and finishes them (fakes for Kafka and the ledger)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest

from connectors.channels import ProviderError, Providers, SendReceipt
from engine.channel_settings import ChannelSettings
from engine.deliveries import Delivery
from engine.events import Channel, DeliveryResult
from engine.retry import RetryPolicy
from engine.topics import TopicNames
from schemas.codec import decode_envelope, encode
from streams.dispatcher import Dispatcher
from streams.producer import Delivered, OutRecord
from streams.sent_ledger import Finished
from tests.connectors.channels.conftest import make_delivery
from tests.support.waiting import wait_for_async

TOPICS = TopicNames("t")
CHANGELOG = "t-deliveries-sent-changelog"


@dataclass
class Message:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Record:
    """A fetched record as ``BatchTopic`` hands it over: the message, and an ack to watch."""

    message: Message
    acked: bool = False

    def ack(self) -> bool:
        self.acked = True
        return True


class Buffer:
    def __init__(self) -> None:
        self.records: asyncio.Queue[Record] = asyncio.Queue()

    async def take(self, max_events: int, within_s: float) -> list[Record]:
        taken = [await self.records.get()]
        while len(taken) < max_events and not self.records.empty():
            taken.append(self.records.get_nowait())
        return taken


@dataclass
class Topic:
    buffer: Buffer = field(default_factory=Buffer)
    offsets: int = 0

    def put(self, delivery: Delivery | None, value: bytes | None = None) -> Record:
        if delivery is not None:
            value = encode("Delivery", delivery.to_record())
        self.offsets += 1
        record = Record(Message(0, self.offsets, b"ana", value))
        self.buffer.records.put_nowait(record)
        return record


class Producer:
    """Acks every write at once, unless ``held``: then when ``release`` is called."""

    def __init__(self) -> None:
        self.records: list[OutRecord] = []
        self.held = False
        self._waiting: list[tuple[asyncio.Future[list[Delivered]], list[Delivered]]] = []

    def send_batch(self, records: Sequence[OutRecord]) -> asyncio.Future[list[Delivered]]:
        future: asyncio.Future[list[Delivered]] = asyncio.get_running_loop().create_future()
        reports = []
        for record in records:
            self.records.append(record)
            reports.append(Delivered(record.topic, record.partition or 0, len(self.records)))
        if self.held:
            self._waiting.append((future, reports))
        else:
            future.set_result(reports)
        return future

    def send_counted(self, records: Sequence[OutRecord]) -> asyncio.Future[int]:
        reported = self.send_batch(records)
        counted: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        reported.add_done_callback(lambda done: counted.set_result(len(done.result())))
        return counted

    def release(self) -> None:
        self.held = False
        waiting, self._waiting = self._waiting, []
        for future, reports in waiting:
            future.set_result(reports)

    def on(self, topic: str) -> list[OutRecord]:
        return [record for record in self.records if record.topic == topic]


class Ledger:
    changelog_topic = CHANGELOG

    def __init__(self) -> None:
        self.entries: dict[bytes, bytes] = {}

    def read(self, partition: int, delivery_id: str) -> Finished | None:
        raw = self.entries.get(delivery_id.encode())
        return Finished.from_bytes(raw) if raw is not None else None

    def write(self, partition: int, values: dict[bytes, bytes], changelog_offset: int) -> None:
        self.entries.update(values)


class Provider:
    """Accepts after ``gate`` opens (open at first); fails the ids in ``failing`` once each."""

    def __init__(self, channel: Channel, name: str) -> None:
        self.channel = channel
        self.name = name
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.failing: set[str] = set()

    async def send(self, delivery: Delivery) -> SendReceipt:
        self.calls.append(delivery.delivery_id)
        await self.gate.wait()
        if delivery.delivery_id in self.failing:
            self.failing.discard(delivery.delivery_id)
            raise ProviderError("busy", retriable=True, provider_code="503")
        return SendReceipt(f"id-{len(self.calls)}")

    async def close(self) -> None:
        pass


@dataclass
class Running:
    topic: Topic
    producer: Producer
    ledger: Ledger
    sms: Provider


@pytest.fixture
def settings() -> ChannelSettings:
    return ChannelSettings(retry=RetryPolicy(max_attempts=3, base_delay_s=0.3, max_delay_s=0.3))


@pytest.fixture
async def running(settings: ChannelSettings) -> AsyncIterator[Running]:
    sms = Provider("sms", "gateway")
    state = Running(Topic(), Producer(), Ledger(), sms)
    dispatcher = Dispatcher(
        Providers(sms=sms),
        state.ledger,  # type: ignore[arg-type]
        state.producer,  # type: ignore[arg-type]
        topics=TOPICS,
        settings=settings,
        random_unit=lambda: 0.5,
    )
    task = asyncio.ensure_future(dispatcher.run(state.topic))  # type: ignore[arg-type]
    yield state
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def sms(number: int) -> Delivery:
    delivery = make_delivery("sms", "+59891000001")
    return Delivery(
        **{**{f: getattr(delivery, f) for f in delivery.__slots__}, "delivery_id": f"dlv_{number}"}
    )  # type: ignore[arg-type]


async def test_a_delivery_is_acked_only_once_its_result_and_ledger_entry_are_in_kafka(
    running: Running,
) -> None:
    running.producer.held = True
    record = running.topic.put(sms(1))
    await wait_for_async(lambda: running.producer.on(TOPICS.events), message="the result written")
    for _ in range(20):
        await asyncio.sleep(0)
    assert not record.acked and not running.ledger.entries
    running.producer.release()
    await wait_for_async(lambda: record.acked, message="the delivery acked")
    assert running.ledger.read(0, "dlv_1") == Finished("sent", "id-1", running.ledger.read(0, "dlv_1").at_ms)  # type: ignore[union-attr]
    (result,) = running.producer.on(TOPICS.events)
    envelope = decode_envelope(result.value or b"")
    assert (envelope.event_id, envelope.payload) == (
        "dlv_1:result",
        DeliveryResult("dlv_1", "sent", "sms", "welcome", "id-1"),
    )
    assert [entry.key for entry in running.producer.on(CHANGELOG)] == [b"dlv_1"]


async def test_a_copy_of_an_id_being_sent_is_not_sent_again_and_is_acked_with_the_first(
    running: Running,
) -> None:
    running.sms.gate.clear()
    first, copy = running.topic.put(sms(1)), running.topic.put(sms(1))
    await wait_for_async(lambda: running.sms.calls, message="the first call")
    running.sms.gate.set()
    await wait_for_async(lambda: first.acked and copy.acked, message="both acked")
    assert running.sms.calls == ["dlv_1"]
    assert len(running.producer.on(TOPICS.events)) == 1


async def test_an_id_in_the_ledger_is_acked_without_a_call(running: Running) -> None:
    running.ledger.entries[b"dlv_1"] = Finished("sent", "id-0", 1).to_bytes()
    record = running.topic.put(sms(1))
    await wait_for_async(lambda: record.acked, message="the replayed delivery acked")
    assert running.sms.calls == [] and running.producer.records == []


async def test_a_delivery_waiting_to_retry_leaves_its_lane_to_the_next(running: Running) -> None:
    running.sms.failing.add("dlv_1")
    first = running.topic.put(sms(1))
    await wait_for_async(lambda: running.sms.calls == ["dlv_1"], message="the first call")
    seconds = [running.topic.put(sms(n)) for n in range(2, 40)]  # more than the lane's 16 senders
    await wait_for_async(lambda: all(record.acked for record in seconds), message="the others sent")
    assert not first.acked  # still waiting out its 0.3 s backoff
    await wait_for_async(lambda: first.acked, message="the retried delivery acked")
    assert running.sms.calls.count("dlv_1") == 2


async def test_an_undecodable_record_is_dead_lettered_and_acked_without_a_ledger_entry(
    running: Running,
) -> None:
    record = running.topic.put(None, b"not avro")
    await wait_for_async(lambda: record.acked, message="the bad record acked")
    assert len(running.producer.on(TOPICS.dead_letters)) == 1
    assert running.producer.on(CHANGELOG) == [] and running.ledger.entries == {}


@pytest.mark.parametrize("settings", [ChannelSettings(max_pending=3)])
async def test_no_more_than_max_pending_deliveries_are_taken_at_once(running: Running) -> None:
    running.sms.gate.clear()
    records = [running.topic.put(sms(n)) for n in range(10)]
    await wait_for_async(lambda: len(running.sms.calls) == 3, message="three calls")
    for _ in range(50):  # let the loop run: a fourth call would start now if it could
        await asyncio.sleep(0)
    assert len(running.sms.calls) == 3
    running.sms.gate.set()
    await wait_for_async(lambda: all(record.acked for record in records), message="all acked")
