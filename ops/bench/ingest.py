"""``refract bench ingest``: how fast one worker (and two) fold events into customer state.

In one run, on the same events: the ceiling (a bare confluent-kafka consumer decoding every
event), the framework baseline (a minimal faust agent with a plain faust Table, defaults), one
Refract worker, and two Refract workers. Prints events/s and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from confluent_kafka import Consumer, Producer

from api.auth import mint_key
from engine.topics import TopicNames
from ops.arguments import COUNT, NON_NEGATIVE
from ops.bench.worker_process import bench_namespace, metric_total, spawn_worker, stop_processes, worker_env
from ops.bench.workload import envelopes
from ops.config import load_settings
from ops.runtime import kafka_bootstrap
from schemas.codec import decode_envelope, encode_envelope
from streams.topic_admin import ensure_topics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=COUNT, default=200_000, help="events to produce (default 200,000)")
    parser.add_argument(
        "--customers", type=COUNT, default=100_000, help="distinct customers (default 100,000)"
    )
    parser.add_argument("--partitions", type=COUNT, default=4)
    parser.add_argument("--skip-baseline", action="store_true", help="skip the slow faust Table baseline")
    parser.add_argument("--skip-two-workers", action="store_true")
    parser.add_argument(
        "--standby-replicas",
        type=NON_NEGATIVE,
        default=1,
        help="standby replicas of the workers' state (default 1)",
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "partitioner": "murmur2_random",
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    started = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)
    return time.perf_counter() - started


def _ceiling(bootstrap: str, topic: str, events: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-ceiling-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    first = 0.0
    while seen < events:
        for message in consumer.consume(2000, timeout=1.0):
            if message.error():
                continue
            if seen == 0:
                first = time.perf_counter()
            decode_envelope(message.value() or b"")
            seen += 1
    elapsed = time.perf_counter() - first
    consumer.close()
    return elapsed


@dataclass(slots=True, frozen=True)
class Timing:
    """How long a run took from its first event to its last: wall time, and the CPU time its
    processes used meanwhile (steadier on a shared machine, whose cores are sometimes elsewhere)."""

    seconds: float
    cpu_seconds: float


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by the processes ``pids`` (all their threads)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def _baseline(bootstrap: str, topic: str, events: int, partitions: int, work: Path) -> Timing:
    result = work / "baseline.json"
    app_id = bench_namespace(bootstrap, f"bench-baseline-{uuid.uuid4().hex[:6]}")
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops.bench.faust_table_baseline",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--events",
            str(events),
            "--partitions",
            str(partitions),
            "--datadir",
            str(work / "baseline"),
            "--result",
            str(result),
            "--app-id",
            app_id,
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(work / "baseline.log", "wb"),  # noqa: SIM115 - closed when the process exits
        timeout=1800,
        check=False,
    )
    if not result.exists():
        raise SystemExit(
            f"the faust baseline failed (exit {process.returncode}); see {work / 'baseline.log'}"
        )
    measured = json.loads(result.read_text())
    return Timing(measured["seconds"], measured["cpu_seconds"])


def _processed(port: int) -> float:
    return metric_total(port, "refract_events_processed_total")


def _ready_partitions(port: int) -> list[int] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            partitions: list[int] = json.loads(answer.read())["partitions"]
            return partitions
    except (OSError, ValueError, KeyError):
        return None


def _refract_timed(
    args: argparse.Namespace,
    bootstrap: str,
    namespace: str,
    events: int,
    partitions: int,
    work: Path,
    workers: int,
    produce_when_ready: list[tuple[bytes, bytes]] | None = None,
) -> Timing:
    """How long ``workers`` worker processes take to fold ``events`` events (first to last).

    With ``produce_when_ready`` the topic is empty at start: the events are produced once every
    worker holds its share of the partitions, so no rebalance falls inside the measurement.
    """
    env = worker_env(
        bootstrap,
        namespace,
        partitions,
        work / namespace,
        key=mint_key({"admin"}),
        standby_replicas=args.standby_replicas,
    )
    ports = [_free_port() for _ in range(workers)]
    processes = [spawn_worker(env, port, work / f"{namespace}-{port}.log") for port in ports]
    try:
        if produce_when_ready is not None:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                shares = [_ready_partitions(port) for port in ports]
                if all(shares) and sorted(p for share in shares for p in share or []) == list(
                    range(partitions)
                ):
                    break
                time.sleep(0.2)
            else:
                raise SystemExit(f"the workers did not share the partitions within 3 minutes; see {work}")
            _produce(bootstrap, TopicNames(namespace).events, produce_when_ready)
        first_at = None
        first_count = 0.0
        first_cpu = 0.0
        pids = [process.pid for process in processes]
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            counts = []
            for port in ports:
                try:
                    counts.append(_processed(port))
                except OSError:
                    counts.append(0.0)
            total = sum(counts)
            now = time.perf_counter()
            if first_at is None and total > 0:
                first_at, first_count, first_cpu = now, total, cpu_seconds(pids)
            if total >= events:
                assert first_at is not None
                if total == first_count:
                    raise SystemExit(
                        f"all {events:,} events were folded before the first look at the worker:"
                        " too few to time; use more --events"
                    )
                share = events / max(1.0, events - first_count)
                return Timing((now - first_at) * share, (cpu_seconds(pids) - first_cpu) * share)
            for process in processes:
                if process.poll() is not None:
                    raise SystemExit(f"a worker exited early; see the logs in {work}")
            time.sleep(0.1)
        raise SystemExit("the workers did not finish in 30 minutes")
    finally:
        stop_processes(processes)


def main(args: argparse.Namespace, out: TextIO) -> int:
    settings = load_settings()
    bootstrap = kafka_bootstrap(settings, start_local=True)
    work = Path(tempfile.mkdtemp(prefix="refract-bench-"))
    run = uuid.uuid4().hex[:6]
    n, customers = args.events, args.customers
    print(f"Generating {n:,} events for {customers:,} customers ...", file=out, flush=True)
    records = [(e.customer_id.encode(), encode_envelope(e)) for e in envelopes(n, customers)]
    size = sum(len(v) for _, v in records) / len(records)
    print(f"  mean encoded size {size:.0f} bytes", file=out)

    one = bench_namespace(bootstrap, f"bench{run}a")
    two = bench_namespace(bootstrap, f"bench{run}b")
    for space in (one, two):
        ensure_topics(bootstrap, replace(settings, namespace=space, partitions=args.partitions))
    seconds = _produce(bootstrap, TopicNames(one).events, records)
    print(f"Produced to {TopicNames(one).events} at {n / seconds:,.0f} events/s", file=out, flush=True)
    topic = TopicNames(one).events

    results: dict[str, float] = {}
    print("Ceiling: confluent-kafka consumer + decode, no state ...", file=out, flush=True)
    results["ceiling"] = n / _ceiling(bootstrap, topic, n)
    if not args.skip_baseline:
        print(
            "Framework baseline: faust agent + faust Table get/set per event, defaults ...",
            file=out,
            flush=True,
        )
        baseline = _baseline(bootstrap, topic, n, args.partitions, work)
        results["faust_table"] = n / baseline.seconds
    print("Refract: one worker ...", file=out, flush=True)
    single = _refract_timed(args, bootstrap, one, n, args.partitions, work, 1)
    results["refract_1"] = n / single.seconds
    if not args.skip_two_workers:
        print("Refract: two workers ...", file=out, flush=True)
        pair = _refract_timed(args, bootstrap, two, n, args.partitions, work, 2, records)
        results["refract_2"] = n / pair.seconds

    print(
        f"\nrefract bench ingest: {n:,} events, {customers:,} customers, {args.partitions} partitions",
        file=out,
    )
    labels = {
        "ceiling": "ceiling (confluent consumer + decode)",
        "faust_table": "faust agent + faust Table",
        "refract_1": "Refract, one worker",
        "refract_2": "Refract, two workers",
    }
    for name, rate in results.items():
        print(f"  {labels[name]:<40} {rate:>10,.0f} events/s", file=out)
    if "faust_table" in results:
        ratio = results["refract_1"] / results["faust_table"]
        print(f"  one worker / faust Table baseline      {ratio:>10.2f}x", file=out)
        cpu_ratio = baseline.cpu_seconds / single.cpu_seconds
        print(
            f"    the same by CPU time per event       {cpu_ratio:>10.2f}x"
            f"  ({baseline.cpu_seconds * 1e6 / n:,.0f} vs {single.cpu_seconds * 1e6 / n:,.0f} µs)",
            file=out,
        )
    print(
        f"  one worker / ceiling                   {results['refract_1'] / results['ceiling']:>10.2f}x",
        file=out,
    )
    if "refract_2" in results:
        print(
            f"  two workers / one worker               {results['refract_2'] / results['refract_1']:>10.2f}x",
            file=out,
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0
