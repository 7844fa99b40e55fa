"""``refract bench import``: how fast a CSV file is imported into Kafka, against a bare ceiling.

In one run, on one generated file (12 columns of realistic types): the import (``import_file``,
the code ``refract import`` runs) into a fresh namespace; a re-import of the same file with
nothing changed; and the ceiling, which reads and parses the same file with Python's csv module
and produces the records the import wrote (read back from the topic, so encoded beforehand) with
a bare confluent-kafka producer: only read + produce are timed. Also a re-import of the same rows
with one changed (another file: every row is checked). Prints rows/s, the ratio to the ceiling,
the re-import's speed-up, the peak RSS, and where a changed row's time goes.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import resource
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from confluent_kafka import Consumer, Producer, TopicPartition

from connectors.csv import Sync, load_sync
from connectors.csv.native import CsvRecords, row_encoder
from connectors.csv.plan import RowPlan
from engine.settings import Settings
from engine.topics import TopicNames
from ops.arguments import COUNT
from ops.bench.worker_process import bench_namespace
from ops.config import load_settings
from ops.gc_tuning import throughput_collection
from ops.imports import ImportResult, import_file
from ops.imports.conversion import Converter, Pending
from ops.logs import configure_logging
from ops.runtime import kafka_bootstrap
from streams.topic_admin import ensure_topics

TARGET_ROWS_PER_S = 33_000
TARGET_CEILING_RATIO = 0.5
TARGET_REIMPORT_SPEEDUP = 3.0
_SAMPLE_ROWS = 20_000

SYNC_YAML = """
id: bench-customers
kind: attributes
key: customer_id
columns:
  - {column: first_name, transforms: [trim]}
  - last_name
  - {column: email, transforms: [trim, lower]}
  - {column: birth_date, type: date, format: "%d/%m/%Y"}
  - gender
  - city
  - {column: balance, type: decimal}
  - {column: accounts, type: integer, default: 0}
  - {column: premium, type: boolean}
  - {column: segments, type: list, separator: "|"}
  - {column: last_login, type: timestamp}
"""
COLUMNS = (
    "customer_id", "first_name", "last_name", "email", "birth_date", "gender", "city", "balance",
    "accounts", "premium", "segments", "last_login",
)  # fmt: skip
_FIRST = ("Ana", "Luis", "María", "Juan", "Sofía", "Pedro", "Lucía", "Martín", "Valentina", "Diego")
_LAST = ("Gil", "Muñoz", "Pérez", "García", "Rodríguez", "López", "Fernández", "Silva")
_CITIES = ("Montevideo", "Salto", "Paysandú", "Madrid", "Buenos Aires", "Rosario", "Lima")
_SEGMENTS = ("young", "urban", "gold", "web", "branch", "saver")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=COUNT, default=1_000_000, help="rows of the file (default 1,000,000)")
    parser.add_argument("--partitions", type=COUNT, default=4)
    parser.add_argument(
        "--processes", type=COUNT, default=1, help="processes converting rows (refract import --processes)"
    )
    parser.add_argument(
        "--rounds",
        type=COUNT,
        default=3,
        help="imports and ceiling runs, back to back, of which the median ratio is reported (default 3)",
    )


def generate(path: Path, rows: int, seed: int = 11) -> None:
    """A CSV file of ``rows`` customers with the ``COLUMNS`` (a few empty cells, like real data)."""
    rng = random.Random(seed)
    login_base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for index in range(rows):
            login = login_base + dt.timedelta(seconds=rng.randrange(30_000_000))
            writer.writerow(
                (
                    f"cust-{index:08d}",
                    rng.choice(_FIRST),
                    rng.choice(_LAST),
                    f"customer{index}@example.com",
                    f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1940, 2006)}",
                    rng.choice("FM"),
                    rng.choice(_CITIES) if rng.random() < 0.95 else "",
                    f"{rng.uniform(0, 90_000):.2f}",
                    rng.randrange(6) if rng.random() < 0.9 else "",
                    rng.choice(("true", "false")),
                    "|".join(rng.sample(_SEGMENTS, rng.randrange(4))),
                    login.isoformat(),
                )
            )


def _read_topic(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    """Every (key, value) now in ``topic``: the records the import encoded and produced."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-import-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {}
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, partition, 0) for partition in ends])
        records: list[tuple[bytes, bytes]] = []
        while ends:
            for message in consumer.consume(10_000, timeout=5.0):
                if message.error():
                    continue
                records.append((message.key() or b"", message.value() or b""))
                partition, offset = message.partition(), message.offset()
                if partition is not None and offset is not None and offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
        return records
    finally:
        consumer.close()


