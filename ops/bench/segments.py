"""``refract bench segments``: what 50 segments cost a worker, how soon changes are readable, backfill.

In one run: the events/s of one worker folding the same events with no segment and with 50
segments of mixed kinds (attribute, windowed count and sum, date), the ratio of the two; the
latency from an event being appended to its ``SegmentChange`` being readable, at a steady rate;
the time to evaluate a new segment over every stored customer; and, in process, the cost of one
rule evaluation per customer per segment.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import random
import re
import shutil
import statistics
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import orjson
import rocksdict
from confluent_kafka import Consumer, Producer

from api.auth import mint_key
from engine.events import CustomerUpdate, Envelope
from engine.fold import fold
from engine.segments import EvaluationContext, evaluate, rule_from_text
from engine.segments.definition import SEGMENT_KIND
from engine.segments.membership import (
    NOTHING_CHANGED,
    CompiledSegment,
    SegmentIndex,
    inputs_changed_by,
    update,
)
from engine.state import CustomerState, evolve, from_document, to_document
from engine.topics import TopicNames
from ops.arguments import COUNT, NON_NEGATIVE, NON_NEGATIVE_NUMBER
from ops.bench.ingest import _free_port, _processed, _produce, _ready_partitions, cpu_seconds
from ops.bench.worker_process import bench_namespace, metric_total, spawn_worker, stop_processes, worker_env
from ops.bench.workload import CITIES, ending_now, envelopes
from ops.config import load_settings
from ops.gc_tuning import throughput_collection
from ops.runtime import kafka_bootstrap
from schemas.codec import decode, encode_envelope, encode_typed
from streams.customer_store import SEGMENTS_EVALUATED_KEY
from streams.definitions import definition_record
from streams.processor import CustomerProcessor
from streams.producer import Delivered
from streams.producer import Producer as RefractProducer
from streams.segment_counts import SEGMENT_COUNTS_KEY
from streams.topic_admin import ensure_topics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=COUNT, default=500_000, help="events to fold (default 500,000)")
    parser.add_argument(
        "--customers", type=COUNT, default=100_000, help="distinct customers (default 100,000)"
    )
    parser.add_argument("--partitions", type=COUNT, default=4)
    parser.add_argument(
        "--rate", type=COUNT, default=2000, help="events/s of the latency run (default 2,000)"
    )
    parser.add_argument(
        "--latency-seconds",
        type=NON_NEGATIVE_NUMBER,
        default=15.0,
        help="length of the latency run (0: no latency run)",
    )
    parser.add_argument(
        "--skip-throughput",
        action="store_true",
        help="no run without segments and no in-process figures: fold the events with the 50 segments"
        " (the backfill needs stored customers) and go on to the latency run and the backfill",
    )
    parser.add_argument(
        "--backfills",
        type=NON_NEGATIVE,
        default=1,
        help="new segments to save one after the other (default 1)",
    )


def segment_rules() -> dict[str, str]:
    """50 segments: 20 on attributes, 20 on windows of the customer's events, 10 on dates."""
    rules: dict[str, str] = {}
    for i in range(10):
        rules[f"balance-{i}"] = f"balance >= {5_000 * (i + 1)}"
    for i, city in enumerate(CITIES[:5]):
        rules[f"city-{i}"] = f'city == "{city}" and segment_score >= {100 * i}'
    for i in range(5):
        rules[f"score-{i}"] = f'segment_score > {200 * i} and "card" in products'
    for i, days in enumerate((1, 2, 3, 7, 14, 30, 60, 90, 180, 365)):
        rules[f"tx-count-{i}"] = f'count(event="card_transaction", within="{days}d") >= {1 + i % 3}'
    for i, days in enumerate((1, 7, 30, 90, 365)):
        rules[f"tx-sum-{i}"] = (
            f'sum(event="card_transaction", field="amount", within="{days}d") > {500 * (i + 1)}'
        )
    for i, days in enumerate((1, 3, 7, 14, 30)):
        rules[f"clicks-{i}"] = f'count(interaction="click", within="{days}d") >= 1'
    for i, days in enumerate((1, 7, 30, 60, 90, 120, 180, 270, 365, 730)):
        rules[f"dormant-{i}"] = f"days_since(last_login) > {days}"
    assert len(rules) == 50
    return rules


