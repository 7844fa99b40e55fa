"""``refract bench campaigns``: the processor's speed with 30 live campaigns, and trigger-to-outbox latency.

In one run, on the same events (100,000 customers, 300,000 events of which 20% business
events): one worker with 20 segments and no campaigns (the baseline), then one worker with the
same 20 segments and 30 campaigns of mixed triggers (business events with conditions, segment
entries). Then the latency: business events posted to ``POST /v1/events`` at a fixed rate, each
timed from its 202 to its ``Delivery`` being readable on ``refract.deliveries``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from confluent_kafka import Consumer, Producer

from api.auth import mint_key
from engine.events import BusinessEvent, ContactUpdate, CustomerUpdate, Envelope, Interaction, Payload
from engine.topics import TopicNames
from ops.arguments import COUNT, NON_NEGATIVE
from ops.bench.ingest import _free_port, _processed, _produce, _ready_partitions, _refract_timed
from ops.bench.worker_process import bench_namespace, spawn_worker, stop_processes, worker_env
from ops.bench.workload import ending_now
from ops.config import load_settings
from ops.runtime import kafka_bootstrap
from schemas.codec import decode, encode_envelope
from streams.definitions import definition_record
from streams.topic_admin import ensure_topics

BASE_MS = 1_767_000_000_000
EVENT_NAMES = ("card_transaction", "loan_preapproved", "payment_due", "app_login", "purchase", "signup")
CITIES = ("Montevideo", "Salto", "Rivera", "Maldonado", "Buenos Aires", "Rosario")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=COUNT, default=300_000, help="events to fold (default 300,000)")
    parser.add_argument(
        "--customers", type=COUNT, default=100_000, help="distinct customers (default 100,000)"
    )
    parser.add_argument("--partitions", type=COUNT, default=4)
    parser.add_argument("--rate", type=COUNT, default=1000, help="business events/s for the latency run")
    parser.add_argument("--latency-seconds", type=COUNT, default=30, help="how long the latency run lasts")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--standby-replicas", type=NON_NEGATIVE, default=0)


# --- definitions -------------------------------------------------------------------------------


def segments() -> list[dict[str, Any]]:
    rules = [
        "balance >= 10000",
        "balance < 500",
        'city == "Montevideo"',
        'city in ["Buenos Aires", "Rosario"]',
        "score >= 800",
        "score < 300",
        'count(event="card_transaction", within="7d") >= 3',
        'sum(event="card_transaction", field="amount", within="30d") > 1000',
        'count(event="app_login", within="30d") == 0',
        'ever(event="loan_preapproved")',
        'count(event="purchase", within="7d") >= 1',
        "age >= 60",
        "age < 25",
        'is_birthday(birth_date, within="3d")',
        'ever(interaction="click")',
        'count(event="payment_due", within="30d") >= 2',
        "balance >= 2000 and score >= 500",
        'city == "Salto" or city == "Rivera"',
        'not ever(event="signup")',
        "balance >= 50000",
    ]
    return [{"id": f"seg-{i:02d}", "rule": rule} for i, rule in enumerate(rules)]


def campaigns() -> list[dict[str, Any]]:
    conditions = ("event.amount >= 500", "event.amount < 100", None, "balance >= 1000", None)
    flow = [
        {"id": "email", "send": "offer"},
        {"id": "wait", "wait_for": {"interaction": "click", "timeout": "2d", "on_event": "done"}},
        {"id": "sms", "send": "nudge"},
        {"id": "done", "exit": True},
    ]
    content = {
        "offer": {
            "channel": "email",
            "subject": "{{ customer.city | default: 'Hello' }}: an offer for you",
            "html": "<p>Balance {{ customer.balance | default: 0 }},"
            " amount {{ event.amount | default: 0 }}</p>",
            "text": "An offer for you",
        },
        "nudge": {"channel": "sms", "text": "Still interested? {{ campaign.name }}"},
    }
    found: list[dict[str, Any]] = []
    for i in range(30):
        if i < 20:
            trigger: dict[str, Any] = {"event": EVENT_NAMES[i % len(EVENT_NAMES)], "exclusive": i % 3 != 0}
            condition = conditions[i % len(conditions)]
            if condition:
                trigger["condition"] = condition
        else:
            trigger = {"segment": f"seg-{i - 20:02d}"}
        found.append(
            {
                "id": f"camp-{i:02d}",
                "name": f"Campaign {i}",
                "priority": i % 7,
                "triggers": [trigger],
                "reentry": {"allowed": True, "min_gap": "1d"},
                "caps": [{"max": 3, "within": "7d"}],
                "control_group": 10 if i % 4 == 0 else 0,
                "conversion": {"event": "purchase", "within": "7d"},
                "content": content,
                "flow": flow,
            }
        )
    found.append(
        {
            "id": "latency-probe",
            "name": "Latency probe",
            "triggers": [{"event": "probe", "exclusive": False}],
            "reentry": {"allowed": True},
            "content": content,
            "flow": [{"send": "offer"}],
        }
    )
    return found


def _save_records(bootstrap: str, namespace: str, definitions: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Save (kind, id, body) definitions as version 1 on the namespace's definitions topic."""
    topic = TopicNames(namespace).definitions
    now_ms = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for kind, definition_id, body in definitions:
        record = definition_record(topic, kind, definition_id, 1, body, deleted=False, now_ms=now_ms)
        producer.produce(record.topic, record.value, record.key, partition=record.partition or 0)
    producer.flush(30)