def _ceiling(bootstrap: str, topic: str, path: Path, records: list[tuple[bytes, bytes]]) -> float:
    """Seconds to read and parse ``path`` with the csv module and produce ``records`` (acked)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "partitioner": "murmur2_random",
            "compression.type": "lz4",
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
        }
    )
    produce, poll = producer.produce, producer.poll
    count = len(records)
    started = time.perf_counter()
    with open(path, encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        next(rows)
        for index, _row in enumerate(rows):
            if index < count:
                key, value = records[index]
                while True:
                    try:
                        produce(topic, value, key)
                        break
                    except BufferError:
                        poll(0.01)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - started
    if remaining:
        raise SystemExit(f"the ceiling's producer left {remaining} records undelivered")
    return elapsed


def _breakdown(path: Path, sync: Sync) -> dict[str, float]:
    """Microseconds per row of the steps of an import, on a sample of the file (no Kafka): the
    csv module, then converting and encoding changed rows with the compiled encoder and with the
    Python path it stands in for."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        columns = tuple(next(reader))
        started = time.perf_counter()
        records = [record for _, record in zip(range(_SAMPLE_ROWS), reader, strict=False)]
        parse = time.perf_counter() - started
    lines = list(range(2, len(records) + 2))
    plan = RowPlan(sync, {name: columns.index(name) for name in sync.file_columns}, len(columns))
    steps = {"csv module parse": parse}
    encoder = row_encoder(plan, import_id="sample", now_ms=0, index=True, raw_key=bytes(32))
    if encoder is not None:
        # What the import's encoding thread does with the same rows' text.
        with open(path, encoding="utf-8", newline="") as handle:
            text = "".join(line for _, line in zip(range(len(records) + 1), handle, strict=False))
        parsed = CsvRecords(sync.delimiter, 1, True)
        with throughput_collection():  # as an import runs
            started = time.perf_counter()
            encoder.encode_block(parsed, text, True, None, len(records))
            steps["compiled reader + encoder"] = time.perf_counter() - started
    converter = Converter(sync, columns, "sample", 0, index=True)
    pending: list[Pending] = [
        (line, record, record[0], None) for line, record in zip(lines, records, strict=True)
    ]
    with throughput_collection():
        started = time.perf_counter()
        converter.convert(pending)
        steps["Python path (convert, digest, Avro)"] = time.perf_counter() - started
    scale = 1e6 / max(1, len(records))
    return {step: seconds * scale for step, seconds in steps.items()}


