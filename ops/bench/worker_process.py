"""Worker processes for the benchmarks: one environment, one way to start and stop them."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TextIO

from api.auth import NewKey
from engine.errors import RefractError
from streams.topic_admin import drop_namespace

# The namespaces this run made, with the Kafka they are on: their topics go when the run ends.
_NAMESPACES: list[tuple[str, str]] = []


def bench_namespace(bootstrap: str, name: str) -> str:
    """``name``, noted as a fresh namespace of this run (``drop_bench_namespaces`` deletes it)."""
    _NAMESPACES.append((bootstrap, name))
    return name


def drop_bench_namespaces(out: TextIO) -> None:
    """Delete the topics of every namespace the run made: repeated runs would otherwise pile
    thousands of partitions (and their open files) up on the broker."""
    dropped = 0
    while _NAMESPACES:
        bootstrap, name = _NAMESPACES.pop()
        try:
            dropped += len(drop_namespace(bootstrap, name))
        except RefractError as exc:
            print(f"could not delete the topics of namespace {name}: {exc.message}", file=out)
    if dropped:
        print(f"Deleted the run's {dropped} topics (keep them with refract bench --keep-topics).", file=out)


def worker_env(
    bootstrap: str,
    namespace: str,
    partitions: int,
    data_dir: Path,
    *,
    key: NewKey | None = None,
    log_level: str = "info",
    standby_replicas: int = 0,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a bench worker: a fresh namespace, no rate limit, a signing secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFRACT_")}
    env.update(
        REFRACT_NAMESPACE=namespace,
        REFRACT_KAFKA_BOOTSTRAP=bootstrap,
        REFRACT_PARTITIONS=str(partitions),
        REFRACT_DATA_DIR=str(data_dir),
        REFRACT_LOG_LEVEL=log_level,
        REFRACT_STANDBY_REPLICAS=str(standby_replicas),
        REFRACT_SIGNING_SECRET=secrets.token_urlsafe(32),
        REFRACT_RATE_LIMIT_PER_S="0",
    )
    if key is not None:
        env["REFRACT_API_KEYS"] = f"{key.setting.key_id}:{key.setting.secret_sha256}:admin"
    env.update(extra or {})
    return env


def spawn_worker(
    env: dict[str, str], port: int, log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "worker", "--web-port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),
    )


def stop_processes(processes: Iterable[subprocess.Popen[bytes] | None], timeout_s: float = 30.0) -> None:
    running = [p for p in processes if p is not None and p.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()


def scrape(port: int, *names: str) -> dict[str, float]:
    """Series -> value of the named metrics (full names, e.g. with ``_total``) of a worker.

    Asks for those names only (``/metrics?name[]=...``): polling the whole text would steal the
    measured worker's time, the more so with many campaigns' series.
    """
    query = urllib.parse.urlencode([("name[]", name) for name in names])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics?{query}", timeout=5) as answer:
        text = answer.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            values[series] = float(value)
    return values


def metric_total(port: int, name: str) -> float:
    """The sum of a metric's series over their labels."""
    return sum(scrape(port, name).values())
