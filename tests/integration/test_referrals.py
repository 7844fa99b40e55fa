"""Referral links on the real broker: a click starts the funnel, the landing form's lead moves the flow
on, and its next email goes to the address just given; forged codes and forms are refused."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import urllib.parse
from http.cookies import SimpleCookie
from typing import Any

import pytest

from engine.deliveries import Delivery
from engine.events import ReferralClick
from engine.topics import TopicNames
from schemas.codec import decode, decode_envelope
from tests.support.kafka import KafkaFixture
from tests.support.waiting import wait_for
from tests.support.workers import ADMIN, WorkerFactory, WorkerProcess

pytestmark = pytest.mark.kafka

CAMPAIGN = {
    "name": "Open an account",
    "triggers": [{"referral": True}],
    "content": {
        "welcome-email": {
            "channel": "email",
            "subject": "Welcome, {{ customer.first_name | default: 'friend' }}",
            "text": "You came from {{ event.source }}.",
        }
    },
    "flow": [
        {"wait_for": {"interaction": "lead", "timeout": "7d", "on_timeout": "done"}},
        {"send": "welcome-email"},
        {"id": "done", "exit": True},
    ],
    "landing": {
        "title": "Open your account",
        "intro": "Hello, {{ referral.source }} friend.",
        "fields": [
            {"name": "first_name", "type": "text", "label": "First name", "required": True},
            {"name": "email", "type": "email", "label": "Email", "required": True},
            {"name": "offers", "type": "checkbox", "label": "Email me offers", "consent_channel": "email"},
        ],
        "success_message": "Thank you! Look for our email.",
    },
}


def raw_request(
    worker: WorkerProcess,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPResponse, str]:
    """One request, redirects not followed."""
    connection = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer, answer.read().decode("utf-8", "replace")
    finally:
        connection.close()


def post_form(worker: WorkerProcess, path: str, fields: dict[str, str], cookie: str) -> tuple[int, str]:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    status, _, page = raw_request(worker, "POST", path, urllib.parse.urlencode(fields).encode(), headers)
    return status, page


def deliveries_to(kafka: KafkaFixture, namespace: str, customer: str) -> list[Delivery]:
    found = []
    for key, value, _, _ in kafka.read_all(TopicNames(namespace).deliveries):
        if key == customer.encode() and value is not None:
            found.append(Delivery.from_record(decode(value)[1]))
    return found


def profile(worker: WorkerProcess, customer: str) -> dict[str, Any] | None:
    answer = worker.api.get(f"/v1/customers/{urllib.parse.quote(customer)}")
    return answer.body if answer.status == 200 and answer.body.get("contacts", {}).get("email") else None


def test_a_referral_click_and_a_landing_form_send_the_flows_email_to_the_address_given(
    workers: WorkerFactory, kafka: KafkaFixture, namespace: str
) -> None:
    worker = workers.start()
    saved = worker.api.request("PUT", "/v1/campaigns/open-account", CAMPAIGN)
    assert saved.status == 201, saved.body

    minted = wait_for(
        lambda: (
            (a := worker.api.post("/v1/referrals", {"campaign_id": "open-account", "source": "facebook"}))
            and a.status == 201
            and a.body
        ),
        message="the worker knows the campaign and mints a link",
    )
    code = minted["code"]
    assert minted["url"] == f"{worker.api.url}/r/{code}"
    unknown = worker.api.post("/v1/referrals", {"campaign_id": "nope", "source": "facebook"})
    assert (unknown.status, unknown.body["error"]["code"]) == (404, "campaign_not_found")

    # The command line mints through the same API.
    command = ["referral", "create", "--campaign", "open-account", "--source", "ads", "--expires", "30d"]
    cli = subprocess.run(
        [sys.executable, "-m", "ops.cli", *command, "--api", worker.api.url, "--api-key", ADMIN.secret],
        env=workers.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert re.search(rf"^url   {re.escape(worker.api.url)}/r/\S+$", cli.stdout, re.MULTILINE)

    status, answer, _ = raw_request(worker, "GET", f"/r/{code}")
    assert status == 302 and answer.getheader("Location") == f"/l/open-account?r={code}"
    cookie = SimpleCookie(answer.getheader("Set-Cookie"))["refract_vid"]
    assert cookie["samesite"] == "Lax" and cookie["max-age"] == "31536000" and not cookie["secure"]
    visitor = cookie.value
    customer = f"anon:{visitor}"

    click = wait_for(
        lambda: (
            [
                e
                for k, v, _, _ in kafka.read_all(TopicNames(namespace).events)
                if k == customer.encode()
                and v
                and isinstance((e := decode_envelope(v)).payload, ReferralClick)
            ]
            or None
        ),
        message="the referral click on refract.events",
    )
    assert click[0].payload == ReferralClick(code, "open-account", "facebook", visitor)

    jar = f"refract_vid={visitor}"
    status, _, page = raw_request(worker, "GET", f"/l/open-account?r={code}", headers={"Cookie": jar})
    assert status == 200 and "Hello, facebook friend." in page
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    token = found.group(1)

    status, page = post_form(
        worker,
        "/l/open-account",
        {"csrf_token": "forged", "first_name": "Ana", "email": "x@example.com"},
        jar,
    )
    assert status == 403 and "Please send the form again" in page

    fields = {
        "csrf_token": token,
        "r": code,
        "first_name": "Ana",
        "email": "ana@example.com",
        "offers": "yes",
    }
    status, page = post_form(worker, "/l/open-account", fields, jar)
    assert status == 200 and "Thank you! Look for our email." in page

    (delivery,) = wait_for(
        lambda: deliveries_to(kafka, namespace, customer) or None, message="the flow's email in the outbox"
    )
    assert (delivery.channel, delivery.address, delivery.campaign_id) == (
        "email",
        "ana@example.com",
        "open-account",
    )
    assert delivery.content["subject"] == "Welcome, Ana"
    assert delivery.content["text"].startswith("You came from facebook.")
    state = wait_for(lambda: profile(worker, customer), message="the lead folded into the visitor's profile")
    assert state["contacts"]["email"] == "ana@example.com"
    assert state["attributes"]["first_name"] == "Ana"
    assert state["consent"] == {"channel:email": True}


def test_a_forged_or_unknown_code_gets_a_friendly_404_page(workers: WorkerFactory) -> None:
    worker = workers.start()
    for path in ("/r/forged", "/r/xM2M.cmVmZXJyYWw.AAAAAAAAAAAAAAAAAAAAAA", "/l/no-such-campaign"):
        status, answer, page = raw_request(worker, "GET", path)
        assert (status, answer.getheader("Content-Type", "").split(";")[0]) == (404, "text/html"), path
        assert "<h1>" in page and "Traceback" not in page
