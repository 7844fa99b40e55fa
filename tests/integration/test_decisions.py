"""Inbound on the real broker: placements, decisions from the owner's state, interactions, identify."""

from __future__ import annotations

from typing import Any

import pytest

from engine.campaigns.audit import Decision, decisions_of
from engine.campaigns.definition import campaign_from_body
from engine.campaigns.eligibility import in_control_group
from engine.topics import TopicNames
from schemas import decode
from streams.partitions import partition_for
from tests.support.kafka import KafkaFixture
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory, WorkerProcess

pytestmark = pytest.mark.kafka

BANNER = {
    "name": "Card upsell banner",
    "segments": ["rich"],
    "priority": 5,
    "control_group": 30,
    "inbound": {
        "home-hero": {
            "title": "{{ customer.first_name | default: 'Hello' }}, a card for you",
            "image_url": "https://cdn.example/card.png",
            "alt": "A gold card",
            "cta_label": "Apply",
            "cta_url": "https://bank.example/card",
        }
    },
}


def setup(worker: WorkerProcess) -> None:
    api = worker.api
    assert api.request("PUT", "/v1/segments/rich", {"rule": "balance >= 10000"}).status == 201
    hero = {"kind": "single", "default": {"title": "Welcome to the bank"}}
    assert api.request("PUT", "/v1/placements/home-hero", hero).status == 201
    assert api.request("PUT", "/v1/campaigns/card-banner", BANNER).status == 201


def decide(worker: WorkerProcess, customer: str) -> dict[str, Any]:
    answer = worker.api.post(
        "/v1/decisions", {"customer_id": customer, "page": "/", "placements": ["home-hero"]}
    )
    assert answer.status == 200, answer.body
    placement: dict[str, Any] = answer.body["placements"]["home-hero"]
    return placement


def rich_customers(worker: WorkerProcess, names: list[str]) -> None:
    customers = [
        {"customer_id": n, "attributes": {"balance": 20_000, "first_name": n.title()}} for n in names
    ]
    assert worker.api.post("/v1/customers", {"customers": customers}).status == 202


def inbound_audit(kafka: KafkaFixture, namespace: str, customer: str) -> list[Decision]:
    found = []
    for key, value, _, _ in kafka.read_all(TopicNames(namespace).audit):
        assert value is not None
        if key == customer.encode():
            found += [d for d in decisions_of(decode(value)[1]) if d.kind == "inbound"]
    return found


def test_decisions_show_the_campaign_to_targeted_customers_and_the_default_to_control_and_others(
    workers: WorkerFactory, kafka: KafkaFixture
) -> None:
    worker = workers.start()
    setup(worker)
    campaign = campaign_from_body("card-banner", 1, BANNER)
    names = [f"ana{n}" for n in range(40)]
    treated = next(n for n in names if not in_control_group(n, campaign))
    control = next(n for n in names if in_control_group(n, campaign))
    rich_customers(worker, [treated, control])
    assert (
        worker.api.post("/v1/customers", {"customer_id": "poor", "attributes": {"balance": 5}}).status == 202
    )

    shown = wait_for(lambda: (p := decide(worker, treated)) and not p["default"] and p, message="the banner")
    [item] = shown["items"]
    assert (
        item["campaign_id"] == "card-banner"
        and item["content"]["title"] == f"{treated.title()}, a card for you"
    )
    assert shown["kind"] == "single" and item["token"]
    audited = wait_for(
        lambda: inbound_audit(kafka, workers.namespace, treated), message="the decision's audit record"
    )
    assert audited[-1].outcome == "shown" and "home-hero:card-banner" in audited[-1].details["shown"]
    wait_for(
        lambda: decide(worker, "poor") and worker.api.get("/v1/customers/poor").status == 200, message="poor"
    )
    assert decide(worker, "poor")["default"]
    answer = wait_for(lambda: (p := decide(worker, control)) and p, message="control")
    assert answer["default"] and answer["default_content"] == {"title": "Welcome to the bank"}

    # The SDK reports the visible impression and a click; the funnel counts them, control enters too.
    interactions = [
        {
            "interaction_id": f"imp-{treated}-1",
            "kind": "impression",
            "customer_id": treated,
            "token": item["token"],
        },
        {
            "interaction_id": f"clk-{treated}-1",
            "kind": "click",
            "customer_id": treated,
            "token": item["token"],
        },
    ]
    assert worker.api.post("/v1/interactions", {"interactions": interactions}).status == 202
    funnel = wait_for(
        lambda: (
            (f := worker.api.get("/v1/campaigns/card-banner/funnel").body)
            and f["total"]["lead"] == 1
            and f["arms"].get("control", {}).get("entered", 0) >= 1
            and f
        ),
        message="the banner's funnel with its control arm",
    )
    assert funnel["arms"]["default"]["reached"] == 1 and funnel["arms"]["control"]["reached"] == 0
    campaigns = worker.api.get(f"/v1/customers/{treated}/campaigns").body["campaigns"]
    assert [c["id"] for c in campaigns] == ["card-banner"] and campaigns[0]["placements"] == ["home-hero"]
    assert worker.api.get("/v1/customers/poor/campaigns").body["campaigns"] == []


def test_a_forged_interaction_token_is_refused(workers: WorkerFactory) -> None:
    worker = workers.start()
    item = {"interaction_id": "imp-forged-1", "kind": "click", "customer_id": "x", "token": "k1.bogus.token"}
    answer = worker.api.post("/v1/interactions", {"interactions": [item]})
    assert (answer.status, answer.body["error"]["code"]) == (400, "invalid_token")


def test_decisions_for_a_customer_of_the_other_worker_come_from_its_owner(workers: WorkerFactory) -> None:
    first = workers.start("w1")
    setup(first)
    second = workers.start("w2")
    owned = wait_for(
        lambda: (
            (a := first.api.get("/readyz", key=None).body.get("partitions"))
            and (b := second.api.get("/readyz", key=None).body.get("partitions"))
            and len(a) + len(b) == 4
            and (a, b)
        ),
        message="two workers sharing the partitions",
    )
    campaign = campaign_from_body("card-banner", 1, BANNER)
    customer = next(
        c
        for c in (f"o-{i}" for i in range(500))
        if partition_for(c, 4) in owned[1] and not in_control_group(c, campaign)
    )
    rich_customers(first, [customer])
    answer = wait_for(lambda: (p := decide(first, customer)) and not p["default"] and p, message="forwarded")
    assert answer["items"][0]["content"]["title"] == f"{customer.title()}, a card for you"


def test_identify_hands_the_anonymous_profile_to_the_customer(workers: WorkerFactory) -> None:
    worker = workers.start()
    visitor = "v0123456789abcdef"
    anonymous = {"customer_id": f"anon:{visitor}", "attributes": {"favourite": "travel"}}
    assert worker.api.post("/v1/customers", anonymous).status == 202
    wait_for(lambda: worker.api.get(f"/v1/customers/anon:{visitor}").status == 200, message="the visitor")
    linked = worker.api.post("/v1/identify", {"visitor_id": visitor, "customer_id": "ana"})
    assert linked.status == 202
    profile = wait_for(
        lambda: (r := worker.api.get("/v1/customers/ana")).status == 200 and r.body, message="ana's profile"
    )
    assert profile["attributes"]["favourite"] == "travel"