def _save_segments(bootstrap: str, namespace: str, rules: dict[str, str]) -> None:
    topic = TopicNames(namespace).definitions
    now_ms = int(time.time() * 1000)
    records = [
        definition_record(topic, SEGMENT_KIND, segment_id, 1, {"rule": rule}, deleted=False, now_ms=now_ms)
        for segment_id, rule in rules.items()
    ]

    async def send() -> None:
        producer = RefractProducer(bootstrap, client_id="bench-segments")
        try:
            await producer.send_batch(records)
        finally:
            producer.close()

    asyncio.run(send())


class _Worker:
    """One worker process of a fresh namespace, with the bench's admin key."""

    def __init__(self, bootstrap: str, namespace: str, partitions: int, work: Path) -> None:
        key = mint_key({"admin"})
        env = worker_env(bootstrap, namespace, partitions, work / namespace, key=key)
        self.port = _free_port()
        self.partitions = partitions
        self.log = work / f"{namespace}.log"
        self.process = spawn_worker(env, self.port, self.log)

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("a worker exited early; see its log")
            if sorted(_ready_partitions(self.port) or []) == list(range(self.partitions)):
                return
            time.sleep(0.2)
        raise SystemExit("the worker was not ready within 3 minutes")

    def wait_processed(self, events: int) -> tuple[float, float]:
        """Seconds from the first to the ``events``-th processed event, and the worker's CPU
        seconds meanwhile (steadier than the wall time on a shared machine)."""
        first_at, first_count, first_cpu = None, 0.0, 0.0
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            try:
                total = _processed(self.port)
            except OSError:  # a timeout on a loaded machine: ask again
                time.sleep(0.1)
                continue
            now = time.perf_counter()
            if first_at is None and total > 0:
                first_at, first_count, first_cpu = now, total, cpu_seconds([self.process.pid])
            if total >= events:
                assert first_at is not None
                share = events / max(1.0, events - first_count)
                return (now - first_at) * share, (cpu_seconds([self.process.pid]) - first_cpu) * share
            if self.process.poll() is not None:
                raise SystemExit("a worker exited early; see its log")
            time.sleep(0.1)
        raise SystemExit("the worker did not finish in an hour")

    def stop(self) -> None:
        stop_processes([self.process])


def _throughput(
    bootstrap: str, namespace: str, partitions: int, work: Path, records: list[tuple[bytes, bytes]]
) -> tuple[float, float, _Worker]:
    """events/s and CPU µs per event of one worker over ``records``; the worker is left running."""
    worker = _Worker(bootstrap, namespace, partitions, work)
    worker.wait_ready()
    _produce(bootstrap, TopicNames(namespace).events, records)
    seconds, cpu = worker.wait_processed(len(records))
    return len(records) / seconds, cpu * 1e6 / len(records), worker


def _latency(
    bootstrap: str, namespace: str, worker: _Worker, rate: int, seconds: float, customers: int
) -> list[float]:
    """ms from append to a readable SegmentChange, for events that each cross balance-0's threshold."""
    topics = TopicNames(namespace)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-latency-{uuid.uuid4().hex}",
            "auto.offset.reset": "latest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 5,
        }
    )
    consumer.subscribe([topics.segment_changes])
    while not consumer.assignment():
        consumer.poll(0.1)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 1}
    )
    rng = random.Random(11)
    prefix = f"lat-{uuid.uuid4().hex[:6]}"
    appended_ms: dict[str, int] = {}
    latencies: list[float] = []
    total = int(rate * seconds)
    started = time.perf_counter()
    sent = 0
    while sent < total or len(latencies) < len(appended_ms) * 0.99:
        now = time.perf_counter()
        due = min(total, int((now - started) * rate))
        while sent < due:
            customer = f"cust-{rng.randrange(customers):07d}"
            at_ms = int(time.time() * 1000)
            event_id = f"{prefix}-{sent}"
            # Alternate far above and far below balance-0's threshold: every event changes it.
            balance = 1_000_000 if sent % 2 == 0 else 0
            envelope = Envelope(
                event_id, customer, at_ms, at_ms, "bench", CustomerUpdate(set={"balance": balance})
            )
            producer.produce(topics.events, encode_envelope(envelope), customer.encode())
            appended_ms[event_id] = at_ms
            sent += 1
        producer.poll(0)
        for message in consumer.consume(1000, 0.005):
            if message.error() or message.value() is None:
                continue
            _, fields = decode(message.value() or b"")
            if fields["segment_id"] == "balance-0" and fields["caused_by_event_id"] in appended_ms:
                latencies.append(time.time() * 1000 - appended_ms[fields["caused_by_event_id"]])
        if time.perf_counter() - started > seconds + 60:
            break
    producer.flush(30)
    consumer.close()
    return latencies


