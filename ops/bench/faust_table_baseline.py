"""The framework baseline: a minimal faust agent folding into a plain faust Table (defaults).

One ``get`` and one ``set`` per event, as a first faust implementation would do. Run as a
process by ``refract bench ingest``; writes {"events": n, "seconds": s} to --result and exits.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path
from typing import Any

import faust
import orjson

from engine.fold import fold
from engine.state import from_document, to_document
from schemas.codec import decode_envelope


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--datadir", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--app-id", default=f"bench-baseline-{os.getpid()}")
    args = parser.parse_args()

    app = faust.App(
        args.app_id,
        broker=f"kafka://{args.bootstrap}",
        store="rocksdb://",
        datadir=args.datadir,
        topic_partitions=args.partitions,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
    )
    topic = app.topic(
        args.topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=args.partitions,
    )
    table = app.Table("state", default=None, partitions=args.partitions)
    seen = {"n": 0, "first": 0.0, "first_cpu": 0.0}

    @app.agent(topic)
    async def fold_events(stream: Any) -> None:
        async for event in stream.events():
            if seen["n"] == 0:
                seen["first"] = time.perf_counter()
                seen["first_cpu"] = time.process_time()
            envelope = decode_envelope(event.message.value)
            key = envelope.customer_id
            raw = table.get(key)
            state = from_document(raw) if raw is not None else None
            new = fold(state, envelope, event.message.offset)
            if new is None:
                table.pop(key, None)
            else:
                table[key] = to_document(new)
            seen["n"] += 1
            if seen["n"] == args.events:
                elapsed = time.perf_counter() - seen["first"]
                cpu = time.process_time() - seen["first_cpu"]  # every thread of the process
                Path(args.result).write_bytes(
                    orjson.dumps({"events": args.events, "seconds": elapsed, "cpu_seconds": cpu})
                )
                os.kill(os.getpid(), signal.SIGTERM)

    from faust.worker import Worker

    Worker(app, loglevel="info", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
