"""Local providers for the provider tests, and a factory of deliveries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.deliveries import Delivery
from tests.conftest import free_port
from tests.support.providers.apns import FakeApns
from tests.support.providers.http import HttpProviders
from tests.support.providers.keys import Certificate, apns_key, self_signed, service_account


def make_delivery(channel: str = "email", address: str = "ana@example.com", **content: str) -> Delivery:
    defaults: dict[str, dict[str, str]] = {
        "email": {"subject": "Hello", "text": "Hi Ana", "html": "<p>Hi Ana</p>", "from": "news@shop.example"},
        "sms": {"text": "Your code is 1234"},
        "push": {"platform": "android", "title": "Offer", "body": "20% off today"},
    }
    return Delivery(
        delivery_id="dlv_0123456789abcdef01234567",
        customer_id="ana",
        campaign_id="welcome",
        campaign_version=1,
        run_id="run-1",
        step_id="step-1",
        channel=channel,  # type: ignore[arg-type]
        address=address,
        content={**defaults[channel], **content},
        created_at_ms=1_760_000_000_000,
    )


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def http_providers(tmp_path: Path) -> Iterator[HttpProviders]:
    port = free_port()
    account = service_account(tmp_path, f"http://127.0.0.1:{port}/token")
    with HttpProviders(port, account=account) as servers:
        yield servers


@pytest.fixture
def fake_apns(tmp_path: Path, certificate: Certificate) -> Iterator[FakeApns]:
    with FakeApns(free_port(), certificate, apns_key(tmp_path)) as server:
        yield server


def fields_of(record: dict[str, Any]) -> dict[str, list[str]]:
    return record["fields"]  # type: ignore[no-any-return]