def _cpu_s() -> float:
    """CPU seconds used by this process and its finished children (the conversion pool)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else 0.0


@dataclass(slots=True)
class _Round:
    """One import of the file and one ceiling run, back to back."""

    import_s: float
    import_cpu_us: float  # CPU time per row, all of the import's threads and processes
    ceiling_s: float
    ceiling_cpu_us: float

    @property
    def ratio(self) -> float:
        return self.ceiling_s / self.import_s


def main(args: argparse.Namespace, out: TextIO) -> int:
    configure_logging()  # the imports' log events (INFO) stay out of the figures
    settings = load_settings()
    bootstrap = kafka_bootstrap(settings, start_local=True)
    work = Path(tempfile.mkdtemp(prefix="refract-bench-import-"))
    run = uuid.uuid4().hex[:6]
    try:
        path = work / "customers.csv"
        rows = args.rows
        print(f"Generating {rows:,} rows x {len(COLUMNS)} columns ...", file=out, flush=True)
        generate(path, rows)
        size_mb = path.stat().st_size / 1e6
        sync = load_sync(SYNC_YAML)

        def spaces(round_number: int) -> tuple[Settings, Settings]:
            """A fresh namespace and data folder for a round's import, and one for its ceiling."""
            imported = replace(
                settings,
                namespace=bench_namespace(bootstrap, f"benchimp{run}r{round_number}a"),
                partitions=args.partitions,
                data_dir=work / f"data{round_number}",
            )
            ceiling_name = bench_namespace(bootstrap, f"benchimp{run}r{round_number}b")
            ceiling = replace(imported, namespace=ceiling_name)
            for space in (imported, ceiling):
                ensure_topics(bootstrap, space)
            return imported, ceiling

        def timed_import(space: Settings) -> tuple[ImportResult, float]:
            cpu_before = _cpu_s()
            result = import_file(path, sync, space, bootstrap=bootstrap, processes=args.processes)
            cpu_per_row_us = (_cpu_s() - cpu_before) / rows * 1e6
            _check(result, rows)
            print(f"  import: {_rate(rows, result.duration_s):,.0f} rows/s", file=out, flush=True)
            return result, cpu_per_row_us

        def timed_ceiling(space: Settings, records: list[tuple[bytes, bytes]]) -> tuple[float, float]:
            cpu_before = _cpu_s()
            seconds = _ceiling(bootstrap, TopicNames(space.namespace).events, path, records)
            cpu_per_row_us = (_cpu_s() - cpu_before) / len(records) * 1e6
            print(f"  ceiling: {_rate(rows, seconds):,.0f} rows/s", file=out, flush=True)
            return seconds, cpu_per_row_us

        print(
            f"Round 1 of {args.rounds}: importing {path.name} ({size_mb:,.0f} MB) ...", file=out, flush=True
        )
        imported_space, ceiling_space = spaces(1)
        first, first_cpu_us = timed_import(imported_space)
        print("Re-importing the same file (nothing changed) ...", file=out, flush=True)
        second = import_file(path, sync, imported_space, bootstrap=bootstrap, processes=args.processes)
        if second.unchanged != rows or second.events:
            raise SystemExit(f"the re-import was not a no-op: {second.to_json()}")
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        records = _read_topic(bootstrap, TopicNames(imported_space.namespace).events)
        if len(records) != rows:
            raise SystemExit(f"expected {rows:,} records on the topic, found {len(records):,}")
        # The same rows in another file (the first row changed): every row is checked one by one.
        print("Re-importing the rows with one of them changed ...", file=out, flush=True)
        edited = work / "customers-edited.csv"
        _edit_first_row(path, edited)
        third = import_file(edited, sync, imported_space, bootstrap=bootstrap, processes=args.processes)
        if third.unchanged != rows - 1 or third.events != 1:
            raise SystemExit(f"the edited re-import was not one event: {third.to_json()}")
        print("Ceiling: csv module + confluent-kafka, pre-encoded records ...", file=out, flush=True)
        rounds = [_Round(first.duration_s, first_cpu_us, *timed_ceiling(ceiling_space, records))]
        # More rounds, the ceiling first in every other one: the machine's speed drifts by tens
        # of percent over minutes, and one pair of runs can land on either side of a drift.
        for round_number in range(2, args.rounds + 1):
            print(f"Round {round_number} of {args.rounds} ...", file=out, flush=True)
            imported_space_n, ceiling_space_n = spaces(round_number)
            if round_number % 2 == 0:
                ceiling = timed_ceiling(ceiling_space_n, records)
                result, cpu_us = timed_import(imported_space_n)
            else:
                result, cpu_us = timed_import(imported_space_n)
                ceiling = timed_ceiling(ceiling_space_n, records)
            rounds.append(_Round(result.duration_s, cpu_us, *ceiling))
            shutil.rmtree(imported_space_n.data_dir, ignore_errors=True)
        del records
        steps = _breakdown(path, sync)

        middle = _median_round(rounds)
        speedup = first.duration_s / second.duration_s
        print(
            f"\nrefract bench import: {rows:,} rows x {len(COLUMNS)} columns ({size_mb:,.0f} MB),"
            f" {args.partitions} partitions, {first.events:,} events,"
            f" {args.processes} converting process(es), {len(rounds)} round(s)",
            file=out,
        )
        if len(rounds) > 1:
            for number, one in enumerate(rounds, 1):
                print(
                    f"  round {number}: import {_rate(rows, one.import_s):>9,.0f} rows/s,"
                    f" ceiling {_rate(rows, one.ceiling_s):>9,.0f} rows/s, ratio {one.ratio:.2f}x;"
                    f" CPU {one.import_cpu_us:.1f} / {one.ceiling_cpu_us:.1f} us/row",
                    file=out,
                )
            print("  the round with the median ratio:", file=out)
        ceiling_rate, import_rate = _rate(rows, middle.ceiling_s), _rate(rows, middle.import_s)
        print(f"  {'ceiling (csv module + confluent-kafka)':<44} {ceiling_rate:>10,.0f} rows/s", file=out)
        print(
            f"  {'Refract import':<44} {import_rate:>10,.0f} rows/s  ({middle.import_s:.1f} s;"
            f" target >= {TARGET_ROWS_PER_S:,})",
            file=out,
        )
        print(
            f"  {'import / ceiling':<44} {middle.ratio:>10.2f}x         (target >= {TARGET_CEILING_RATIO})",
            file=out,
        )
        print(
            f"  {'re-import, nothing changed':<44} {_rate(rows, second.duration_s):>10,.0f} rows/s"
            f"  ({second.duration_s:.1f} s)",
            file=out,
        )
        print(
            f"  {'re-import speed-up':<44} {speedup:>10.1f}x"
            f"         (target >= {TARGET_REIMPORT_SPEEDUP:.0f}x; the same file is not read again)",
            file=out,
        )
        print(
            f"  {'re-import, one row changed (row by row)':<44} {_rate(rows, third.duration_s):>10,.0f}"
            f" rows/s  ({third.duration_s:.1f} s; {first.duration_s / third.duration_s:.1f}x the import)",
            file=out,
        )
        print(f"  {'peak RSS (import + re-import)':<44} {peak_rss_mb:>10,.0f} MB", file=out)
        print(
            f"  {'CPU time of the import (all processes)':<44} {middle.import_cpu_us:>10.1f} us/row"
            f"  ({os.cpu_count()} CPUs; load average {os.getloadavg()[1]:.1f} over the last 5 min)",
            file=out,
        )
        # The broker's CPU is in neither figure. On a loaded machine the ceiling (one thread)
        # loses more than the import (several), so the wall-time ratio flatters the import there.
        print(
            f"  {'CPU time of the ceiling':<44} {middle.ceiling_cpu_us:>10.1f} us/row"
            f"  (import / ceiling by CPU per row: {middle.ceiling_cpu_us / middle.import_cpu_us:.2f}x)",
            file=out,
        )
        print(f"  where a changed row's time goes (first {_SAMPLE_ROWS:,} rows, no Kafka):", file=out)
        for step, micros in steps.items():
            print(f"    {step:<42} {micros:>8.1f} us/row", file=out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _median_round(rounds: list[_Round]) -> _Round:
    """The round whose ratio is the median (the lower middle one of an even count)."""
    ordered = sorted(rounds, key=lambda one: one.ratio)
    return ordered[(len(ordered) - 1) // 2]


def _edit_first_row(path: Path, edited: Path) -> None:
    """A copy of ``path`` whose first row's city is another: same rows, one changed."""
    with open(path, "rb") as source, open(edited, "wb") as target:
        target.write(source.readline())
        cells = source.readline().split(b",")
        cells[COLUMNS.index("city")] = b"Colonia"
        target.write(b",".join(cells))
        shutil.copyfileobj(source, target, 1 << 20)


def _check(result: ImportResult, rows: int) -> None:
    if result.imported != rows or result.invalid:
        raise SystemExit(f"the import did not import every row: {result.to_json()}")
