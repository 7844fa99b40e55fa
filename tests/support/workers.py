"""Refract workers run as real processes (``refract worker``) for integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.auth import mint_key
from engine.settings import ApiKeySetting
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
ADMIN = mint_key({"admin"}, key_id="testadmin")
READER = mint_key({"customers:read"}, key_id="testreader")
SIGNING_SECRET = "test-signing-secret-0123456789abcdef"


def api_keys_variable(*keys: ApiKeySetting) -> str:
    """REFRACT_API_KEYS for ``keys``, with their options (public, origins, limits)."""
    entries = []
    for key in keys:
        options = (["public"] if key.public else []) + [f"origin={origin}" for origin in key.origins]
        if key.rate_per_s is not None:
            options.append(f"rate_per_s={key.rate_per_s}")
        if key.burst is not None:
            options.append(f"burst={key.burst}")
        query = "?" + "&".join(options) if options else ""
        entries.append(f"{key.key_id}:{key.secret_sha256}:{','.join(sorted(key.scopes))}{query}")
    return ";".join(entries)


@dataclass(slots=True)
class Response:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass(slots=True)
class ApiClient:
    url: str
    key: str | None = ADMIN.secret

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        key: str | None = "default",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Response:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        token = self.key if key == "default" else key
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                payload = answer.read()
                status, headers = answer.status, dict(answer.headers)
        except urllib.error.HTTPError as error:
            payload, status, headers = error.read(), error.code, dict(error.headers)
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload.decode("utf-8", "replace")
        return Response(status, parsed, headers)

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.request("POST", path, body, **kwargs)


@dataclass(slots=True)
class WorkerProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    api: ApiClient = field(init=False)

    def __post_init__(self) -> None:
        self.api = ApiClient(f"http://127.0.0.1:{self.port}")

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it until it exits
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "worker", "--web-port", str(self.port), "--name", self.name],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout_s: float = 90.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            if not self.alive():
                raise AssertionError(f"worker {self.name} exited:\n{self.log_tail()}")
            answer = self.api.get("/readyz", key=None)
            return answer.body if answer.status == 200 else None

        try:
            return wait_for(ready, timeout_s=timeout_s, interval_s=0.25, message=f"worker {self.name} ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- log of {self.name} ---\n{self.log_tail()}") from None

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()


class WorkerFactory:
    def __init__(self, bootstrap: str, namespace: str, tmp: Path, free_port: Callable[[], int]) -> None:
        self.bootstrap = bootstrap
        self.namespace = namespace
        self.tmp = tmp
        self.free_port = free_port
        self.started: list[WorkerProcess] = []

    def env(self, **extra: str) -> dict[str, str]:
        keys = api_keys_variable(ADMIN.setting, READER.setting)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REFRACT_")}
        env.update(
            REFRACT_NAMESPACE=self.namespace,
            REFRACT_KAFKA_BOOTSTRAP=self.bootstrap,
            REFRACT_DATA_DIR=str(self.tmp / "data"),
            REFRACT_API_KEYS=keys,
            REFRACT_SIGNING_SECRET=SIGNING_SECRET,
            REFRACT_PARTITIONS="4",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def start(
        self, name: str = "w1", *, port: int | None = None, wait: bool = True, **env: str
    ) -> WorkerProcess:
        worker = WorkerProcess(name, port or self.free_port(), self.env(**env), self.tmp / f"{name}.log")
        worker.start()
        self.started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()
