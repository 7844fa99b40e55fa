"""A local SMTP server (aiosmtpd) that keeps what it receives and can be told to refuse.

Optional STARTTLS (or implicit TLS) with a self-signed certificate and AUTH PLAIN/LOGIN with one
user. ``fail_next(n, 421)`` answers the next n messages' DATA with that reply;
``refuse(address)`` answers RCPT TO for that address with 550 (no such mailbox).
"""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.providers.keys import Certificate


@dataclass(slots=True, frozen=True)
class ReceivedMail:
    mail_from: str
    recipients: tuple[str, ...]
    message: EmailMessage
    at_s: float  # time.monotonic() when accepted


@dataclass
class _Handler:
    received: list[ReceivedMail] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # replies for the next DATA commands
    refused: dict[str, str] = field(default_factory=dict)
    before_accept: Callable[[EmailMessage], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    attempts: int = 0
    keep: bool = True  # False: count accepted messages only (benchmarks)
    accepted: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        reply = self.refused.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.attempts += 1
            if self.failures:
                return self.failures.pop(0)
            if not self.keep:
                self.accepted += 1
                return "250 2.0.0 Message accepted for delivery"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if self.before_accept is not None:
            self.before_accept(message)
        with self.lock:
            self.received.append(
                ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), message, time.monotonic())
            )
        return "250 2.0.0 Message accepted for delivery"


class FakeSmtp:
    """``with FakeSmtp(port) as smtp:`` a server on 127.0.0.1 until the block ends."""

    def __init__(
        self,
        port: int,
        *,
        certificate: Certificate | None = None,
        implicit_tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        keep: bool = True,
    ) -> None:
        self.port = port
        self.username = username
        self._handler = _Handler(keep=keep)
        kwargs: dict[str, Any] = {}
        tls: ssl.SSLContext | None = None
        if certificate is not None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(certificate.cert_file, certificate.key_file)
        if tls is not None and not implicit_tls:
            kwargs.update(tls_context=tls, require_starttls=True)
        if username is not None:
            expected = (username.encode(), (password or "").encode())

            def authenticate(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (data.login, data.password) == expected
                return AuthResult(success=ok, handled=False)

            kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=tls is not None)
        self._controller = Controller(
            self._handler,
            hostname="127.0.0.1",
            port=port,
            ssl_context=tls if implicit_tls else None,
            server_hostname="localhost",
            **kwargs,
        )

    def __enter__(self) -> FakeSmtp:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def received(self) -> list[ReceivedMail]:
        with self._handler.lock:
            return list(self._handler.received)

    @property
    def attempts(self) -> int:
        """DATA commands seen, accepted or not."""
        return self._handler.attempts

    def fail_next(self, count: int, reply: str = "421 4.7.0 Try again later") -> None:
        with self._handler.lock:
            self._handler.failures.extend([reply] * count)

    def refuse(self, address: str, reply: str = "550 5.1.1 No such user here") -> None:
        self._handler.refused[address.lower()] = reply

    def before_accept(self, hook: Callable[[EmailMessage], None] | None) -> None:
        """Call ``hook`` with each message after it is read and before it is acknowledged."""
        self._handler.before_accept = hook

    def message_ids(self) -> list[str]:
        return [str(mail.message["Message-ID"]) for mail in self.received]