def _backfill(
    bootstrap: str, namespace: str, worker: _Worker, stored: int, number: int
) -> tuple[float, float]:
    """Seconds from saving a new segment to every stored customer being evaluated for it, and the
    worker's CPU seconds meanwhile (all its threads; steadier than the wall time on a shared machine).

    The ``number``-th new segment of the run (from 0): ``balance >= 12345``, then other thresholds.
    """
    before = metric_total(worker.port, "refract_segment_backfill_customers_total")
    started = time.perf_counter()
    cpu_started = cpu_seconds([worker.process.pid])
    segment_id = "backfill-new" if number == 0 else f"backfill-new-{number}"
    _save_segments(bootstrap, namespace, {segment_id: f"balance >= {12345 + 1000 * number}"})
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            done = metric_total(worker.port, "refract_segment_backfill_customers_total") - before
            if done >= stored and metric_total(worker.port, "refract_segment_backfill_partitions") == 0:
                return time.perf_counter() - started, cpu_seconds([worker.process.pid]) - cpu_started
        except OSError:  # a timeout on a loaded machine: ask again
            pass
        time.sleep(0.05)
    raise SystemExit("the backfill did not finish in 10 minutes")


def _evaluation_cost(rules: dict[str, str], events: int, customers: int) -> tuple[float, float]:
    """(µs per rule evaluation per customer, µs of membership update per event), in process."""
    index = SegmentIndex.build(CompiledSegment(s, 1, rule_from_text(r)) for s, r in rules.items())
    states: dict[str, CustomerState] = {}
    folded = list(envelopes(min(events, 50_000), min(customers, 5_000), seed=3))
    update_seconds = 0.0
    for offset, envelope in enumerate(folded):
        before = states.get(envelope.customer_id)
        after = fold(before, envelope, offset)
        if after is None or after is before:
            continue
        started = time.perf_counter()
        result = update(index, before, after, inputs_changed_by(envelope.payload), envelope.received_at_ms)
        update_seconds += time.perf_counter() - started
        states[envelope.customer_id] = evolve(
            after, {"segments": result.segments, "segment_due_ms": result.segment_due_ms}
        )
    now_ms = max(envelope.received_at_ms for envelope in folded)
    compiled = [index.segments[s].rule for s in index.order]
    contexts = [
        EvaluationContext.for_customer(
            state.attributes,
            now_ms,
            campaign_attributes=state.campaign_attributes,
            behaviour=state.behaviour,
            segments=frozenset(state.segments),
        )
        for state in states.values()
    ]
    started = time.perf_counter()
    for context in contexts:
        for rule in compiled:
            evaluate(rule, context)
    evaluation_us = (time.perf_counter() - started) * 1e6 / (len(contexts) * len(compiled))
    return evaluation_us, update_seconds * 1e6 / len(folded)


