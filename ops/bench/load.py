"""An open-loop HTTP load generator: requests due at a fixed rate whatever the answers' speed.

Plain asyncio streams over keep-alive connections (an HTTP client library costs more per request
than the servers measured here). Latency runs from the moment a request was due.

Run as its own process (``python -m ops.bench.load``) so that it does not share the event loop, or
the interpreter lock, of the server it measures. It prints one JSON object: the latencies (ms) of
every request, the errors, and the rate achieved.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


async def _connection(
    host: str,
    port: int,
    path: str,
    headers: bytes,
    queue: asyncio.Queue[tuple[float, bytes] | None],
    latencies: list[float],
    errors: dict[str, int],
) -> None:
    """One keep-alive connection taking scheduled requests from ``queue`` until it gets None."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            item = await queue.get()
            if item is None:
                return
            scheduled, body = item
            writer.write(
                b"POST "
                + path.encode()
                + b" HTTP/1.1\r\nHost: "
                + host.encode()
                + b"\r\n"
                + headers
                + b"Content-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12].decode()
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if status != "200":
                errors[status] = errors.get(status, 0) + 1
            else:
                # From the moment the request was due: time spent waiting for a free connection
                # counts (no coordinated omission).
                latencies.append((time.perf_counter() - scheduled) * 1000)
    finally:
        writer.close()


async def run(
    url: str, bodies: list[bytes], headers: dict[str, str], rate: float, seconds: float, connections: int
) -> dict[str, object]:
    split = urlsplit(url)
    host, port, path = split.hostname or "127.0.0.1", split.port or 80, split.path
    head = b"".join(f"{name}: {value}\r\n".encode() for name, value in headers.items())
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    workers = [
        asyncio.create_task(_connection(host, port, path, head, queue, latencies, errors))
        for _ in range(connections)
    ]
    total = int(rate * seconds)
    begin = time.perf_counter()
    for n in range(total):
        due = begin + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, bodies[n % len(bodies)]))
    sent_in = time.perf_counter() - begin
    for _ in workers:
        queue.put_nowait(None)
    done = await asyncio.gather(*workers, return_exceptions=True)
    for outcome in done:
        if isinstance(outcome, BaseException):
            errors[type(outcome).__name__] = errors.get(type(outcome).__name__, 0) + 1
    return {"latencies_ms": latencies, "errors": errors, "offered_rate": total / max(sent_in, 1e-9)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True, help="a file of JSON request bodies, one per line")
    parser.add_argument("--key", default="")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    args = parser.parse_args()
    with open(args.bodies, "rb") as handle:
        bodies = [line.rstrip(b"\n") for line in handle if line.strip()]
    headers = {"Content-Type": "application/json"}
    if args.key:
        headers["Authorization"] = f"Bearer {args.key}"
    result = asyncio.run(run(args.url, bodies, headers, args.rate, args.seconds, args.connections))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
