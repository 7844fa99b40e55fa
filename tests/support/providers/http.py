"""Local HTTP providers on one aiohttp server in a background thread: Mailgun, Twilio, an SMS
gateway and FCM (with its OAuth2 token endpoint).

Each checks what the real service checks (credentials, required fields, address formats) and
answers in the real service's shapes. ``fail_next(n, status, retry_after_s=...)`` makes the next n
requests of one provider fail with that status and the provider's error body.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web

from tests.support.providers.keys import ServiceAccount

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


@dataclass(slots=True, frozen=True)
class Failure:
    status: int
    retry_after_s: float | None = None


@dataclass
class HttpFake:
    """What one provider received, and the failures it is told to answer with next."""

    received: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of accepted requests
    requests: int = 0  # every request, failed or not
    requested_at: list[float] = field(default_factory=list)  # time.monotonic() of every request
    failures: list[Failure] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int, retry_after_s: float | None = None) -> None:
        with self.lock:
            self.failures.extend([Failure(status, retry_after_s)] * count)

    def _scripted(self) -> web.Response | None:
        with self.lock:
            self.requests += 1
            self.requested_at.append(time.monotonic())
            failure = self.failures.pop(0) if self.failures else None
        if failure is None:
            return None
        headers = {}
        if failure.retry_after_s is not None:
            headers["Retry-After"] = str(int(failure.retry_after_s))
        return web.json_response(self.error_body(failure.status), status=failure.status, headers=headers)

    def _accept(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.received.append(record)
            self.arrivals.append(time.monotonic())

    def error_body(self, status: int) -> dict[str, Any]:
        return {"message": f"error {status}"}


def _basic(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


@dataclass
class FakeMailgun(HttpFake):
    domain: str = "mg.example.com"
    api_key: str = "key-test"
    invalid: set[str] = field(default_factory=set)

    def error_body(self, status: int) -> dict[str, Any]:
        return {"message": "Too many requests" if status == 429 else "Service Unavailable"}

    async def messages(self, request: web.Request) -> web.Response:
        if _basic(request) != ("api", self.api_key):
            return web.Response(status=401, text="Forbidden")
        if request.match_info["domain"] != self.domain:
            return web.json_response({"message": "Domain not found"}, status=404)
        scripted = self._scripted()
        if scripted is not None:
            return scripted
        form = await request.post()
        fields = {key: form.getall(key) for key in set(form.keys())}
        missing = [name for name in ("from", "to") if name not in fields]
        if missing:
            return web.json_response({"message": f"'{missing[0]}' parameter is missing"}, status=400)
        if "text" not in fields and "html" not in fields:
            return web.json_response(
                {"message": "Need at least one of 'text' or 'html' parameters specified"}, status=400
            )
        to = str(fields["to"][0])
        if "@" not in to or to in self.invalid:
            return web.json_response(
                {"message": "to parameter is not a valid address. please check documentation"}, status=400
            )
        message_id = f"<{time.strftime('%Y%m%d%H%M%S')}.{secrets.token_hex(8)}@{self.domain}>"
        self._accept({"fields": {k: [str(v) for v in vs] for k, vs in fields.items()}, "id": message_id})
        return web.json_response({"id": message_id, "message": "Queued. Thank you."})


@dataclass
class FakeTwilio(HttpFake):
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "twilio-token"

    def error_body(self, status: int) -> dict[str, Any]:
        code = 20429 if status == 429 else 20500 + (status % 100)
        message = "Too Many Requests" if status == 429 else "Service Unavailable"
        return {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }

    async def messages(self, request: web.Request) -> web.Response:
        if request.match_info["sid"] != self.account_sid or _basic(request) != (
            self.account_sid,
            self.auth_token,
        ):
            body = {
                "code": 20003,
                "message": "Authenticate",
                "more_info": "https://www.twilio.com/docs/errors/20003",
                "status": 401,
            }
            return web.json_response(body, status=401)
        scripted = self._scripted()
        if scripted is not None:
            return scripted
        form = await request.post()
        to, sender, text = str(form.get("To", "")), str(form.get("From", "")), str(form.get("Body", ""))
        if not _E164.fullmatch(to):
            body = {
                "code": 21211,
                "message": f"The 'To' number {to} is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            }
            return web.json_response(body, status=400)
        if not sender or not text:
            body = {"code": 21602, "message": "Message body is required.", "status": 400}
            return web.json_response(body, status=400)
        sid = "SM" + secrets.token_hex(16)
        record = {
            "To": to,
            "From": sender,
            "Body": text,
            "StatusCallback": form.get("StatusCallback"),
            "sid": sid,
        }
        self._accept(record)
        answer = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": sender,
            "body": text,
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        return web.json_response(answer, status=201)


@dataclass
class FakeGateway(HttpFake):
    authorization: str = "Bearer gateway-secret"
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def error_body(self, status: int) -> dict[str, Any]:
        return {"error": "rate limited" if status == 429 else "unavailable"}

    async def messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.authorization:
            return web.json_response({"error": "unauthorized"}, status=401)
        scripted = self._scripted()
        if scripted is not None:
            return scripted
        body = await request.json()
        if not _E164.fullmatch(str(body.get("to", ""))):
            return web.json_response({"error": "invalid number"}, status=400)
        message_id = f"gw-{next(self._ids)}"
        self._accept({**body, "id": message_id})
        return web.json_response({"id": message_id, "status": "accepted"})


@dataclass
class FakeFcm(HttpFake):
    account: ServiceAccount | None = None
    token_url: str = ""
    unregistered: set[str] = field(default_factory=set)
    tokens_issued: int = 0
    _access_tokens: set[str] = field(default_factory=set)

    def error_body(self, status: int) -> dict[str, Any]:
        code, fcm = {429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), 503: ("UNAVAILABLE", "UNAVAILABLE")}.get(
            status, ("INTERNAL", "INTERNAL")
        )
        return _fcm_error(status, "The service is busy" if status != 429 else "Quota exceeded", code, fcm)

    def revoke_tokens(self) -> None:
        self._access_tokens.clear()

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or self.account is None:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            claims = jwt.decode(
                str(form.get("assertion")),
                self.account.public_key_pem,
                algorithms=["RS256"],
                audience=self.token_url,
            )
        except jwt.PyJWTError as exc:
            return web.json_response({"error": "invalid_grant", "error_description": str(exc)}, status=400)
        if claims.get("iss") != self.account.client_email or "firebase.messaging" not in claims.get(
            "scope", ""
        ):
            return web.json_response({"error": "invalid_scope"}, status=400)
        token = "ya29." + secrets.token_urlsafe(24)
        self._access_tokens.add(token)
        self.tokens_issued += 1
        return web.json_response({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    async def send(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in self._access_tokens:
            body = _fcm_error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED", None)
            return web.json_response(body, status=401)
        assert self.account is not None
        if request.match_info["project"] != self.account.project_id:
            return web.json_response(
                _fcm_error(403, "Permission denied", "PERMISSION_DENIED", None), status=403
            )
        scripted = self._scripted()
        if scripted is not None:
            return scripted
        message = (await request.json()).get("message") or {}
        token = str(message.get("token", ""))
        if token in self.unregistered:
            body = _fcm_error(404, "Requested entity was not found.", "NOT_FOUND", "UNREGISTERED")
            return web.json_response(body, status=404)
        if not token or len(token) < 8:
            body = _fcm_error(
                400,
                "The registration token is not a valid FCM registration token",
                "INVALID_ARGUMENT",
                "INVALID_ARGUMENT",
            )
            return web.json_response(body, status=400)
        name = f"projects/{self.account.project_id}/messages/0:{secrets.randbelow(10**15)}"
        self._accept({"message": message, "name": name})
        return web.json_response({"name": name})


def _fcm_error(status: int, message: str, code: str, fcm_code: str | None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if fcm_code is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}
        ]
    return {"error": error}


class HttpProviders:
    """``with HttpProviders(port) as http:`` Mailgun, Twilio, the gateway and FCM on one port.

    Paths: ``/v3/{domain}/messages`` (Mailgun), ``/2010-04-01/Accounts/{sid}/Messages.json``
    (Twilio), ``/sms`` (gateway), ``/token`` and ``/v1/projects/{project}/messages:send`` (FCM).
    """

    def __init__(self, port: int, *, account: ServiceAccount | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.mailgun = FakeMailgun()
        self.twilio = FakeTwilio()
        self.gateway = FakeGateway()
        self.fcm = FakeFcm(account=account, token_url=f"{self.url}/token")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-http", daemon=True)
        self._runner: web.AppRunner | None = None
        # (when, seconds late) each time this server's loop woke up late: a late server records
        # the requests that queued meanwhile as one burst, which the sender did not cause.
        self._stalls: list[tuple[float, float]] = []
        self._watcher: asyncio.Future[None] | None = None

    def stalled_s(self, start: float, end: float) -> float:
        """The longest the server was late between two ``time.monotonic()`` instants."""
        return max((late for at, late in list(self._stalls) if at >= start and at - late <= end), default=0.0)

    async def _watch_stalls(self) -> None:
        tick_s = 0.005
        while True:
            before = time.monotonic()
            await asyncio.sleep(tick_s)
            late = time.monotonic() - before - tick_s
            if late > 0.002:
                self._stalls.append((time.monotonic(), late))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v3/{domain}/messages", self.mailgun.messages)
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self.twilio.messages)
        app.router.add_post("/sms", self.gateway.messages)
        app.router.add_post("/token", self.fcm.token)
        app.router.add_post("/v1/projects/{project}/messages:send", self.fcm.send)
        return app

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._watcher = asyncio.ensure_future(self._watch_stalls())

    def __enter__(self) -> HttpProviders:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            if self._watcher is not None:
                self._loop.call_soon_threadsafe(self._watcher.cancel)
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