class _StoredStates:
    """The customer store as the processor reads and writes it, over one RocksDB per partition."""

    changelog_topic = "bench-changelog"

    def __init__(self, path: Path, partitions: int) -> None:
        options = rocksdict.Options(raw_mode=True)
        self._dbs = [rocksdict.Rdict(str(path / f"p{p}"), options=options) for p in range(partitions)]

    def read(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = self._dbs[partition].get(key)
        return value

    def customer_keys(self, partition: int) -> Iterator[bytes]:
        keys = self._dbs[partition].keys()  # iterating a raw-mode Rdict itself fails
        return (key for key in keys if isinstance(key, bytes) and not key.startswith(b"\x00"))

    def write(self, partition: int, values: Mapping[bytes, bytes | None], changelog_offset: int) -> None:
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in values.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self._dbs[partition].write(batch)

    def close(self) -> None:
        for db in self._dbs:
            db.close()


def _backfill_cost(
    rules: dict[str, str], events: int, customers: int, partitions: int
) -> tuple[float, float, int]:
    """(µs per stored customer of the processor, of decoding whole, customers) of a backfill, in process.

    The states are folded from the bench's events with the 50 segments and stored as the worker
    stores them (documents, in RocksDB, the 50 segments marked evaluated); then the processor's own
    batches evaluate ``balance >= 12345`` over them and their writes go to RocksDB: no Kafka. The
    baseline, measured first over the same documents, is the plain way (the processor's until
    this bench got the figure): decode each state whole, ``update``, encode the changed ones whole
    and their SegmentChange records; it writes nothing.
    """
    segments = [CompiledSegment(s, 1, rule_from_text(r)) for s, r in rules.items()]
    index = SegmentIndex.build(segments)
    states: dict[str, CustomerState] = {}
    for offset, envelope in enumerate(envelopes(events, customers, base_ms=ending_now(events), seed=5)):
        before = states.get(envelope.customer_id)
        after = fold(before, envelope, offset)
        if after is None or after is before:
            continue
        result = update(index, before, after, inputs_changed_by(envelope.payload), envelope.received_at_ms)
        states[envelope.customer_id] = evolve(
            after, {"segments": result.segments, "segment_due_ms": result.segment_due_ms}
        )
    with tempfile.TemporaryDirectory(prefix="refract-bench-backfill-") as directory:
        store = _StoredStates(Path(directory), partitions)
        evaluated = orjson.dumps({segment.segment_id: segment.version for segment in segments})
        counts: list[dict[str, int]] = [{} for _ in range(partitions)]
        for customer_id, state in states.items():
            key = customer_id.encode()
            partition = zlib.crc32(key) % partitions
            store.write(partition, {key: orjson.dumps(to_document(state))}, 0)
            for segment_id in state.segments:
                counts[partition][segment_id] = counts[partition].get(segment_id, 0) + 1
        for partition in range(partitions):
            records = {SEGMENTS_EVALUATED_KEY: evaluated, SEGMENT_COUNTS_KEY: orjson.dumps(counts[partition])}
            store.write(partition, records, 0)
        stored = len(states)
        states.clear()  # a worker holds its states in RocksDB, not in memory: the GC must not scan them
        gc.collect()
        new_index = SegmentIndex.build(
            [*segments, CompiledSegment("backfill-new", 1, rule_from_text("balance >= 12345"))]
        )
        with throughput_collection():
            whole_us = _whole_decode_cost(store, new_index, partitions) * 1e6 / stored
        processor = CustomerProcessor(
            store,  # type: ignore[arg-type]  # the three calls the processor makes of a CustomerStore
            None,  # type: ignore[arg-type]  # never sends: prepare and persist only
            events_topic="events",
            dead_letters_topic="dead-letters",
            segment_changes_topic="segment-changes",
            segment_index=lambda: new_index,
            assigned_partitions=lambda: set(range(partitions)),
        )
        # CPU time, not wall time: steadier on a shared machine. The collector tuned as in a worker.
        with throughput_collection():
            started = time.process_time()
            while True:
                batch = processor.prepare([])
                offsets = [Delivered(store.changelog_topic, partition, 0) for partition in batch.written]
                processor._persist(batch, offsets)
                if not processor.backfill_progress():
                    break
            seconds = time.process_time() - started
        store.close()
    return seconds * 1e6 / stored, whole_us, stored


def _whole_decode_cost(store: _StoredStates, index: SegmentIndex, partitions: int) -> float:
    """CPU seconds of the plain backfill over every stored customer (see ``_backfill_cost``)."""
    now_ms = int(time.time() * 1000)
    started = time.process_time()
    for partition in range(partitions):
        for key in list(store.customer_keys(partition)):
            raw = store.read(partition, key)
            assert raw is not None
            state = from_document(orjson.loads(raw))
            result = update(index, state, state, NOTHING_CHANGED, now_ms, reevaluate=["backfill-new"])
            if result.segments is not state.segments or result.segment_due_ms is not state.segment_due_ms:
                changed = evolve(
                    state, {"segments": result.segments, "segment_due_ms": result.segment_due_ms}
                )
                orjson.dumps(to_document(changed))
            for change in result.changes:
                encode_typed(
                    "SegmentChange",
                    {
                        "customer_id": state.customer_id,
                        "segment_id": change.segment_id,
                        "segment_version": change.version,
                        "change": change.kind,
                        "caused_by_event_id": f"backfill:{change.segment_id}:{change.version}",
                        "occurred_at": change.at_ms,
                    },
                )
    return time.process_time() - started


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(args: argparse.Namespace, out: TextIO) -> int:
    settings = load_settings()
    bootstrap = kafka_bootstrap(settings, start_local=True)
    work = Path(tempfile.mkdtemp(prefix="refract-bench-segments-"))
    run = uuid.uuid4().hex[:6]
    n, customers, partitions = args.events, args.customers, args.partitions
    rules = segment_rules()
    print(f"Generating {n:,} events for {customers:,} customers ...", file=out, flush=True)
    records = [
        (e.customer_id.encode(), encode_envelope(e)) for e in envelopes(n, customers, base_ms=ending_now(n))
    ]

    full = not args.skip_throughput
    if full:
        print("In process: rule evaluation and membership update cost ...", file=out, flush=True)
        evaluation_us, update_us = _evaluation_cost(rules, n, customers)
        print("In process: backfill cost per stored customer ...", file=out, flush=True)
        backfill_us, whole_us, backfill_customers = _backfill_cost(rules, n, customers, partitions)

    plain = bench_namespace(bootstrap, f"bseg{run}a")
    segmented = bench_namespace(bootstrap, f"bseg{run}b")
    for space in (plain, segmented) if full else (segmented,):
        ensure_topics(bootstrap, replace(settings, namespace=space, partitions=partitions))
    if full:
        print("One worker, no segments ...", file=out, flush=True)
        rate_plain, cpu_plain, worker = _throughput(bootstrap, plain, partitions, work, records)
        worker.stop()
    print("One worker, 50 segments ...", file=out, flush=True)
    _save_segments(bootstrap, segmented, rules)
    rate_segments, cpu_segments, worker = _throughput(bootstrap, segmented, partitions, work, records)
    latencies: list[float] = []
    backfills: list[tuple[float, float, float | None]] = []
    stored = len({key for key, _ in records})
    try:
        if args.latency_seconds > 0:
            running = f"Latency at {args.rate:,} events/s for {args.latency_seconds:.0f} s ..."
            print(running, file=out, flush=True)
            latencies = _latency(bootstrap, segmented, worker, args.rate, args.latency_seconds, customers)
        for number in range(args.backfills):
            print("Backfill of a new segment over the stored customers ...", file=out, flush=True)
            seen = len(worker.log_lines())
            backfill_s, cpu_s = _backfill(bootstrap, segmented, worker, stored, number)
            backfills.append((backfill_s, cpu_s, _backfill_window_s(worker.log_lines()[seen:])))
    finally:
        worker.stop()

    print(
        f"\nrefract bench segments: {n:,} events, {customers:,} customers, {len(rules)} segments,"
        f" {partitions} partitions",
        file=out,
    )
    if full:
        print(f"  one worker, no segments                {rate_plain:>10,.0f} events/s", file=out)
    print(f"  one worker, 50 segments                {rate_segments:>10,.0f} events/s", file=out)
    if full:
        print(f"  50 segments / no segments              {rate_segments / rate_plain:>10.2f}x", file=out)
        print(
            f"  the same by worker CPU per event       {cpu_plain / cpu_segments:>10.2f}x"
            f"  ({cpu_plain:,.0f} vs {cpu_segments:,.0f} µs)",
            file=out,
        )
    if latencies:
        print(
            f"  append -> SegmentChange readable       p50 {_percentile(latencies, 0.5):,.0f} ms,"
            f" p99 {_percentile(latencies, 0.99):,.0f} ms ({len(latencies):,} changes at {args.rate:,}/s;"
            f" mean {statistics.fmean(latencies):,.0f} ms)",
            file=out,
        )
    for backfill_s, cpu_s, window_s in backfills:
        in_worker = f"; in the worker's log {window_s:.1f} s" if window_s is not None else ""
        figure = f"{backfill_s:>10.1f} s ({stored:,} customers{in_worker}; worker CPU {cpu_s:.1f} s)"
        print(f"  backfill of a new segment              {figure}", file=out)
    if full:
        print(
            f"  rule evaluation (in process)           {evaluation_us:>10.2f} µs per customer per segment",
            file=out,
        )
        print(
            f"  membership update, 50 segments         {update_us:>10.1f} µs per event (in process)", file=out
        )
        print(
            f"  backfill cost (in process)             {backfill_us:>10.1f} µs per customer"
            f" ({backfill_customers:,} customers; decoding whole {whole_us:.1f} µs,"
            f" {whole_us / backfill_us:.1f}x; CPU time)",
            file=out,
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


_LOGGED_AT = re.compile(r"timestamp='([^']+)'")


def _backfill_window_s(lines: list[str]) -> float | None:
    """Seconds from the first ``segments.backfill_started`` to the last ``segments.backfill_finished``
    of a worker's log lines (None without both): the backfill without the save and the pick-up."""
    started: float | None = None
    finished: float | None = None
    for line in lines:
        if "segments.backfill_" not in line:
            continue
        found = _LOGGED_AT.search(line)
        if found is None:
            continue
        at = dt.datetime.fromisoformat(found.group(1).replace("Z", "+00:00")).timestamp()
        if "segments.backfill_started" in line and started is None:
            started = at
        elif "segments.backfill_finished" in line:
            finished = at
    return finished - started if started is not None and finished is not None else None
