"""Worker processes for the benchmarks: one environment, one way to start and stop them."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from api.auth import NewKey


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
