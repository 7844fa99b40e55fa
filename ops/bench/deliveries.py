"""``refract bench deliveries``: how fast the dispatchers send, against a bare loop of provider calls.

In one run, per channel (email to a local SMTP server, SMS to a local HTTP gateway, both served
by a separate process): the ceiling, which makes the same provider calls from a bare asyncio
loop with the same concurrency and no Kafka, no ledger and no results; and a Refract worker,
which consumes the same number of deliveries from ``refract.deliveries``, sends them, appends
their results to ``refract.events`` and records their ids. The worker's time runs from the
first delivery produced until every delivery is finished (results and ledger acked).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from confluent_kafka import Producer

from connectors.channels import Provider, build_providers
from engine.deliveries import Delivery
from engine.events import Channel
from engine.topics import TopicNames
from ops.arguments import COUNT
from ops.bench.worker_process import bench_namespace, scrape, spawn_worker, worker_env
from ops.channel_config import load_channel_settings
from ops.config import load_settings
from ops.runtime import kafka_bootstrap
from schemas.codec import encode
from streams.topic_admin import ensure_topics

ROOT = Path(__file__).resolve().parents[2]
TARGET_RATIO = 0.7
CHANNELS: tuple[Channel, ...] = ("email", "sms")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=COUNT, default=50_000, help="deliveries per channel (default 50,000)")
    parser.add_argument("--partitions", type=COUNT, default=4)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def deliveries(channel: Channel, count: int, run: str) -> list[Delivery]:
    email = {
        "subject": "Your offer",
        "text": "Hello, your offer is ready.",
        "html": "<p>Hello, your offer is ready.</p>",
        "unsubscribe_url": "https://r.example/u/x",
    }
    content = email if channel == "email" else {"text": "Your offer is ready: 20% off today."}
    now_ms = int(time.time() * 1000)
    return [
        Delivery(
            delivery_id=f"dlv_{run}_{channel}_{i}",
            customer_id=f"cust-{i % 10_000:05d}",
            campaign_id="bench",
            campaign_version=1,
            run_id=run,
            step_id=channel,
            channel=channel,
            address=f"customer{i}@example.com" if channel == "email" else f"+5989{i:07d}",
            content=content,
            created_at_ms=now_ms,
        )
        for i in range(count)
    ]


def channel_env(smtp_port: int, http_port: int) -> dict[str, str]:
    return {
        "REFRACT_SMTP_HOST": "127.0.0.1",
        "REFRACT_SMTP_PORT": str(smtp_port),
        "REFRACT_SMTP_SECURITY": "none",
        "REFRACT_EMAIL_FROM": "Shop <news@shop.example>",
        "REFRACT_SMS_GATEWAY_URL": f"http://127.0.0.1:{http_port}/sms",
        "REFRACT_SMS_GATEWAY_AUTHORIZATION": "Bearer gateway-secret",
    }


async def _bare_loop(provider: Provider, items: list[Delivery], concurrency: int) -> tuple[float, float]:
    """Seconds (wall, CPU) to send ``items`` with ``concurrency`` calls in flight, nothing else."""
    queue = iter(items)

    async def sender() -> None:
        for delivery in queue:
            await provider.send(delivery)

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    await provider.close()
    return elapsed, cpu


def _ceiling(env: dict[str, str], channel: Channel, items: list[Delivery]) -> tuple[float, float]:
    settings = load_channel_settings(env, None, "bench")
    assert settings is not None
    providers = build_providers(settings)
    provider = providers.email if channel == "email" else providers.sms
    assert provider is not None
    return asyncio.run(_bare_loop(provider, items, settings.concurrency(channel)))


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the worker exited; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the worker was not ready within 3 minutes; see {log}")


def _produce(bootstrap: str, topic: str, items: list[Delivery]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "partitioner": "murmur2_random",
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
        }
    )
    for delivery in items:
        producer.produce(topic, encode("Delivery", delivery.to_record()), delivery.customer_id.encode())
        producer.poll(0)
    producer.flush(60)


def _through_worker(
    bootstrap: str, port: int, process: subprocess.Popen[bytes], log: Path, topic: str, channel: Channel,
    items: list[Delivery],
) -> float:  # fmt: skip
    """Seconds from producing ``items`` until the worker has sent and recorded all of them."""
    provider = "smtp" if channel == "email" else "gateway"
    sent_key = f'refract_deliveries_sent_total{{channel="{channel}",provider="{provider}"}}'
    before = scrape(port, "refract_deliveries_sent_total").get(sent_key, 0.0)
    started = time.perf_counter()
    _produce(bootstrap, topic, items)
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the worker exited; see {log}")
        values = scrape(port, "refract_deliveries_sent_total", "refract_deliveries_pending")
        if (
            values.get(sent_key, 0.0) - before >= len(items)
            and values.get("refract_deliveries_pending", 1) == 0
        ):
            return time.perf_counter() - started
        time.sleep(0.2)
    raise SystemExit("the worker did not finish in 30 minutes")


def main(args: argparse.Namespace, out: TextIO) -> int:
    if not (ROOT / "tests" / "support" / "providers").is_dir():
        raise SystemExit(
            "refract bench deliveries runs from a source checkout (it uses tests/support/providers)"
        )
    settings = load_settings()
    bootstrap = kafka_bootstrap(settings, start_local=True)
    work = Path(tempfile.mkdtemp(prefix="refract-bench-deliveries-"))
    run = uuid.uuid4().hex[:6]
    namespace = bench_namespace(bootstrap, f"bench{run}d")
    smtp_port, http_port, web_port = _free_port(), _free_port(), _free_port()
    env = channel_env(smtp_port, http_port)
    servers = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.providers",
            "--smtp-port",
            str(smtp_port),
            "--http-port",
            str(http_port),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=open(work / "providers.log", "wb"),  # noqa: SIM115
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        assert servers.stdout is not None
        if servers.stdout.readline().strip() != b"ready":
            raise SystemExit(f"the local providers did not start; see {work / 'providers.log'}")
        ensure_topics(bootstrap, replace(settings, namespace=namespace, partitions=args.partitions))
        log = work / "worker.log"
        worker = spawn_worker(
            worker_env(bootstrap, namespace, args.partitions, work / "data", log_level="warning", extra=env),
            web_port,
            log,
            cwd=ROOT,
        )
        _wait_ready(web_port, worker, log)
        figures: dict[Channel, tuple[float, float, float, float]] = {}
        for channel in CHANNELS:
            print(
                f"{channel}: ceiling, {args.count:,} provider calls from a bare loop ...",
                file=out,
                flush=True,
            )
            wall_s, cpu_s = _ceiling(env, channel, deliveries(channel, args.count, f"{run}c"))
            ceiling, ceiling_cpu_us = args.count / wall_s, cpu_s / args.count * 1e6
            print(f"{channel}: through Kafka and the dispatcher ...", file=out, flush=True)
            items = deliveries(channel, args.count, f"{run}w")
            cpu_before = _cpu_s(worker.pid)
            seconds = _through_worker(
                bootstrap, web_port, worker, log, TopicNames(namespace).deliveries, channel, items
            )
            cpu_us = (_cpu_s(worker.pid) - cpu_before) / args.count * 1e6
            figures[channel] = (args.count / seconds, ceiling, cpu_us, ceiling_cpu_us)
    finally:
        for process in (worker, servers):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
    print(
        f"\nrefract bench deliveries: {args.count:,} deliveries per channel, {args.partitions} partitions",
        file=out,
    )
    columns = f"{'dispatcher':>14} {'ceiling':>14} {'ratio':>7}"
    header = f"  {'channel':<8} {columns}  {'CPU/msg: worker':>15} {'ceiling':>8}"
    print(header, file=out)
    for channel, (rate, ceiling, cpu_us, ceiling_cpu_us) in figures.items():
        ratio = rate / ceiling
        mark = "ok" if ratio >= TARGET_RATIO else f"below {TARGET_RATIO}"
        rates = f"{rate:>10,.0f} msg/s {ceiling:>8,.0f} msg/s"
        cpu = f"{cpu_us / 1000:>12.2f} ms {ceiling_cpu_us / 1000:>5.2f} ms"
        print(f"  {channel:<8} {rates} {ratio:>7.2f}  {cpu}  {mark}", file=out)
    print(f"  (logs in {work})", file=out)
    return 0