def _save_definitions(bootstrap: str, namespace: str, *, with_campaigns: bool = True) -> None:
    found = [("segment", s["id"], {"rule": s["rule"]}) for s in segments()]
    if with_campaigns:
        found += [("campaign", c["id"], {k: v for k, v in c.items() if k != "id"}) for c in campaigns()]
    _save_records(bootstrap, namespace, found)


# --- the event stream ----------------------------------------------------------------------------


def _payload(rng: random.Random, i: int) -> Payload:
    roll = rng.random()
    if roll < 0.20:
        return BusinessEvent(
            rng.choice(EVENT_NAMES),
            {"amount": round(rng.uniform(1, 900), 2), "merchant": f"m{rng.randrange(99)}"},
        )
    if roll < 0.65:
        return CustomerUpdate(
            set={
                "balance": round(rng.uniform(0, 60_000), 2),
                "city": rng.choice(CITIES),
                "score": rng.randrange(1000),
            }
        )
    if roll < 0.80:
        return ContactUpdate(email=f"c{i}@example.com", phone=f"+5989{rng.randrange(10**7):07d}")
    return Interaction(
        kind=rng.choice(("impression", "click", "open")),
        interaction_id=f"i{i}",
        campaign_id=f"camp-{rng.randrange(30):02d}",
    )


def envelopes(events: int, customers: int, seed: int = 11, base_ms: int = BASE_MS) -> Iterator[Envelope]:
    """Events one millisecond apart from ``base_ms``; the runs pass the present (``ending_now``)."""
    rng = random.Random(seed)
    for i in range(events):
        customer = f"cust-{rng.randrange(customers):07d}"
        at = base_ms + i
        yield Envelope(f"bench-{seed}-{i}", customer, at, at, "bench", _payload(rng, i))


# --- latency -------------------------------------------------------------------------------------


