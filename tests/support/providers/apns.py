"""A local APNs: HTTP/2 over TLS (hypercorn serving an ASGI app, self-signed certificate).

It checks the provider token (ES256, ``kid`` the key id, ``iss`` the team id) with the key's
public half, the apns-topic and apns-push-type headers, and answers like Apple: 200 with the
apns-id header, 400 ``BadDeviceToken``, 410 ``Unregistered`` (with a timestamp), 403
``InvalidProviderToken``, or what ``fail_next`` scripted (429 ``TooManyRequests``, 503 ...).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson
from hypercorn.asyncio import serve
from hypercorn.config import Config

from tests.support.providers.keys import ApnsKey, Certificate

_REASONS = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}


@dataclass
class FakeApns:
    port: int
    certificate: Certificate
    key: ApnsKey
    topic: str = "com.example.app"
    received: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    http_versions: set[str] = field(default_factory=set)
    unregistered: set[str] = field(default_factory=set)
    failures: list[tuple[int, float | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.url = f"https://localhost:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fake-apns", daemon=True)

    def fail_next(self, count: int, status: int, retry_after_s: float | None = None) -> None:
        with self.lock:
            self.failures.extend([(status, retry_after_s)] * count)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.certfile = str(self.certificate.cert_file)
        config.keyfile = str(self.certificate.key_file)
        config.alpn_protocols = ["h2"]
        config.accesslog = None
        config.errorlog = None
        self._stopping = asyncio.Event()
        self._loop.run_until_complete(serve(self, config, shutdown_trigger=self._stopping.wait))  # type: ignore[arg-type]

    def __enter__(self) -> FakeApns:
        self._thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise AssertionError("the local APNs did not start")

    def __exit__(self, *exc: object) -> None:
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(5)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, answer, extra = self._answer(scope, headers, body)
        response_headers = [(k.encode(), v.encode()) for k, v in extra.items()]
        if answer is not None:
            response_headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send(
            {"type": "http.response.body", "body": orjson.dumps(answer) if answer is not None else b""}
        )

    def _answer(
        self, scope: dict[str, Any], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        with self.lock:
            self.requests += 1
            self.http_versions.add(scope.get("http_version", "?"))
        path = scope["path"]
        if scope["method"] != "POST" or not path.startswith("/3/device/"):
            return 405 if scope["method"] != "POST" else 404, {"reason": "BadPath"}, {}
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        extra = {"apns-id": apns_id}
        bearer = headers.get("authorization", "")
        try:
            if not bearer.startswith("bearer "):
                raise jwt.InvalidTokenError("no bearer token")
            token = bearer[7:]
            if jwt.get_unverified_header(token).get("kid") != self.key.key_id:
                raise jwt.InvalidTokenError("unknown key id")
            claims = jwt.decode(token, self.key.public_key_pem, algorithms=["ES256"])
            if claims.get("iss") != self.key.team_id:
                raise jwt.InvalidTokenError("wrong team")
        except jwt.PyJWTError:
            return 403, {"reason": "InvalidProviderToken"}, extra
        if headers.get("apns-topic") != self.topic:
            return 400, {"reason": "TopicDisallowed"}, extra
        if headers.get("apns-push-type") not in ("alert", "background"):
            return 400, {"reason": "InvalidPushType"}, extra
        with self.lock:
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            status, retry_after = failure
            if retry_after is not None:
                extra["retry-after"] = str(int(retry_after))
            return status, {"reason": _REASONS.get(status, "InternalServerError")}, extra
        device = path.removeprefix("/3/device/")
        if device in self.unregistered:
            return 410, {"reason": "Unregistered", "timestamp": int(time.time() * 1000)}, extra
        if len(device) != 64 or any(c not in "0123456789abcdef" for c in device):
            return 400, {"reason": "BadDeviceToken"}, extra
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 400, {"reason": "PayloadEmpty"}, extra
        with self.lock:
            self.received.append({"device": device, "headers": headers, "payload": payload})
        return 200, None, extra