class _DeliveryWatcher:
    """Reads refract.deliveries from its end and notes when each probe customer's delivery arrives."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-latency-{uuid.uuid4().hex}",
                "auto.offset.reset": "latest",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
            }
        )
        self._consumer.subscribe([topic])
        self.assigned = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer.consume(500, 0.05):
                if message.error() or message.value() is None:
                    continue
                arrived = time.perf_counter()
                _, record = decode(message.value() or b"")
                if record["campaign_id"] == "latency-probe":
                    self.seen.setdefault(record["customer_id"], arrived)
            if self._consumer.assignment():
                self.assigned.set()
        self._consumer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


async def _create_probe_customers(port: int, key: str, total: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for start in range(0, total, 1000):
            customers = [
                {
                    "customer_id": f"probe-{i:07d}",
                    "attributes": {"city": "Montevideo"},
                    "contacts": {"email": f"probe{i}@example.com"},
                }
                for i in range(start, min(total, start + 1000))
            ]
            async with session.post(
                f"http://127.0.0.1:{port}/v1/customers", json={"customers": customers}
            ) as answer:
                if answer.status != 202:
                    raise SystemExit(f"POST /v1/customers answered {answer.status}: {await answer.text()}")


async def _post_probes(port: int, key: str, rate: int, seconds: int, accepted: dict[str, float]) -> None:
    batch = max(1, rate // 100)  # 100 requests/s, each with rate/100 events
    headers = {"Authorization": f"Bearer {key}"}
    total = rate * seconds
    interval = batch / rate
    started = time.perf_counter()
    async with aiohttp.ClientSession(headers=headers) as session:
        pending: set[asyncio.Task[None]] = set()

        async def post(ids: list[str]) -> None:
            body = {"events": [{"type": "business_event", "customer_id": c, "name": "probe"} for c in ids]}
            async with session.post(f"http://127.0.0.1:{port}/v1/events", json=body) as answer:
                if answer.status != 202:
                    raise SystemExit(f"POST /v1/events answered {answer.status}: {await answer.text()}")
                at = time.perf_counter()
                for customer in ids:
                    accepted[customer] = at

        for n in range(0, total, batch):
            ids = [f"probe-{i:07d}" for i in range(n, min(total, n + batch))]
            task = asyncio.create_task(post(ids))
            pending.add(task)
            task.add_done_callback(pending.discard)
            delay = started + (n + batch) * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*pending)


def _latency(
    args: argparse.Namespace, bootstrap: str, namespace: str, work: Path, out: TextIO
) -> dict[str, float]:
    key = mint_key({"admin"})
    port = _free_port()
    env = worker_env(bootstrap, namespace, args.partitions, work / namespace, key=key)
    process = spawn_worker(env, port, work / "latency-worker.log")
    watcher = _DeliveryWatcher(bootstrap, TopicNames(namespace).deliveries)
    try:
        deadline = time.monotonic() + 180
        while _ready_partitions(port) is None or not watcher.assigned.is_set():
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"the latency worker did not get ready; see {work / 'latency-worker.log'}")
            time.sleep(0.2)
        total = args.rate * args.latency_seconds
        print(f"Latency: creating {total:,} probe customers with an email ...", file=out, flush=True)
        asyncio.run(_create_probe_customers(port, key.secret, total))
        folded_by = time.monotonic() + 600
        while _processed(port) < 2 * total:  # each customer is an attributes and a contacts event
            if time.monotonic() > folded_by or process.poll() is not None:
                raise SystemExit(f"the probe customers were not folded; see {work / 'latency-worker.log'}")
            time.sleep(0.2)
        accepted: dict[str, float] = {}
        print(
            f"Latency: {args.rate:,} business events/s for {args.latency_seconds} s ...", file=out, flush=True
        )
        asyncio.run(_post_probes(port, key.secret, args.rate, args.latency_seconds, accepted))
        expected = set(accepted)
        deadline = time.monotonic() + 60
        while set(watcher.seen) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        latencies = sorted(
            max(0.0, watcher.seen[c] - accepted[c]) * 1000 for c in expected if c in watcher.seen
        )
        if not latencies:
            raise SystemExit("no delivery came back for the probes")
        # The first seconds warm up the worker (JIT-free Python, but caches and connections).
        return {
            "events": len(expected),
            "delivered": len(latencies),
            "p50_ms": statistics.quantiles(latencies, n=100)[49],
            "p99_ms": statistics.quantiles(latencies, n=100)[98],
            "max_ms": latencies[-1],
        }
    finally:
        watcher.stop()
        stop_processes([process])


def main(args: argparse.Namespace, out: TextIO) -> int:
    settings = load_settings()
    bootstrap = kafka_bootstrap(settings, start_local=True)
    work = Path(tempfile.mkdtemp(prefix="refract-bench-campaigns-"))
    run = uuid.uuid4().hex[:6]
    n, customers = args.events, args.customers
    plain, live, probe = (bench_namespace(bootstrap, f"bcmp{run}{suffix}") for suffix in "abc")
    for space in (plain, live, probe):
        ensure_topics(bootstrap, replace(settings, namespace=space, partitions=args.partitions))
    _save_definitions(bootstrap, plain, with_campaigns=False)  # the same run without campaigns
    _save_definitions(bootstrap, live)
    _save_definitions(bootstrap, probe)
    results: dict[str, float] = {}
    if not args.skip_throughput:
        print(f"Generating {n:,} events for {customers:,} customers ...", file=out, flush=True)
        records = [
            (e.customer_id.encode(), encode_envelope(e))
            for e in envelopes(n, customers, base_ms=ending_now(n))
        ]
        for space in (plain, live):
            _produce(bootstrap, TopicNames(space).events, records)
        print("20 segments, no campaigns: one worker ...", file=out, flush=True)
        plain_timing = _refract_timed(args, bootstrap, plain, n, args.partitions, work, 1)
        results["plain"] = n / plain_timing.seconds
        print("20 segments and 30 campaigns: one worker ...", file=out, flush=True)
        live_timing = _refract_timed(args, bootstrap, live, n, args.partitions, work, 1)
        results["campaigns"] = n / live_timing.seconds
        results["cpu_ratio"] = plain_timing.cpu_seconds / live_timing.cpu_seconds
        deliveries = sum(1 for _ in _count(bootstrap, TopicNames(live).deliveries))
        results["deliveries"] = deliveries
    latency = {} if args.skip_latency else _latency(args, bootstrap, probe, work, out)

    print(
        f"\nrefract bench campaigns: {n:,} events (20% business events), {customers:,} customers,", file=out
    )
    print(
        f"  {len(segments())} segments, {len(campaigns()) - 1} campaigns, {args.partitions} partitions",
        file=out,
    )
    if results:
        print(f"  20 segments, no campaigns               {results['plain']:>10,.0f} events/s", file=out)
        print(f"  20 segments + 30 campaigns              {results['campaigns']:>10,.0f} events/s", file=out)
        print(
            f"  ratio (target >= 0.6)                   {results['campaigns'] / results['plain']:>10.2f}x",
            file=out,
        )
        print(f"    the same by CPU time per event        {results['cpu_ratio']:>10.2f}x", file=out)
        print(f"  deliveries written                      {results['deliveries']:>10,.0f}", file=out)
    if latency:
        print(
            f"  latency POST /v1/events -> Delivery at {args.rate:,}/s: p50 {latency['p50_ms']:.1f} ms,"
            f" p99 {latency['p99_ms']:.1f} ms (target < 100), max {latency['max_ms']:.1f} ms"
            f" ({latency['delivered']:,.0f}/{latency['events']:,.0f} delivered)",
            file=out,
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _count(bootstrap: str, topic: str) -> Iterator[None]:
    from confluent_kafka import TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-count-{uuid.uuid4().hex}"})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        for partition in metadata.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            for _ in range(high - low):
                yield None
    finally:
        consumer.close()
